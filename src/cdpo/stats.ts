/**
 * Means and standard errors for sampled estimates.
 *
 * C-DPO samples K responses for each of N prompts. The K responses of one prompt are not
 * independent draws from the prompt distribution, so every estimate averages per prompt first
 * and takes the standard error over the N prompt means: SE = sd(prompt means) / √N, with the
 * sample standard deviation (N − 1 in the denominator).
 */
import { invalidArgument } from "../errors.js";

/** A mean with its standard error over `n` independent units. */
export interface MeanSe {
  mean: number;
  /** Standard error of `mean`; NaN when n < 2, where it is undefined. */
  se: number;
  n: number;
}

/** Mean and standard error (sample sd / √n) of independent values. */
export function meanAndSe(values: readonly number[]): MeanSe {
  const n = values.length;
  if (n === 0) throw invalidArgument("range", "values", "at least one value", values);
  let sum = 0;
  for (const value of values) sum += value;
  const mean = sum / n;
  if (n < 2) return { mean, se: Number.NaN, n };
  let squares = 0;
  for (const value of values) squares += (value - mean) ** 2;
  const variance = squares / (n - 1);
  return { mean, se: Math.sqrt(variance / n), n };
}

/**
 * Mean over groups of the per-group means, with the standard error over groups.
 *
 * Each group is one prompt's K sampled values; groups may differ in size but none may be empty.
 */
export function groupedMeanAndSe(groups: readonly (readonly number[])[]): MeanSe {
  const means = groups.map((group, index) => {
    if (group.length === 0) {
      throw invalidArgument("range", `groups[${index}]`, "a non-empty group", group);
    }
    let sum = 0;
    for (const value of group) sum += value;
    return sum / group.length;
  });
  return meanAndSe(means);
}

/** Share of values strictly above `threshold`, per group, then averaged with its SE over groups. */
export function groupedShareAbove(groups: readonly (readonly number[])[], threshold = 0): MeanSe {
  return groupedMeanAndSe(groups.map((group) => group.map((value) => (value > threshold ? 1 : 0))));
}

/** Splits a flat list into consecutive groups of `size` (K samples per prompt, prompt-major). */
export function chunkInto<T>(values: readonly T[], size: number): T[][] {
  if (!Number.isInteger(size) || size < 1) {
    throw invalidArgument("range", "size", "an integer >= 1", size);
  }
  if (values.length % size !== 0) {
    throw invalidArgument("range", "values.length", `a multiple of ${size}`, values.length);
  }
  const groups: T[][] = [];
  for (let start = 0; start < values.length; start += size) {
    groups.push(values.slice(start, start + size));
  }
  return groups;
}

/** Numerically stable log(1 + exp(x)). */
export function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

/** The logistic function σ(x) = 1 / (1 + exp(−x)), stable for large |x|. */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}
