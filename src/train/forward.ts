/**
 * Forward passes the stages need, on top of a model's backbone and head: summed response
 * log-probabilities over a layout (see layout.ts), and sequence scores.
 */

import type { Tensor } from "../tensor/index.js";
import * as torch from "../tensor/index.js";
import type { AnyLayout, PrefixLayout, TokenLayout } from "./layout.js";

/** Arguments of a forward pass over a token grid. */
export interface ForwardInputs {
  /** [rows, T] int64 */
  inputIds: Tensor;
  /** [rows, T] int64 */
  positionIds: Tensor;
  /** bool: [rows, T] padding mask, or [rows, 1, T, T] full mask (true = attend). */
  attentionMask: Tensor;
}

/** Arguments of a forward pass over a "prefix" layout: B prompts and 2B responses. */
export interface PrefixInputs {
  /** [B, P] int64, right-padded. */
  promptIds: Tensor;
  /** [B] prompt lengths. */
  promptLengths: Int32Array;
  /** [2B, R] int64, right-padded; row j continues the prompt of pair j mod B. */
  responseIds: Tensor;
  /** [2B, R] int64 */
  responsePositions: Tensor;
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
  /** Whether `prefixHiddenStates` works for this model (the "prefix" pair layout). */
  readonly supportsPrefix?: boolean;
  /**
   * Final hidden states of a "prefix" pass: [B·P + 2B·R, C], the prompt grid's positions first,
   * then the response grid's, each row-major.
   */
  prefixHiddenStates?(inputs: PrefixInputs): Tensor;
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

/** The pair layout a model runs fastest: "prefix" when it supports it, else "shared-prompt". */
export function defaultPairLayout(model: HeadedModel): "prefix" | "shared-prompt" {
  return model.supportsPrefix === true ? "prefix" : "shared-prompt";
}

/** Copies a grid layout's arrays into tensors. */
export function layoutInputs(layout: TokenLayout): ForwardInputs {
  const { rows, seqLen } = layout;
  const inputIds = torch.tensor(layout.inputIds, [rows, seqLen], { dtype: "int64" });
  const positionIds = torch.tensor(layout.positionIds, [rows, seqLen], { dtype: "int64" });
  const maskShape = layout.maskKind === "padding" ? [rows, seqLen] : [rows, 1, seqLen, seqLen];
  const attentionMask = torch.tensor(layout.attentionMask, maskShape, { dtype: "bool" });
  return { inputIds, positionIds, attentionMask };
}

/** Copies a prefix layout's arrays into tensors. */
export function prefixInputs(layout: PrefixLayout): PrefixInputs {
  const { pairs, promptLen, responseLen } = layout;
  return {
    promptIds: torch.tensor(layout.promptIds, [pairs, promptLen], { dtype: "int64" }),
    promptLengths: layout.promptLengths,
    responseIds: torch.tensor(layout.responseIds, [2 * pairs, responseLen], { dtype: "int64" }),
    responsePositions: torch.tensor(layout.responsePositions, [2 * pairs, responseLen], {
      dtype: "int64",
    }),
  };
}

/** Final hidden states at every layout position: [N, C]. */
export function flatHiddenStates(model: HeadedModel, layout: AnyLayout): Tensor {
  if (layout.kind === "prefix") {
    if (model.supportsPrefix !== true || model.prefixHiddenStates === undefined) {
      throw new RangeError(
        'Expected a model that supports the "prefix" layout (Llama family without a sliding ' +
          'window) but received one that does not; use the "shared-prompt" layout',
      );
    }
    return model.prefixHiddenStates(prefixInputs(layout)); // [N, C]
  }
  const hidden = model.hiddenStates(layoutInputs(layout)); // [rows, T, C]
  return hidden.reshape(layout.rows * layout.seqLen, hidden.size(-1)); // [N, C]
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
  layout: AnyLayout,
  options: { accuracy?: boolean } = {},
): ResponseLogps {
  const hidden = flatHiddenStates(model, layout); // [N, C]
  const sources = torch.tensor(layout.sources, [layout.sources.length], { dtype: "int64" });
  const selected = hidden.indexSelect(0, sources); // [K, C]
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
export function sequenceScores(model: ScoringModel, layout: AnyLayout): Tensor {
  const hidden = flatHiddenStates(model, layout); // [N, C]
  const last = torch.tensor(layout.lastPositions, [layout.outputs], { dtype: "int64" });
  const selected = hidden.indexSelect(0, last); // [outputs, C]
  return model.head(selected).float().reshape(layout.outputs); // [outputs]
}
