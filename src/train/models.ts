/**
 * The model layer seen from the trainers: building or loading a causal LM or score model, the
 * backbone/head split of {@link HeadedModel}, forward passes with a full [rows, 1, T, T] attention
 * mask (the "shared-prompt" pair layout), and saving as a Hugging Face folder.
 */
import * as path from "node:path";
import { CdpoError } from "../errors.js";
import { loadModel, readModelConfig, saveModel } from "../models/checkpoint.js";
import { configForTask, type ModelConfig, parseModelConfig } from "../models/config.js";
import { GPT2Model } from "../models/gpt2.js";
import { LlamaModel } from "../models/llama.js";
import { CausalLM, createModel, type Model, ScoreModel } from "../models/model.js";
import { loadSafetensors } from "../models/safetensors.js";
import type { Tensor } from "../tensor/index.js";
import * as torch from "../tensor/index.js";
import { BYTE_BOS_ID, BYTE_EOS_ID, BYTE_PAD_ID, BYTE_VOCAB_SIZE } from "../tokenizer/index.js";
import type { ForwardInputs, HeadedModel } from "./forward.js";

/** Llama configs for `--init`, over the byte tokenizer. */
export const INIT_CONFIGS: Record<"tiny" | "small", Record<string, unknown>> = {
  // 109,056 parameters: for tests and smoke runs.
  tiny: llamaConfig({ hidden: 64, layers: 2, heads: 4, kvHeads: 2, intermediate: 176 }),
  // 3,017,728 parameters.
  small: llamaConfig({ hidden: 256, layers: 4, heads: 8, kvHeads: 4, intermediate: 704 }),
};

/** Builds the config.json object of a Llama causal LM over the byte tokenizer. */
export function llamaConfig(size: {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  vocab?: number;
  maxPositions?: number;
}): Record<string, unknown> {
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    vocab_size: size.vocab ?? BYTE_VOCAB_SIZE,
    hidden_size: size.hidden,
    intermediate_size: size.intermediate,
    num_hidden_layers: size.layers,
    num_attention_heads: size.heads,
    num_key_value_heads: size.kvHeads,
    max_position_embeddings: size.maxPositions ?? 2048,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    hidden_act: "silu",
    initializer_range: 0.02,
    tie_word_embeddings: true,
    bos_token_id: BYTE_BOS_ID,
    eos_token_id: BYTE_EOS_ID,
    pad_token_id: BYTE_PAD_ID,
  };
}

const DTYPE_MIN = -3.4028234663852886e38;

/**
 * A causal LM or score model from src/models, as a {@link HeadedModel}. Parameters stay owned by
 * the wrapped model.
 */
export class TrainModel implements HeadedModel {
  constructor(readonly model: Model) {}

  get config(): ModelConfig {
    return this.model.config;
  }

  get task(): "causal-lm" | "score" {
    return this.model instanceof ScoreModel ? "score" : "causal-lm";
  }

  namedParameters(): [string, Tensor][] {
    return this.model.namedParameters();
  }

  train(mode = true): void {
    this.model.train(mode);
  }

  /** Final hidden states [rows, T, C]; a [rows, 1, T, T] mask runs the full-mask pass. */
  hiddenStates(inputs: ForwardInputs): Tensor {
    if (inputs.attentionMask.ndim === 2) {
      return this.model.backbone.forward({
        inputIds: inputs.inputIds,
        attentionMask: inputs.attentionMask,
        positionIds: inputs.positionIds,
      });
    }
    return torch.tidy(() => fullMaskForward(this.model, inputs));
  }

  head(hidden: Tensor): Tensor {
    if (this.model instanceof CausalLM) return this.model.computeLogits(hidden); // [..., V]
    return (this.model as ScoreModel).head.forward(hidden); // [..., 1]
  }

  /**
   * Writes config.json and the weights into `dir` in the parameters' dtype. Always one
   * model.safetensors file, which `loadWeights` reads back.
   */
  async save(dir: string): Promise<void> {
    await saveModel(this.model, dir, { maxShardBytes: Number.MAX_SAFE_INTEGER });
  }

  async loadWeights(dir: string): Promise<void> {
    await copyWeights(this.model, path.join(dir, "model.safetensors"));
  }

  dispose(): void {
    this.model.dispose();
  }
}

/**
 * Runs the backbone of src/models with an explicit boolean mask [rows, 1, T, T] (true = attend),
 * turned into the additive bias that the layers take, and with explicit positions.
 */
function fullMaskForward(model: Model, inputs: ForwardInputs): Tensor {
  const backbone = model.backbone;
  const bias = torch
    .zeros(inputs.attentionMask.shape, { dtype: backbone.embeddingWeight.dtype })
    .maskedFill(inputs.attentionMask.logicalNot(), DTYPE_MIN); // [rows, 1, T, T]
  const steps = inputs.inputIds.size(1);
  const maxPosition = inputs.positionIds.max().item();
  if (backbone instanceof LlamaModel) {
    const [cos, sin] = backbone.rotary.forward(inputs.positionIds, 0, steps, maxPosition); // [B, 1, T, D]
    let x = backbone.embed_tokens.forward(inputs.inputIds); // [B, T, C]
    const context = { cos, sin, bias, cache: null };
    for (const layer of backbone.layers.items) x = layer.forward(x, context); // [B, T, C]
    return backbone.norm.forward(x); // [B, T, C]
  }
  if (backbone instanceof GPT2Model) {
    const tokens = backbone.wte.forward(inputs.inputIds); // [B, T, C]
    const positions = backbone.wpe.forward(inputs.positionIds); // [B, T, C]
    let x = backbone.drop.forward(tokens.add(positions)); // [B, T, C]
    const context = { bias, cache: null };
    for (const block of backbone.h.items) x = block.forward(x, context); // [B, T, C]
    return backbone.ln_f.forward(x); // [B, T, C]
  }
  throw new CdpoError("MODEL", "full attention masks are supported for Llama and GPT-2 backbones");
}

/** Copies every parameter of `model` from a safetensors file (names must match). */
async function copyWeights(model: Model, file: string): Promise<void> {
  const tensors = await loadSafetensors(file);
  try {
    torch.noGrad(() => {
      for (const [name, param] of model.namedParameters()) {
        const source = tensors.get(name);
        if (source === undefined) {
          throw new CdpoError("MODEL", `${file} has no tensor ${name}`);
        }
        torch.tidy(() => param.copy_(source.to(param.dtype)));
      }
    });
  } finally {
    torch.dispose([...tensors.values()]);
  }
}

/** Creates a randomly initialised model from a config.json object, for `task`. */
export function initModel(
  raw: Record<string, unknown>,
  task: "causal-lm" | "score",
  seed: number,
): TrainModel {
  const config = configForTask(parseModelConfig(raw, "init config"), task);
  return new TrainModel(createModel(config, { seed }));
}

/**
 * Loads a Hugging Face model folder as `task` (through src/models). A causal LM folder loaded as
 * "score" gets a new score head drawn from `seed`, as Safe-RLHF starts its reward and cost models
 * from the SFT model. With `allowNewHead: false` that case fails instead. A score folder loaded as
 * "causal-lm" always fails.
 */
export async function loadModelFolder(
  dir: string,
  task: "causal-lm" | "score",
  seed: number,
  options: { allowNewHead?: boolean } = {},
): Promise<TrainModel> {
  if (task === "score" && options.allowNewHead === false) {
    const stored = await readModelConfig(dir);
    if (stored.task !== "score") {
      throw new CdpoError(
        "MODEL",
        `${dir} holds a causal LM (${stored.architecture}), not a trained score model; train one ` +
          "with cdpo train-reward or cdpo train-cost",
      );
    }
  }
  return new TrainModel(await loadModel(dir, { task, seed }));
}
