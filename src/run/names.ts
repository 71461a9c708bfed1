/**
 * Short labels for model folders in tables, logs and reports.
 */

/** Folder names that every run gives its outputs, and so say nothing about which run it was. */
const GENERIC = /^(final|policy|checkpoint-\d+|policy-iteration-\d+)$/;

/**
 * Returns the last path component of `dir`, or `run/final` style (the run folder, a slash, the
 * output) when the last component is a generic output name such as `final` or `checkpoint-200`:
 * `runs/cost/final` gives `cost/final`, `models/stories260K` gives `stories260K`.
 */
export function modelLabel(dir: string, fallback = "model"): string {
  const parts = dir.split(/[\\/]/).filter((part) => part !== "" && part !== ".");
  const last = parts.at(-1);
  if (last === undefined) return fallback;
  const parent = parts.at(-2);
  return GENERIC.test(last) && parent !== undefined && parent !== ".." ? `${parent}/${last}` : last;
}
