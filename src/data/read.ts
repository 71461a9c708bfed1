/**
 * Preference and prompt readers: file -> validated, normalised records.
 */

import { CdpoError, describeValue, invalidArgument } from "../errors.js";
import { Fields } from "./fields.js";
import { type FileFormat, fileStem, type RawRecord, readRecords } from "./files.js";
import {
  type DataIssue,
  DataRecordError,
  formatIssueSummary,
  makeIssue,
  RecordProblem,
} from "./issues.js";
import {
  contradictsSafety,
  detectLayout,
  LABEL_FIELDS,
  type PairFields,
  parseHhTranscript,
  RESPONSE_FIELDS,
  readPairFields,
} from "./layouts.js";
import {
  type EvalPrompt,
  LAYOUTS,
  type Layout,
  type PreferencePair,
  type Prompt,
} from "./types.js";

export interface ReadPairsOptions {
  /** Record layout; detected from the first record's columns when omitted. */
  format?: Layout;
  /** Skip invalid records and report them in `issues` instead of throwing at the first one. */
  skipInvalid?: boolean;
  /** For a JSON object file: the field holding the list of records. */
  field?: string;
  /** Prefix of generated ids (default: the file name without extensions). */
  idPrefix?: string;
}

export interface PreferenceData {
  file: string;
  fileFormat: FileFormat;
  compressed: boolean;
  layout: Layout;
  pairs: PreferencePair[];
  /** Number of records in the file, valid or not. */
  records: number;
  /** Skipped records (only with `skipInvalid`). */
  issues: DataIssue[];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function checkLayoutName(format: string): Layout {
  if ((LAYOUTS as readonly string[]).includes(format)) return format as Layout;
  throw invalidArgument("range", "format", `one of ${LAYOUTS.join(", ")}`, format);
}

function resolveLayout(file: string, records: RawRecord[], format?: string): Layout {
  if (format !== undefined) return checkLayoutName(format);
  const first = records.find((record) => isObject(record.value));
  const layout = first === undefined ? null : detectLayout(first.value as Record<string, unknown>);
  if (layout !== null) return layout;
  const columns = first === undefined ? "none" : Object.keys(first.value as object).join(", ");
  throw new CdpoError(
    "DATA",
    `${file}: cannot detect the record layout from the columns (${columns}). Expected ` +
      "response_0/response_1 (pku-saferlhf), chosen/rejected (hh-rlhf or generic) or " +
      "prompt/response (ranked). Pass the layout with --format.",
  );
}

function recordId(
  value: Record<string, unknown>,
  prefix: string,
  row: number,
): string | RecordProblem {
  const given = value.id;
  if (given === undefined || given === null) return `${prefix}:${row}`;
  if (typeof given === "string" && given !== "") return given;
  if (typeof given === "number" && Number.isFinite(given)) return String(given);
  return RecordProblem.wrongType("id", "a non-empty string or a number", given);
}

/** Runs the checks every layout shares: non-empty, distinct responses and consistent labels. */
function checkPair(layout: Layout, pair: PairFields): void {
  const [first, second] = RESPONSE_FIELDS[layout];
  const names = [first, second] as const;
  for (const index of [0, 1] as const) {
    if (pair.responses[index].trim() === "") {
      throw new RecordProblem(
        "empty-response",
        names[index],
        `the response in field ${names[index]} is empty. Expected two non-empty responses.`,
      );
    }
  }
  if (pair.responses[0].trim() === pair.responses[1].trim()) {
    throw new RecordProblem(
      "identical-responses",
      second,
      `the responses in fields ${first} and ${second} are identical. Expected two different ` +
        "responses.",
    );
  }
  if (contradictsSafety(pair)) {
    const labels = LABEL_FIELDS[layout];
    const safer = pair.safer as number;
    throw new RecordProblem(
      "contradicting-labels",
      labels.safer,
      `${labels.safer} is ${safer} but response ${safer} is labelled unsafe and response ` +
        `${1 - safer} safe (${labels.safe}). Expected the safer response not to be the only ` +
        "unsafe one.",
    );
  }
}

/** Handles one issue: throws it, or records it when skipping. */
function report(issue: DataIssue, issues: DataIssue[], skipInvalid: boolean): void {
  if (!skipInvalid) throw new DataRecordError(issue);
  issues.push(issue);
}

function parseFailureIssue(file: string, record: RawRecord): DataIssue {
  const reason =
    record.line !== undefined && record.parseError?.startsWith("invalid JSON")
      ? "invalid-json"
      : "invalid-row";
  const expectation =
    reason === "invalid-json"
      ? "one JSON object per line"
      : "a row with every column of the header";
  return makeIssue(
    file,
    record.row,
    record.line,
    reason,
    undefined,
    `${record.parseError}. Expected ${expectation}.`,
  );
}

/**
 * Reads preference pairs from a JSONL, JSON, CSV/TSV or Parquet file (optionally gzip-compressed).
 *
 * Throws a {@link DataRecordError} (CdpoError "DATA") at the first invalid record unless
 * `skipInvalid` is set; the error names the file, line or row, field and expectation. Also throws
 * when no valid pair remains.
 */
export async function readPreferencePairs(
  file: string,
  options: ReadPairsOptions = {},
): Promise<PreferenceData> {
  const skipInvalid = options.skipInvalid ?? false;
  const source = await readRecords(
    file,
    options.field === undefined ? {} : { field: options.field },
  );
  const layout = resolveLayout(file, source.records, options.format);
  const textual = source.format === "csv" || source.format === "tsv";
  const prefix = options.idPrefix ?? fileStem(file);

  const pairs: PreferencePair[] = [];
  const issues: DataIssue[] = [];
  const seenIds = new Set<string>();
  for (const record of source.records) {
    if (record.parseError !== undefined) {
      report(parseFailureIssue(file, record), issues, skipInvalid);
      continue;
    }
    if (!isObject(record.value)) {
      const issue = makeIssue(
        file,
        record.row,
        record.line,
        "not-an-object",
        undefined,
        `the record is not an object (received ${describeValue(record.value)}). Expected an ` +
          `object with the ${layout} columns.`,
      );
      report(issue, issues, skipInvalid);
      continue;
    }
    try {
      const id = recordId(record.value, prefix, record.row);
      if (id instanceof RecordProblem) throw id;
      if (seenIds.has(id)) {
        throw new RecordProblem(
          "duplicate-id",
          "id",
          `id ${JSON.stringify(id)} is used by an earlier record. Expected unique ids.`,
        );
      }
      const fields = new Fields(record.value, textual);
      const pair = readPairFields(layout, fields);
      checkPair(layout, pair);
      seenIds.add(id);
      pairs.push({ id, ...pair });
    } catch (error) {
      if (!(error instanceof RecordProblem)) throw error;
      const issue = makeIssue(
        file,
        record.row,
        record.line,
        error.reason,
        error.field,
        error.message,
      );
      report(issue, issues, skipInvalid);
    }
  }

  if (pairs.length === 0) {
    throw new CdpoError(
      "DATA",
      `${file}: no valid preference pair among ${source.records.length} records ` +
        `(${formatIssueSummary(issues)}).`,
    );
  }
  return {
    file,
    fileFormat: source.format,
    compressed: source.compressed,
    layout,
    pairs,
    records: source.records.length,
    issues,
  };
}

export interface ReadPromptsOptions {
  skipInvalid?: boolean;
  field?: string;
  idPrefix?: string;
}

export interface PromptData {
  file: string;
  prompts: EvalPrompt[];
  records: number;
  issues: DataIssue[];
}

/** Columns that can hold the prompt, in order of preference (AdvBench uses `goal`). */
const PROMPT_COLUMNS = ["prompt", "goal", "instruction", "question"];

/**
 * Reads prompts for evaluation or sampling: records with a `prompt` (or `goal`, `instruction`,
 * `question`) column and an optional string `category`, or HH-RLHF transcripts (the turns before
 * the final response). Other columns go to `meta`.
 */
export async function readPrompts(
  file: string,
  options: ReadPromptsOptions = {},
): Promise<PromptData> {
  const skipInvalid = options.skipInvalid ?? false;
  const source = await readRecords(
    file,
    options.field === undefined ? {} : { field: options.field },
  );
  const textual = source.format === "csv" || source.format === "tsv";
  const prefix = options.idPrefix ?? fileStem(file);

  const prompts: EvalPrompt[] = [];
  const issues: DataIssue[] = [];
  const seenIds = new Set<string>();
  for (const record of source.records) {
    if (record.parseError !== undefined) {
      report(parseFailureIssue(file, record), issues, skipInvalid);
      continue;
    }
    try {
      if (!isObject(record.value)) {
        throw new RecordProblem(
          "not-an-object",
          undefined,
          "the record is not an object. Expected an object with a prompt column.",
        );
      }
      const id = recordId(record.value, prefix, record.row);
      if (id instanceof RecordProblem) throw id;
      if (seenIds.has(id)) {
        throw new RecordProblem(
          "duplicate-id",
          "id",
          `id ${JSON.stringify(id)} is used by an earlier record. Expected unique ids.`,
        );
      }
      const fields = new Fields(record.value, textual);
      fields.consume("id");
      const column = PROMPT_COLUMNS.find((name) => fields.has(name));
      let prompt: Prompt;
      if (column !== undefined) {
        prompt = fields.textOrMessages(column);
      } else if (typeof record.value.chosen === "string") {
        fields.consume("chosen");
        fields.consume("rejected");
        const messages = parseHhTranscript(record.value.chosen);
        if (typeof messages === "string" || messages.at(-1)?.role !== "assistant") {
          throw new RecordProblem(
            "malformed-transcript",
            "chosen",
            'field "chosen" is not an HH-RLHF transcript ending with an Assistant turn.',
          );
        }
        prompt = messages.slice(0, -1);
      } else {
        throw RecordProblem.missing(
          "prompt",
          `a prompt string (columns tried: ${PROMPT_COLUMNS.join(", ")})`,
        );
      }
      if (typeof prompt === "string" && prompt.trim() === "") {
        throw RecordProblem.invalidValue(column ?? "prompt", "a non-empty prompt", prompt);
      }
      const entry: EvalPrompt = { id, prompt, meta: {} };
      if (fields.has("category")) entry.category = fields.text("category");
      entry.meta = fields.rest();
      seenIds.add(id);
      prompts.push(entry);
    } catch (error) {
      if (!(error instanceof RecordProblem)) throw error;
      report(
        makeIssue(file, record.row, record.line, error.reason, error.field, error.message),
        issues,
        skipInvalid,
      );
    }
  }
  if (prompts.length === 0) {
    throw new CdpoError(
      "DATA",
      `${file}: no valid prompt among ${source.records.length} records ` +
        `(${formatIssueSummary(issues)}).`,
    );
  }
  return { file, prompts, records: source.records.length, issues };
}
