/**
 * Typed access to the fields of one raw record, raising {@link RecordProblem}s that name the field.
 *
 * CSV and TSV cells are all strings, so in `textual` mode numbers, booleans and chat message lists
 * are also accepted in their text form ("1", "true", "[{...}]"), and an empty cell counts as a
 * missing label.
 */

import type { ChatMessage } from "../tokenizer/chat.js";
import { RecordProblem } from "./issues.js";
import type { Prompt, ResponseIndex } from "./types.js";

export const PROMPT_EXPECTATION = "a string or a list of {role, content} messages";

function isMissing(value: unknown): boolean {
  return value === undefined || value === null;
}

/** Validates a chat message list, or returns null when `value` is not one. */
export function asMessages(value: unknown, field: string): ChatMessage[] | null {
  if (!Array.isArray(value)) return null;
  const messages: ChatMessage[] = [];
  for (const [index, item] of value.entries()) {
    const role = (item as { role?: unknown } | null)?.role;
    const content = (item as { content?: unknown } | null)?.content;
    if (typeof role !== "string" || typeof content !== "string") {
      throw RecordProblem.wrongType(
        `${field}[${index}]`,
        "a message object with string fields role and content",
        item,
      );
    }
    messages.push({ role, content });
  }
  return messages;
}

export class Fields {
  readonly record: Record<string, unknown>;
  readonly textual: boolean;
  readonly #used = new Set<string>();

  constructor(record: Record<string, unknown>, textual: boolean) {
    this.record = record;
    this.textual = textual;
  }

  /** Returns whether the field has a value (an empty CSV cell counts as none). */
  has(name: string): boolean {
    const value = this.record[name];
    return !isMissing(value) && !(this.textual && value === "");
  }

  #take(name: string): unknown {
    this.#used.add(name);
    return this.record[name];
  }

  /** Reads a required string field. */
  text(name: string, expectation = "a string"): string {
    const value = this.#take(name);
    if (isMissing(value)) throw RecordProblem.missing(name, expectation);
    if (typeof value !== "string") throw RecordProblem.wrongType(name, expectation, value);
    return value;
  }

  /** Reads a required field with a string or a chat message list. */
  textOrMessages(name: string, expectation = PROMPT_EXPECTATION): Prompt {
    const value = this.#take(name);
    if (isMissing(value)) throw RecordProblem.missing(name, expectation);
    if (typeof value === "string") {
      if (this.textual && value.trimStart().startsWith("[")) {
        const parsed = tryParseJson(value);
        if (Array.isArray(parsed) && parsed.length > 0) {
          const messages = asMessages(parsed, name);
          if (messages !== null) return messages;
        }
      }
      return value;
    }
    const messages = asMessages(value, name);
    if (messages === null) throw RecordProblem.wrongType(name, expectation, value);
    if (messages.length === 0)
      throw RecordProblem.invalidValue(name, `${expectation}, not empty`, value);
    return messages;
  }

  /** Reads a required list field. */
  list(name: string, expectation: string): unknown[] {
    const value = this.#take(name);
    if (isMissing(value)) throw RecordProblem.missing(name, expectation);
    if (Array.isArray(value)) return value;
    if (this.textual && typeof value === "string") {
      const parsed = tryParseJson(value);
      if (Array.isArray(parsed)) return parsed;
    }
    throw RecordProblem.wrongType(name, expectation, value);
  }

  /** Reads an optional response index: 0, 1 or undefined when absent. */
  optionalIndex(name: string): ResponseIndex | undefined {
    if (!this.has(name)) {
      this.#take(name);
      return undefined;
    }
    const expectation = "0 or 1";
    let value = this.#take(name);
    if (this.textual && typeof value === "string") value = Number(value.trim());
    if (typeof value !== "number") throw RecordProblem.wrongType(name, expectation, value);
    if (value !== 0 && value !== 1) {
      throw RecordProblem.invalidValue(name, expectation, this.record[name]);
    }
    return value;
  }

  /** Reads an optional boolean: null when the value is null, undefined when absent. */
  optionalBoolean(name: string): boolean | null | undefined {
    const raw = this.#take(name);
    if (raw === undefined) return undefined;
    if (raw === null || (this.textual && raw === "")) return null;
    if (typeof raw === "boolean") return raw;
    if (this.textual && typeof raw === "string") {
      const lower = raw.trim().toLowerCase();
      if (lower === "true" || lower === "1") return true;
      if (lower === "false" || lower === "0") return false;
      throw RecordProblem.invalidValue(name, "true or false", raw);
    }
    throw RecordProblem.wrongType(name, "a boolean (true or false)", raw);
  }

  /** Reads an optional finite number. */
  optionalNumber(name: string): number | undefined {
    if (!this.has(name)) {
      this.#take(name);
      return undefined;
    }
    const raw = this.#take(name);
    let value = raw;
    if (this.textual && typeof value === "string") value = Number(value.trim());
    if (typeof value !== "number") throw RecordProblem.wrongType(name, "a number", raw);
    if (!Number.isFinite(value)) throw RecordProblem.invalidValue(name, "a finite number", raw);
    return value;
  }

  /** Reads two per-response numbers that must be given together, or not at all. */
  optionalNumberPair(first: string, second: string): [number, number] | undefined {
    const a = this.optionalNumber(first);
    const b = this.optionalNumber(second);
    if (a === undefined && b === undefined) return undefined;
    if (a === undefined) throw RecordProblem.missing(first, `a number, since ${second} is given`);
    if (b === undefined) throw RecordProblem.missing(second, `a number, since ${first} is given`);
    return [a, b];
  }

  /** Marks a field as read without reading it (it will not go to `meta`). */
  consume(name: string): void {
    this.#used.add(name);
  }

  /** Returns every field not read so far, for `meta`. */
  rest(): Record<string, unknown> {
    const meta: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(this.record)) {
      if (!this.#used.has(key)) meta[key] = value;
    }
    return meta;
  }
}

function tryParseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
