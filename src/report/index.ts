/**
 * Self-contained HTML reports of run folders (`cdpo report`).
 *
 * The page embeds its styles and the charts as inline SVG rendered in Node, and loads nothing
 * from the network, so it opens offline and can be attached to an issue or mailed as one file.
 */
import * as path from "node:path";
import { invalidArgument } from "../errors.js";
import { runPaths, writeFileAtomic } from "../run/folder.js";
import { renderCompareReport } from "./compare.js";
import { loadRun } from "./load.js";
import { type RunReportOptions, renderRunReport } from "./single.js";

export { CDPO_EVAL_ROW, type FrontierPoint, frontierPoints } from "./compare.js";
export { escapeHtml } from "./escape.js";
export { loadRun, type RunData } from "./load.js";

/**
 * Writes the report of the run folder `runDir` to `outPath` (default `runDir/report.html`),
 * atomically, and returns the path written. Training calls it after every dual iteration, so a
 * report of an unfinished run shows what exists so far.
 *
 * @throws CdpoError "FILE" when the folder is missing, "DATA" when a record file is malformed.
 */
export async function writeReport(
  runDir: string,
  outPath?: string,
  options: RunReportOptions = {},
): Promise<string> {
  const run = await loadRun(runDir);
  const html = await renderRunReport(run, options);
  const target = outPath ?? runPaths(runDir).report;
  await writeFileAtomic(target, html);
  return target;
}

/**
 * Writes the comparison report of `runDirs` to `outPath` (default `compare.html` in the runs'
 * deepest common parent folder), atomically, and returns the path written.
 */
export async function writeCompareReport(
  runDirs: readonly string[],
  outPath?: string,
  options: { generatedAt?: Date } = {},
): Promise<string> {
  if (runDirs.length === 0) {
    throw invalidArgument("range", "runDirs", "at least one run folder", runDirs);
  }
  const runs = [];
  for (const dir of runDirs) runs.push(await loadRun(dir));
  const html = await renderCompareReport(runs, options);
  const target = outPath ?? path.join(commonParent(runDirs), "compare.html");
  await writeFileAtomic(target, html);
  return target;
}

/** Deepest folder that contains every one of `dirs`, which are resolved first. */
export function commonParent(dirs: readonly string[]): string {
  const split = dirs.map((dir) => path.dirname(path.resolve(dir)).split(path.sep));
  const first = split[0] ?? [];
  let length = first.length;
  for (const parts of split.slice(1)) {
    let shared = 0;
    while (shared < Math.min(length, parts.length) && parts[shared] === first[shared]) shared++;
    length = shared;
  }
  return first.slice(0, length).join(path.sep) || path.sep;
}
