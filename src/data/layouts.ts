/**
 * Record layouts: detection from the columns, and conversion of one record to a
 * {@link PreferencePair} (without id and without the checks shared by all layouts).
 */

import type { ChatMessage } from "../tokenizer/chat.js";
import { asMessages, type Fields, PROMPT_EXPECTATION } from "./fields.js";
import { RecordProblem } from "./issues.js";
import type { Layout, PreferencePair, Prompt, ResponseIndex } from "./types.js";

/** A pair as a layout reads it; the reader adds the id. */
export type PairFields = Omit<PreferencePair, "id">;

/** Column names of the two responses, for messages about them. */
export const RESPONSE_FIELDS: Record<Layout, [string, string]> = {
  "pku-saferlhf": ["response_0", "response_1"],
  "hh-rlhf": ["chosen", "rejected"],
  generic: ["chosen", "rejected"],
  ranked: ["response[0]", "response[1]"],
  "ranked-safety": ["response[0]", "response[1]"],
};

/** Column of each label, for messages about them. */
export const LABEL_FIELDS: Record<Layout, { better: string; safer: string; safe: string }> = {
  "pku-saferlhf": {
    better: "better_response_id",
    safer: "safer_response_id",
    safe: "is_response_{0,1}_safe",
  },
  "hh-rlhf": { better: "chosen/rejected", safer: "(none)", safe: "(none)" },
  generic: { better: "chosen/rejected", safer: "(none)", safe: "(none)" },
  ranked: { better: "response order", safer: "(none)", safe: "(none)" },
  "ranked-safety": { better: "(none)", safer: "response order", safe: "response order" },
};

const HH_MARKER = /\n\n(Human|Assistant):/g;

/**
 * Splits an HH-RLHF transcript into messages. Each turn starts with `\n\nHuman:` or
 * `\n\nAssistant:`; one space after the colon belongs to the marker. Returns a description of
 * the problem instead when the text is not such a transcript.
 */
export function parseHhTranscript(text: string): ChatMessage[] | string {
  const messages: ChatMessage[] = [];
  const markers = [...text.matchAll(HH_MARKER)];
  if (markers.length === 0 || markers[0]?.index !== 0) {
    return 'does not start with "\\n\\nHuman: "';
  }
  for (const [index, marker] of markers.entries()) {
    const start = (marker.index as number) + marker[0].length;
    const end = markers[index + 1]?.index ?? text.length;
    let content = text.slice(start, end);
    if (content.startsWith(" ")) content = content.slice(1);
    messages.push({ role: marker[1] === "Human" ? "user" : "assistant", content });
  }
  return messages;
}

function sameMessages(a: ChatMessage[], b: ChatMessage[]): boolean {
  return (
    a.length === b.length &&
    a.every((message, i) => message.role === b[i]?.role && message.content === b[i]?.content)
  );
}

/** Splits an HH transcript into its final assistant turn and the turns before it. */
function splitHhTranscript(
  fields: Fields,
  field: string,
): { prompt: ChatMessage[]; response: string } {
  const text = fields.text(field, 'a "\\n\\nHuman: ... \\n\\nAssistant: ..." transcript');
  const messages = parseHhTranscript(text);
  if (typeof messages === "string") {
    throw new RecordProblem(
      "malformed-transcript",
      field,
      `field "${field}" ${messages}. Expected a transcript of "\\n\\nHuman: " and ` +
        '"\\n\\nAssistant: " turns.',
    );
  }
  const last = messages.at(-1) as ChatMessage;
  if (last.role !== "assistant") {
    throw new RecordProblem(
      "malformed-transcript",
      field,
      `field "${field}" ends with a Human turn. Expected the transcript to end with the ` +
        "Assistant response.",
    );
  }
  return { prompt: messages.slice(0, -1), response: last.content };
}

function readHh(fields: Fields): PairFields {
  const chosen = splitHhTranscript(fields, "chosen");
  const rejected = splitHhTranscript(fields, "rejected");
  if (!sameMessages(chosen.prompt, rejected.prompt)) {
    throw new RecordProblem(
      "mismatched-prompts",
      "rejected",
      "the chosen and rejected transcripts differ before their final Assistant turn. " +
        "Expected both to share the conversation up to the last response.",
    );
  }
  const pair: PairFields = {
    prompt: chosen.prompt,
    responses: [chosen.response, rejected.response],
    better: 0,
    meta: {},
  };
  addChosenRejectedScores(fields, pair);
  return pair;
}

/** Reads a generic-layout response: a string, or a list with one assistant message. */
function genericResponse(fields: Fields, field: string): string {
  const value = fields.textOrMessages(field, `${PROMPT_EXPECTATION} (one assistant message)`);
  if (typeof value === "string") return value;
  const only = value[0];
  if (value.length !== 1 || only === undefined || only.role !== "assistant") {
    throw RecordProblem.invalidValue(
      field,
      "a string or a list with exactly one assistant message, since prompt is given",
      value,
    );
  }
  return only.content;
}

function readGeneric(fields: Fields): PairFields {
  let prompt: Prompt;
  let responses: [string, string];
  if (fields.has("prompt")) {
    prompt = fields.textOrMessages("prompt");
    responses = [genericResponse(fields, "chosen"), genericResponse(fields, "rejected")];
  } else {
    // Implicit prompt (TRL conversational layout): two whole conversations sharing all turns
    // but the last.
    fields.consume("prompt");
    const expectation = "a list of {role, content} messages ending with the assistant response";
    const conversations = (["chosen", "rejected"] as const).map((field) => {
      const value = fields.list(field, expectation);
      const messages = asMessages(value, field);
      const last = messages?.at(-1);
      if (messages === null || last === undefined || last.role !== "assistant") {
        throw RecordProblem.invalidValue(field, expectation, value);
      }
      return messages;
    });
    const [chosen, rejected] = conversations as [ChatMessage[], ChatMessage[]];
    if (!sameMessages(chosen.slice(0, -1), rejected.slice(0, -1))) {
      throw new RecordProblem(
        "mismatched-prompts",
        "rejected",
        "the chosen and rejected conversations differ before their final assistant message. " +
          "Expected both to share every message but the last (or give a prompt field).",
      );
    }
    prompt = chosen.slice(0, -1);
    responses = [(chosen.at(-1) as ChatMessage).content, (rejected.at(-1) as ChatMessage).content];
  }
  const pair: PairFields = { prompt, responses, better: 0, meta: {} };
  addChosenRejectedScores(fields, pair);
  return pair;
}

function addChosenRejectedScores(fields: Fields, pair: PairFields): void {
  const reward = fields.optionalNumberPair("reward_chosen", "reward_rejected");
  const cost = fields.optionalNumberPair("cost_chosen", "cost_rejected");
  if (reward !== undefined) pair.reward = reward;
  if (cost !== undefined) pair.cost = cost;
}

function addIndexedScores(fields: Fields, pair: PairFields): void {
  const reward = fields.optionalNumberPair("reward_0", "reward_1");
  const cost = fields.optionalNumberPair("cost_0", "cost_1");
  if (reward !== undefined) pair.reward = reward;
  if (cost !== undefined) pair.cost = cost;
}

function readPku(fields: Fields): PairFields {
  const pair: PairFields = {
    prompt: fields.textOrMessages("prompt"),
    responses: [fields.text("response_0"), fields.text("response_1")],
    meta: {},
  };
  const better = fields.optionalIndex("better_response_id");
  const safer = fields.optionalIndex("safer_response_id");
  const safe0 = fields.optionalBoolean("is_response_0_safe");
  const safe1 = fields.optionalBoolean("is_response_1_safe");
  if (better !== undefined) pair.better = better;
  if (safer !== undefined) pair.safer = safer;
  if (safe0 !== undefined || safe1 !== undefined) pair.safe = [safe0 ?? null, safe1 ?? null];
  addIndexedScores(fields, pair);
  return pair;
}

function readRanked(fields: Fields, safety: boolean): PairFields {
  const expectation = "a list of two response strings [better, worse]";
  const list = fields.list("response", expectation);
  if (list.length !== 2) throw RecordProblem.invalidValue("response", expectation, list);
  for (const [index, item] of list.entries()) {
    if (typeof item !== "string") {
      throw RecordProblem.wrongType(`response[${index}]`, "a string", item);
    }
  }
  const pair: PairFields = {
    prompt: fields.textOrMessages("prompt"),
    responses: [list[0] as string, list[1] as string],
    meta: {},
  };
  if (safety) {
    pair.safer = 0;
    pair.safe = [true, false];
  } else {
    pair.better = 0;
  }
  addIndexedScores(fields, pair);
  return pair;
}

/** Converts one record in the given layout. Throws {@link RecordProblem}. */
export function readPairFields(layout: Layout, fields: Fields): PairFields {
  let pair: PairFields;
  switch (layout) {
    case "pku-saferlhf":
      pair = readPku(fields);
      break;
    case "hh-rlhf":
      pair = readHh(fields);
      break;
    case "generic":
      pair = readGeneric(fields);
      break;
    case "ranked":
      pair = readRanked(fields, false);
      break;
    case "ranked-safety":
      pair = readRanked(fields, true);
      break;
  }
  fields.consume("id");
  pair.meta = fields.rest();
  return pair;
}

/**
 * Detects the layout from a record's columns, or returns null. The ranked layout is always
 * detected as `ranked` (response 0 = better); `ranked-safety` must be asked for.
 */
export function detectLayout(record: Record<string, unknown>): Layout | null {
  const has = (key: string) => record[key] !== undefined;
  if (has("response_0") && has("response_1")) return "pku-saferlhf";
  if (has("chosen") && has("rejected")) {
    if (has("prompt")) return "generic";
    return typeof record.chosen === "string" ? "hh-rlhf" : "generic";
  }
  if (has("prompt") && has("response")) return "ranked";
  return null;
}

/** Returns whether the safer response is labelled unsafe and the other one safe. */
export function contradictsSafety(pair: PairFields): boolean {
  if (pair.safer === undefined || pair.safe === undefined) return false;
  const safer: ResponseIndex = pair.safer;
  const other = (1 - safer) as ResponseIndex;
  return pair.safe[safer] === false && pair.safe[other] === true;
}
