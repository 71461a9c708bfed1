/**
 * The C-DPO dual loop, shared by the tabular exact mode and the language-model trainer.
 *
 * One dual iteration t, with multipliers λ_t:
 *
 * 1. relabel every scored pair by r_λ = r − Σ_j λ_j·c_j (relabel.ts);
 * 2. run a DPO phase on the relabelled pairs against the fixed reference (the backend);
 * 3. estimate E_π[c_j], E_π[r] and KL(π ‖ π_ref) under the new policy (the backend);
 * 4. λ_{t+1} = clip(λ_t + η·(ĉ_j − C_j), 0, λ_max) (dual.ts);
 * 5. stop when λ and the cost estimates have settled (stopping.ts) or the budget is spent.
 *
 * The loop itself keeps no state outside {@link DualLoopState}, which the caller persists after
 * every iteration through `onIteration`, so a run can resume between two iterations. Resuming
 * inside a DPO phase is the backend's job: `runDpoPhase` is called again for the same iteration
 * with the same labels and continues from its own phase checkpoint.
 */
import type { IterationInput } from "../run/folder.js";
import { type DualOptions, type DualState, dualStep, initialDualState } from "./dual.js";
import { type LabelMode, relabel, type ScoredPair } from "./relabel.js";
import { checkSettled, type SettleEntry, type StopOptions } from "./stopping.js";

/** One cost constraint E[c] ≤ limit. */
export interface Constraint {
  name: string;
  limit: number;
}

/** Result of one DPO phase. */
export interface DpoPhaseResult {
  /** Global DPO optimizer step at the end of the phase. */
  step: number;
  /** DPO metrics (names from the metrics table) averaged over the phase. */
  metrics: Record<string, number | null>;
}

/** Estimates under the current policy, one entry per constraint where it is a list. */
export interface ConstraintEstimate {
  costMeans: number[];
  costSes: number[];
  /** Share of sampled responses with cost > 0 (the exact probability in exact mode). */
  unsafeShares: number[];
  /** Share of sampled responses with cost above the constraint's limit. */
  shareOverLimit?: number[];
  rewardMean: number;
  rewardSe: number;
  /** Estimate of KL(π ‖ π_ref): mean over samples of log π(y|x) − log π_ref(y|x). */
  kl: number;
  nSamples: number;
}

/** The hooks the dual loop drives; see the file comment for the order of calls. */
export interface DualBackend {
  runDpoPhase(phase: {
    iteration: number;
    lambdas: readonly number[];
    pairs: readonly ScoredPair[];
    /** Probability that response 0 of each pair is preferred. */
    targets: Float64Array;
  }): Promise<DpoPhaseResult>;
  estimate(context: { iteration: number; lambdas: readonly number[] }): Promise<ConstraintEstimate>;
}

/** Everything needed to continue the loop after the last finished iteration. */
export interface DualLoopState {
  /** The next iteration to run (0 before the first). */
  iteration: number;
  dual: DualState;
  history: SettleEntry[];
  /** Reason the loop ended, or null while it may continue. */
  finished: null | "settled" | "budget";
}

export function initialLoopState(lambdaInit: readonly number[]): DualLoopState {
  return { iteration: 0, dual: initialDualState(lambdaInit), history: [], finished: null };
}

export interface DualLoopOptions {
  constraints: readonly Constraint[];
  pairs: readonly ScoredPair[];
  labelMode: LabelMode;
  seed: number;
  /** Maximum number of dual iterations in total (a resumed run counts the earlier ones). */
  iterations: number;
  dual: DualOptions;
  stop: StopOptions;
  /** Starting state: {@link initialLoopState} or a state saved by `onIteration`. */
  state: DualLoopState;
  /** Called after each iteration with its record and the state to persist. */
  onIteration?: (record: IterationInput, state: DualLoopState) => Promise<void> | void;
}

/** Runs dual iterations until the stopping rule or the budget ends the loop; returns the state. */
export async function runDualLoop(
  backend: DualBackend,
  options: DualLoopOptions,
): Promise<DualLoopState> {
  let state = options.state;
  const limits = options.constraints.map((constraint) => constraint.limit);
  if (state.dual.lambdas.length !== options.constraints.length) {
    throw new RangeError(
      `The dual state has ${state.dual.lambdas.length} multipliers but there are ` +
        `${options.constraints.length} constraints`,
    );
  }

  while (state.finished === null) {
    if (state.iteration >= options.iterations) {
      state = { ...state, finished: "budget" };
      break;
    }
    const iteration = state.iteration;
    const lambdas = state.dual.lambdas;

    // Relabel and run the DPO phase.
    const targets = relabel(options.pairs, lambdas, {
      mode: options.labelMode,
      seed: options.seed,
      iteration,
    });
    const phase = await backend.runDpoPhase({ iteration, lambdas, pairs: options.pairs, targets });

    // Estimate the constraints and take the dual step.
    const estimate = await backend.estimate({ iteration, lambdas });
    const dual = dualStep(state.dual, estimate.costMeans, limits, options.dual);

    // Record, check the stopping rule, hand the state to the caller.
    const history = [...state.history, { lambdas: dual.lambdas, costMeans: estimate.costMeans }];
    const settled = checkSettled(history, options.stop).settled;
    let finished: DualLoopState["finished"] = null;
    if (settled) finished = "settled";
    else if (iteration + 1 >= options.iterations) finished = "budget";
    state = { iteration: iteration + 1, dual, history, finished };
    const record = iterationRecord(iteration, phase, options.constraints, lambdas, dual, estimate);
    await options.onIteration?.(record, state);
  }
  return state;
}

/** Builds the iterations.jsonl record of one dual iteration. */
export function iterationRecord(
  iteration: number,
  phase: DpoPhaseResult,
  constraints: readonly Constraint[],
  lambdas: readonly number[],
  next: DualState,
  estimate: ConstraintEstimate,
): IterationInput {
  return {
    iteration,
    step: phase.step,
    constraints: constraints.map((constraint, j) => {
      const entry: IterationInput["constraints"][number] = {
        name: constraint.name,
        limit: constraint.limit,
        lambda: lambdas[j] as number,
        lambda_next: next.lambdas[j] as number,
        cost_mean: estimate.costMeans[j] as number,
        cost_se: finiteOrZero(estimate.costSes[j]),
        unsafe_share: estimate.unsafeShares[j] as number,
      };
      const over = estimate.shareOverLimit?.[j];
      if (over !== undefined) entry.share_over_limit = over;
      return entry;
    }),
    reward_mean: estimate.rewardMean,
    reward_se: finiteOrZero(estimate.rewardSe),
    kl: estimate.kl,
    n_samples: estimate.nSamples,
    dpo: phase.metrics,
  };
}

// NOTE: a standard error is NaN when it is undefined (one prompt) and 0 for an exact expectation.
// The record schema needs a number, so an undefined SE is stored as 0.
function finiteOrZero(value: number | undefined): number {
  return value !== undefined && Number.isFinite(value) ? value : 0;
}
