/**
 * Relabelling of preference pairs by the Lagrangian reward r_λ = r − Σ_j λ_j·c_j.
 *
 * Every pair keeps its two responses; only the preference label changes with λ. The label is the
 * probability that response 0 wins, used as the soft DPO target with response 0 as "chosen":
 *
 * - `soft`: p = σ(r_λ(y0) − r_λ(y1)), the Bradley-Terry probability under r_λ. With soft targets
 *   the DPO optimum over a finite candidate set is exactly π ∝ π_ref·exp(r_λ/β).
 * - `sample`: a 0/1 label drawn with probability p. The draw is a hash of (seed, iteration, pair
 *   id), so a resumed run draws the same labels and a new iteration draws fresh ones.
 * - `hard`: 1 when r_λ(y0) > r_λ(y1), 0 when smaller, 0.5 on a tie.
 */
import { invalidArgument } from "../errors.js";
import { sigmoid } from "./stats.js";

export const LABEL_MODES = ["soft", "sample", "hard"] as const;
export type LabelMode = (typeof LABEL_MODES)[number];

/** A pair with the reward and cost scores of both responses. */
export interface ScoredPair {
  id: string;
  /** r(y0), r(y1). */
  reward: [number, number];
  /** costs[j] = [c_j(y0), c_j(y1)], one entry per constraint. */
  costs: [number, number][];
}

/** Lagrangian reward r − Σ_j λ_j·c_j of one response. */
export function lagrangianReward(
  reward: number,
  costs: readonly number[],
  lambdas: readonly number[],
): number {
  let value = reward;
  for (let j = 0; j < lambdas.length; j++) value -= (lambdas[j] as number) * (costs[j] as number);
  return value;
}

/** Difference r_λ(y0) − r_λ(y1) of one pair. */
export function lagrangianMargin(pair: ScoredPair, lambdas: readonly number[]): number {
  if (pair.costs.length !== lambdas.length) {
    throw new RangeError(
      `Pair ${JSON.stringify(pair.id)} has ${pair.costs.length} cost scores but there are ` +
        `${lambdas.length} constraints`,
    );
  }
  let margin = pair.reward[0] - pair.reward[1];
  for (let j = 0; j < lambdas.length; j++) {
    const [c0, c1] = pair.costs[j] as [number, number];
    margin -= (lambdas[j] as number) * (c0 - c1);
  }
  return margin;
}

export interface RelabelOptions {
  mode: LabelMode;
  /** Seed of the `sample` draws. */
  seed: number;
  /** Dual iteration; `sample` draws differ between iterations. */
  iteration: number;
}

/** Returns, for each pair, the probability that response 0 is preferred under r_λ. */
export function relabel(
  pairs: readonly ScoredPair[],
  lambdas: readonly number[],
  options: RelabelOptions,
): Float64Array {
  if (!(LABEL_MODES as readonly string[]).includes(options.mode)) {
    throw invalidArgument("range", "mode", `one of ${LABEL_MODES.join(", ")}`, options.mode);
  }
  const targets = new Float64Array(pairs.length);
  for (const [index, pair] of pairs.entries()) {
    const margin = lagrangianMargin(pair, lambdas);
    if (options.mode === "hard") {
      targets[index] = margin > 0 ? 1 : margin < 0 ? 0 : 0.5;
      continue;
    }
    const p = sigmoid(margin);
    if (options.mode === "soft") {
      targets[index] = p;
    } else {
      targets[index] = uniformHash(options.seed, options.iteration, pair.id) < p ? 1 : 0;
    }
  }
  return targets;
}

/**
 * A uniform number in [0, 1) determined by (seed, iteration, key): FNV-1a over the text,
 * then the splitmix32 finaliser to spread the bits.
 */
export function uniformHash(seed: number, iteration: number, key: string): number {
  const text = `${seed}:${iteration}:${key}`;
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 4294967296;
}
