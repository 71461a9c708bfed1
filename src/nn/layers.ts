/**
 * Standard layers with PyTorch's parameter names (`weight`, `bias`) and Hugging Face's default
 * initialisation. Each `forward` takes and returns tensors in the caller's `tidy` scope.
 */
import { invalidArgument } from "../errors.js";
import type { Tensor } from "../tensor/index.js";
import * as torch from "../tensor/index.js";
import { createParameter, Module, type ParameterInit } from "./module.js";

/** `y = x Wᵀ + b` with `weight` [out, in] and optional `bias` [out]. */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    init: ParameterInit,
    options: { bias?: boolean } = {},
  ) {
    super();
    this.weight = this.registerParameter(
      "weight",
      createParameter([outFeatures, inFeatures], "normal", init),
    );
    this.bias =
      options.bias === true
        ? this.registerParameter("bias", createParameter([outFeatures], "zeros", init))
        : null;
  }

  forward(x: Tensor): Tensor {
    return torch.linear(x, this.weight, this.bias); // [..., out]
  }
}

/**
 * GPT-2's `Conv1D`: a linear layer whose `weight` is stored [in, out], transposed relative to
 * `Linear`, as in the original TensorFlow checkpoints.
 */
export class Conv1D extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    init: ParameterInit,
    std: number = init.std,
  ) {
    super();
    this.weight = this.registerParameter(
      "weight",
      createParameter([inFeatures, outFeatures], "normal", init, std),
    );
    this.bias = this.registerParameter("bias", createParameter([outFeatures], "zeros", init));
  }

  forward(x: Tensor): Tensor {
    // linear() takes [out, in]; the transposed view costs no copy.
    return torch.linear(x, this.weight.transpose(0, 1), this.bias); // [..., out]
  }
}

/** A lookup table `weight` [num, dim]; the `paddingIdx` row starts at zero, as in HF. */
export class Embedding extends Module {
  readonly weight: Tensor;

  constructor(
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
    init: ParameterInit,
    readonly paddingIdx: number | null = null,
  ) {
    super();
    this.weight = this.registerParameter(
      "weight",
      createParameter([numEmbeddings, embeddingDim], "normal", init),
    );
    if (init.generator !== null && paddingIdx !== null && paddingIdx < numEmbeddings) {
      torch.noGrad(() => torch.tidy(() => void this.weight.select(0, paddingIdx).zero_()));
    }
  }

  forward(ids: Tensor): Tensor {
    return torch.embedding(this.weight, ids); // [..., dim]
  }
}

/** Layer normalisation over the last dimension with `weight` (ones) and `bias` (zeros). */
export class LayerNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(
    readonly dim: number,
    readonly eps: number,
    init: ParameterInit,
    options: { bias?: boolean } = {},
  ) {
    super();
    this.weight = this.registerParameter("weight", createParameter([dim], "ones", init));
    this.bias =
      options.bias === false
        ? null
        : this.registerParameter("bias", createParameter([dim], "zeros", init));
  }

  forward(x: Tensor): Tensor {
    return torch.layerNorm(x, [this.dim], this.weight, this.bias, this.eps); // [..., dim]
  }
}

/**
 * Root-mean-square normalisation, `weight * (x / sqrt(mean(x²) + eps))`, computed in float32
 * and cast back to the input dtype before the weight, as Hugging Face's `LlamaRMSNorm`.
 */
export class RMSNorm extends Module {
  readonly weight: Tensor;

  constructor(
    readonly dim: number,
    readonly eps: number,
    init: ParameterInit,
  ) {
    super();
    this.weight = this.registerParameter("weight", createParameter([dim], "ones", init));
  }

  forward(x: Tensor): Tensor {
    const inputDtype = x.dtype;
    const x32 = inputDtype === "float32" ? x : x.float(); // [..., dim]
    const variance = x32.square().mean(-1, true); // [..., 1]
    let normed = x32.mul(variance.add(this.eps).rsqrt()); // [..., dim]
    if (inputDtype !== "float32") normed = normed.to(inputDtype);
    return this.weight.mul(normed); // [..., dim]
  }
}

/** Zeroes elements with probability `p` in training mode and scales the rest by 1/(1-p). */
export class Dropout extends Module {
  constructor(readonly p: number) {
    super();
    if (!(p >= 0 && p <= 1)) throw invalidArgument("range", "p", "a probability in [0, 1]", p);
  }

  /** Returns `x` itself when inactive (eval mode or p = 0), so no copy is made. */
  forward(x: Tensor): Tensor {
    if (!this.training || this.p === 0) return x;
    return torch.dropout(x, this.p, true);
  }
}

/** Applies a Hugging Face activation by its `hidden_act` / `activation_function` name. */
export function activation(name: string, x: Tensor): Tensor {
  switch (name) {
    case "silu":
    case "swish":
      return x.silu();
    case "gelu":
      return x.gelu("none");
    case "gelu_new":
    case "gelu_pytorch_tanh":
    case "gelu_fast":
      return x.gelu("tanh");
    case "relu":
      return x.relu();
    default:
      throw new RangeError(
        `Unsupported activation ${name}; supported: silu, swish, gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu`,
      );
  }
}

/** Activation names accepted by {@link activation}. */
export const ACTIVATIONS = [
  "silu",
  "swish",
  "gelu",
  "gelu_new",
  "gelu_pytorch_tanh",
  "gelu_fast",
  "relu",
] as const;
