/**
 * Token layouts of a micro-batch for the forward pass, and where its response tokens are.
 *
 * A layout is a `[rows, T]` grid of input ids with position ids and an attention mask, plus the
 * list of response tokens to score. For each response token it stores the flat grid position
 * whose logits predict it (`sources`), the token (`targets`) and the output slot that its
 * log-probability is summed into (`segments`). Scoring only those positions skips the LM head on
 * prompt and padding tokens.
 *
 * Pair layouts put the chosen responses in slots 0..B-1 and the rejected ones in B..2B-1:
 *
 * - "padded" (TRL's layout): 2B rows `prompt + response`, chosen rows first, right-padded, with a
 *   [rows, T] padding mask (causal attention inside).
 * - "shared-prompt": B rows `prompt + chosen + rejected`. The rejected tokens may not attend to the
 *   chosen ones and their positions restart after the prompt, so each response sees exactly the
 *   context it would see alone, while the prompt is run once per pair. The mask is a full
 *   [rows, T, T] boolean mask.
 * - "prefix" ({@link PrefixLayout}): a [B, P] grid of prompts and a [2B, R] grid of responses.
 *   Each response row attends to its pair's prompt keys and causally to its own keys, so every
 *   layer computes the prompt once and attention costs B·P² + 2B·R·(P + R) scores instead of
 *   B·(P + 2R)² for "shared-prompt". It needs a model with `prefixHiddenStates`.
 *
 * Every layout numbers its positions 0..N-1 (row-major over its grids, the prompt grid first), and
 * `sources` and `lastPositions` index that numbering.
 */
import type { PairBatch, PreferenceChoice } from "../data/batch.js";
import { collatePairs } from "../data/batch.js";
import type { TokenizedPair, TokenizedSequence } from "../data/tokenize.js";
import { invalidArgument } from "../errors.js";

export type PairLayoutKind = "padded" | "shared-prompt" | "prefix";

/** The response tokens of a layout and where their predictions are read. */
export interface ScoredPositions {
  /** [K] layout positions whose logits predict a response token. */
  sources: Int32Array;
  /** [K] the predicted tokens. */
  targets: Int32Array;
  /** [K] output slot of each response token. */
  segments: Int32Array;
  /** Number of output slots (2B for pairs, B for sequences). */
  outputs: number;
  /** [outputs] response tokens per slot. */
  tokensPerOutput: Int32Array;
  /** Real (non-padding) tokens run through the model, for tokens/s. */
  realTokens: number;
  /** [outputs] layout position of the last token of each output's sequence (score models). */
  lastPositions: Int32Array;
}

/** One [rows, T] grid. */
export interface TokenLayout extends ScoredPositions {
  kind: "grid";
  rows: number;
  /** T */
  seqLen: number;
  /** [rows·T] */
  inputIds: Int32Array;
  /** [rows·T] */
  positionIds: Int32Array;
  /** "padding": [rows·T], 1 on real tokens. "full": [rows·T·T], 1 where query t may attend key s. */
  maskKind: "padding" | "full";
  attentionMask: Uint8Array;
}

/** Prompts and responses in two grids (see the file comment). */
export interface PrefixLayout extends ScoredPositions {
  kind: "prefix";
  /** B */
  pairs: number;
  /** P: the longest prompt. */
  promptLen: number;
  /** [B·P] right-padded prompts. */
  promptIds: Int32Array;
  /** [B] */
  promptLengths: Int32Array;
  /** R: the longest response. */
  responseLen: number;
  /** [2B·R] right-padded responses, chosen rows first. */
  responseIds: Int32Array;
  /** [2B·R] positions: the pair's prompt length plus the index in the response. */
  responsePositions: Int32Array;
  /** [2B] */
  responseLengths: Int32Array;
}

export type AnyLayout = TokenLayout | PrefixLayout;

/** Builds a pair micro-batch in the given layout. */
export function pairLayout(
  examples: readonly TokenizedPair[],
  choose: PreferenceChoice,
  padId: number,
  kind: PairLayoutKind,
): { layout: AnyLayout; batch: PairBatch } {
  const batch = collatePairs(examples, { padId, choose });
  if (kind === "padded") return { layout: fromPaddedRows(batch, padId), batch };
  if (kind === "shared-prompt") return { layout: sharedPromptLayout(batch, padId), batch };
  if (kind === "prefix") return { layout: prefixLayout(batch, padId), batch };
  throw invalidArgument("range", "layout", '"padded", "shared-prompt" or "prefix"', kind);
}

/** Builds a padded sequence micro-batch (SFT, score models): one output slot per row. */
export function sequenceLayout(examples: readonly TokenizedSequence[], padId: number): TokenLayout {
  const rows = examples.map((example) => ({
    prompt: example.promptIds,
    response: example.responseIds,
  }));
  return buildPadded(rows, padId);
}

interface Row {
  prompt: Int32Array;
  response: Int32Array;
}

function fromPaddedRows(batch: PairBatch, padId: number): TokenLayout {
  const rows: Row[] = [
    ...batch.chosenIds.map((response, i) => ({ prompt: batch.promptIds[i]!, response })),
    ...batch.rejectedIds.map((response, i) => ({ prompt: batch.promptIds[i]!, response })),
  ];
  return buildPadded(rows, padId);
}

/** Padded rows `prompt + response`, right padding, one output slot per row. */
function buildPadded(rows: readonly Row[], padId: number): TokenLayout {
  const count = rows.length;
  let seqLen = 0;
  for (const row of rows) seqLen = Math.max(seqLen, row.prompt.length + row.response.length);
  const inputIds = new Int32Array(count * seqLen).fill(padId);
  const attentionMask = new Uint8Array(count * seqLen);
  const positionIds = new Int32Array(count * seqLen);
  const sources: number[] = [];
  const targets: number[] = [];
  const segments: number[] = [];
  const tokensPerOutput = new Int32Array(count);
  const lastPositions = new Int32Array(count);
  let realTokens = 0;
  for (const [r, row] of rows.entries()) {
    const base = r * seqLen;
    const promptLength = row.prompt.length;
    const length = promptLength + row.response.length;
    inputIds.set(row.prompt, base);
    inputIds.set(row.response, base + promptLength);
    attentionMask.fill(1, base, base + length);
    for (let t = 0; t < seqLen; t++) positionIds[base + t] = t < length ? t : 0;
    // Token t of the response sits at promptLength + t and is predicted by the position before.
    for (let t = Math.max(promptLength, 1); t < length; t++) {
      sources.push(base + t - 1);
      targets.push(inputIds[base + t]!);
      segments.push(r);
    }
    tokensPerOutput[r] = length - Math.max(promptLength, 1);
    lastPositions[r] = base + length - 1;
    realTokens += length;
  }
  return {
    kind: "grid",
    rows: count,
    seqLen,
    inputIds,
    positionIds,
    maskKind: "padding",
    attentionMask,
    sources: Int32Array.from(sources),
    targets: Int32Array.from(targets),
    segments: Int32Array.from(segments),
    outputs: count,
    tokensPerOutput,
    realTokens,
    lastPositions,
  };
}

/** B rows `prompt + chosen + rejected` with the mask described in the file comment. */
function sharedPromptLayout(batch: PairBatch, padId: number): TokenLayout {
  const pairs = batch.size;
  let seqLen = 0;
  for (let i = 0; i < pairs; i++) {
    const length =
      batch.promptIds[i]!.length + batch.chosenIds[i]!.length + batch.rejectedIds[i]!.length;
    seqLen = Math.max(seqLen, length);
  }
  const inputIds = new Int32Array(pairs * seqLen).fill(padId);
  const positionIds = new Int32Array(pairs * seqLen);
  const attentionMask = new Uint8Array(pairs * seqLen * seqLen);
  const sources: number[] = [];
  const targets: number[] = [];
  const segments: number[] = [];
  const tokensPerOutput = new Int32Array(2 * pairs);
  const lastPositions = new Int32Array(2 * pairs);
  let realTokens = 0;

  for (let i = 0; i < pairs; i++) {
    const prompt = batch.promptIds[i]!;
    const chosen = batch.chosenIds[i]!;
    const rejected = batch.rejectedIds[i]!;
    const p = prompt.length;
    const c = chosen.length;
    const r = rejected.length;
    if (p === 0) {
      throw invalidArgument("range", `prompt of pair ${batch.ids[i]}`, "at least one token", p);
    }
    const base = i * seqLen;
    inputIds.set(prompt, base);
    inputIds.set(chosen, base + p);
    inputIds.set(rejected, base + p + c);
    for (let t = 0; t < p + c; t++) positionIds[base + t] = t;
    for (let t = 0; t < r; t++) positionIds[base + p + c + t] = p + t;

    // Prompt and chosen tokens attend causally to the tokens before them. Rejected tokens attend
    // to the prompt and to the rejected tokens up to themselves. Padding rows attend to the first
    // token only, so that their softmax stays finite (their outputs are never read).
    const maskBase = i * seqLen * seqLen;
    for (let q = 0; q < seqLen; q++) {
      const row = maskBase + q * seqLen;
      if (q < p + c) {
        attentionMask.fill(1, row, row + q + 1);
      } else if (q < p + c + r) {
        attentionMask.fill(1, row, row + p);
        attentionMask.fill(1, row + p + c, row + q + 1);
      } else {
        attentionMask[row] = 1;
      }
    }

    // Chosen token j is predicted by position p - 1 (j = 0) or p + j - 1.
    for (let j = 0; j < c; j++) {
      sources.push(base + (j === 0 ? p - 1 : p + j - 1));
      targets.push(chosen[j]!);
      segments.push(i);
    }
    // Rejected token j is predicted by position p - 1 (j = 0) or p + c + j - 1.
    for (let j = 0; j < r; j++) {
      sources.push(base + (j === 0 ? p - 1 : p + c + j - 1));
      targets.push(rejected[j]!);
      segments.push(pairs + i);
    }
    tokensPerOutput[i] = c;
    tokensPerOutput[pairs + i] = r;
    lastPositions[i] = base + (c > 0 ? p + c - 1 : p - 1);
    lastPositions[pairs + i] = base + (r > 0 ? p + c + r - 1 : p - 1);
    realTokens += p + c + r;
  }
  return {
    kind: "grid",
    rows: pairs,
    seqLen,
    inputIds,
    positionIds,
    maskKind: "full",
    attentionMask,
    sources: Int32Array.from(sources),
    targets: Int32Array.from(targets),
    segments: Int32Array.from(segments),
    outputs: 2 * pairs,
    tokensPerOutput,
    realTokens,
    lastPositions,
  };
}

/** B prompt rows and 2B response rows, as described in the file comment. */
function prefixLayout(batch: PairBatch, padId: number): PrefixLayout {
  const pairs = batch.size;
  const responses = [...batch.chosenIds, ...batch.rejectedIds]; // [2B]
  let promptLen = 0;
  for (const prompt of batch.promptIds) promptLen = Math.max(promptLen, prompt.length);
  let responseLen = 1; // one padding column when every response is empty keeps the grid valid
  for (const response of responses) responseLen = Math.max(responseLen, response.length);

  const promptIds = new Int32Array(pairs * promptLen).fill(padId);
  const promptLengths = new Int32Array(pairs);
  for (const [i, prompt] of batch.promptIds.entries()) {
    if (prompt.length === 0) {
      throw invalidArgument("range", `prompt of pair ${batch.ids[i]}`, "at least one token", 0);
    }
    promptIds.set(prompt, i * promptLen);
    promptLengths[i] = prompt.length;
  }

  const responseIds = new Int32Array(2 * pairs * responseLen).fill(padId);
  const responsePositions = new Int32Array(2 * pairs * responseLen);
  const responseLengths = new Int32Array(2 * pairs);
  const sources: number[] = [];
  const targets: number[] = [];
  const segments: number[] = [];
  const lastPositions = new Int32Array(2 * pairs);
  const responseBase = pairs * promptLen; // layout position of response row 0, token 0
  let realTokens = 0;
  for (const p of promptLengths) realTokens += p;
  for (const [j, response] of responses.entries()) {
    const i = j % pairs;
    const p = promptLengths[i]!;
    const base = j * responseLen;
    responseIds.set(response, base);
    responseLengths[j] = response.length;
    for (let t = 0; t < responseLen; t++) responsePositions[base + t] = p + t;
    // Token 0 is predicted by the prompt's last position, token t by response position t - 1.
    for (let t = 0; t < response.length; t++) {
      sources.push(t === 0 ? i * promptLen + p - 1 : responseBase + base + t - 1);
      targets.push(response[t]!);
      segments.push(j);
    }
    lastPositions[j] =
      response.length > 0 ? responseBase + base + response.length - 1 : i * promptLen + p - 1;
    realTokens += response.length;
  }
  return {
    kind: "prefix",
    pairs,
    promptLen,
    promptIds,
    promptLengths,
    responseLen,
    responseIds,
    responsePositions,
    responseLengths,
    sources: Int32Array.from(sources),
    targets: Int32Array.from(targets),
    segments: Int32Array.from(segments),
    outputs: 2 * pairs,
    tokensPerOutput: responseLengths.slice(),
    realTokens,
    lastPositions,
  };
}
