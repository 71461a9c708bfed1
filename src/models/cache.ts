/**
 * The key/value cache for incremental decoding.
 *
 * Each layer owns a preallocated buffer [B, H_kv, capacity, D] for keys and one for values. A
 * forward pass writes its new keys at slots `length .. length+T-1` in place and attends over the
 * view of slots `0 .. length+T-1`, so a decoding step copies only its own keys, never the history
 * (a cache built by concatenation copies the whole history every step). When a pass would overflow,
 * the buffers are reallocated with double the capacity.
 *
 * Slots are cache positions, not token positions: with left padding, the first slots of a short
 * row hold padding, which the attention mask (covering all slots) hides.
 */
import { invalidArgument } from "../errors.js";
import type { Device, DType, Tensor } from "../tensor/index.js";
import * as torch from "../tensor/index.js";

export interface KVCacheOptions {
  numLayers: number;
  batchSize: number;
  numKeyValueHeads: number;
  headDim: number;
  /** Initial number of slots; the cache grows beyond it when needed. */
  capacity: number;
  dtype: DType;
  device: Device;
}

export class KVCache {
  readonly numLayers: number;
  readonly batchSize: number;
  readonly numKeyValueHeads: number;
  readonly headDim: number;
  readonly dtype: DType;
  readonly device: Device;
  #keys: (Tensor | null)[];
  #values: (Tensor | null)[];
  #capacity: number;
  #length = 0;

  constructor(options: KVCacheOptions) {
    for (const key of [
      "numLayers",
      "batchSize",
      "numKeyValueHeads",
      "headDim",
      "capacity",
    ] as const) {
      const value = options[key];
      if (!Number.isInteger(value) || value <= 0) {
        throw invalidArgument("range", key, "a positive integer", value);
      }
    }
    this.numLayers = options.numLayers;
    this.batchSize = options.batchSize;
    this.numKeyValueHeads = options.numKeyValueHeads;
    this.headDim = options.headDim;
    this.dtype = options.dtype;
    this.device = options.device;
    this.#capacity = options.capacity;
    this.#keys = new Array(options.numLayers).fill(null);
    this.#values = new Array(options.numLayers).fill(null);
  }

  /** Number of filled slots (tokens already processed, padding included). */
  get length(): number {
    return this.#length;
  }

  get capacity(): number {
    return this.#capacity;
  }

  /**
   * Writes the keys and values of `layer` for the current pass (`[B, H_kv, T, D]`) at slots
   * `length ..`, and returns views over every filled slot including them: `[B, H_kv, length+T, D]`.
   * Call `advance(T)` once all layers are written.
   */
  update(layer: number, key: Tensor, value: Tensor): [Tensor, Tensor] {
    const steps = key.size(2);
    const end = this.#length + steps;
    if (end > this.#capacity) this.#grow(end);
    let keys = this.#keys[layer];
    let values = this.#values[layer];
    if (keys == null || values == null) {
      const shape = [this.batchSize, this.numKeyValueHeads, this.#capacity, this.headDim];
      keys = torch.keep(torch.empty(shape, { dtype: this.dtype, device: this.device }));
      values = torch.keep(torch.empty(shape, { dtype: this.dtype, device: this.device }));
      this.#keys[layer] = keys;
      this.#values[layer] = values;
    }
    keys.narrow(2, this.#length, steps).copy_(key);
    values.narrow(2, this.#length, steps).copy_(value);
    return [keys.narrow(2, 0, end), values.narrow(2, 0, end)]; // [B, H_kv, length+T, D]
  }

  /** Marks `steps` more slots as filled (after every layer wrote them). */
  advance(steps: number): void {
    this.#length += steps;
  }

  #grow(needed: number): void {
    let capacity = this.#capacity * 2;
    while (capacity < needed) capacity *= 2;
    for (let layer = 0; layer < this.numLayers; layer++) {
      for (const buffers of [this.#keys, this.#values]) {
        const old = buffers[layer];
        if (old == null) continue;
        const shape = [this.batchSize, this.numKeyValueHeads, capacity, this.headDim];
        const grown = torch.keep(torch.empty(shape, { dtype: this.dtype, device: this.device }));
        torch.tidy(
          () => void grown.narrow(2, 0, this.#length).copy_(old.narrow(2, 0, this.#length)),
        );
        old.dispose();
        buffers[layer] = grown;
      }
    }
    this.#capacity = capacity;
  }

  /** Frees the buffers; the cache can be filled again from slot 0. */
  dispose(): void {
    for (const buffer of [...this.#keys, ...this.#values]) buffer?.dispose();
    this.#keys.fill(null);
    this.#values.fill(null);
    this.#length = 0;
  }
}
