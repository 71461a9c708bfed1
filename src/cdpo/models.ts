/**
 * Loading and saving the models C-DPO works with, on top of the trainers' model layer.
 */
import { padIdFor } from "../data/batch.js";
import type { Scorer } from "../eval/sample.js";
import * as torch from "../tensor/index.js";
import { loadTokenizer, type Tokenizer } from "../tokenizer/index.js";
import { loadModelFolder, type TrainModel } from "../train/models.js";
import { saveFinal } from "../train/stages.js";

/** A causal LM with its tokenizer: the policy or the reference. */
export interface PolicyModel {
  model: TrainModel;
  tokenizer: Tokenizer;
  /** Id that pads batches: the tokenizer's pad id, else EOS, else 0. */
  padId: number;
  /** Folder it was loaded from. */
  dir: string;
}

/** Loads a Hugging Face causal-LM folder and its tokenizer. */
export async function loadPolicyModel(dir: string): Promise<PolicyModel> {
  const tokenizer = await loadTokenizer(dir);
  const model = await loadModelFolder(dir, "causal-lm", 0);
  return { model, tokenizer, padId: padIdFor(tokenizer), dir };
}

/**
 * Loads a reward or cost model folder and its tokenizer. A causal-LM folder gets a new score head
 * (useful for smoke runs only: its scores are random).
 */
export async function loadScorer(dir: string, maxLength: number): Promise<Scorer> {
  const tokenizer = await loadTokenizer(dir);
  const model = await loadModelFolder(dir, "score", 0);
  return { model, tokenizer, maxLength };
}

/** Copies every parameter of `from` into `to` (same architecture), without gradient. */
export function copyParameters(from: PolicyModel, to: PolicyModel): void {
  const source = new Map(from.model.namedParameters());
  torch.noGrad(() => {
    for (const [name, param] of to.model.namedParameters()) {
      const value = source.get(name);
      if (value === undefined) throw new RangeError(`The reference model has no parameter ${name}`);
      param.copy_(value);
    }
  });
}

/** Writes the policy and its tokenizer as a Hugging Face folder, atomically (temp folder, rename). */
export async function savePolicyFolder(policy: PolicyModel, dir: string): Promise<void> {
  await saveFinal(policy.model, policy.tokenizer, dir);
}
