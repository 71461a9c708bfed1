/**
 * Writers and readers for run folders (layout in `records.ts` and docs/run-folder.md).
 *
 * Whole files (`config.json`, `versions.json`, `eval.json`, sample files, the report) are
 * written atomically: a temporary file in the same folder, fsync, then rename, so a reader never
 * sees half a file. The logs `metrics.jsonl` and `iterations.jsonl` are appended one line per
 * record and fsynced. A run killed mid-append can leave a truncated last line, which the readers
 * skip. Any other invalid line is an error naming the file and line number.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import type { z } from "zod";
import { CdpoError, invalidArgument } from "../errors.js";
import { CDPO_VERSION } from "../version.js";
import {
  type EvalTable,
  EvalTableSchema,
  type IterationRecord,
  IterationRecordSchema,
  type MetricsRecord,
  MetricsRecordSchema,
  RUN_FILES,
  type RunConfig,
  RunConfigSchema,
  type SampleRecord,
  SampleRecordSchema,
  type Versions,
  VersionsSchema,
} from "./records.js";

/** Paths of the files in the run folder `dir`. */
export function runPaths(dir: string) {
  return {
    dir,
    config: path.join(dir, RUN_FILES.config),
    versions: path.join(dir, RUN_FILES.versions),
    metrics: path.join(dir, RUN_FILES.metrics),
    iterations: path.join(dir, RUN_FILES.iterations),
    samples: path.join(dir, RUN_FILES.samples),
    eval: path.join(dir, RUN_FILES.eval),
    report: path.join(dir, RUN_FILES.report),
  };
}

/** Path of the sample file of dual iteration `iteration`: `samples/iteration-0003.jsonl`. */
export function samplesPath(dir: string, iteration: number): string {
  checkCount("iteration", iteration);
  return path.join(dir, RUN_FILES.samples, `iteration-${String(iteration).padStart(4, "0")}.jsonl`);
}

const SAMPLE_FILE_PATTERN = /^iteration-(\d+)\.jsonl$/;

// ---------------------------------------------------------------------------------------------
// Atomic writes

/**
 * Writes `data` to `filePath` atomically: a temporary file in the same folder is written,
 * fsynced and renamed over the target, then the folder is fsynced so the rename survives a crash.
 * Creates missing parent folders.
 */
export async function writeFileAtomic(filePath: string, data: string | Uint8Array): Promise<void> {
  const dir = path.dirname(filePath);
  await fs.mkdir(dir, { recursive: true });
  const temp = path.join(
    dir,
    `.${path.basename(filePath)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`,
  );
  const handle = await fs.open(temp, "wx");
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await fs.rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  try {
    await fs.rename(temp, filePath);
  } catch (error) {
    await fs.rm(temp, { force: true });
    throw error;
  }
  await syncFolder(dir);
}

/** Writes `value` as indented JSON with a final newline, atomically ({@link writeFileAtomic}). */
export async function writeJsonAtomic(filePath: string, value: unknown): Promise<void> {
  await writeFileAtomic(filePath, `${JSON.stringify(value, null, 2)}\n`);
}

async function syncFolder(dir: string): Promise<void> {
  // Some platforms (Windows) and file systems cannot open or fsync a folder. The file data is
  // already synced then and only the rename's durability is lost, so this step is best effort.
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(dir, "r");
    await handle.sync();
  } catch {
    // best effort, see above
  } finally {
    await handle?.close();
  }
}

/** Appends one line to a log file and fsyncs it. */
async function appendLine(filePath: string, line: string): Promise<void> {
  await fs.mkdir(path.dirname(filePath), { recursive: true });
  const handle = await fs.open(filePath, "a");
  try {
    await handle.write(`${line}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Validation helpers

function checkCount(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 0) {
    throw invalidArgument("range", name, "an integer >= 0", value);
  }
}

/** Formats zod issues as `field "a.b": message` clauses joined by "; ". */
export function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const field = issue.path.length > 0 ? `field "${issue.path.join(".")}"` : "record";
      return `${field}: ${issue.message}`;
    })
    .join("; ");
}

/** Validates a record before writing it. A bad record is a caller bug, so this throws TypeError. */
function validateForWrite<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (!result.success) {
    throw new TypeError(`Invalid ${what}: ${formatIssues(result.error)}`);
  }
  return result.data;
}

// ---------------------------------------------------------------------------------------------
// Reading JSON and JSON Lines

/** Result of {@link readJsonLines}. */
export interface JsonLinesResult<T> {
  /** Valid records in file order. */
  records: T[];
  /** 1-based line number of a skipped truncated last line, if there was one. */
  truncatedLine?: number;
}

/**
 * Reads a JSON Lines file and validates each line with `schema`.
 *
 * Blank lines are skipped. A last line without a final newline that is not valid JSON is taken
 * to be an append cut short by a killed run: it is skipped and its number is returned in
 * `truncatedLine`. Any other line that is not valid JSON or fails the schema throws a
 * `CdpoError` with code "DATA" naming the file, the line number and the field.
 *
 * @throws CdpoError "FILE" when the file cannot be read.
 */
export async function readJsonLines<T>(
  filePath: string,
  schema: z.ZodType<T>,
  what: string,
): Promise<JsonLinesResult<T>> {
  let text: string;
  try {
    text = await fs.readFile(filePath, "utf8");
  } catch (error) {
    throw new CdpoError("FILE", `Failed to read ${what} file ${filePath}: ${errorMessage(error)}`, {
      cause: error,
    });
  }
  return parseJsonLines(text, filePath, schema, what);
}

/** Parses JSON Lines `text` read from `source` (for messages), like {@link readJsonLines}. */
export function parseJsonLines<T>(
  text: string,
  source: string,
  schema: z.ZodType<T>,
  what: string,
): JsonLinesResult<T> {
  const lines = text.split("\n");
  const endsWithNewline = text.endsWith("\n");
  const records: T[] = [];
  let truncatedLine: number | undefined;
  for (const [index, line] of lines.entries()) {
    if (line.trim() === "") continue;
    const lineNumber = index + 1;
    const isLast = index === lines.length - 1;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      if (isLast && !endsWithNewline) {
        truncatedLine = lineNumber;
        break;
      }
      throw new CdpoError(
        "DATA",
        `${source}:${lineNumber}: invalid JSON in ${what} record: ${errorMessage(error)}`,
        { cause: error },
      );
    }
    const result = schema.safeParse(value);
    if (!result.success) {
      throw new CdpoError(
        "DATA",
        `${source}:${lineNumber}: invalid ${what} record: ${formatIssues(result.error)}`,
      );
    }
    records.push(result.data);
  }
  return truncatedLine === undefined ? { records } : { records, truncatedLine };
}

/** Reads and validates a JSON file; throws CdpoError "FILE" or "DATA" naming the file. */
export async function readJsonFile<T>(
  filePath: string,
  schema: z.ZodType<T>,
  what: string,
): Promise<T> {
  let text: string;
  try {
    text = await fs.readFile(filePath, "utf8");
  } catch (error) {
    throw new CdpoError("FILE", `Failed to read ${what} file ${filePath}: ${errorMessage(error)}`, {
      cause: error,
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new CdpoError("DATA", `${filePath}: invalid JSON in ${what}: ${errorMessage(error)}`, {
      cause: error,
    });
  }
  const result = schema.safeParse(value);
  if (!result.success) {
    throw new CdpoError("DATA", `${filePath}: invalid ${what}: ${formatIssues(result.error)}`);
  }
  return result.data;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Throws CdpoError "FILE" unless `dir` is an existing folder. */
export async function requireRunFolder(dir: string): Promise<void> {
  let stats: Awaited<ReturnType<typeof fs.stat>>;
  try {
    stats = await fs.stat(dir);
  } catch (error) {
    throw new CdpoError("FILE", `Run folder not found: ${dir}`, { cause: error });
  }
  if (!stats.isDirectory()) {
    throw new CdpoError("FILE", `Run folder ${dir} is not a folder`);
  }
}

// ---------------------------------------------------------------------------------------------
// Run folder

/** Options of {@link createRunFolder}. */
export interface CreateRunFolderOptions {
  /**
   * Handling of run records (metrics, iterations, samples, eval or report) already in the folder.
   * "fail" (default) throws, "append" keeps them so that a resumed run adds to its logs, and
   * "replace" deletes them. Other files in the folder, such as checkpoints, are not touched.
   */
  existing?: "fail" | "append" | "replace";
  /**
   * Versions to record. `cdpo` and `node` default to this package's and this process's.
   * `libtorch` defaults to "unknown": callers that loaded the native addon pass
   * `libtorchVersion()` from src/tensor, which this module does not import so that reading and
   * reporting runs works without the addon.
   */
  versions?: Partial<Versions>;
}

/**
 * Creates the run folder `dir` (and its parents) and writes `config.json` and `versions.json`.
 *
 * @throws CdpoError "STATE" when the folder already contains run records and `existing` is "fail".
 */
export async function createRunFolder(
  dir: string,
  config: RunConfig,
  options: CreateRunFolderOptions = {},
): Promise<void> {
  const existing = options.existing ?? "fail";
  if (existing !== "fail" && existing !== "append" && existing !== "replace") {
    throw invalidArgument("type", "options.existing", '"fail", "append" or "replace"', existing);
  }
  const checkedConfig = validateForWrite(RunConfigSchema, config, "run config");
  const paths = runPaths(dir);
  await fs.mkdir(dir, { recursive: true });

  const recordPaths = [paths.metrics, paths.iterations, paths.samples, paths.eval, paths.report];
  const present = recordPaths.filter((p) => existsSync(p));
  if (present.length > 0 && existing === "fail") {
    const names = present.map((p) => path.basename(p)).join(", ");
    throw new CdpoError(
      "STATE",
      `Run folder ${dir} already holds run records (${names}). ` +
        "Choose a new output folder, continue the run with --resume, or delete the folder first.",
    );
  }
  if (existing === "replace") {
    for (const p of present) await fs.rm(p, { recursive: true, force: true });
  }

  const versions: Versions = {
    cdpo: options.versions?.cdpo ?? CDPO_VERSION,
    libtorch: options.versions?.libtorch ?? "unknown",
    node: options.versions?.node ?? process.versions.node,
  };
  await writeJsonAtomic(paths.config, checkedConfig);
  await writeJsonAtomic(paths.versions, validateForWrite(VersionsSchema, versions, "versions"));
}

/** Reads `config.json`, or returns undefined when the run has none. */
export async function readConfig(dir: string): Promise<RunConfig | undefined> {
  await requireRunFolder(dir);
  const file = runPaths(dir).config;
  if (!existsSync(file)) return undefined;
  return readJsonFile(file, RunConfigSchema, "run config");
}

/** Reads `versions.json`, or returns undefined when the run has none. */
export async function readVersions(dir: string): Promise<Versions | undefined> {
  await requireRunFolder(dir);
  const file = runPaths(dir).versions;
  if (!existsSync(file)) return undefined;
  return readJsonFile(file, VersionsSchema, "versions");
}

/** Input of {@link appendMetrics}: a {@link MetricsRecord} whose `time` is optional. */
export interface MetricsInput {
  step: number;
  phase: string;
  iteration?: number;
  epoch?: number;
  /** Defaults to the time of the call. */
  time?: string;
  [metric: string]: number | string | null | undefined;
}

/**
 * Appends one record to `metrics.jsonl`. Non-finite metric values are stored as `null`.
 *
 * @throws TypeError when the record does not match {@link MetricsRecordSchema}.
 */
export async function appendMetrics(dir: string, record: MetricsInput): Promise<void> {
  const withTime = { ...record, time: record.time ?? new Date().toISOString() };
  const normalized = JSON.parse(JSON.stringify(withTime)) as unknown;
  const checked = validateForWrite(MetricsRecordSchema, normalized, "metrics record");
  await appendLine(runPaths(dir).metrics, JSON.stringify(checked));
}

/** Reads `metrics.jsonl` (see {@link readJsonLines}); returns [] when the run has none yet. */
export async function readMetrics(dir: string): Promise<MetricsRecord[]> {
  return (await readMetricsFile(dir)).records;
}

/** Like {@link readMetrics}, but also returns the number of a skipped truncated last line. */
export async function readMetricsFile(dir: string): Promise<JsonLinesResult<MetricsRecord>> {
  await requireRunFolder(dir);
  const file = runPaths(dir).metrics;
  if (!existsSync(file)) return { records: [] };
  return readJsonLines(file, MetricsRecordSchema, "metrics");
}

/** An iteration record as passed to {@link appendIteration}: `time` defaults to now. */
export type IterationInput = Omit<IterationRecord, "time"> & { time?: string };

/**
 * Appends one record to `iterations.jsonl`. Non-finite values in `dpo` are stored as `null`.
 *
 * @throws TypeError when the record does not match {@link IterationRecordSchema}.
 */
export async function appendIteration(dir: string, record: IterationInput): Promise<void> {
  const withTime = { ...record, time: record.time ?? new Date().toISOString() };
  const normalized = JSON.parse(JSON.stringify(withTime)) as unknown;
  const checked = validateForWrite(IterationRecordSchema, normalized, "iteration record");
  await appendLine(runPaths(dir).iterations, JSON.stringify(checked));
}

/** Reads `iterations.jsonl` (see {@link readJsonLines}); returns [] when the run has none. */
export async function readIterations(dir: string): Promise<IterationRecord[]> {
  return (await readIterationsFile(dir)).records;
}

/** Like {@link readIterations}, but also returns the number of a skipped truncated last line. */
export async function readIterationsFile(dir: string): Promise<JsonLinesResult<IterationRecord>> {
  await requireRunFolder(dir);
  const file = runPaths(dir).iterations;
  if (!existsSync(file)) return { records: [] };
  return readJsonLines(file, IterationRecordSchema, "iteration");
}

/**
 * Writes the samples of dual iteration `iteration` to `samples/iteration-NNNN.jsonl`,
 * atomically, replacing an earlier file for the same iteration.
 *
 * @throws TypeError when a sample does not match {@link SampleRecordSchema}.
 */
export async function writeSamples(
  dir: string,
  iteration: number,
  samples: readonly SampleRecord[],
): Promise<string> {
  const file = samplesPath(dir, iteration);
  const lines = samples.map((sample, index) =>
    JSON.stringify(validateForWrite(SampleRecordSchema, sample, `sample ${index}`)),
  );
  await writeFileAtomic(file, lines.length > 0 ? `${lines.join("\n")}\n` : "");
  return file;
}

/** Reads the samples of dual iteration `iteration`; returns [] when that file is absent. */
export async function readSamples(dir: string, iteration: number): Promise<SampleRecord[]> {
  await requireRunFolder(dir);
  const file = samplesPath(dir, iteration);
  if (!existsSync(file)) return [];
  return (await readJsonLines(file, SampleRecordSchema, "sample")).records;
}

/** Lists the dual iterations that have a sample file, in increasing order. */
export async function listSampleIterations(dir: string): Promise<number[]> {
  await requireRunFolder(dir);
  let names: string[];
  try {
    names = await fs.readdir(runPaths(dir).samples);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw new CdpoError("FILE", `Failed to list ${runPaths(dir).samples}: ${errorMessage(error)}`, {
      cause: error,
    });
  }
  const iterations: number[] = [];
  for (const name of names) {
    const match = SAMPLE_FILE_PATTERN.exec(name);
    if (match?.[1] !== undefined) iterations.push(Number(match[1]));
  }
  return iterations.sort((a, b) => a - b);
}

/**
 * Writes `eval.json` atomically.
 *
 * @throws TypeError when `table` does not match {@link EvalTableSchema}.
 */
export async function writeEval(dir: string, table: EvalTable): Promise<void> {
  await writeJsonAtomic(runPaths(dir).eval, validateForWrite(EvalTableSchema, table, "eval table"));
}

/** Reads `eval.json`, or returns undefined when the run has none. */
export async function readEval(dir: string): Promise<EvalTable | undefined> {
  await requireRunFolder(dir);
  const file = runPaths(dir).eval;
  if (!existsSync(file)) return undefined;
  return readJsonFile(file, EvalTableSchema, "eval table");
}
