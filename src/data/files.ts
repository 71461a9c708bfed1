/**
 * Raw record reading: JSONL, JSON, CSV/TSV and Parquet files, plain or gzip-compressed.
 *
 * The container format comes from the extension (after removing `.gz`) and, when that is
 * unknown, from the content: gzip and Parquet by their magic bytes, JSON by its first character.
 * Records come back unvalidated, each with its 0-based row index and, for line-based formats, its
 * 1-based line number, so validation errors can point at them.
 */

import { promises as fs } from "node:fs";
import path from "node:path";
import { gunzipSync } from "node:zlib";

import { parse as parseCsv } from "csv-parse/sync";
import { parquetReadObjects } from "hyparquet";
import { compressors } from "hyparquet-compressors";

import { CdpoError } from "../errors.js";

export type FileFormat = "jsonl" | "json" | "csv" | "tsv" | "parquet";

/** One record as read from the file, before any validation. */
export interface RawRecord {
  /** 0-based index among the file's records (blank lines do not count). */
  row: number;
  /** 1-based line where the record starts (JSONL, CSV, TSV only). */
  line?: number;
  /** The parsed record, absent when it could not be parsed. */
  value?: unknown;
  /** Description of the parse failure (invalid JSON line, bad CSV row), when there was one. */
  parseError?: string;
}

export interface RecordSource {
  file: string;
  format: FileFormat;
  compressed: boolean;
  records: RawRecord[];
}

export interface ReadRecordsOptions {
  /** For a JSON object file: the field holding the list of records (default: the only list). */
  field?: string;
}

const GZIP_MAGIC = [0x1f, 0x8b];
const PARQUET_MAGIC = "PAR1";

function hasGzipMagic(bytes: Uint8Array): boolean {
  return bytes[0] === GZIP_MAGIC[0] && bytes[1] === GZIP_MAGIC[1];
}

function hasParquetMagic(bytes: Uint8Array): boolean {
  return (
    bytes.length >= 8 && Buffer.from(bytes.subarray(0, 4)).toString("latin1") === PARQUET_MAGIC
  );
}

function formatFromExtension(name: string): FileFormat | null {
  const ext = path.extname(name.toLowerCase());
  switch (ext) {
    case ".jsonl":
    case ".ndjson":
      return "jsonl";
    case ".json":
      return "json";
    case ".csv":
      return "csv";
    case ".tsv":
      return "tsv";
    case ".parquet":
    case ".pq":
      return "parquet";
    default:
      return null;
  }
}

/** Returns the file name without directories and data extensions (`.jsonl.gz` and so on). */
export function fileStem(file: string): string {
  let name = path.basename(file);
  if (name.toLowerCase().endsWith(".gz")) name = name.slice(0, -3);
  if (formatFromExtension(name) !== null) name = name.slice(0, -path.extname(name).length);
  return name;
}

/** Converts BigInt values (Parquet INT64) to numbers, recursively. */
function withNumbers(value: unknown): unknown {
  if (typeof value === "bigint") return Number(value);
  if (Array.isArray(value)) return value.map(withNumbers);
  if (value !== null && typeof value === "object" && !(value instanceof Uint8Array)) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[key] = withNumbers(item);
    return out;
  }
  return value;
}

function parseJsonLines(text: string): RawRecord[] {
  const records: RawRecord[] = [];
  const lines = text.split("\n");
  for (const [index, rawLine] of lines.entries()) {
    const line = rawLine.endsWith("\r") ? rawLine.slice(0, -1) : rawLine;
    if (line.trim() === "") continue;
    const record: RawRecord = { row: records.length, line: index + 1 };
    try {
      record.value = JSON.parse(line);
    } catch (error) {
      record.parseError = `invalid JSON (${(error as Error).message})`;
    }
    records.push(record);
  }
  return records;
}

function listFromJsonDocument(value: unknown, file: string, field?: string): unknown[] {
  if (Array.isArray(value)) return value;
  if (value === null || typeof value !== "object") {
    throw new CdpoError(
      "DATA",
      `${file}: the JSON document is ${value === null ? "null" : typeof value}. Expected a list ` +
        "of records or an object with a list field.",
    );
  }
  const object = value as Record<string, unknown>;
  if (field !== undefined) {
    const list = object[field];
    if (!Array.isArray(list)) {
      throw new CdpoError(
        "DATA",
        `${file}: field "${field}" is ${list === undefined ? "missing" : "not a list"}. ` +
          "Expected the list of records there. Top-level fields: " +
          `${Object.keys(object).join(", ")}.`,
      );
    }
    return list;
  }
  const listFields = Object.keys(object).filter((key) => Array.isArray(object[key]));
  if (listFields.length === 1) return object[listFields[0] as string] as unknown[];
  const found =
    listFields.length === 0 ? "no list field" : `several list fields (${listFields.join(", ")})`;
  throw new CdpoError(
    "DATA",
    `${file}: cannot tell which field holds the records: the JSON object has ${found}. ` +
      "Pass the field name (option field).",
  );
}

function parseDelimited(text: string, delimiter: string, file: string): RawRecord[] {
  const records: RawRecord[] = [];
  let previousEnd = 1; // the header takes line 1
  let previousEmpty = 0;
  let previousComments = 0;
  type Row = {
    record: Record<string, string>;
    info: { lines: number; empty_lines: number; comment_lines: number };
  };
  try {
    parseCsv(text, {
      columns: true,
      info: true,
      bom: true,
      delimiter,
      skip_empty_lines: true,
      skip_records_with_error: true,
      on_skip: (error: { message: string; lines?: number } | undefined) => {
        const line = error?.lines;
        records.push({
          row: records.length,
          ...(line === undefined ? {} : { line }),
          parseError: `invalid row (${error?.message ?? "unknown CSV error"})`,
        });
        if (line !== undefined) previousEnd = line;
      },
      on_record: (row: Row) => {
        const start =
          previousEnd +
          1 +
          (row.info.empty_lines - previousEmpty) +
          (row.info.comment_lines - previousComments);
        records.push({ row: records.length, line: start, value: row.record });
        previousEnd = row.info.lines;
        previousEmpty = row.info.empty_lines;
        previousComments = row.info.comment_lines;
        return row;
      },
    });
  } catch (error) {
    const line = (error as { lines?: number }).lines;
    throw new CdpoError(
      "DATA",
      `${file}${line === undefined ? "" : `, line ${line}`}: invalid CSV ` +
        `(${(error as Error).message}).`,
      { cause: error },
    );
  }
  return records;
}

/**
 * Reads every record of a data file. Throws CdpoError "DATA" for an empty file, an unknown
 * format or a document that cannot be parsed at all. A single bad JSONL line or CSV row comes
 * back as a record with `parseError` instead.
 *
 * NOTE: the whole file and all its records are held in memory (there is no streaming reader).
 */
export async function readRecords(
  file: string,
  options: ReadRecordsOptions = {},
): Promise<RecordSource> {
  let bytes: Uint8Array;
  try {
    bytes = await fs.readFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CdpoError(
      "FILE",
      code === "ENOENT"
        ? `Data file not found: ${file}`
        : `Cannot read ${file}: ${(error as Error).message}`,
      { cause: error },
    );
  }

  let name = path.basename(file);
  const compressed = hasGzipMagic(bytes);
  if (compressed) {
    try {
      bytes = gunzipSync(bytes);
    } catch (error) {
      throw new CdpoError("DATA", `${file}: invalid gzip data (${(error as Error).message}).`, {
        cause: error,
      });
    }
  }
  if (name.toLowerCase().endsWith(".gz")) name = name.slice(0, -3);

  let format = formatFromExtension(name);
  if (format === "parquet" || (format === null && hasParquetMagic(bytes))) {
    if (!hasParquetMagic(bytes)) {
      throw new CdpoError("DATA", `${file}: not a Parquet file (it does not start with PAR1).`);
    }
    return { file, format: "parquet", compressed, records: await readParquet(bytes, file) };
  }

  const text = new TextDecoder("utf-8", { ignoreBOM: false }).decode(bytes);
  const trimmed = text.trimStart();
  if (trimmed === "") throw new CdpoError("DATA", `${file} is empty. Expected data records.`);
  if (format === null) {
    if (trimmed.startsWith("[")) format = "json";
    else if (trimmed.startsWith("{")) format = "jsonl";
    else {
      throw new CdpoError(
        "DATA",
        `${file}: unknown file format. Expected a .jsonl, .json, .csv, .tsv or .parquet file ` +
          "(optionally .gz).",
      );
    }
  }

  let records: RawRecord[];
  switch (format) {
    case "jsonl":
      records = parseJsonLines(text);
      break;
    case "json": {
      let document: unknown;
      try {
        document = JSON.parse(text);
      } catch (error) {
        // Many datasets name JSON Lines files ".json": fall back when the first line parses alone.
        const firstLine = trimmed.split("\n", 1)[0] ?? "";
        if (trimmed.startsWith("{") && isJsonObject(firstLine)) {
          format = "jsonl";
          records = parseJsonLines(text);
          break;
        }
        throw new CdpoError("DATA", `${file}: invalid JSON (${(error as Error).message}).`, {
          cause: error,
        });
      }
      records = listFromJsonDocument(document, file, options.field).map((value, row) => ({
        row,
        value,
      }));
      break;
    }
    case "csv":
    case "tsv":
      records = parseDelimited(text, format === "csv" ? "," : "\t", file);
      break;
  }
  if (records.length === 0) throw new CdpoError("DATA", `${file} contains no records.`);
  return { file, format, compressed, records };
}

function isJsonObject(text: string): boolean {
  try {
    const value = JSON.parse(text);
    return value !== null && typeof value === "object" && !Array.isArray(value);
  } catch {
    return false;
  }
}

async function readParquet(bytes: Uint8Array, file: string): Promise<RawRecord[]> {
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  let rows: Record<string, unknown>[];
  try {
    rows = await parquetReadObjects({ file: buffer as ArrayBuffer, compressors });
  } catch (error) {
    throw new CdpoError("DATA", `${file}: cannot read Parquet (${(error as Error).message}).`, {
      cause: error,
    });
  }
  if (rows.length === 0) throw new CdpoError("DATA", `${file} contains no records.`);
  return rows.map((value, row) => ({ row, value: withNumbers(value) }));
}
