/**
 * Error types shared by every layer of cdpo.
 *
 * - `TypeError` for an argument of the wrong type, `RangeError` for a value outside its range:
 *   both built by {@link invalidArgument} so the text always names the argument, the expectation
 *   and the value received.
 * - {@link CdpoError} for everything else (libtorch failures, bad files, bad state), with a
 *   string `code` that callers and tests can match on.
 */

/** Stable error codes carried by {@link CdpoError}. */
export type CdpoErrorCode =
  | "TORCH" // libtorch raised (shape mismatch, dtype, index out of range, ...)
  | "DISPOSED" // a tensor was used after dispose()
  | "STATE" // an object is in the wrong state for the call
  | "FILE" // a file is missing, unreadable or malformed
  | "DATA" // a record in a data file is invalid
  | "CONFIG" // a configuration value is invalid
  | "MODEL" // a model folder or checkpoint is invalid
  | "TRAINING" // training diverged or is set up wrongly
  | "NOT_FOUND"; // a required external component (libtorch, chromium, ...) is missing

export class CdpoError extends Error {
  readonly code: CdpoErrorCode;

  constructor(code: CdpoErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "CdpoError";
    this.code = code;
  }
}

/** Describes a received value for an error message: `3 (number)`, `"abc" (string)`, `[2, 3] (array)`. */
export function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "undefined";
  if (Array.isArray(value)) {
    const shown = JSON.stringify(value);
    return `${shown.length > 60 ? `${shown.slice(0, 57)}...` : shown} (array)`;
  }
  if (typeof value === "string") {
    const shown = value.length > 60 ? `${value.slice(0, 57)}...` : value;
    return `${JSON.stringify(shown)} (string)`;
  }
  if (typeof value === "object") return `${value.constructor?.name ?? "object"} (object)`;
  return `${String(value)} (${typeof value})`;
}

/**
 * Builds the error for a bad argument: "Expected <expectation> for <name> but received <value>".
 *
 * `kind` picks the class: "type" gives a TypeError, "range" a RangeError.
 */
export function invalidArgument(
  kind: "type" | "range",
  name: string,
  expectation: string,
  value: unknown,
): TypeError | RangeError {
  const message = `Expected ${expectation} for ${name} but received ${describeValue(value)}`;
  return kind === "type" ? new TypeError(message) : new RangeError(message);
}
