/**
 * Forward passes the stages need, on top of a model's `forward`: summed response log-probabilities
 * over a {@link TokenLayout}, and sequence scores.
 */

import type { Tensor } from "../tensor/index.js";
import * as torch from "../tensor/index.js";
import type { TokenLayout } from "./layout.js";

/** Arguments of a forward pass over a token grid. */
export interface ForwardInputs {
  /** [rows, T] int64 */
  inputIds: Tensor;
  /** [rows, T] int64 */
  positionIds: Tensor;
  /** bool: [rows, T] padding mask, or [rows, 1, T, T] full mask (true = attend). */
  attentionMask: Tensor;
}

/** The part of a causal LM the trainers use. */
export interface TrainableModel {
  namedParameters(): [string, Tensor][];
  train(mode?: boolean): unknown;
}

/**
 * A transformer split into its backbone and its head, so the head runs only on the positions a
 * loss reads.
 */
export interface HeadedModel extends TrainableModel {
  /** Final hidden states [rows, T, C], after the last norm. */
  hiddenStates(inputs: ForwardInputs): Tensor;
  /** The head on hidden states [..., C]: logits [..., V] (causal LM) or scores [..., 1]. */
  head(hidden: Tensor): Tensor;
  /** Writes the model as a Hugging Face folder (config.json + model.safetensors). */
  save(dir: string): Promise<void>;
  /** Copies the weights of a folder written by `save` into this model's parameters. */
  loadWeights(dir: string): Promise<void>;
}

/** A causal LM: the head gives next-token logits. */
export type LanguageModel = HeadedModel;

/** A score model: the head gives one scalar per position, read at each sequence's last token. */
export type ScoringModel = HeadedModel;

/** Copies a layout's arrays into tensors. */
export function layoutInputs(layout: TokenLayout): ForwardInputs {
  const { rows, seqLen } = layout;
  const inputIds = torch.tensor(layout.inputIds, [rows, seqLen], { dtype: "int64" });
  const positionIds = torch.tensor(layout.positionIds, [rows, seqLen], { dtype: "int64" });
  const maskShape = layout.maskKind === "padding" ? [rows, seqLen] : [rows, 1, seqLen, seqLen];
  const attentionMask = torch.tensor(layout.attentionMask, maskShape, { dtype: "bool" });
  return { inputIds, positionIds, attentionMask };
}

export interface ResponseLogps {
  /** [outputs] summed log-probabilities of each output slot's response tokens (float32). */
  logps: Tensor;
  /** [K] log-probability of each response token. */
  tokenLogps: Tensor;
  /** [K] whether the argmax prediction equals the token. */
  correct: Tensor;
}

/**
 * Runs the model over a layout and sums the log-probabilities of the response tokens per slot.
 *
 * The LM head runs on the K response positions only, and log-probabilities are taken as
 * `logit[target] − logsumexp(logits)` in float32, without a [K, V] log-softmax.
 */
export function responseLogps(
  model: LanguageModel,
  layout: TokenLayout,
  options: { accuracy?: boolean } = {},
): ResponseLogps {
  const inputs = layoutInputs(layout);
  const hidden = model.hiddenStates(inputs); // [rows, T, C]
  const channels = hidden.size(-1);
  const sources = torch.tensor(layout.sources, [layout.sources.length], { dtype: "int64" });
  const selected = hidden.reshape(layout.rows * layout.seqLen, channels).indexSelect(0, sources); // [K, C]
  const logits = model.head(selected).float(); // [K, V]
  const targets = torch.tensor(layout.targets, [layout.targets.length, 1], { dtype: "int64" });
  const targetLogits = logits.gather(1, targets).squeeze(1); // [K]
  const tokenLogps = targetLogits.sub(logits.logsumexp(-1)); // [K]
  const segments = torch.tensor(layout.segments, [layout.segments.length], { dtype: "int64" });
  const logps = torch.zeros([layout.outputs]).scatterAdd(0, segments, tokenLogps); // [outputs]
  const correct =
    options.accuracy === true
      ? logits.detach().argmax(-1).eq(targets.squeeze(1))
      : torch.zeros([0], { dtype: "bool" });
  return { logps, tokenLogps, correct };
}

/** Runs a score model over a layout: the score of each output slot's last token, [outputs]. */
export function sequenceScores(model: ScoringModel, layout: TokenLayout): Tensor {
  const inputs = layoutInputs(layout);
  const hidden = model.hiddenStates(inputs); // [rows, T, C]
  const channels = hidden.size(-1);
  const last = torch.tensor(layout.lastPositions, [layout.outputs], { dtype: "int64" });
  const selected = hidden.reshape(layout.rows * layout.seqLen, channels).indexSelect(0, last); // [outputs, C]
  return model.head(selected).float().reshape(layout.outputs); // [outputs]
}
