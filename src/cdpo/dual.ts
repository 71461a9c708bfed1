/**
 * The dual step of C-DPO: moves the Lagrange multipliers λ_j on the estimated constraint violation.
 *
 * The Lagrangian of "maximise E[r] − β·KL subject to E[c_j] ≤ C_j" is minimised over λ ≥ 0 by
 * projected gradient descent on the dual function, whose gradient in λ_j is C_j − E_π[c_j].
 * One step is therefore
 *
 *   λ_j ← clip(λ_j + η·(ĉ_j − C_j), 0, λ_max)
 *
 * with ĉ_j the sampled mean cost. The "adam" option replaces η·g by Adam's bias-corrected
 * η·m̂/(√v̂ + ε), which keeps the step size near η whatever the scale of the costs.
 */
import { invalidArgument } from "../errors.js";

/** How λ moves; `DualOptionsSchema` in config.ts documents each field and its default. */
export interface DualOptions {
  /** Step size η. */
  lr: number;
  /** Upper bound of the projection; λ stays in [0, max]. */
  max: number;
  /** "sgd": the plain projected step. "adam": Adam on the negated dual gradient. */
  optimizer: "sgd" | "adam";
  /** Adam's (β1, β2); used only by "adam". */
  betas: [number, number];
  /** Adam's ε; used only by "adam". */
  eps: number;
}

/** λ and the optimizer's moments: everything a checkpoint needs to continue the dual ascent. */
export interface DualState {
  lambdas: number[];
  /** Adam's first moments, one per constraint (zeros for "sgd"). */
  m: number[];
  /** Adam's second moments. */
  v: number[];
  /** Number of steps taken. */
  t: number;
}

export function initialDualState(lambdas: readonly number[]): DualState {
  for (const [index, lambda] of lambdas.entries()) {
    if (!(Number.isFinite(lambda) && lambda >= 0)) {
      throw invalidArgument("range", `lambdas[${index}]`, "a finite number >= 0", lambda);
    }
  }
  return {
    lambdas: [...lambdas],
    m: lambdas.map(() => 0),
    v: lambdas.map(() => 0),
    t: 0,
  };
}

/**
 * Takes one projected dual step and returns the new state; `state` is not modified.
 *
 * `costMeans[j]` is the estimate of E_π[c_j] under the current policy and `limits[j]` is C_j.
 */
export function dualStep(
  state: DualState,
  costMeans: readonly number[],
  limits: readonly number[],
  options: DualOptions,
): DualState {
  // Validate.
  const k = state.lambdas.length;
  if (costMeans.length !== k || limits.length !== k) {
    throw new RangeError(
      `Expected one cost mean and one limit per constraint (${k}) but received ` +
        `${costMeans.length} cost means and ${limits.length} limits`,
    );
  }
  for (const [index, cost] of costMeans.entries()) {
    if (!Number.isFinite(cost)) {
      throw invalidArgument("range", `costMeans[${index}]`, "a finite number", cost);
    }
  }
  if (!(options.lr > 0)) throw invalidArgument("range", "lr", "a number > 0", options.lr);
  if (!(options.max >= 0)) throw invalidArgument("range", "max", "a number >= 0", options.max);

  // Step: g_j = ĉ_j − C_j is the ascent direction for λ_j.
  const t = state.t + 1;
  const lambdas: number[] = [];
  const m: number[] = [];
  const v: number[] = [];
  const [beta1, beta2] = options.betas;
  for (let j = 0; j < k; j++) {
    const g = (costMeans[j] as number) - (limits[j] as number);
    const lambda = state.lambdas[j] as number;
    let step: number;
    let mj = state.m[j] ?? 0;
    let vj = state.v[j] ?? 0;
    if (options.optimizer === "adam") {
      mj = beta1 * mj + (1 - beta1) * g;
      vj = beta2 * vj + (1 - beta2) * g * g;
      const mHat = mj / (1 - beta1 ** t);
      const vHat = vj / (1 - beta2 ** t);
      step = (options.lr * mHat) / (Math.sqrt(vHat) + options.eps);
    } else {
      step = options.lr * g;
    }
    lambdas.push(clip(lambda + step, 0, options.max));
    m.push(mj);
    v.push(vj);
  }
  return { lambdas, m, v, t };
}

function clip(value: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, value));
}
