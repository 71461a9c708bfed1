/**
 * Seeded pseudo-random numbers and per-epoch shuffling. The order of every epoch is a pure
 * function of (seed, epoch), so a resumed run gets the same batches.
 */

import { invalidArgument } from "../errors.js";

/** mulberry32: a 32-bit state PRNG returning floats in [0, 1). Good enough for shuffling. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Mixes two integers into one 32-bit seed (a golden-ratio step, then the murmur3 finaliser). */
export function mixSeed(seed: number, stream: number): number {
  let h = 0;
  for (const part of [seed, stream]) {
    h = (h + (part >>> 0) + 0x9e3779b9) >>> 0;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
    h = (h ^ (h >>> 16)) >>> 0;
  }
  return h;
}

function checkCount(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 0) {
    throw invalidArgument("range", name, "a non-negative integer", value);
  }
}

/** Indices 0..n-1 in Fisher-Yates order drawn from mulberry32(mixSeed(seed, epoch)). */
export function shuffledIndices(n: number, seed: number, epoch: number): Int32Array {
  checkCount("n", n);
  checkCount("epoch", epoch);
  if (!Number.isInteger(seed)) throw invalidArgument("range", "seed", "an integer", seed);
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const random = mulberry32(mixSeed(seed, epoch));
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const swap = order[i] as number;
    order[i] = order[j] as number;
    order[j] = swap;
  }
  return order;
}

export interface EpochBatchOptions {
  batchSize: number;
  seed: number;
  epoch: number;
  /** Shuffle before batching (default true). */
  shuffle?: boolean;
  /** Drop the last batch when it is smaller than `batchSize` (default false). */
  dropLast?: boolean;
}

/** Splits the items of one epoch into batches, in the epoch's shuffled order. */
export function epochBatches<T>(items: readonly T[], options: EpochBatchOptions): T[][] {
  const { batchSize } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw invalidArgument("range", "batchSize", "a positive integer", batchSize);
  }
  const order =
    options.shuffle === false
      ? Int32Array.from(items.keys())
      : shuffledIndices(items.length, options.seed, options.epoch);
  const batches: T[][] = [];
  for (let start = 0; start < order.length; start += batchSize) {
    const end = Math.min(start + batchSize, order.length);
    if (end - start < batchSize && options.dropLast === true) break;
    const batch: T[] = [];
    for (let i = start; i < end; i++) batch.push(items[order[i] as number] as T);
    batches.push(batch);
  }
  return batches;
}
