/**
 * The Llama decoder (also Mistral, Qwen2, and the Llama-architecture SmolLM and TinyLlama), with
 * Hugging Face parameter names:
 *
 *   embed_tokens → N × [x + attn(rmsnorm(x)), x + mlp(rmsnorm(x))] → norm
 *
 * Attention uses rotary positions and grouped-query heads (`num_key_value_heads`); the MLP is
 * SwiGLU, `down(silu(gate(x)) * up(x))` (Shazeer, "GLU Variants Improve Transformer", 2020).
 * Mistral adds a sliding attention window; Qwen2 has biases on q, k and v.
 *
 * Shape letters: B batch, T new tokens, Tk attended tokens (cached + new), C hidden size,
 * H query heads, H_kv key/value heads, D head size, F MLP width.
 */

import type { ParameterInit } from "../nn/index.js";
import { activation, Embedding, Linear, Module, ModuleList, RMSNorm } from "../nn/index.js";
import type { Tensor } from "../tensor/index.js";
import * as torch from "../tensor/index.js";
import {
  attend,
  exactMaxPosition,
  type ForwardInput,
  preparePass,
  splitHeads,
} from "./attention.js";
import type { KVCache } from "./cache.js";
import type { ModelConfig } from "./config.js";
import { applyRotary, RotaryEmbedding } from "./rope.js";

/** Per-pass values that every layer reads. */
interface LayerContext {
  cos: Tensor; // [T, D] or [B, 1, T, D]
  sin: Tensor; // same, first half negated
  bias: Tensor | null; // [1 or B, 1, T, Tk]
  cache: KVCache | null;
}

class LlamaAttention extends Module {
  readonly q_proj: Linear;
  readonly k_proj: Linear;
  readonly v_proj: Linear;
  readonly o_proj: Linear;
  readonly #scaling: number;

  constructor(
    readonly config: ModelConfig,
    readonly layerIndex: number,
    init: ParameterInit,
  ) {
    super();
    const { hiddenSize: C, numAttentionHeads: H, numKeyValueHeads: Hkv, headDim: D } = config;
    this.q_proj = this.registerModule(
      "q_proj",
      new Linear(C, H * D, init, { bias: config.qkvBias }),
    );
    this.k_proj = this.registerModule(
      "k_proj",
      new Linear(C, Hkv * D, init, { bias: config.qkvBias }),
    );
    this.v_proj = this.registerModule(
      "v_proj",
      new Linear(C, Hkv * D, init, { bias: config.qkvBias }),
    );
    this.o_proj = this.registerModule(
      "o_proj",
      new Linear(H * D, C, init, { bias: config.outputBias }),
    );
    this.#scaling = D ** -0.5;
  }

  forward(x: Tensor, context: LayerContext): Tensor {
    const { numAttentionHeads: H, numKeyValueHeads: Hkv, headDim: D } = this.config;

    // project and rotate
    let q = splitHeads(this.q_proj.forward(x), H, D); // [B, H, T, D]
    let k = splitHeads(this.k_proj.forward(x), Hkv, D); // [B, H_kv, T, D]
    let v = splitHeads(this.v_proj.forward(x), Hkv, D); // [B, H_kv, T, D]
    q = applyRotary(q, context.cos, context.sin); // [B, H, T, D]
    k = applyRotary(k, context.cos, context.sin); // [B, H_kv, T, D]

    // append to the cache, attend over everything cached
    if (context.cache !== null) [k, v] = context.cache.update(this.layerIndex, k, v); // [B, H_kv, Tk, D]
    const y = attend(q, k, v, {
      bias: context.bias,
      scale: (scores) => scores.mul(this.#scaling),
      dropout: this.training ? this.config.attentionDropout : 0,
    }); // [B, T, H*D]
    return this.o_proj.forward(y); // [B, T, C]
  }
}

class LlamaMLP extends Module {
  readonly gate_proj: Linear;
  readonly up_proj: Linear;
  readonly down_proj: Linear;

  constructor(
    readonly config: ModelConfig,
    init: ParameterInit,
  ) {
    super();
    const { hiddenSize: C, intermediateSize: F, mlpBias: bias } = config;
    this.gate_proj = this.registerModule("gate_proj", new Linear(C, F, init, { bias }));
    this.up_proj = this.registerModule("up_proj", new Linear(C, F, init, { bias }));
    this.down_proj = this.registerModule("down_proj", new Linear(F, C, init, { bias }));
  }

  forward(x: Tensor): Tensor {
    const gate = activation(this.config.hiddenAct, this.gate_proj.forward(x)); // [B, T, F]
    const up = this.up_proj.forward(x); // [B, T, F]
    return this.down_proj.forward(gate.mul(up)); // [B, T, C]
  }
}

class LlamaDecoderLayer extends Module {
  readonly self_attn: LlamaAttention;
  readonly mlp: LlamaMLP;
  readonly input_layernorm: RMSNorm;
  readonly post_attention_layernorm: RMSNorm;

  constructor(config: ModelConfig, layerIndex: number, init: ParameterInit) {
    super();
    const { hiddenSize: C, normEps: eps } = config;
    this.self_attn = this.registerModule("self_attn", new LlamaAttention(config, layerIndex, init));
    this.mlp = this.registerModule("mlp", new LlamaMLP(config, init));
    this.input_layernorm = this.registerModule("input_layernorm", new RMSNorm(C, eps, init));
    this.post_attention_layernorm = this.registerModule(
      "post_attention_layernorm",
      new RMSNorm(C, eps, init),
    );
  }

  forward(x: Tensor, context: LayerContext): Tensor {
    // Each layer frees its intermediates on return (autograd keeps what backward needs).
    return torch.tidy(() => {
      const h = x.add(this.self_attn.forward(this.input_layernorm.forward(x), context)); // [B, T, C]
      return h.add(this.mlp.forward(this.post_attention_layernorm.forward(h))); // [B, T, C]
    });
  }
}

/** The Llama backbone (`LlamaModel`): token ids in, final-normed hidden states out. */
export class LlamaModel extends Module {
  readonly embed_tokens: Embedding;
  readonly layers: ModuleList<LlamaDecoderLayer>;
  readonly norm: RMSNorm;
  readonly rotary: RotaryEmbedding;

  constructor(
    readonly config: ModelConfig,
    init: ParameterInit,
  ) {
    super();
    const { vocabSize: V, hiddenSize: C, numHiddenLayers: L } = config;
    const padding = config.padTokenId !== null && config.padTokenId < V ? config.padTokenId : null;
    this.embed_tokens = this.registerModule("embed_tokens", new Embedding(V, C, init, padding));
    const layers = Array.from({ length: L }, (_, i) => new LlamaDecoderLayer(config, i, init));
    this.layers = this.registerModule("layers", new ModuleList(layers));
    this.norm = this.registerModule("norm", new RMSNorm(C, config.normEps, init));
    this.rotary = new RotaryEmbedding(
      config.headDim,
      config.ropeTheta,
      config.ropeScaling,
      config.maxPositionEmbeddings,
      init.dtype,
      init.device,
    );
  }

  /** The token embedding matrix [V, C] (a tied head multiplies by it). */
  get embeddingWeight(): Tensor {
    return this.embed_tokens.weight;
  }

  /** Hidden states after the final norm: [B, T, C]. Advances `input.cache` by T. */
  forward(input: ForwardInput): Tensor {
    const setup = preparePass(input, this.embed_tokens.weight.dtype, {
      slidingWindow: this.config.slidingWindow,
    });
    const cache = input.cache ?? null;

    // positions
    const maxPosition =
      this.config.ropeScaling?.type === "dynamic" ? exactMaxPosition(setup) : setup.maxPosition;
    const [cos, sin] = this.rotary.forward(setup.positionIds, setup.past, setup.steps, maxPosition); // [T, D] or [B, 1, T, D]

    // decoder stack
    let x = this.embed_tokens.forward(input.inputIds); // [B, T, C]
    const context: LayerContext = { cos, sin, bias: setup.bias, cache };
    for (const layer of this.layers.items) x = layer.forward(x, context); // [B, T, C]
    cache?.advance(setup.steps);
    return this.norm.forward(x); // [B, T, C]
  }

  override dispose(): void {
    super.dispose();
    this.rotary.dispose();
  }
}
