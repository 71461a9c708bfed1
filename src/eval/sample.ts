/**
 * Sampling responses from a policy and scoring them, shared by the C-DPO constraint estimate and
 * `cdpo eval`.
 *
 * - {@link sampleResponses}: K responses per prompt, drawn with a seeded generator.
 * - {@link scoreResponses}: a reward or cost model's score of (prompt, response) texts, each score
 *   model reading the text with its own tokenizer.
 * - {@link responseLogprobs}: summed log π(y|x) of given response token ids, for the KL estimate.
 */
import {
  formatPrompt,
  type Prompt,
  tokenizePromptText,
  tokenizeResponseText,
} from "../data/index.js";
import type { TokenizedSequence } from "../data/tokenize.js";
import { generate } from "../models/generate.js";
import type { CausalLM } from "../models/model.js";
import * as torch from "../tensor/index.js";
import type { Tokenizer } from "../tokenizer/index.js";
import { type LanguageModel, responseLogps, sequenceScores } from "../train/forward.js";
import { sequenceLayout } from "../train/layout.js";
import type { TrainModel } from "../train/models.js";

/** A score model with the tokenizer it reads text with. */
export interface Scorer {
  model: TrainModel;
  tokenizer: Tokenizer;
  /** Maximum tokens of prompt + response; longer responses are cut at the end. */
  maxLength: number;
}

/** One sampled response. */
export interface SampledResponse {
  /** Index of the prompt in the list passed in. */
  promptIndex: number;
  /** Response token ids, without the prompt and without EOS. */
  ids: Int32Array;
  /** Whether the response ended with EOS (false: cut at maxNewTokens). */
  finished: boolean;
  text: string;
}

export interface SampleOptions {
  samplesPerPrompt: number;
  maxNewTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  batchSize: number;
  seed: number;
  precision: "fp32" | "bf16";
}

function padIdOf(tokenizer: Tokenizer): number {
  return tokenizer.padId ?? tokenizer.eosId ?? 0;
}

/** Renders and tokenizes a prompt for a model (chat template when the tokenizer has one). */
export function promptIds(prompt: Prompt, tokenizer: Tokenizer): Int32Array {
  return Int32Array.from(tokenizePromptText(formatPrompt(prompt, tokenizer), tokenizer));
}

/**
 * Draws `samplesPerPrompt` responses for each prompt, prompt-major: the K responses of prompt 0
 * come first. The draws depend only on `seed` and the model, not on the batch size.
 */
export function sampleResponses(
  model: TrainModel,
  tokenizer: Tokenizer,
  prompts: readonly Prompt[],
  options: SampleOptions,
  onBatch?: (done: number, total: number) => void,
): SampledResponse[] {
  const jobs: { promptIndex: number; ids: Int32Array }[] = [];
  for (const [promptIndex, prompt] of prompts.entries()) {
    const ids = promptIds(prompt, tokenizer);
    for (let k = 0; k < options.samplesPerPrompt; k++) jobs.push({ promptIndex, ids });
  }
  const results: SampledResponse[] = [];
  for (let start = 0; start < jobs.length; start += options.batchSize) {
    const batch = jobs.slice(start, start + options.batchSize);
    model.train(false);
    const eos = tokenizer.eosId;
    const output = generate(
      model.model as CausalLM,
      batch.map((job) => Array.from(job.ids)),
      {
        maxNewTokens: options.maxNewTokens,
        greedy: options.temperature === 0,
        ...(options.temperature > 0 ? { temperature: options.temperature } : {}),
        topK: options.topK,
        topP: options.topP,
        ...(eos === null ? {} : { stopTokenIds: [eos] }),
        padTokenId: padIdOf(tokenizer),
        // One seed per batch start, so a batch's draws do not depend on the batches before it.
        seed: options.seed * 1_000_003 + start,
      },
    );
    for (const [i, tokens] of output.tokens.entries()) {
      const job = batch[i] as (typeof batch)[number];
      const finished = output.finishReasons[i] === "stop_token";
      const ids = Int32Array.from(finished ? tokens.slice(0, -1) : tokens);
      results.push({
        promptIndex: job.promptIndex,
        ids,
        finished,
        text: tokenizer.decode(ids, { skipSpecialTokens: true }),
      });
    }
    onBatch?.(Math.min(start + options.batchSize, jobs.length), jobs.length);
  }
  return results;
}

/**
 * Scores (prompt, response) texts with a reward or cost model, in inference mode; returns one
 * score per response.
 */
export function scoreResponses(
  scorer: Scorer,
  prompts: readonly Prompt[],
  responses: readonly string[],
  options: { batchSize: number; precision: "fp32" | "bf16" },
): number[] {
  const sequences: TokenizedSequence[] = responses.map((response, i) => {
    const prompt = promptIds(prompts[i] as Prompt, scorer.tokenizer);
    let ids = Int32Array.from(tokenizeResponseText(response, scorer.tokenizer));
    const room = Math.max(1, scorer.maxLength - prompt.length);
    const truncated = ids.length > room;
    if (truncated) ids = ids.slice(0, room);
    return { id: String(i), promptIds: prompt, responseIds: ids, truncated };
  });
  const padId = padIdOf(scorer.tokenizer);
  const scores: number[] = [];
  scorer.model.train(false);
  for (let start = 0; start < sequences.length; start += options.batchSize) {
    const batch = sequences.slice(start, start + options.batchSize);
    const run = () =>
      torch.inferenceMode(() =>
        torch.tidy(() =>
          Array.from(sequenceScores(scorer.model, sequenceLayout(batch, padId)).toFloat32Array()),
        ),
      );
    scores.push(
      ...(options.precision === "bf16" ? torch.autocast(run, { dtype: "bfloat16" }) : run()),
    );
  }
  return scores;
}

/**
 * Summed log-probabilities log π(y|x) of response token ids after prompt token ids, in inference
 * mode; one value per response.
 */
export function responseLogprobs(
  model: LanguageModel,
  prompts: readonly Int32Array[],
  responses: readonly Int32Array[],
  options: { batchSize: number; padId: number; precision: "fp32" | "bf16" },
): number[] {
  const sequences: TokenizedSequence[] = responses.map((ids, i) => ({
    id: String(i),
    promptIds: prompts[i] as Int32Array,
    responseIds: ids,
    truncated: false,
  }));
  const values: number[] = [];
  model.train(false);
  for (let start = 0; start < sequences.length; start += options.batchSize) {
    const batch = sequences.slice(start, start + options.batchSize);
    const run = () =>
      torch.inferenceMode(() =>
        torch.tidy(() =>
          Array.from(
            responseLogps(model, sequenceLayout(batch, options.padId)).logps.toFloat32Array(),
          ),
        ),
      );
    values.push(
      ...(options.precision === "bf16" ? torch.autocast(run, { dtype: "bfloat16" }) : run()),
    );
  }
  return values;
}
