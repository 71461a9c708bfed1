/**
 * Pieces shared by every architecture's attention: the per-pass setup (positions and the
 * additive attention bias, computed once and used by every layer) and the attention product with
 * grouped-query heads.
 */
import { CdpoError, invalidArgument } from "../errors.js";
import type { DType, Tensor } from "../tensor/index.js";
import * as torch from "../tensor/index.js";
import type { KVCache } from "./cache.js";

/** Inputs of every architecture's forward pass. */
export interface ForwardInput {
  /** Token ids [B, T], int64. */
  inputIds: Tensor;
  /**
   * 1 for tokens, 0 for padding: [B, T], or [B, cache.length + T] with a cache (covering the
   * cached slots too, as in transformers). Omitted: no padding.
   *
   * A 4-D mask [B or 1, 1, T, cache.length + T] (true or nonzero = query t may attend to key s)
   * is used as given, with no causal mask added: for packed or shared-prompt layouts. Positions
   * then come from `positionIds` (default `cache.length .. cache.length + T - 1`).
   */
  attentionMask?: Tensor | null;
  /**
   * Positions [B, T], int64. Omitted: derived from the attention mask (the count of real tokens
   * before each one), so a left-padded row gets the same positions as the unpadded row; without
   * a mask, `cache.length .. cache.length + T - 1`.
   */
  positionIds?: Tensor | null;
  /** A cache to read past keys and values from and write this pass's into (inference only). */
  cache?: KVCache | null;
}

/**
 * The smallest finite value of each floating dtype: the "masked" score, as transformers uses.
 * NOTE: in float16 a score below -16 plus -65504 rounds to -inf, so a row whose keys are all
 * masked (a left-padding query) can give NaN there; float32 and bfloat16 have the headroom.
 */
const DTYPE_MIN: Partial<Record<DType, number>> = {
  float32: -3.4028234663852886e38,
  float64: -1.7976931348623157e308,
  bfloat16: -3.3895313892515355e38,
  float16: -65504,
};

/** Per-pass values shared by all layers. */
export interface PassSetup {
  batch: number;
  steps: number;
  /** Cached slots before this pass. */
  past: number;
  /** Positions [B, T], or null when every row uses `past .. past+T-1`. */
  positionIds: Tensor | null;
  /** The largest position of this pass (an upper bound unless `exactMaxPosition`). */
  maxPosition: number;
  exactMaxPosition: boolean;
  /** Additive attention bias [1 or B, 1, T, past+T] (0 or the dtype's minimum), or null. */
  bias: Tensor | null;
}

/**
 * Validates the inputs of a forward pass and computes positions and the attention bias.
 * Call inside the model's `tidy` scope.
 */
export function preparePass(
  input: ForwardInput,
  dtype: DType,
  options: { slidingWindow?: number | null } = {},
): PassSetup {
  const { inputIds } = input;
  const shape = inputIds.shape;
  if (shape.length !== 2) {
    throw invalidArgument("range", "inputIds", "a [batch, time] tensor", shape);
  }
  if (inputIds.dtype !== "int64") {
    throw invalidArgument("type", "inputIds", "an int64 tensor", inputIds.dtype);
  }
  const [batch, steps] = shape as [number, number];
  const cache = input.cache ?? null;
  const past = cache?.length ?? 0;
  if (cache !== null && cache.batchSize !== batch) {
    throw new RangeError(
      `The cache holds ${cache.batchSize} rows but inputIds has ${batch} (shape [${shape.join(", ")}])`,
    );
  }
  const total = past + steps;
  const givenMask = input.attentionMask ?? null;
  const explicit = givenMask !== null && givenMask.ndim === 4;
  if (givenMask !== null) {
    const maskShape = givenMask.shape;
    const valid = explicit
      ? (maskShape[0] === batch || maskShape[0] === 1) &&
        maskShape[1] === 1 &&
        maskShape[2] === steps &&
        maskShape[3] === total
      : maskShape.length === 2 && maskShape[0] === batch && maskShape[1] === total;
    if (!valid) {
      throw new RangeError(
        `Expected attentionMask of shape [${batch}, ${total}] (batch, cached + new tokens) or ` +
          `[${batch}, 1, ${steps}, ${total}] but received [${maskShape.join(", ")}]`,
      );
    }
  }
  const mask = explicit ? null : givenMask; // the [B, past+T] padding mask

  // Positions: given, derived from the mask, or shared by all rows.
  let positionIds: Tensor | null = input.positionIds ?? null;
  let maxPosition = total - 1;
  let exactMaxPosition = true;
  if (positionIds !== null) {
    const positionShape = positionIds.shape;
    if (positionShape.length !== 2 || positionShape[0] !== batch || positionShape[1] !== steps) {
      throw new RangeError(
        `Expected positionIds of shape [${batch}, ${steps}] but received [${positionShape.join(", ")}]`,
      );
    }
    maxPosition = positionIds.max().item();
  } else if (mask !== null) {
    const counts = mask.cumsum(1, "int64"); // [B, past+T]
    positionIds = counts.narrow(1, past, steps).sub(1).clamp(0, null); // [B, T]
    exactMaxPosition = false;
  }

  // Attention bias: causal (and windowed), and padding keys hidden.
  const window = options.slidingWindow ?? null;
  const needsWindow = window !== null && total > window;
  const minimum = DTYPE_MIN[dtype];
  if (minimum === undefined) {
    throw new CdpoError("MODEL", `attention needs a floating dtype, not ${dtype}`);
  }
  let bias: Tensor | null = null;
  if (explicit) {
    const blocked = givenMask.dtype === "bool" ? givenMask.logicalNot() : givenMask.eq(0);
    bias = torch
      .zeros(givenMask.shape, { dtype, device: inputIds.device })
      .maskedFill(blocked, minimum); // [B, 1, T, past+T]
  } else if (mask !== null || steps > 1 || needsWindow) {
    const device = inputIds.device;
    const square = torch.ones([steps, total], { dtype: "bool", device }); // [T, past+T]
    let allowed = square.tril(past); // [T, past+T]
    if (needsWindow) allowed = allowed.logicalAnd(square.triu(past - window + 1));
    allowed =
      mask === null
        ? allowed.view(1, 1, steps, total) // [1, 1, T, past+T]
        : mask.ne(0).view(batch, 1, 1, total).logicalAnd(allowed); // [B, 1, T, past+T]
    bias = torch.zeros(allowed.shape, { dtype, device }).maskedFill(allowed.logicalNot(), minimum);
  }
  return { batch, steps, past, positionIds, maxPosition, exactMaxPosition, bias };
}

/** The exact largest position (reads one number back from the tensor when it is an estimate). */
export function exactMaxPosition(setup: PassSetup): number {
  if (setup.exactMaxPosition || setup.positionIds === null) return setup.maxPosition;
  return setup.positionIds.max().item();
}

export interface AttendOptions {
  /** Additive bias [1 or B, 1, T, Tk], or null. */
  bias: Tensor | null;
  /** Scales the raw scores q·kᵀ (multiplication or division, as each architecture does). */
  scale: (scores: Tensor) => Tensor;
  /** Dropout on the attention probabilities (0 when inactive). */
  dropout: number;
}

/**
 * `softmax(scale(q kᵀ) + bias) v`, with grouped-query heads.
 *
 * q is [B, H, T, D], k and v are [B, H_kv, Tk, D] with H a multiple of H_kv. Query head h uses
 * key/value head h / (H / H_kv), as transformers' `repeat_kv`, but the keys are not copied: the
 * H / H_kv query heads of a group are stacked along the time axis and share one matmul.
 * Returns [B, T, H * D].
 */
export function attend(q: Tensor, k: Tensor, v: Tensor, options: AttendOptions): Tensor {
  const [batch, heads, steps, headDim] = q.shape as [number, number, number, number];
  const kvHeads = k.size(1);
  const keySteps = k.size(2);
  const groups = heads / kvHeads;
  const grouped = groups === 1 ? q : q.reshape(batch, kvHeads, groups * steps, headDim); // [B, H_kv, G*T, D]

  let scores = options.scale(grouped.matmul(k.transpose(2, 3))); // [B, H_kv, G*T, Tk]
  if (options.bias !== null) {
    scores =
      groups === 1
        ? scores.add(options.bias) // [B, H, T, Tk]
        : scores
            .view(batch, kvHeads, groups, steps, keySteps)
            .add(options.bias.unsqueeze(2)) // [B, H_kv, G, T, Tk]
            .view(batch, kvHeads, groups * steps, keySteps);
  }
  let probs =
    scores.dtype === "float32" || scores.dtype === "float64"
      ? scores.softmax(-1)
      : scores.softmax(-1, "float32").to(scores.dtype); // [B, H_kv, G*T, Tk]
  if (options.dropout > 0) probs = torch.dropout(probs, options.dropout, true);
  const out = probs.matmul(v); // [B, H_kv, G*T, D]
  return out
    .view(batch, heads, steps, headDim)
    .transpose(1, 2)
    .reshape(batch, steps, heads * headDim); // [B, T, H*D]
}

/** Splits [B, T, N*D] into heads: [B, N, T, D] (a view). */
export function splitHeads(x: Tensor, heads: number, headDim: number): Tensor {
  const [batch, steps] = x.shape as [number, number];
  return x.view(batch, steps, heads, headDim).transpose(1, 2); // [B, N, T, D]
}
