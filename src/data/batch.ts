/**
 * Batches of tokenized examples as flat typed arrays, ready to become tensors.
 *
 * Padded layouts are row-major `[rows, T]` with right padding: `inputIds` (Int32Array),
 * `attentionMask` (1 on real tokens) and `lossMask` (1 on response tokens, so the logits at
 * position t - 1 predict the masked token at t). Packed layouts concatenate the sequences without
 * padding, with `offsets` (`[rows + 1]`, sequence i is `offsets[i]..offsets[i + 1]`) and
 * position ids that restart at 0 in each sequence.
 *
 * Pair batches put the chosen rows first, then the rejected rows, as TRL concatenates them, so
 * row i and row B + i belong to pair i.
 */

import { invalidArgument } from "../errors.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { requireLabel } from "./labels.js";
import type { TokenizedPair, TokenizedSequence } from "./tokenize.js";
import type { ResponseIndex } from "./types.js";

/** Picks the chosen response of a pair: a label, or for C-DPO a relabelling by r - lambda * c. */
export type PreferenceChoice = (example: TokenizedPair) => ResponseIndex;

/** Chooses by a label of the pair, throwing when a pair lacks it. */
export function chooseByLabel(label: "better" | "safer"): PreferenceChoice {
  return (example) => requireLabel(example.pair, label);
}

/** Padding id for a tokenizer: its pad token, else EOS, else 0 (padded positions are masked). */
export function padIdFor(tokenizer: Tokenizer): number {
  return tokenizer.padId ?? tokenizer.eosId ?? 0;
}

/** The padded `[rows, T]` arrays shared by pair and sequence batches. */
export interface PaddedRows {
  rows: number;
  /** T: the longest row, rounded up to `padToMultipleOf`. */
  seqLen: number;
  inputIds: Int32Array;
  attentionMask: Uint8Array;
  lossMask: Uint8Array;
  /** [rows]: prompt tokens of each row (BOS included). */
  promptLengths: Int32Array;
  /** [rows]: unpadded length of each row; the last real token is at `lengths[i] - 1`. */
  lengths: Int32Array;
}

/** The packed arrays shared by pair and sequence batches. */
export interface PackedRows {
  rows: number;
  /** [N]: all sequences back to back. */
  inputIds: Int32Array;
  /** [N]: position of each token inside its own sequence. */
  positionIds: Int32Array;
  /** [N]: 1 on response tokens. */
  lossMask: Uint8Array;
  /** [rows + 1]: start of each sequence, then N. */
  offsets: Int32Array;
  promptLengths: Int32Array;
  lengths: Int32Array;
}

interface Row {
  prompt: Int32Array;
  response: Int32Array;
}

export interface PadOptions {
  padId: number;
  /** Round T up to a multiple of this (default 1). */
  padToMultipleOf?: number;
}

function checkPadOptions(options: PadOptions): void {
  if (!Number.isInteger(options.padId) || options.padId < 0) {
    throw invalidArgument("range", "padId", "a non-negative integer", options.padId);
  }
  const multiple = options.padToMultipleOf;
  if (multiple !== undefined && (!Number.isInteger(multiple) || multiple < 1)) {
    throw invalidArgument("range", "padToMultipleOf", "a positive integer", multiple);
  }
}

function padRows(rows: Row[], options: PadOptions): PaddedRows {
  checkPadOptions(options);
  const count = rows.length;
  const lengths = Int32Array.from(rows, (row) => row.prompt.length + row.response.length);
  const promptLengths = Int32Array.from(rows, (row) => row.prompt.length);
  const multiple = options.padToMultipleOf ?? 1;
  const longest = lengths.reduce((max, length) => Math.max(max, length), 0);
  const seqLen = Math.ceil(longest / multiple) * multiple;

  const inputIds = new Int32Array(count * seqLen).fill(options.padId);
  const attentionMask = new Uint8Array(count * seqLen);
  const lossMask = new Uint8Array(count * seqLen);
  for (const [i, row] of rows.entries()) {
    const base = i * seqLen;
    const promptLength = row.prompt.length;
    const length = promptLength + row.response.length;
    inputIds.set(row.prompt, base);
    inputIds.set(row.response, base + promptLength);
    attentionMask.fill(1, base, base + length);
    lossMask.fill(1, base + promptLength, base + length);
  }
  return { rows: count, seqLen, inputIds, attentionMask, lossMask, promptLengths, lengths };
}

function packRows(rows: Row[]): PackedRows {
  const count = rows.length;
  const lengths = Int32Array.from(rows, (row) => row.prompt.length + row.response.length);
  const promptLengths = Int32Array.from(rows, (row) => row.prompt.length);
  const offsets = new Int32Array(count + 1);
  for (let i = 0; i < count; i++) offsets[i + 1] = (offsets[i] as number) + (lengths[i] as number);
  const total = offsets[count] as number;

  const inputIds = new Int32Array(total);
  const positionIds = new Int32Array(total);
  const lossMask = new Uint8Array(total);
  for (const [i, row] of rows.entries()) {
    const start = offsets[i] as number;
    const length = lengths[i] as number;
    inputIds.set(row.prompt, start);
    inputIds.set(row.response, start + row.prompt.length);
    for (let t = 0; t < length; t++) positionIds[start + t] = t;
    lossMask.fill(1, start + row.prompt.length, start + length);
  }
  return { rows: count, inputIds, positionIds, lossMask, offsets, promptLengths, lengths };
}

/** Pair batch fields besides the token layout. */
export interface PairBatchInfo {
  /** B: number of pairs. */
  size: number;
  /** Stable pair ids, in batch order (reference log-probabilities are cached by them). */
  ids: string[];
  examples: TokenizedPair[];
  /** [B]: index of the chosen response within each pair. */
  chosen: Uint8Array;
  /** Each pair's prompt once, then its chosen and rejected response tokens. */
  promptIds: Int32Array[];
  chosenIds: Int32Array[];
  rejectedIds: Int32Array[];
}

/** A padded pair batch: `[2B, T]` arrays, chosen rows 0..B-1, rejected rows B..2B-1. */
export type PairBatch = PairBatchInfo & PaddedRows;

/** A packed pair batch: 2B sequences, chosen ones first. */
export type PackedPairBatch = PairBatchInfo & PackedRows;

function pairParts(
  examples: readonly TokenizedPair[],
  choose: PreferenceChoice,
): { info: PairBatchInfo; rows: Row[] } {
  const chosen = new Uint8Array(examples.length);
  const chosenIds: Int32Array[] = [];
  const rejectedIds: Int32Array[] = [];
  for (const [i, example] of examples.entries()) {
    const index = choose(example);
    if (index !== 0 && index !== 1) {
      throw invalidArgument("range", `choose(${example.id})`, "0 or 1", index);
    }
    chosen[i] = index;
    chosenIds.push(example.responseIds[index]);
    rejectedIds.push(example.responseIds[1 - index] as Int32Array);
  }
  const promptIds = examples.map((example) => example.promptIds);
  const rows: Row[] = [
    ...chosenIds.map((response, i) => ({ prompt: promptIds[i] as Int32Array, response })),
    ...rejectedIds.map((response, i) => ({ prompt: promptIds[i] as Int32Array, response })),
  ];
  const info: PairBatchInfo = {
    size: examples.length,
    ids: examples.map((example) => example.id),
    examples: [...examples],
    chosen,
    promptIds,
    chosenIds,
    rejectedIds,
  };
  return { info, rows };
}

export interface PairCollateOptions extends PadOptions {
  choose: PreferenceChoice;
}

/** Builds a padded pair batch. */
export function collatePairs(
  examples: readonly TokenizedPair[],
  options: PairCollateOptions,
): PairBatch {
  const { info, rows } = pairParts(examples, options.choose);
  return { ...info, ...padRows(rows, options) };
}

/** Builds a packed pair batch (no padding). */
export function packPairs(
  examples: readonly TokenizedPair[],
  options: { choose: PreferenceChoice },
): PackedPairBatch {
  const { info, rows } = pairParts(examples, options.choose);
  return { ...info, ...packRows(rows) };
}

/** Sequence batch fields besides the token layout. */
export interface SequenceBatchInfo {
  size: number;
  ids: string[];
  examples: TokenizedSequence[];
}

/** A padded batch of prompt + response sequences (SFT, score models): `[B, T]` arrays. */
export type SequenceBatch = SequenceBatchInfo & PaddedRows;
export type PackedSequenceBatch = SequenceBatchInfo & PackedRows;

function sequenceRows(examples: readonly TokenizedSequence[]): Row[] {
  return examples.map((example) => ({ prompt: example.promptIds, response: example.responseIds }));
}

function sequenceInfo(examples: readonly TokenizedSequence[]): SequenceBatchInfo {
  return {
    size: examples.length,
    ids: examples.map((example) => example.id),
    examples: [...examples],
  };
}

export function collateSequences(
  examples: readonly TokenizedSequence[],
  options: PadOptions,
): SequenceBatch {
  return { ...sequenceInfo(examples), ...padRows(sequenceRows(examples), options) };
}

export function packSequences(examples: readonly TokenizedSequence[]): PackedSequenceBatch {
  return { ...sequenceInfo(examples), ...packRows(sequenceRows(examples)) };
}
