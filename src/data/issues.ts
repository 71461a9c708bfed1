/**
 * Validation issues of data records: what was wrong, where, and the error thrown for them.
 */

import { CdpoError, describeValue } from "../errors.js";

export const ISSUE_REASONS = [
  "invalid-json",
  "invalid-row",
  "not-an-object",
  "missing-field",
  "wrong-type",
  "invalid-value",
  "empty-response",
  "identical-responses",
  "contradicting-labels",
  "mismatched-prompts",
  "malformed-transcript",
  "duplicate-id",
] as const;
export type IssueReason = (typeof ISSUE_REASONS)[number];

/** One invalid record. `message` is the complete text, location included. */
export interface DataIssue {
  file: string;
  /** 0-based record index. */
  row: number;
  /** 1-based line (JSONL, CSV, TSV). */
  line?: number;
  field?: string;
  reason: IssueReason;
  message: string;
}

/** The error thrown for the first invalid record when invalid records are not skipped. */
export class DataRecordError extends CdpoError {
  readonly issue: DataIssue;

  constructor(issue: DataIssue) {
    super("DATA", `${issue.message} Pass --skip-invalid to skip such records.`);
    this.name = "DataRecordError";
    this.issue = issue;
  }
}

/**
 * A problem found in one record, thrown by the layout readers and turned into a
 * {@link DataIssue} once the location is known.
 */
export class RecordProblem extends Error {
  readonly reason: IssueReason;
  readonly field: string | undefined;

  constructor(reason: IssueReason, field: string | undefined, description: string) {
    super(description);
    this.reason = reason;
    this.field = field;
  }

  static missing(field: string, expectation: string): RecordProblem {
    return new RecordProblem(
      "missing-field",
      field,
      `field "${field}" is missing. Expected ${expectation}.`,
    );
  }

  static wrongType(field: string, expectation: string, value: unknown): RecordProblem {
    return new RecordProblem(
      "wrong-type",
      field,
      `field "${field}" has the wrong type: received ${describeValue(value)}. ` +
        `Expected ${expectation}.`,
    );
  }

  static invalidValue(field: string, expectation: string, value: unknown): RecordProblem {
    return new RecordProblem(
      "invalid-value",
      field,
      `field "${field}" is invalid: received ${describeValue(value)}. Expected ${expectation}.`,
    );
  }
}

/** "file.jsonl, line 4 (row 3)" or "file.json, row 3". */
export function describeLocation(file: string, row: number, line?: number): string {
  return line === undefined ? `${file}, row ${row}` : `${file}, line ${line} (row ${row})`;
}

export function makeIssue(
  file: string,
  row: number,
  line: number | undefined,
  reason: IssueReason,
  field: string | undefined,
  description: string,
): DataIssue {
  return {
    file,
    row,
    ...(line === undefined ? {} : { line }),
    ...(field === undefined ? {} : { field }),
    reason,
    message: `${describeLocation(file, row, line)}: ${description}`,
  };
}

/** Counts issues by reason, leaving out reasons with no issue. */
export function countIssues(issues: readonly DataIssue[]): Partial<Record<IssueReason, number>> {
  const counts: Partial<Record<IssueReason, number>> = {};
  for (const issue of issues) counts[issue.reason] = (counts[issue.reason] ?? 0) + 1;
  return counts;
}

/** "3 invalid records skipped: 2 empty-response, 1 invalid-json", or "" when there are none. */
export function formatIssueSummary(issues: readonly DataIssue[]): string {
  if (issues.length === 0) return "";
  const parts = Object.entries(countIssues(issues)).map(([reason, count]) => `${count} ${reason}`);
  const noun = issues.length === 1 ? "record" : "records";
  return `${issues.length} invalid ${noun} skipped: ${parts.join(", ")}`;
}
