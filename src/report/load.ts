/**
 * Loads everything a report shows from one run folder, noting what is absent.
 */
import { access } from "node:fs/promises";
import * as path from "node:path";
import { CdpoError } from "../errors.js";
import {
  listSampleIterations,
  readConfig,
  readEval,
  readIterationsFile,
  readMetricsFile,
  readSamples,
  readVersions,
  requireRunFolder,
  runPaths,
} from "../run/folder.js";
import type {
  EvalTable,
  IterationRecord,
  MetricsRecord,
  RunConfig,
  SampleRecord,
  Versions,
} from "../run/records.js";

/** Contents of one run folder, as the report uses them. */
export interface RunData {
  /** Run folder path as given. */
  dir: string;
  /** Display name: `config.name` when it is a string, else the folder's base name. */
  name: string;
  /** Stage: `config.stage` when it is a string, "cdpo" when iterations exist, else the phases. */
  stage: string;
  config: RunConfig | undefined;
  versions: Versions | undefined;
  metrics: MetricsRecord[];
  iterations: IterationRecord[];
  evalTable: EvalTable | undefined;
  /** Samples by dual iteration, for the iterations that have a sample file. */
  samples: Map<number, SampleRecord[]>;
  /** Human-readable notes on absent files and skipped lines, shown at the top of the report. */
  notes: string[];
}

/**
 * Reads the run folder `dir`. Absent files become empty data plus a note; malformed files
 * throw the reader's CdpoError, which names the file and line.
 */
export async function loadRun(dir: string): Promise<RunData> {
  await requireRunFolder(dir);
  const paths = runPaths(dir);
  const notes: string[] = [];
  const markers = [paths.config, paths.metrics, paths.iterations, paths.eval];
  const present = await Promise.all(
    markers.map((p) =>
      access(p).then(
        () => true,
        () => false,
      ),
    ),
  );
  if (!present.some(Boolean)) {
    throw new CdpoError(
      "FILE",
      `${dir} is not a run folder: it has none of config.json, metrics.jsonl, iterations.jsonl ` +
        "or eval.json. Pass the folder that a cdpo command wrote with --out.",
    );
  }

  const config = await readConfig(dir);
  if (config === undefined) notes.push("config.json is absent: the resolved config is not shown.");
  const versions = await readVersions(dir);

  const metricsFile = await readMetricsFile(dir);
  if (metricsFile.truncatedLine !== undefined) {
    notes.push(
      `metrics.jsonl line ${metricsFile.truncatedLine} is truncated ` +
        "(the run was probably stopped while writing it) and was skipped.",
    );
  }
  const iterationsFile = await readIterationsFile(dir);
  if (iterationsFile.truncatedLine !== undefined) {
    notes.push(
      `iterations.jsonl line ${iterationsFile.truncatedLine} is truncated and was skipped.`,
    );
  }
  const evalTable = await readEval(dir);

  const samples = new Map<number, SampleRecord[]>();
  for (const iteration of await listSampleIterations(dir)) {
    samples.set(iteration, await readSamples(dir, iteration));
  }

  const metrics = metricsFile.records;
  const iterations = iterationsFile.records;
  if (metrics.length === 0) notes.push("metrics.jsonl is absent or empty: no training curves.");
  if (iterations.length === 0) {
    notes.push(
      "iterations.jsonl is absent: this is not a C-DPO run (or no dual iteration finished), so " +
        "there are no λ, cost, reward or KL curves per iteration.",
    );
  }
  if (evalTable === undefined) notes.push("eval.json is absent: no evaluation table.");
  if (samples.size === 0 && iterations.length > 0) {
    notes.push(`${path.basename(paths.samples)}/ has no sample files: no sample responses.`);
  }

  const configName = config?.["name"];
  const name =
    typeof configName === "string" && configName !== ""
      ? configName
      : path.basename(path.resolve(dir));
  const configStage = config?.["stage"];
  let stage: string;
  if (typeof configStage === "string" && configStage !== "") stage = configStage;
  else if (iterations.length > 0) stage = "cdpo";
  else stage = [...new Set(metrics.map((record) => record.phase))].join(", ") || "unknown";

  return { dir, name, stage, config, versions, metrics, iterations, evalTable, samples, notes };
}

/** Final state of one constraint: λ for the next iteration and the last sampled cost. */
export interface ConstraintSummary {
  name: string;
  limit: number;
  lambda: number;
  costMean: number;
  costSe: number;
  unsafeShare: number;
  /** Whether the last sampled mean cost is within the limit. */
  satisfied: boolean;
}

/** Summarizes the constraints of the last dual iteration; [] when the run has no iterations. */
export function finalConstraints(run: RunData): ConstraintSummary[] {
  const last = run.iterations.at(-1);
  if (last === undefined) return [];
  return last.constraints.map((constraint) => ({
    name: constraint.name,
    limit: constraint.limit,
    lambda: constraint.lambda_next,
    costMean: constraint.cost_mean,
    costSe: constraint.cost_se,
    unsafeShare: constraint.unsafe_share,
    satisfied: constraint.cost_mean <= constraint.limit,
  }));
}
