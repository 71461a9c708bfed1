/**
 * Rotary position embeddings in Hugging Face's `rotate_half` layout.
 *
 * A head vector x of size D is split into halves (x1, x2) and rotated as
 * `x * cos + cat(-x2, x1) * sin`, with frequencies `inv_freq[i] = 1 / theta^(2i / D)` repeated
 * over both halves (Su et al., "RoFormer", 2021). cdpo stores `sin` with its first half negated,
 * so the rotation is `x * cos + cat(x2, x1) * sinSigned`: the same products, one op fewer.
 *
 * Supported `rope_scaling` types, as in `transformers`' `ROPE_INIT_FUNCTIONS`: `linear`
 * (frequencies divided by the factor), `dynamic` (NTK-aware: theta grows once positions pass
 * `max_position_embeddings`) and `llama3` (low frequencies divided by the factor, high ones kept,
 * a smooth ramp between).
 */

import type { Device, DType, Tensor } from "../tensor/index.js";
import * as torch from "../tensor/index.js";
import type { RopeScaling } from "./config.js";

/** Computes `inv_freq` [D/2] in float32 arithmetic, as transformers does, for `base`. */
function baseInverseFrequencies(headDim: number, base: number): Float32Array {
  const f = Math.fround;
  const result = new Float32Array(headDim / 2);
  for (let i = 0; i < headDim / 2; i++) {
    result[i] = f(1 / f(base ** f((2 * i) / headDim)));
  }
  return result;
}

/** Computes `inv_freq` [D/2] for a scaling type; `seqLen` matters only for `dynamic`. */
export function inverseFrequencies(
  headDim: number,
  theta: number,
  scaling: RopeScaling | null,
  maxPositions: number,
  seqLen: number,
): Float32Array {
  if (scaling === null) return baseInverseFrequencies(headDim, theta);
  const f = Math.fround;
  switch (scaling.type) {
    case "linear": {
      const inv = baseInverseFrequencies(headDim, theta);
      return inv.map((v) => f(v / scaling.factor));
    }
    case "dynamic": {
      if (seqLen <= maxPositions) return baseInverseFrequencies(headDim, theta);
      const growth = (scaling.factor * seqLen) / maxPositions - (scaling.factor - 1);
      return baseInverseFrequencies(headDim, theta * growth ** (headDim / (headDim - 2)));
    }
    case "llama3": {
      const inv = baseInverseFrequencies(headDim, theta);
      const oldContext = scaling.originalMaxPositionEmbeddings;
      const lowFreqWavelen = oldContext / scaling.lowFreqFactor;
      const highFreqWavelen = oldContext / scaling.highFreqFactor;
      return inv.map((freq) => {
        const wavelen = (2 * Math.PI) / freq;
        if (wavelen > lowFreqWavelen) return f(freq / scaling.factor);
        if (wavelen < highFreqWavelen) return freq;
        const smooth =
          (oldContext / wavelen - scaling.lowFreqFactor) /
          (scaling.highFreqFactor - scaling.lowFreqFactor);
        return f((1 - smooth) * (freq / scaling.factor) + smooth * freq);
      });
    }
  }
}

/** Cached cos / signed-sin tables for positions 0..length-1, grown on demand. */
export class RotaryEmbedding {
  #cos: Tensor | null = null; // [L, D]
  #sin: Tensor | null = null; // [L, D], first half negated
  #length = 0;
  /**
   * Whether the tables were built with gradient recording off. Inside `inferenceMode` they are
   * then inference tensors, which autograd rejects, so they are rebuilt once recording is on.
   */
  #builtWithoutGrad = false;
  /** The sequence length the dynamic-NTK frequencies were computed for. */
  #dynamicLength: number;

  constructor(
    readonly headDim: number,
    readonly theta: number,
    readonly scaling: RopeScaling | null,
    readonly maxPositions: number,
    readonly dtype: DType,
    readonly device: Device,
  ) {
    this.#dynamicLength = maxPositions;
  }

  /**
   * Returns `[cos, sinSigned]` for the positions of a forward pass.
   *
   * With `positionIds` [B, T] the tables are gathered per row: [B, 1, T, D]. Without, the rows
   * share positions `start .. start+T-1` and the result is a view [T, D] of the tables.
   * `maxPosition` is the largest position used (it sizes the tables and, for dynamic scaling,
   * the frequencies).
   */
  forward(
    positionIds: Tensor | null,
    start: number,
    length: number,
    maxPosition: number,
  ): [Tensor, Tensor] {
    this.#ensure(maxPosition + 1);
    const cos = this.#cos!;
    const sin = this.#sin!;
    if (positionIds === null) {
      return [cos.narrow(0, start, length), sin.narrow(0, start, length)]; // [T, D]
    }
    return [
      torch.embedding(cos, positionIds).unsqueeze(1), // [B, 1, T, D]
      torch.embedding(sin, positionIds).unsqueeze(1), // [B, 1, T, D]
    ];
  }

  #ensure(needed: number): void {
    const gradEnabled = torch.isGradEnabled();
    let rebuild = needed > this.#length || (gradEnabled && this.#builtWithoutGrad);
    if (this.scaling?.type === "dynamic") {
      // transformers grows the frequencies with the longest sequence seen and resets them once a
      // sequence fits the original context again.
      if (needed > this.#dynamicLength) {
        this.#dynamicLength = needed;
        rebuild = true;
      } else if (needed <= this.maxPositions && this.#dynamicLength > this.maxPositions) {
        this.#dynamicLength = this.maxPositions;
        rebuild = true;
      }
    }
    if (!rebuild) return;
    let length = Math.max(this.#length, 256);
    while (length < needed) length *= 2;
    this.dispose();
    const inv = inverseFrequencies(
      this.headDim,
      this.theta,
      this.scaling,
      this.maxPositions,
      this.#dynamicLength,
    );
    const [cos, sin] = torch.tidy(() => {
      const half = this.headDim / 2;
      const positions = torch.arange(0, length, 1, { dtype: "float32" }).unsqueeze(1); // [L, 1]
      const freqs = positions.mul(torch.tensor(inv).unsqueeze(0)); // [L, D/2]
      const angles = torch.cat([freqs, freqs], -1); // [L, D]
      const sinFull = angles.sin(); // [L, D]
      const sinSigned = torch.cat(
        [sinFull.narrow(1, 0, half).neg(), sinFull.narrow(1, half, half)],
        1,
      );
      const target = { dtype: this.dtype, device: this.device };
      return [angles.cos().to(target), sinSigned.to(target)]; // [L, D] each
    });
    this.#cos = torch.keep(cos!);
    this.#sin = torch.keep(sin!);
    this.#length = length;
    this.#builtWithoutGrad = !gradEnabled;
  }

  dispose(): void {
    this.#cos?.dispose();
    this.#sin?.dispose();
    this.#cos = null;
    this.#sin = null;
    this.#length = 0;
  }
}

/** Rotates the heads of `x` [B, H, T, D] by the tables from {@link RotaryEmbedding.forward}. */
export function applyRotary(x: Tensor, cos: Tensor, sinSigned: Tensor): Tensor {
  const half = x.size(-1) / 2;
  const swapped = torch.cat([x.narrow(-1, half, half), x.narrow(-1, 0, half)], -1); // [B, H, T, D]
  return x.mul(cos).add(swapped.mul(sinSigned)); // [B, H, T, D]
}
