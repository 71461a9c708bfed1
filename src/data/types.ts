/**
 * The normalised preference record every reader produces, and the names of the file layouts.
 */

import type { ChatMessage } from "../tokenizer/chat.js";

export type { ChatMessage };

/** A prompt: plain user text, or the conversation before the responses. */
export type Prompt = string | ChatMessage[];

/** Index of one of the two responses of a pair. */
export type ResponseIndex = 0 | 1;

/**
 * One preference pair, whatever layout it was read from.
 *
 * Labels are optional because layouts carry different ones. A stage that needs a label gets it
 * through {@link requireLabel}, which names the missing one.
 */
export interface PreferencePair {
  /** Stable id: the record's own `id` field, else `<file stem>:<row index>` (0-based). */
  id: string;
  prompt: Prompt;
  responses: [string, string];
  /** Index of the more helpful response (PKU-SafeRLHF `better_response_id`). */
  better?: ResponseIndex;
  /** Index of the safer response (PKU-SafeRLHF `safer_response_id`). */
  safer?: ResponseIndex;
  /** Per-response safety labels; null where the record leaves one unlabelled. */
  safe?: [boolean | null, boolean | null];
  /** Per-response rewards computed elsewhere (higher is better). */
  reward?: [number, number];
  /** Per-response costs computed elsewhere (above 0 means unsafe). */
  cost?: [number, number];
  /** Every other column of the record, under its original name. */
  meta: Record<string, unknown>;
}

/** A prompt for evaluation or sampling. */
export interface EvalPrompt {
  id: string;
  prompt: Prompt;
  category?: string;
  /** Every other column of the record, under its original name. */
  meta: Record<string, unknown>;
}

/**
 * Record layouts the reader understands.
 *
 * - `pku-saferlhf`: `prompt, response_0, response_1` with `better_response_id`,
 *   `safer_response_id`, `is_response_{0,1}_safe` (each optional).
 * - `hh-rlhf`: `chosen`, `rejected` whole `\n\nHuman: ` / `\n\nAssistant: ` transcripts.
 * - `generic`: `prompt, chosen, rejected`, strings or chat message lists (chosen = better).
 * - `ranked`: `prompt, response: [better, worse]` (response 0 = better).
 * - `ranked-safety`: the ranked layout read as `[safe, unsafe]`: response 0 is the safer one,
 *   labelled safe, and response 1 is labelled unsafe. No helpfulness label.
 */
export const LAYOUTS = ["pku-saferlhf", "hh-rlhf", "generic", "ranked", "ranked-safety"] as const;
export type Layout = (typeof LAYOUTS)[number];

/** Labels a pair can carry, as named by {@link requireLabel}. */
export type LabelName = "better" | "safer" | "safe" | "reward" | "cost";
