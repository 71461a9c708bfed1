/**
 * Prompt formatting and tokenization of pairs and single sequences.
 *
 * Prompt and response are tokenized separately and concatenated (as TRL does), so the prompt's
 * tokens are always a prefix of the sequence, whatever the tokenizer would merge across the
 * boundary. BOS is put first once when the tokenizer adds one; EOS is appended to each response
 * once.
 */

import { invalidArgument } from "../errors.js";
import type { ChatMessage } from "../tokenizer/chat.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import type { PreferencePair, Prompt } from "./types.js";

/**
 * Plain prompt template, used when the tokenizer has no chat template. `{prompt}` is replaced by
 * the user text. It is the Anthropic HH-RLHF turn format, so HH-RLHF conversations render back to
 * their original text.
 */
export const DEFAULT_PROMPT_TEMPLATE = "\n\nHuman: {prompt}\n\nAssistant: ";

export interface PromptFormatOptions {
  /** Plain template containing `{prompt}` (default {@link DEFAULT_PROMPT_TEMPLATE}). */
  promptTemplate?: string;
  /** Use the tokenizer's chat template when it has one (default true). */
  useChatTemplate?: boolean;
}

function toMessages(prompt: Prompt): ChatMessage[] {
  return typeof prompt === "string" ? [{ role: "user", content: prompt }] : prompt;
}

/**
 * Renders a prompt as the text that precedes the model's response.
 *
 * With a chat template: the template with `add_generation_prompt`. Otherwise the plain template
 * is split at `{prompt}` into a user prefix and an assistant prefix: each user message is the user
 * prefix + its text, each assistant message the assistant prefix + its text, a system message
 * its text alone, and the assistant prefix closes the prompt. A single user text is thus the
 * template with `{prompt}` replaced, and with the default template `[user U1, assistant A1,
 * user U2]` gives `"\n\nHuman: U1\n\nAssistant: A1\n\nHuman: U2\n\nAssistant: "`.
 */
export function formatPrompt(
  prompt: Prompt,
  tokenizer: Tokenizer | null,
  options: PromptFormatOptions = {},
): string {
  const template = options.promptTemplate ?? DEFAULT_PROMPT_TEMPLATE;
  const parts = template.split("{prompt}");
  if (parts.length !== 2) {
    throw invalidArgument(
      "range",
      "promptTemplate",
      'a template containing "{prompt}" once',
      template,
    );
  }
  const [userPrefix, assistantPrefix] = parts as [string, string];
  const messages = toMessages(prompt);
  if (tokenizer !== null && tokenizer.chatTemplate !== null && options.useChatTemplate !== false) {
    return tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true });
  }
  let text = "";
  for (const message of messages) {
    if (message.role === "user") text += userPrefix + message.content;
    else if (message.role === "assistant") text += assistantPrefix + message.content;
    else text += message.content;
  }
  return text + assistantPrefix;
}

/** Prompt text for display and logs: the string itself, or the rendered plain conversation. */
export function promptText(prompt: Prompt): string {
  return typeof prompt === "string" ? prompt : formatPrompt(prompt, null);
}

/** Tokenizes rendered prompt text, with BOS first when the tokenizer adds one (never twice). */
export function tokenizePromptText(text: string, tokenizer: Tokenizer): number[] {
  const ids = tokenizer.encode(text, { addSpecialTokens: false });
  if (tokenizer.addBosToken && tokenizer.bosId !== null && ids[0] !== tokenizer.bosId) {
    ids.unshift(tokenizer.bosId);
  }
  return ids;
}

/** Tokenizes a response, with EOS appended unless it already ends with EOS or there is none. */
export function tokenizeResponseText(text: string, tokenizer: Tokenizer, addEos = true): number[] {
  const ids = tokenizer.encode(text, { addSpecialTokens: false });
  if (addEos && tokenizer.eosId !== null && ids.at(-1) !== tokenizer.eosId) {
    ids.push(tokenizer.eosId);
  }
  return ids;
}

export interface TokenizeOptions extends PromptFormatOptions {
  /** Maximum tokens of prompt + response; longer responses are cut at the end. */
  maxLength?: number;
  /** Maximum prompt tokens; longer prompts lose their beginning (BOS is kept). */
  maxPromptLength?: number;
  /** Append EOS to responses (default true). */
  addEos?: boolean;
}

/** A pair as token ids. Both responses share the prompt. */
export interface TokenizedPair {
  id: string;
  promptIds: Int32Array;
  /** Response tokens in the pair's order (EOS included unless truncated away). */
  responseIds: [Int32Array, Int32Array];
  /** Whether truncation removed any token. */
  truncated: boolean;
  pair: PreferencePair;
}

/** One prompt + response sequence (SFT, score models). */
export interface TokenizedSequence {
  id: string;
  promptIds: Int32Array;
  responseIds: Int32Array;
  truncated: boolean;
}

export type TokenizeSkipReason = "no-room-for-response" | "empty-response";

export interface SkippedExample {
  id: string;
  reason: TokenizeSkipReason;
}

function checkLengthOptions(options: TokenizeOptions): void {
  for (const name of ["maxLength", "maxPromptLength"] as const) {
    const value = options[name];
    if (value !== undefined && (!Number.isInteger(value) || value < 1)) {
      throw invalidArgument("range", name, "a positive integer", value);
    }
  }
  const { maxLength, maxPromptLength } = options;
  if (maxLength !== undefined && maxPromptLength !== undefined && maxPromptLength >= maxLength) {
    throw new RangeError(
      `Expected maxPromptLength below maxLength but received maxPromptLength ${maxPromptLength} ` +
        `and maxLength ${maxLength}`,
    );
  }
}

/**
 * Applies `maxPromptLength` then `maxLength` to a prompt and its responses. The prompt keeps its
 * end (and BOS); all responses are cut to the same budget, so the longest one decides.
 */
function truncate(
  promptIds: number[],
  responses: number[][],
  tokenizer: Tokenizer,
  options: TokenizeOptions,
): { promptIds: number[]; responses: number[][]; truncated: boolean } | TokenizeSkipReason {
  if (responses.some((ids) => ids.length === 0)) return "empty-response";
  let prompt = promptIds;
  let truncated = false;
  const maxPrompt = options.maxPromptLength;
  if (maxPrompt !== undefined && prompt.length > maxPrompt) {
    const hasBos = tokenizer.bosId !== null && prompt[0] === tokenizer.bosId;
    const head = hasBos && maxPrompt > 1 ? prompt.slice(0, 1) : [];
    prompt = [...head, ...prompt.slice(prompt.length - (maxPrompt - head.length))];
    truncated = true;
  }
  let kept = responses;
  const maxLength = options.maxLength;
  if (maxLength !== undefined) {
    const longest = Math.max(...responses.map((ids) => ids.length));
    if (prompt.length + longest > maxLength) {
      const budget = maxLength - prompt.length;
      if (budget <= 0) return "no-room-for-response";
      kept = responses.map((ids) => ids.slice(0, budget));
      truncated = true;
    }
  }
  return { promptIds: prompt, responses: kept, truncated };
}

/** Tokenizes one pair, or returns why it must be skipped. */
export function tokenizePair(
  pair: PreferencePair,
  tokenizer: Tokenizer,
  options: TokenizeOptions = {},
): TokenizedPair | TokenizeSkipReason {
  checkLengthOptions(options);
  const promptIds = tokenizePromptText(formatPrompt(pair.prompt, tokenizer, options), tokenizer);
  const responses = pair.responses.map((text) =>
    tokenizeResponseText(text, tokenizer, options.addEos ?? true),
  );
  const result = truncate(promptIds, responses, tokenizer, options);
  if (typeof result === "string") return result;
  return {
    id: pair.id,
    promptIds: Int32Array.from(result.promptIds),
    responseIds: [
      Int32Array.from(result.responses[0] ?? []),
      Int32Array.from(result.responses[1] ?? []),
    ],
    truncated: result.truncated,
    pair,
  };
}

export interface TokenizedPairs {
  examples: TokenizedPair[];
  /** Pairs left out, with the reason; they are never trained on. */
  skipped: SkippedExample[];
  /** Number of kept pairs that lost tokens to truncation. */
  truncated: number;
}

/** Tokenizes pairs, keeping their order and counting what truncation did. */
export function tokenizePairs(
  pairs: readonly PreferencePair[],
  tokenizer: Tokenizer,
  options: TokenizeOptions = {},
): TokenizedPairs {
  const examples: TokenizedPair[] = [];
  const skipped: SkippedExample[] = [];
  let truncated = 0;
  for (const pair of pairs) {
    const result = tokenizePair(pair, tokenizer, options);
    if (typeof result === "string") {
      skipped.push({ id: pair.id, reason: result });
      continue;
    }
    if (result.truncated) truncated++;
    examples.push(result);
  }
  return { examples, skipped, truncated };
}

/** Input of {@link tokenizeSequence}: a prompt and the response to train on or score. */
export interface SequenceInput {
  id: string;
  prompt: Prompt;
  response: string;
}

/** Tokenizes one prompt + response sequence, or returns why it must be skipped. */
export function tokenizeSequence(
  input: SequenceInput,
  tokenizer: Tokenizer,
  options: TokenizeOptions = {},
): TokenizedSequence | TokenizeSkipReason {
  checkLengthOptions(options);
  const promptIds = tokenizePromptText(formatPrompt(input.prompt, tokenizer, options), tokenizer);
  const responseIds = tokenizeResponseText(input.response, tokenizer, options.addEos ?? true);
  const result = truncate(promptIds, [responseIds], tokenizer, options);
  if (typeof result === "string") return result;
  return {
    id: input.id,
    promptIds: Int32Array.from(result.promptIds),
    responseIds: Int32Array.from(result.responses[0] ?? []),
    truncated: result.truncated,
  };
}

export interface TokenizedSequences {
  examples: TokenizedSequence[];
  skipped: SkippedExample[];
  truncated: number;
}

export function tokenizeSequences(
  inputs: readonly SequenceInput[],
  tokenizer: Tokenizer,
  options: TokenizeOptions = {},
): TokenizedSequences {
  const examples: TokenizedSequence[] = [];
  const skipped: SkippedExample[] = [];
  let truncated = 0;
  for (const input of inputs) {
    const result = tokenizeSequence(input, tokenizer, options);
    if (typeof result === "string") {
      skipped.push({ id: input.id, reason: result });
      continue;
    }
    if (result.truncated) truncated++;
    examples.push(result);
  }
  return { examples, skipped, truncated };
}
