/**
 * The stopping rule of the dual loop: stop once λ and the cost estimates have settled.
 *
 * Over the last `window` dual iterations, every constraint must have
 *
 * - max − min of λ (the value after each iteration's dual step) ≤ `lambdaTol`, and
 * - max − min of the estimated mean cost ≤ `costTol`.
 *
 * Fewer than `window` finished iterations never count as settled. The iteration budget ends the
 * loop independently of this rule.
 */

/** Values the rule reads from one finished dual iteration. */
export interface SettleEntry {
  /** λ after the dual step, one per constraint. */
  lambdas: readonly number[];
  /** Estimated mean cost under the policy of that iteration, one per constraint. */
  costMeans: readonly number[];
}

export interface StopOptions {
  /** Number of consecutive iterations the rule looks at, >= 2. */
  window: number;
  /** Largest allowed spread of λ over the window. */
  lambdaTol: number;
  /** Largest allowed spread of the mean cost over the window, in cost units. */
  costTol: number;
}

export interface SettleResult {
  settled: boolean;
  /** The largest λ spread over the window per constraint (NaN when the window is not full). */
  lambdaSpread: number[];
  /** The largest mean-cost spread over the window per constraint. */
  costSpread: number[];
}

/** Applies the rule to the iterations finished so far, oldest first. */
export function checkSettled(history: readonly SettleEntry[], options: StopOptions): SettleResult {
  const constraints = history[0]?.lambdas.length ?? 0;
  if (history.length < options.window || constraints === 0) {
    const nan = Array.from({ length: constraints }, () => Number.NaN);
    return { settled: false, lambdaSpread: nan, costSpread: [...nan] };
  }
  const window = history.slice(-options.window);
  const lambdaSpread: number[] = [];
  const costSpread: number[] = [];
  for (let j = 0; j < constraints; j++) {
    lambdaSpread.push(spread(window.map((entry) => entry.lambdas[j] as number)));
    costSpread.push(spread(window.map((entry) => entry.costMeans[j] as number)));
  }
  const settled =
    lambdaSpread.every((s) => s <= options.lambdaTol) &&
    costSpread.every((s) => s <= options.costTol);
  return { settled, lambdaSpread, costSpread };
}

function spread(values: readonly number[]): number {
  return Math.max(...values) - Math.min(...values);
}
