/**
 * The two model kinds cdpo trains, over either backbone:
 *
 * - {@link CausalLM}: next-token logits (`LlamaForCausalLM`, `GPT2LMHeadModel`, ...).
 * - {@link ScoreModel}: one scalar per sequence, read at its last real token (reward and cost
 *   models). The head is `score_head` (Safe-RLHF's `LlamaForScore`, optional bias) or `score`
 *   (transformers' `*ForSequenceClassification` with `num_labels` 1, no bias), as the config's architecture selects.
 *
 * Both take the same {@link ForwardInput} and run inside their own `tidy` scope: the returned
 * tensors belong to the caller's scope, every intermediate is freed.
 */
import { invalidArgument } from "../errors.js";
import { defaultInit, Linear, Module, type ParameterInit } from "../nn/index.js";
import type { Device, DType, Generator, Tensor } from "../tensor/index.js";
import * as torch from "../tensor/index.js";
import type { ForwardInput } from "./attention.js";
import { KVCache } from "./cache.js";
import { type ModelConfig, parseModelConfig } from "./config.js";
import { GPT2Model } from "./gpt2.js";
import { LlamaModel } from "./llama.js";

export type { ForwardInput } from "./attention.js";

export type Backbone = LlamaModel | GPT2Model;

/** Returns the Hugging Face prefix of the backbone's parameters (`model` or `transformer`). */
export function backbonePrefix(config: ModelConfig): string {
  return config.modelType === "gpt2" ? "transformer" : "model";
}

function createBackbone(config: ModelConfig, init: ParameterInit): Backbone {
  return config.modelType === "gpt2" ? new GPT2Model(config, init) : new LlamaModel(config, init);
}

export interface CausalLMForwardInput extends ForwardInput {
  /** Computes logits for the last n positions only (0, the default: all). Saves memory in sampling. */
  logitsToKeep?: number;
  /** Returns the final hidden states and skips the head (`logits` is then null). */
  hiddenOnly?: boolean;
}

export interface CausalLMOutput {
  /** [B, T, V] (or [B, logitsToKeep, V]) in the model's dtype; null with `hiddenOnly`. */
  logits: Tensor | null;
  /** [B, T, C], with `hiddenOnly` only. */
  hiddenStates: Tensor | null;
  /** The cache that was passed in, advanced by T. */
  cache: KVCache | null;
}

/** Shared by both model kinds. */
abstract class BackboneModel extends Module {
  readonly backbone: Backbone;

  constructor(
    readonly config: ModelConfig,
    init: ParameterInit,
  ) {
    super();
    this.backbone = this.registerModule(backbonePrefix(config), createBackbone(config, init));
  }

  get dtype(): DType {
    return this.backbone.embeddingWeight.dtype;
  }

  get device(): Device {
    return this.backbone.embeddingWeight.device;
  }

  /** Creates an empty cache for `batchSize` rows, preallocated for `capacity` tokens. */
  createCache(batchSize: number, capacity: number): KVCache {
    return new KVCache({
      numLayers: this.config.numHiddenLayers,
      batchSize,
      numKeyValueHeads: this.config.numKeyValueHeads,
      headDim: this.config.headDim,
      capacity,
      dtype: this.dtype,
      device: this.device,
    });
  }

  override dispose(): void {
    super.dispose();
    if (this.backbone instanceof LlamaModel) this.backbone.rotary.dispose();
  }
}

export class CausalLM extends BackboneModel {
  /** The output head, or null when tied to the token embeddings. */
  readonly lm_head: Linear | null;

  constructor(config: ModelConfig, init: ParameterInit) {
    super(config, init);
    this.lm_head = config.tieWordEmbeddings
      ? null
      : this.registerModule("lm_head", new Linear(config.hiddenSize, config.vocabSize, init));
  }

  /** The head's weight [V, C] (the embedding matrix when tied). */
  get headWeight(): Tensor {
    return this.lm_head?.weight ?? this.backbone.embeddingWeight;
  }

  forward(input: CausalLMForwardInput): CausalLMOutput {
    const keep = input.logitsToKeep ?? 0;
    if (!Number.isInteger(keep) || keep < 0) {
      throw invalidArgument("range", "logitsToKeep", "a non-negative integer", keep);
    }
    return torch.tidy(() => {
      const hidden = this.backbone.forward(input); // [B, T, C]
      const cache = input.cache ?? null;
      if (input.hiddenOnly === true) return { logits: null, hiddenStates: hidden, cache };
      const steps = hidden.size(1);
      const lastHidden = keep > 0 && keep < steps ? hidden.narrow(1, steps - keep, keep) : hidden; // [B, T', C]
      return { logits: this.computeLogits(lastHidden), hiddenStates: null, cache }; // [B, T', V]
    });
  }

  /** Applies the output head to hidden states [..., C]: logits [..., V]. */
  computeLogits(hidden: Tensor): Tensor {
    return torch.linear(hidden, this.headWeight); // [..., V]
  }
}

export interface ScoreForwardInput extends ForwardInput {
  /** Also returns the score at every position, [B, T]. */
  returnTokenScores?: boolean;
}

export interface ScoreOutput {
  /** [B] float32: the score at each row's last real token. */
  scores: Tensor;
  /** [B, T] float32, with `returnTokenScores` only. */
  tokenScores: Tensor | null;
  /** [B] int64: the position each score was read at. */
  endIndices: Tensor;
  cache: KVCache | null;
}

export class ScoreModel extends BackboneModel {
  /** The linear head [1, C]; its parameter name is `config.scoreHead` (`score_head` or `score`). */
  readonly head: Linear;

  constructor(config: ModelConfig, init: ParameterInit) {
    super(config, init);
    this.head = this.registerModule(
      config.scoreHead,
      new Linear(config.hiddenSize, 1, init, { bias: config.scoreBias }),
    );
  }

  /**
   * Scores each sequence at its last real token: the last position where the attention mask is
   * 1, so left padding, right padding and a pad id equal to the EOS id all read the right token.
   */
  forward(input: ScoreForwardInput): ScoreOutput {
    if (input.attentionMask != null && input.attentionMask.ndim !== 2) {
      throw new RangeError(
        "ScoreModel.forward needs a [B, T] attention mask to find each row's last token; with a " +
          "4-D mask, call backbone.forward and apply the head to the positions you choose",
      );
    }
    return torch.tidy(() => {
      const hidden = this.backbone.forward(input); // [B, T, C]
      const [batch, steps, width] = hidden.shape as [number, number, number];

      // index of the last real token of each row
      const mask = input.attentionMask ?? null;
      let endIndices: Tensor; // [B]
      if (mask === null) {
        endIndices = torch.full([batch], steps - 1, { dtype: "int64", device: hidden.device });
      } else {
        const current = mask.narrow(1, mask.size(1) - steps, steps).ne(0); // [B, T]
        const positions = torch.arange(steps, undefined, 1, { device: hidden.device }); // [T]
        endIndices = torch.where(current, positions, -1).amax(-1).clamp(0, null); // [B]
      }

      // head at those positions
      const last = hidden.gather(1, endIndices.view(batch, 1, 1).expand(batch, 1, width)); // [B, 1, C]
      const scores = this.head.forward(last).view(batch); // [B]
      const tokenScores =
        input.returnTokenScores === true ? this.head.forward(hidden).squeeze(-1) : null; // [B, T]
      return {
        scores: scores.dtype === "float32" ? scores : scores.float(),
        tokenScores:
          tokenScores === null || tokenScores.dtype === "float32"
            ? tokenScores
            : tokenScores.float(),
        endIndices,
        cache: input.cache ?? null,
      };
    });
  }
}

export type Model = CausalLM | ScoreModel;

export interface CreateModelOptions {
  /** Seed of the generator that draws the initial weights. Default 0. */
  seed?: number;
  /** A generator to draw from instead of a new one seeded with `seed`. */
  generator?: Generator;
  dtype?: DType;
  device?: Device;
}

/**
 * Builds a new, randomly initialised model from a config (a config.json object or a parsed
 * {@link ModelConfig}), for training from scratch. The architecture picks the kind: a
 * `*ForCausalLM` / `GPT2LMHeadModel` gives a {@link CausalLM}, a `*ForScore` or
 * `*ForSequenceClassification` a {@link ScoreModel}.
 */
export function createModel(
  config: ModelConfig | Record<string, unknown>,
  options: CreateModelOptions = {},
): Model {
  const parsed = isModelConfig(config) ? config : parseModelConfig(config, "config");
  const generator = options.generator ?? new torch.Generator(options.seed ?? 0);
  const init = defaultInit({
    generator,
    std: parsed.initializerRange,
    dtype: options.dtype ?? "float32",
    device: options.device ?? "cpu",
  });
  return buildModel(parsed, init);
}

/** Builds the model class for `config.task` with the given parameter initialisation. */
export function buildModel(config: ModelConfig, init: ParameterInit): Model {
  return config.task === "score" ? new ScoreModel(config, init) : new CausalLM(config, init);
}

export function isModelConfig(value: unknown): value is ModelConfig {
  return (
    typeof value === "object" &&
    value !== null &&
    "modelType" in value &&
    "raw" in value &&
    "task" in value
  );
}
