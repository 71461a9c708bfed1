/**
 * Short labels for model folders in tables, logs and reports.
 */

/** Folder names that every run gives its outputs, so they do not identify the run. */
const GENERIC = /^(final|policy|checkpoint-\d+|policy-iteration-\d+)$/;

/**
 * Returns the last path component of `dir`, prefixed with its parent folder when it is a generic
 * output name such as `final` or `checkpoint-200`. For example, `runs/cost/final` gives
 * `cost/final` and `models/stories260K` gives `stories260K`.
 */
export function modelLabel(dir: string, fallback = "model"): string {
  const parts = dir.split(/[\\/]/).filter((part) => part !== "" && part !== ".");
  const last = parts.at(-1);
  if (last === undefined) return fallback;
  const parent = parts.at(-2);
  return GENERIC.test(last) && parent !== undefined && parent !== ".." ? `${parent}/${last}` : last;
}
