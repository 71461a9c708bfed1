/**
 * The GPT-2 decoder (Radford et al., 2019), with Hugging Face parameter names:
 *
 *   wte + wpe → N × [x + attn(ln_1(x)), x + mlp(ln_2(x))] → ln_f
 *
 * Learned positions, pre-LayerNorm blocks, a GELU (tanh form) MLP 4× wide, and `Conv1D`
 * projections whose weights are stored [in, out]. Dropout (`embd_pdrop`, `attn_pdrop`,
 * `resid_pdrop`) is active in training mode only.
 *
 * Shape letters: B batch, T new tokens, Tk attended tokens (cached + new), C hidden size,
 * H heads, D head size.
 */
import { CdpoError } from "../errors.js";
import type { ParameterInit } from "../nn/index.js";
import {
  activation,
  Conv1D,
  Dropout,
  Embedding,
  LayerNorm,
  Module,
  ModuleList,
} from "../nn/index.js";
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

interface BlockContext {
  bias: Tensor | null; // [1 or B, 1, T, Tk]
  cache: KVCache | null;
}

/** GPT-2 scales the output projections' initial weights by 1/sqrt(2 × layers). */
function projectionStd(config: ModelConfig): number {
  return config.initializerRange / Math.sqrt(2 * config.numHiddenLayers);
}

class GPT2Attention extends Module {
  readonly c_attn: Conv1D;
  readonly c_proj: Conv1D;
  readonly resid_dropout: Dropout;
  readonly #scoreDivisor: number;
  readonly #layerDivisor: number;

  constructor(
    readonly config: ModelConfig,
    readonly layerIndex: number,
    init: ParameterInit,
  ) {
    super();
    const C = config.hiddenSize;
    this.c_attn = this.registerModule("c_attn", new Conv1D(C, 3 * C, init));
    this.c_proj = this.registerModule("c_proj", new Conv1D(C, C, init, projectionStd(config)));
    this.resid_dropout = this.registerModule("resid_dropout", new Dropout(config.residDropout));
    this.#scoreDivisor = config.scaleAttnWeights ? Math.fround(Math.sqrt(config.headDim)) : 1;
    this.#layerDivisor = config.scaleAttnByInverseLayerIdx ? layerIndex + 1 : 1;
  }

  forward(x: Tensor, context: BlockContext): Tensor {
    const { numAttentionHeads: H, headDim: D, hiddenSize: C } = this.config;

    // project
    const [qFlat, kFlat, vFlat] = this.c_attn.forward(x).split(C, 2) as [Tensor, Tensor, Tensor]; // [B, T, C] each
    const q = splitHeads(qFlat, H, D); // [B, H, T, D]
    let k = splitHeads(kFlat, H, D); // [B, H, T, D]
    let v = splitHeads(vFlat, H, D); // [B, H, T, D]

    // append to the cache, attend over everything cached
    if (context.cache !== null) [k, v] = context.cache.update(this.layerIndex, k, v); // [B, H, Tk, D]
    const y = attend(q, k, v, {
      bias: context.bias,
      // transformers divides (rather than multiplies by the reciprocal); kept for equal rounding.
      scale: (scores) => {
        let scaled = this.#scoreDivisor === 1 ? scores : scores.div(this.#scoreDivisor);
        if (this.#layerDivisor !== 1) scaled = scaled.div(this.#layerDivisor);
        return scaled;
      },
      dropout: this.training ? this.config.attentionDropout : 0,
    }); // [B, T, C]
    return this.resid_dropout.forward(this.c_proj.forward(y)); // [B, T, C]
  }
}

class GPT2MLP extends Module {
  readonly c_fc: Conv1D;
  readonly c_proj: Conv1D;
  readonly dropout: Dropout;

  constructor(
    readonly config: ModelConfig,
    init: ParameterInit,
  ) {
    super();
    const { hiddenSize: C, intermediateSize: F } = config;
    this.c_fc = this.registerModule("c_fc", new Conv1D(C, F, init));
    this.c_proj = this.registerModule("c_proj", new Conv1D(F, C, init, projectionStd(config)));
    this.dropout = this.registerModule("dropout", new Dropout(config.residDropout));
  }

  forward(x: Tensor): Tensor {
    const h = activation(this.config.hiddenAct, this.c_fc.forward(x)); // [B, T, F]
    return this.dropout.forward(this.c_proj.forward(h)); // [B, T, C]
  }
}

class GPT2Block extends Module {
  readonly ln_1: LayerNorm;
  readonly attn: GPT2Attention;
  readonly ln_2: LayerNorm;
  readonly mlp: GPT2MLP;

  constructor(config: ModelConfig, layerIndex: number, init: ParameterInit) {
    super();
    const { hiddenSize: C, normEps: eps } = config;
    this.ln_1 = this.registerModule("ln_1", new LayerNorm(C, eps, init));
    this.attn = this.registerModule("attn", new GPT2Attention(config, layerIndex, init));
    this.ln_2 = this.registerModule("ln_2", new LayerNorm(C, eps, init));
    this.mlp = this.registerModule("mlp", new GPT2MLP(config, init));
  }

  forward(x: Tensor, context: BlockContext): Tensor {
    return torch.tidy(() => {
      const h = x.add(this.attn.forward(this.ln_1.forward(x), context)); // [B, T, C]
      return h.add(this.mlp.forward(this.ln_2.forward(h))); // [B, T, C]
    });
  }
}

/** The GPT-2 backbone (`GPT2Model`): token ids in, final-normed hidden states out. */
export class GPT2Model extends Module {
  readonly wte: Embedding;
  readonly wpe: Embedding;
  readonly h: ModuleList<GPT2Block>;
  readonly ln_f: LayerNorm;
  readonly drop: Dropout;

  constructor(
    readonly config: ModelConfig,
    init: ParameterInit,
  ) {
    super();
    const { vocabSize: V, hiddenSize: C, numHiddenLayers: L, maxPositionEmbeddings: P } = config;
    this.wte = this.registerModule("wte", new Embedding(V, C, init));
    // transformers draws wpe from the same normal(0, initializer_range) as wte.
    this.wpe = this.registerModule("wpe", new Embedding(P, C, init));
    const blocks = Array.from({ length: L }, (_, i) => new GPT2Block(config, i, init));
    this.h = this.registerModule("h", new ModuleList(blocks));
    this.ln_f = this.registerModule("ln_f", new LayerNorm(C, config.normEps, init));
    this.drop = this.registerModule("drop", new Dropout(config.embdDropout));
  }

  get embeddingWeight(): Tensor {
    return this.wte.weight;
  }

  /** Hidden states after the final norm: [B, T, C]. Advances `input.cache` by T. */
  forward(input: ForwardInput): Tensor {
    const setup = preparePass(input, this.wte.weight.dtype);
    const cache = input.cache ?? null;
    const limit = this.config.maxPositionEmbeddings;
    if (setup.maxPosition >= limit && exactMaxPosition(setup) >= limit) {
      throw new CdpoError(
        "MODEL",
        `GPT-2 has ${limit} learned positions (n_positions) but this pass needs position ${exactMaxPosition(setup)}`,
      );
    }

    // token and position embeddings
    const tokens = this.wte.forward(input.inputIds); // [B, T, C]
    const positions =
      setup.positionIds === null
        ? this.wpe.weight.narrow(0, setup.past, setup.steps) // [T, C]
        : this.wpe.forward(setup.positionIds); // [B, T, C]
    let x = this.drop.forward(tokens.add(positions)); // [B, T, C]

    // blocks
    const context: BlockContext = { bias: setup.bias, cache };
    for (const block of this.h.items) x = block.forward(x, context); // [B, T, C]
    cache?.advance(setup.steps);
    return this.ln_f.forward(x); // [B, T, C]
  }
}
