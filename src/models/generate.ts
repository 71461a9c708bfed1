/**
 * Sampling from a causal LM with a KV cache: greedy or random, with temperature, top-k, top-p
 * and a repetition penalty, stopping on stop tokens, stop strings or the token budget.
 *
 * The logits go through the steps of transformers' `generate`, in its order: repetition penalty,
 * then temperature, top-k and top-p, then a draw from the softmax with a seeded generator (the
 * same seed and inputs give the same tokens). Prompts of different lengths are left-padded into
 * one batch; the attention mask hides the padding and positions start at 0 in every row.
 */
import { CdpoError, invalidArgument } from "../errors.js";
import type { Generator, Tensor } from "../tensor/index.js";
import * as torch from "../tensor/index.js";
import type { Tokenizer } from "../tokenizer/index.js";
import type { ModelConfig } from "./config.js";
import type { CausalLM } from "./model.js";

export interface SamplingOptions {
  /**
   * Tokens to generate at most per row. Default 128. See {@link contextOverflow} for what happens
   * when the longest prompt plus this exceeds the model's context length.
   */
  maxNewTokens?: number;
  /** Picks the most likely token at each step (temperature 0 does the same). Default false. */
  greedy?: boolean;
  /** Divides the logits before sampling; > 0. Default 1. */
  temperature?: number;
  /** Keeps only the k most likely tokens; 0 turns it off. Default 0. */
  topK?: number;
  /** Keeps the smallest set of tokens whose probability reaches p, in (0, 1]. Default 1 (off). */
  topP?: number;
  /**
   * Divides positive logits and multiplies negative ones of tokens already in the row (prompt
   * included) by this factor (Keskar et al., "CTRL", 2019); 1 turns it off. Default 1.
   */
  repetitionPenalty?: number;
  /** Token ids that end a row (kept as its last token). Default: the config's `eos_token_id`. */
  stopTokenIds?: readonly number[];
  /** Texts that end a row once its decoded output contains one; needs `tokenizer`. */
  stopStrings?: readonly string[];
  /** Seed of a new generator for the draws. Default 0. */
  seed?: number;
  /** A generator to draw from instead (its state advances). */
  generator?: Generator;
  /** Id used for left padding and after a row finished. Default: pad id, else first EOS id, else 0. */
  padTokenId?: number;
  /** Decodes the outputs into `texts` (and checks stop strings). */
  tokenizer?: Tokenizer | null;
}

export type FinishReason = "stop_token" | "stop_string" | "length";

export interface GenerateResult {
  /** The new tokens of each row, the stop token included when one ended it. */
  tokens: number[][];
  /**
   * The new text of each row (with a tokenizer): special tokens dropped, cut before the first
   * stop string.
   */
  texts: string[] | null;
  finishReasons: FinishReason[];
}

interface ResolvedOptions {
  maxNewTokens: number;
  greedy: boolean;
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
  stopTokenIds: Set<number>;
  stopStrings: readonly string[];
  padTokenId: number;
}

/** Applies the defaults and validates every sampling option. */
function resolveOptions(model: CausalLM, options: SamplingOptions): ResolvedOptions {
  // numbers
  const maxNewTokens = options.maxNewTokens ?? 128;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0) {
    throw invalidArgument("range", "maxNewTokens", "a non-negative integer", maxNewTokens);
  }
  const temperature = options.temperature ?? 1;
  if (!(temperature >= 0) || !Number.isFinite(temperature)) {
    throw invalidArgument("range", "temperature", "a number >= 0", temperature);
  }
  const topK = options.topK ?? 0;
  if (!Number.isInteger(topK) || topK < 0) {
    throw invalidArgument("range", "topK", "a non-negative integer (0 = off)", topK);
  }
  const topP = options.topP ?? 1;
  if (!(topP > 0 && topP <= 1)) throw invalidArgument("range", "topP", "a number in (0, 1]", topP);
  const repetitionPenalty = options.repetitionPenalty ?? 1;
  if (!(repetitionPenalty > 0) || !Number.isFinite(repetitionPenalty)) {
    throw invalidArgument(
      "range",
      "repetitionPenalty",
      "a positive number (1 = off)",
      repetitionPenalty,
    );
  }

  // stop conditions and padding
  const stopStrings = options.stopStrings ?? [];
  if (stopStrings.length > 0 && !options.tokenizer) {
    throw new TypeError(
      "stopStrings needs a tokenizer to decode the outputs (pass options.tokenizer)",
    );
  }
  if (stopStrings.some((s) => typeof s !== "string" || s.length === 0)) {
    throw invalidArgument("type", "stopStrings", "non-empty strings", stopStrings);
  }
  const { config } = model;
  const padTokenId =
    options.padTokenId ??
    config.padTokenId ??
    options.tokenizer?.padId ??
    config.eosTokenIds[0] ??
    0;
  return {
    maxNewTokens,
    greedy: options.greedy === true || temperature === 0,
    temperature,
    topK,
    topP,
    repetitionPenalty,
    stopTokenIds: new Set(options.stopTokenIds ?? config.eosTokenIds),
    stopStrings,
    padTokenId,
  };
}

/** A generation whose prompt plus new tokens exceed the model's context length. */
export interface ContextOverflow {
  /** Tokens of the longest prompt. */
  promptLength: number;
  maxNewTokens: number;
  /** The context length: `n_positions` (GPT-2) or `max_position_embeddings`. */
  limit: number;
  /** The config.json field that sets `limit`. */
  limitField: "n_positions" | "max_position_embeddings";
  /**
   * True for learned position embeddings (GPT-2), which have no row for a position past `limit`,
   * so the generation cannot run. Rotary models (Llama, Mistral, Qwen2) compute any position, so
   * they keep generating at lengths they were not trained on.
   */
  fatal: boolean;
}

/**
 * Checks `promptLength + maxNewTokens` against the config's context length. Returns null when
 * the generation fits, else the numbers for a warning or an error.
 */
export function contextOverflow(
  config: ModelConfig,
  promptLength: number,
  maxNewTokens: number,
): ContextOverflow | null {
  const limit = config.maxPositionEmbeddings;
  if (promptLength + maxNewTokens <= limit) return null;
  const learned = config.modelType === "gpt2";
  return {
    promptLength,
    maxNewTokens,
    limit,
    limitField: learned ? "n_positions" : "max_position_embeddings",
    fatal: learned,
  };
}

/**
 * Formats a {@link ContextOverflow} as one sentence: both numbers, and for a fatal overflow the
 * largest `maxNewTokensName` value that fits (or that the prompt alone is too long).
 */
export function describeContextOverflow(
  overflow: ContextOverflow,
  maxNewTokensName = "maxNewTokens",
): string {
  const { promptLength, maxNewTokens, limit, limitField } = overflow;
  const promptTokens = promptLength === 1 ? "1 token" : `${promptLength} tokens`;
  const needed =
    `The prompt (${promptTokens}) plus ${maxNewTokensName} (${maxNewTokens}) is ` +
    `${promptLength + maxNewTokens} tokens`;
  if (!overflow.fatal) {
    return (
      `${needed}, past the model's context length of ${limit} (${limitField}); ` +
      `tokens after the first ${limit} sit at positions the model was not trained on`
    );
  }
  const room = limit - promptLength;
  const fix =
    room > 0
      ? `lower ${maxNewTokensName} to ${room} or less, or shorten the prompt`
      : `shorten the prompt to fewer than ${limit} tokens`;
  return `${needed} but GPT-2 has only ${limit} learned positions (${limitField}): ${fix}`;
}

/**
 * Generates continuations of token-id prompts, all in one left-padded batch.
 *
 * Runs in inference mode; the cache and every intermediate are freed before it returns. When the
 * longest prompt plus `maxNewTokens` exceeds the context length ({@link contextOverflow}), a GPT-2
 * model throws before any compute and a rotary model (Llama family) generates without a check.
 *
 * @throws RangeError for a GPT-2 generation past `n_positions`, naming both numbers.
 */
export function generate(
  model: CausalLM,
  prompts: readonly (readonly number[])[],
  options: SamplingOptions = {},
): GenerateResult {
  const resolved = resolveOptions(model, options);
  const vocab = model.config.vocabSize;
  if (prompts.length === 0)
    throw invalidArgument("range", "prompts", "at least one prompt", prompts);
  for (const [row, prompt] of prompts.entries()) {
    if (prompt.length === 0) {
      throw invalidArgument(
        "range",
        `prompts[${row}]`,
        "at least one token (a BOS token, for example)",
        prompt,
      );
    }
    for (const id of prompt) {
      if (!Number.isInteger(id) || id < 0 || id >= vocab) {
        throw invalidArgument("range", `prompts[${row}]`, `token ids in [0, ${vocab})`, id);
      }
    }
  }
  const promptLength = Math.max(...prompts.map((p) => p.length));
  const overflow = contextOverflow(model.config, promptLength, resolved.maxNewTokens);
  if (overflow?.fatal) throw new RangeError(describeContextOverflow(overflow));
  const generator = options.generator ?? new torch.Generator(options.seed ?? 0);
  const tokenizer = options.tokenizer ?? null;

  const batch = prompts.length;
  const padded = prompts.some((p) => p.length !== promptLength);
  const tokens: number[][] = prompts.map(() => []);
  const finishReasons: FinishReason[] = prompts.map(() => "length");
  const finished = prompts.map(() => false);
  const seen = prompts.map((p) => new Set(p));

  torch.inferenceMode(() => {
    const cache = model.createCache(batch, promptLength + resolved.maxNewTokens);
    // The mask of every slot the generation can fill: left padding 0, the rest 1.
    const fullMask = padded
      ? torch.keep(leftPaddingMask(prompts, promptLength, resolved.maxNewTokens, model.device))
      : null;
    try {
      let current: number[] = [];
      for (let step = 0; step < resolved.maxNewTokens; step++) {
        const next = torch.tidy(() => {
          const inputIds =
            step === 0
              ? leftPaddedIds(prompts, promptLength, resolved.padTokenId, model.device) // [B, T]
              : torch.tensor(BigInt64Array.from(current, BigInt), [batch, 1], {
                  device: model.device,
                }); // [B, 1]
          const mask = fullMask?.narrow(1, 0, cache.length + inputIds.size(1)) ?? null; // [B, Tk]
          const { logits } = model.forward({
            inputIds,
            attentionMask: mask,
            cache,
            logitsToKeep: 1,
          });
          const chosen = pickNextTokens(logits!.select(1, 0), seen, resolved, generator); // [B]
          return Array.from(chosen.toInt32Array());
        });
        for (let row = 0; row < batch; row++) {
          if (finished[row]) {
            next[row] = resolved.padTokenId;
            continue;
          }
          const id = next[row]!;
          tokens[row]!.push(id);
          seen[row]!.add(id);
          if (resolved.stopTokenIds.has(id)) {
            finished[row] = true;
            finishReasons[row] = "stop_token";
          } else if (resolved.stopStrings.length > 0) {
            const text = tokenizer!.decode(tokens[row]!, { skipSpecialTokens: true });
            if (resolved.stopStrings.some((s) => text.includes(s))) {
              finished[row] = true;
              finishReasons[row] = "stop_string";
            }
          }
        }
        if (finished.every(Boolean)) break;
        current = next;
      }
    } finally {
      cache.dispose();
      fullMask?.dispose();
    }
  });

  const texts =
    tokenizer === null
      ? null
      : tokens.map((row, i) => decodeOutput(tokenizer, row, finishReasons[i]!, resolved));
  return { tokens, texts, finishReasons };
}

/** Encodes text prompts (with the tokenizer's special tokens, BOS included) and generates. */
export function generateText(
  model: CausalLM,
  tokenizer: Tokenizer,
  prompts: readonly string[],
  options: Omit<SamplingOptions, "tokenizer"> = {},
): GenerateResult {
  const encoded = prompts.map((prompt) => tokenizer.encode(prompt));
  return generate(model, encoded, { ...options, tokenizer });
}

function decodeOutput(
  tokenizer: Tokenizer,
  row: number[],
  reason: FinishReason,
  options: ResolvedOptions,
): string {
  const visible = reason === "stop_token" ? row.slice(0, -1) : row;
  let text = tokenizer.decode(visible, { skipSpecialTokens: true });
  if (reason === "stop_string") {
    const cut = Math.min(...options.stopStrings.map((s) => text.indexOf(s)).filter((i) => i >= 0));
    if (Number.isFinite(cut)) text = text.slice(0, cut);
  }
  return text;
}

function leftPaddedIds(
  prompts: readonly (readonly number[])[],
  length: number,
  padId: number,
  device: string,
): Tensor {
  const data = new BigInt64Array(prompts.length * length).fill(BigInt(padId));
  for (const [row, prompt] of prompts.entries()) {
    const offset = row * length + length - prompt.length;
    for (const [i, id] of prompt.entries()) data[offset + i] = BigInt(id);
  }
  return torch.tensor(data, [prompts.length, length], { device }); // [B, T]
}

function leftPaddingMask(
  prompts: readonly (readonly number[])[],
  length: number,
  newTokens: number,
  device: string,
): Tensor {
  const width = length + newTokens;
  const data = new BigInt64Array(prompts.length * width).fill(1n);
  for (const [row, prompt] of prompts.entries())
    data.fill(0n, row * width, row * width + length - prompt.length);
  return torch.tensor(data, [prompts.length, width], { device }); // [B, T + new]
}

/** Applies the logits processors to `logits` [B, V] and picks one token per row: [B] int64. */
function pickNextTokens(
  logits: Tensor,
  seen: readonly Set<number>[],
  options: ResolvedOptions,
  generator: Generator,
): Tensor {
  if (options.greedy) {
    const scores =
      options.repetitionPenalty === 1
        ? logits
        : penalizeRepeats(logits, seen, options.repetitionPenalty);
    return scores.argmax(-1); // [B]
  }
  const probs = processLogits(logits, seen, options).softmax(-1); // [B, V]
  return torch.multinomial(probs, 1, false, generator).view(-1); // [B]
}

export interface LogitsProcessing {
  repetitionPenalty: number;
  temperature: number;
  topK: number;
  topP: number;
}

/**
 * Returns float32 scores [B, V] after the repetition penalty over each row's `seen` tokens,
 * temperature, top-k and top-p (removed tokens get -inf), ready for softmax.
 */
export function processLogits(
  logits: Tensor,
  seen: readonly Set<number>[],
  options: LogitsProcessing,
): Tensor {
  let scores = logits.dtype === "float32" ? logits : logits.float(); // [B, V]
  if (options.repetitionPenalty !== 1)
    scores = penalizeRepeats(scores, seen, options.repetitionPenalty);
  if (options.temperature !== 1) scores = scores.div(options.temperature);
  const vocab = scores.size(-1);
  if (options.topK > 0 && options.topK < vocab) {
    const [top] = scores.topk(options.topK, -1); // [B, k]
    const kth = top.narrow(-1, options.topK - 1, 1); // [B, 1]
    scores = scores.maskedFill(scores.lt(kth), Number.NEGATIVE_INFINITY); // [B, V]
  }
  if (options.topP < 1) {
    // Drop the least likely tokens whose total probability stays within 1 - p; keep the top one.
    const [sorted, order] = scores.sort(-1, false); // [B, V] ascending
    const cumulative = sorted.softmax(-1).cumsum(-1); // [B, V]
    const remove = cumulative.le(1 - options.topP); // [B, V]
    remove.narrow(-1, vocab - 1, 1).fill_(false);
    scores = scores.maskedFill(remove.scatter(1, order, remove), Number.NEGATIVE_INFINITY); // [B, V]
  }
  return scores;
}

/** transformers' `RepetitionPenaltyLogitsProcessor` over each row's distinct earlier tokens. */
function penalizeRepeats(scores: Tensor, seen: readonly Set<number>[], penalty: number): Tensor {
  const width = Math.max(...seen.map((s) => s.size));
  if (width === 0) return scores;
  // Rows with fewer distinct tokens repeat one of them: scattering the same value twice is harmless.
  const data = new BigInt64Array(seen.length * width);
  for (const [row, ids] of seen.entries()) {
    const list = [...ids];
    for (let i = 0; i < width; i++) data[row * width + i] = BigInt(list[i % list.length] ?? 0);
  }
  const index = torch.tensor(data, [seen.length, width], { device: scores.device }); // [B, S]
  const picked = scores.gather(1, index); // [B, S]
  const penalized = torch.where(picked.lt(0), picked.mul(penalty), picked.div(penalty)); // [B, S]
  return scores.scatter(1, index, penalized); // [B, V]
}

/** Returns the prompt for generating from nothing: `[BOS]` from the tokenizer, else from config.json. */
export function startTokens(tokenizer: Tokenizer, model: CausalLM): number[] {
  const bos = tokenizer.bosId ?? model.config.bosTokenId;
  if (bos === null) {
    throw new CdpoError(
      "MODEL",
      "The tokenizer and config.json define no BOS token, so generation cannot start from an empty prompt; give a prompt",
    );
  }
  return [bos];
}
