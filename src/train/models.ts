/**
 * The model layer seen from the trainers: building or loading a causal LM or score model, the
 * backbone/head split of {@link HeadedModel}, the forward passes of the "shared-prompt" pair
 * layout (a full [rows, 1, T, T] attention mask) and of the "prefix" layout (Llama family), and
 * saving as a Hugging Face folder.
 *
 * NOTE: both forward passes reuse the submodules of src/models (layers, attention projections,
 * rotary tables) and repeat the order of operations of its Llama and GPT-2 `forward`. A change of
 * that order there must be made here too; test/train/layout.test.ts compares the layouts against
 * the models' own forward on real checkpoints.
 */
import * as path from "node:path";
import { CdpoError } from "../errors.js";
import { attend, splitHeads } from "../models/attention.js";
import { loadModel, readModelConfig, saveModel } from "../models/checkpoint.js";
import { configForTask, type ModelConfig, parseModelConfig } from "../models/config.js";
import { GPT2Model } from "../models/gpt2.js";
import { LlamaModel } from "../models/llama.js";
import { CausalLM, createModel, type Model, ScoreModel } from "../models/model.js";
import { applyRotary } from "../models/rope.js";
import { loadSafetensors } from "../models/safetensors.js";
import type { Tensor } from "../tensor/index.js";
import * as torch from "../tensor/index.js";
import { BYTE_BOS_ID, BYTE_EOS_ID, BYTE_PAD_ID, BYTE_VOCAB_SIZE } from "../tokenizer/index.js";
import type { ForwardInputs, HeadedModel, PrefixInputs } from "./forward.js";

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

/**
 * Head of new score models: `score`, saved as transformers' `*ForSequenceClassification` with
 * `num_labels` 1, which `transformers` loads without extra code (Safe-RLHF's `*ForScore` needs
 * the safe-rlhf package). Folders that already have a score head keep theirs.
 */
const NEW_SCORE_HEAD = "score";

/** The smallest finite float32 and bfloat16 values: the additive bias of a masked key. */
const FLOAT32_MIN = -3.4028234663852886e38;
const BFLOAT16_MIN = -3.3895313892515355e38;

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

  /** Llama-family backbones without a sliding window run the "prefix" pair layout. */
  get supportsPrefix(): boolean {
    return this.model.backbone instanceof LlamaModel && this.config.slidingWindow === null;
  }

  prefixHiddenStates(inputs: PrefixInputs): Tensor {
    if (!this.supportsPrefix) {
      throw new CdpoError(
        "MODEL",
        `the "prefix" layout needs a Llama-family model without a sliding window`,
      );
    }
    return torch.tidy(() => prefixForward(this.model.backbone as LlamaModel, inputs));
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
  // Under autocast the attention scores are bfloat16. A bfloat16 bias keeps their sum in
  // bfloat16 (a float32 bias would promote the [rows, H, T, T] scores to float32). The sum has the
  // same values, because adding 0 is exact and a masked score ends up at exp(≈ -3.4e38) = 0 either way.
  const autocast = torch.isAutocastEnabled() && backbone.embeddingWeight.dtype === "float32";
  const dtype = autocast ? "bfloat16" : backbone.embeddingWeight.dtype;
  const bias = torch
    .zeros(inputs.attentionMask.shape, { dtype })
    .maskedFill(inputs.attentionMask.logicalNot(), autocast ? BFLOAT16_MIN : FLOAT32_MIN); // [rows, 1, T, T]
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

/** Boolean masks of a prefix pass as additive biases, in the dtype the attention scores have. */
function prefixBiases(inputs: PrefixInputs, dtype: "float32" | "bfloat16") {
  const pairs = inputs.promptLengths.length;
  const promptLen = inputs.promptIds.size(1);
  const responseLen = inputs.responseIds.size(1);
  const keys = promptLen + responseLen;

  // Prompt queries: causal over the pair's real prompt keys.
  const promptMask = new Uint8Array(pairs * promptLen * promptLen);
  for (let i = 0; i < pairs; i++) {
    const length = inputs.promptLengths[i]!;
    for (let q = 0; q < promptLen; q++) {
      const row = (i * promptLen + q) * promptLen;
      promptMask.fill(1, row, row + Math.min(q + 1, length));
    }
  }
  // Response queries: every real key of the pair's prompt, then causal over the response keys.
  const responseMask = new Uint8Array(2 * pairs * responseLen * keys);
  for (let j = 0; j < 2 * pairs; j++) {
    const length = inputs.promptLengths[j % pairs]!;
    for (let q = 0; q < responseLen; q++) {
      const row = (j * responseLen + q) * keys;
      responseMask.fill(1, row, row + length);
      responseMask.fill(1, row + promptLen, row + promptLen + q + 1);
    }
  }
  const minimum = dtype === "bfloat16" ? BFLOAT16_MIN : FLOAT32_MIN;
  const toBias = (mask: Uint8Array, shape: number[]) =>
    torch
      .zeros(shape, { dtype })
      .maskedFill(torch.tensor(mask, shape, { dtype: "bool" }).logicalNot(), minimum);
  return {
    promptBias: toBias(promptMask, [pairs, 1, promptLen, promptLen]), // [B, 1, P, P]
    responseBias: toBias(responseMask, [2 * pairs, 1, responseLen, keys]), // [2B, 1, R, P+R]
  };
}

/**
 * Runs a Llama backbone over B prompts and 2B responses (see PrefixInputs): each layer computes
 * the prompt's keys and values once, and response row j attends to those of pair j mod B followed
 * by its own. Returns the final hidden states [B·P + 2B·R, C], prompt grid first.
 */
function prefixForward(backbone: LlamaModel, inputs: PrefixInputs): Tensor {
  const config = backbone.config;
  const { numAttentionHeads: H, numKeyValueHeads: Hkv, headDim: D } = config;
  const pairs = inputs.promptLengths.length;
  const promptLen = inputs.promptIds.size(1);
  const responseLen = inputs.responseIds.size(1);
  const weightDtype = backbone.embeddingWeight.dtype;
  const autocast = torch.isAutocastEnabled() && weightDtype === "float32";
  const { promptBias, responseBias } = prefixBiases(inputs, autocast ? "bfloat16" : "float32");
  const scale = D ** -0.5;

  // positions
  const promptPositions = torch
    .arange(promptLen)
    .unsqueeze(0)
    .expand(pairs, promptLen)
    .contiguous(); // [B, P]
  const maxPosition = inputs.responsePositions.max().item();
  const [cosP, sinP] = backbone.rotary.forward(promptPositions, 0, promptLen, maxPosition); // [B, 1, P, D]
  const [cosR, sinR] = backbone.rotary.forward(
    inputs.responsePositions,
    0,
    responseLen,
    maxPosition,
  ); // [2B, 1, R, D]
  const pairOfRow = torch.arange(2 * pairs).remainder(pairs); // [2B]

  let xp = backbone.embed_tokens.forward(inputs.promptIds); // [B, P, C]
  let xr = backbone.embed_tokens.forward(inputs.responseIds); // [2B, R, C]
  for (const layer of backbone.layers.items) {
    [xp, xr] = torch.tidy(() => {
      const attention = layer.self_attn;
      const dropout = attention.training ? config.attentionDropout : 0;
      const project = (x: Tensor, cos: Tensor, sin: Tensor) => {
        const q = applyRotary(splitHeads(attention.q_proj.forward(x), H, D), cos, sin); // [*, H, T, D]
        const k = applyRotary(splitHeads(attention.k_proj.forward(x), Hkv, D), cos, sin); // [*, H_kv, T, D]
        const v = splitHeads(attention.v_proj.forward(x), Hkv, D); // [*, H_kv, T, D]
        return { q, k, v };
      };

      // attention: prompts over themselves, responses over their prompt and themselves
      const hp = layer.input_layernorm.forward(xp); // [B, P, C]
      const hr = layer.input_layernorm.forward(xr); // [2B, R, C]
      const p = project(hp, cosP, sinP);
      const r = project(hr, cosR, sinR);
      const options = { scale: (scores: Tensor) => scores.mul(scale), dropout };
      const yp = attend(p.q, p.k, p.v, { ...options, bias: promptBias }); // [B, P, H*D]
      const keys = torch.cat([p.k.indexSelect(0, pairOfRow), r.k], 2); // [2B, H_kv, P+R, D]
      const values = torch.cat([p.v.indexSelect(0, pairOfRow), r.v], 2); // [2B, H_kv, P+R, D]
      const yr = attend(r.q, keys, values, { ...options, bias: responseBias }); // [2B, R, H*D]
      const ap = xp.add(attention.o_proj.forward(yp)); // [B, P, C]
      const ar = xr.add(attention.o_proj.forward(yr)); // [2B, R, C]

      // MLP
      const mp = ap.add(layer.mlp.forward(layer.post_attention_layernorm.forward(ap))); // [B, P, C]
      const mr = ar.add(layer.mlp.forward(layer.post_attention_layernorm.forward(ar))); // [2B, R, C]
      return [mp, mr];
    });
  }
  const channels = xp.size(-1);
  const hp = backbone.norm.forward(xp).reshape(pairs * promptLen, channels); // [B·P, C]
  const hr = backbone.norm.forward(xr).reshape(2 * pairs * responseLen, channels); // [2B·R, C]
  return torch.cat([hp, hr], 0); // [B·P + 2B·R, C]
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
  const config = configForTask(parseModelConfig(raw, "init config"), task, NEW_SCORE_HEAD);
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
  return new TrainModel(await loadModel(dir, { task, seed, scoreHead: NEW_SCORE_HEAD }));
}
