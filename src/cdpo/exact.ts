/**
 * Exact mode: C-DPO on a tabular policy over a finite candidate set per prompt.
 *
 * Each prompt x has M candidate responses with known reward r(x, y) and costs c_j(x, y). The
 * policy is a parameter tensor of logits [P, M] with π(·|x) = softmax(logits[x]); the reference
 * π_ref is fixed. For this problem the constrained optimum is known in closed form:
 *
 *   π_λ(y|x) ∝ π_ref(y|x)·exp(r_λ(x, y)/β),   r_λ = r − Σ_j λ_j·c_j,
 *
 * and λ* minimises the dual, so E_{π_λ*}[c_j] = C_j wherever λ*_j > 0 (λ*_j = 0 where the limit is
 * slack). {@link solveOptimalLambdas} finds λ* by bisection.
 *
 * {@link runExactDualLoop} runs the same dual loop as the language-model trainer (loop.ts): DPO
 * with `dpoLoss` on all pairs of candidates, relabelled by r_λ, then the λ step on the expected
 * cost of the current policy (exact, or estimated from K samples per prompt). Comparing its
 * result with λ* and π_λ* tests the whole loop against a known answer.
 */
import { CdpoError, invalidArgument } from "../errors.js";
import type { IterationInput } from "../run/folder.js";
import * as torch from "../tensor/index.js";
import { type DpoLossType, dpoLoss } from "../train/losses.js";
import type { DualOptions } from "./dual.js";
import {
  type Constraint,
  type ConstraintEstimate,
  type DpoPhaseResult,
  type DualBackend,
  type DualLoopState,
  initialLoopState,
  runDualLoop,
} from "./loop.js";
import { type LabelMode, lagrangianReward, type ScoredPair } from "./relabel.js";
import { groupedMeanAndSe, groupedShareAbove } from "./stats.js";
import type { StopOptions } from "./stopping.js";

/** One prompt of an exact problem: M candidates with their scores. */
export interface ExactPrompt {
  /** Reference log-probabilities up to a constant (softmax gives π_ref), [M]. */
  refLogits: number[];
  /** r(x, y) per candidate, [M]. */
  reward: number[];
  /** c_j(x, y): one [M] list per constraint. */
  costs: number[][];
}

export interface ExactProblem {
  /** DPO's KL coefficient β > 0. */
  beta: number;
  prompts: ExactPrompt[];
  constraints: Constraint[];
}

/** A policy over the candidates: probs[x][y]. */
export type TabularProbabilities = number[][];

/** Checks shapes and values; every prompt must have the same number of candidates M >= 2. */
export function validateProblem(problem: ExactProblem): number {
  if (!(Number.isFinite(problem.beta) && problem.beta > 0)) {
    throw invalidArgument("range", "beta", "a finite number > 0", problem.beta);
  }
  if (problem.prompts.length === 0) {
    throw invalidArgument("range", "prompts", "at least one prompt", problem.prompts);
  }
  const k = problem.constraints.length;
  if (k === 0) throw invalidArgument("range", "constraints", "at least one constraint", []);
  const m = problem.prompts[0]?.refLogits.length ?? 0;
  if (m < 2) throw invalidArgument("range", "prompts[0].refLogits", "at least 2 candidates", m);
  for (const [x, prompt] of problem.prompts.entries()) {
    const lists: [string, number[]][] = [
      ["refLogits", prompt.refLogits],
      ["reward", prompt.reward],
      ...prompt.costs.map((c, j): [string, number[]] => [`costs[${j}]`, c]),
    ];
    if (prompt.costs.length !== k) {
      throw invalidArgument("range", `prompts[${x}].costs`, `${k} cost lists`, prompt.costs.length);
    }
    for (const [name, list] of lists) {
      if (list.length !== m || !list.every(Number.isFinite)) {
        throw invalidArgument("range", `prompts[${x}].${name}`, `${m} finite numbers`, list);
      }
    }
  }
  return m;
}

// ---------------------------------------------------------------------------------------------
// Closed form

function softmaxRow(logits: readonly number[]): number[] {
  const max = Math.max(...logits);
  const e = logits.map((value) => Math.exp(value - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((value) => value / sum);
}

/** Computes the reference policy softmax(refLogits) per prompt. */
export function referencePolicy(problem: ExactProblem): TabularProbabilities {
  return problem.prompts.map((prompt) => softmaxRow(prompt.refLogits));
}

/** Computes the closed-form optimum π_λ ∝ π_ref·exp(r_λ/β) for the given multipliers. */
export function lagrangianPolicy(
  problem: ExactProblem,
  lambdas: readonly number[],
): TabularProbabilities {
  return problem.prompts.map((prompt) =>
    softmaxRow(
      prompt.refLogits.map((logit, y) => {
        const costs = prompt.costs.map((c) => c[y] as number);
        return logit + lagrangianReward(prompt.reward[y] as number, costs, lambdas) / problem.beta;
      }),
    ),
  );
}

/** Expected reward and costs of a policy, averaged uniformly over prompts. */
export function expectedScores(
  problem: ExactProblem,
  policy: TabularProbabilities,
): { reward: number; costs: number[]; unsafeShares: number[] } {
  const n = problem.prompts.length;
  let reward = 0;
  const costs = problem.constraints.map(() => 0);
  const unsafeShares = problem.constraints.map(() => 0);
  for (const [x, prompt] of problem.prompts.entries()) {
    const probs = policy[x] as number[];
    for (const [y, p] of probs.entries()) {
      reward += (p * (prompt.reward[y] as number)) / n;
      for (let j = 0; j < costs.length; j++) {
        const c = (prompt.costs[j] as number[])[y] as number;
        costs[j] = (costs[j] as number) + (p * c) / n;
        if (c > 0) unsafeShares[j] = (unsafeShares[j] as number) + p / n;
      }
    }
  }
  return { reward, costs, unsafeShares };
}

/** Total variation ½·Σ_y |p − q| per prompt, averaged over prompts. */
export function totalVariation(p: TabularProbabilities, q: TabularProbabilities): number {
  let total = 0;
  for (const [x, row] of p.entries()) {
    let sum = 0;
    for (const [y, value] of row.entries())
      sum += Math.abs(value - ((q[x] as number[])[y] as number));
    total += sum / 2;
  }
  return total / p.length;
}

/** Largest total variation over prompts. */
export function maxTotalVariation(p: TabularProbabilities, q: TabularProbabilities): number {
  return Math.max(...p.map((row, x) => totalVariation([row], [q[x] as number[]])));
}

/** KL(p ‖ q) per prompt, averaged over prompts. */
export function klDivergence(p: TabularProbabilities, q: TabularProbabilities): number {
  let total = 0;
  for (const [x, row] of p.entries()) {
    for (const [y, value] of row.entries()) {
      if (value > 0) total += value * Math.log(value / ((q[x] as number[])[y] as number));
    }
  }
  return total / p.length;
}

export interface OptimalLambdas {
  lambdas: number[];
  policy: TabularProbabilities;
  /** Expected costs under `policy`. */
  costs: number[];
  /** False when some limit cannot be met even at λ = lambdaMax. */
  feasible: boolean;
}

/**
 * Solves for λ*: the minimiser of the dual over λ ≥ 0.
 *
 * For one constraint, E_{π_λ}[c] decreases in λ (its derivative is −Var_{π_λ}(c)/β averaged over
 * prompts), so λ* = 0 when the unconstrained optimum is feasible and otherwise the root of
 * E_{π_λ}[c] = C, found by bisection. Several constraints are solved by cyclic coordinate descent,
 * each coordinate by the same bisection with the others fixed, until no λ moves by more than `tol`.
 */
export function solveOptimalLambdas(
  problem: ExactProblem,
  options: { lambdaMax?: number; tol?: number; maxSweeps?: number } = {},
): OptimalLambdas {
  validateProblem(problem);
  const lambdaMax = options.lambdaMax ?? 1e4;
  const tol = options.tol ?? 1e-10;
  const maxSweeps = options.maxSweeps ?? 1000;
  const k = problem.constraints.length;
  const lambdas = problem.constraints.map(() => 0);
  let feasible = true;

  for (let sweep = 0; sweep < (k === 1 ? 1 : maxSweeps); sweep++) {
    let moved = 0;
    feasible = true;
    for (let j = 0; j < k; j++) {
      const limit = (problem.constraints[j] as Constraint).limit;
      const costAt = (value: number) => {
        const trial = [...lambdas];
        trial[j] = value;
        return expectedScores(problem, lagrangianPolicy(problem, trial)).costs[j] as number;
      };
      let solved: number;
      if (costAt(0) <= limit) {
        solved = 0;
      } else if (costAt(lambdaMax) > limit) {
        solved = lambdaMax;
        feasible = false;
      } else {
        // Bracket the root first, so bisection starts from an interval of the root's own scale.
        let low = 0;
        let high = 1;
        while (costAt(high) > limit) {
          low = high;
          high = Math.min(2 * high, lambdaMax);
        }
        while (high - low > tol * Math.max(1, high)) {
          const mid = (low + high) / 2;
          if (costAt(mid) > limit) low = mid;
          else high = mid;
        }
        solved = (low + high) / 2;
      }
      moved = Math.max(moved, Math.abs(solved - (lambdas[j] as number)));
      lambdas[j] = solved;
    }
    if (moved <= tol) break;
  }
  const policy = lagrangianPolicy(problem, lambdas);
  return { lambdas, policy, costs: expectedScores(problem, policy).costs, feasible };
}

// ---------------------------------------------------------------------------------------------
// Pairs

/** A pair of candidates (a, b) of prompt x, with response 0 = a. */
export interface CandidatePair extends ScoredPair {
  prompt: number;
  a: number;
  b: number;
}

/**
 * All pairs of candidates of every prompt: one order (a < b) by default, since a soft target p
 * for (a, b) carries the same information as 1 − p for (b, a); `both` adds the reversed pairs.
 */
export function candidatePairs(
  problem: ExactProblem,
  order: "one" | "both" = "one",
): CandidatePair[] {
  const m = validateProblem(problem);
  const pairs: CandidatePair[] = [];
  for (const [x, prompt] of problem.prompts.entries()) {
    for (let a = 0; a < m; a++) {
      for (let b = 0; b < m; b++) {
        if (a === b || (order === "one" && b < a)) continue;
        pairs.push({
          id: `${x}:${a}-${b}`,
          prompt: x,
          a,
          b,
          reward: [prompt.reward[a] as number, prompt.reward[b] as number],
          costs: prompt.costs.map((c): [number, number] => [c[a] as number, c[b] as number]),
        });
      }
    }
  }
  return pairs;
}

// ---------------------------------------------------------------------------------------------
// Tabular policy and backend

/** Logits [P, M] as a trainable tensor; π = softmax over the last dimension. */
export class TabularPolicy {
  readonly logits: torch.Tensor;
  readonly reference: torch.Tensor;

  constructor(refLogits: readonly (readonly number[])[]) {
    const p = refLogits.length;
    const m = refLogits[0]?.length ?? 0;
    const flat = refLogits.flatMap((row) => [...row]);
    this.reference = torch.keep(torch.tensor(flat, [p, m]));
    this.logits = torch.keep(torch.tensor(flat, [p, m], { requiresGrad: true }));
  }

  /** Sets the policy back to the reference. */
  resetToReference(): void {
    torch.noGrad(() => this.logits.copy_(this.reference));
  }

  probabilities(): TabularProbabilities {
    return torch.tidy(() => toRows(this.logits.detach().softmax(1)));
  }

  dispose(): void {
    this.logits.dispose();
    this.reference.dispose();
  }
}

function toRows(t: torch.Tensor): number[][] {
  const [rows, cols] = t.shape as [number, number];
  const flat = t.toArray();
  return Array.from({ length: rows }, (_, r) => flat.slice(r * cols, (r + 1) * cols));
}

export interface ExactRunOptions {
  /** Maximum number of dual iterations. Default 60. */
  iterations?: number;
  labelMode?: LabelMode;
  /** DPO optimizer steps per dual iteration (full batch of all pairs). Default 60. */
  dpoSteps?: number;
  /** AdamW learning rate on the logits. Default 0.1. */
  dpoLr?: number;
  lossType?: DpoLossType;
  /** Start each DPO phase from the reference instead of the previous policy. Default false. */
  restartFromReference?: boolean;
  /** "exact": E_π[c] in closed form. "sampled": K samples per prompt. Default "exact". */
  costEstimate?: "exact" | "sampled";
  /** K for the sampled estimate. Default 16. */
  samplesPerPrompt?: number;
  pairOrder?: "one" | "both";
  lambdaInit?: number[];
  dual?: Partial<DualOptions>;
  stop?: Partial<StopOptions>;
  seed?: number;
}

export interface ExactRunResult {
  state: DualLoopState;
  records: IterationInput[];
  /** Final policy probabilities. */
  policy: TabularProbabilities;
  /** λ after the last dual step. */
  lambdas: number[];
}

/** Settings of {@link ExactBackend}; {@link ExactRunOptions} documents each one. */
export type ExactBackendOptions = Required<
  Pick<
    ExactRunOptions,
    | "dpoSteps"
    | "dpoLr"
    | "lossType"
    | "restartFromReference"
    | "costEstimate"
    | "samplesPerPrompt"
    | "seed"
  >
>;

/** Backend of the dual loop for a {@link TabularPolicy}. */
export class ExactBackend implements DualBackend {
  readonly #problem: ExactProblem;
  readonly #policy: TabularPolicy;
  readonly #options: ExactBackendOptions;
  #step = 0;

  constructor(problem: ExactProblem, policy: TabularPolicy, options: ExactBackendOptions) {
    this.#problem = problem;
    this.#policy = policy;
    this.#options = options;
  }

  async runDpoPhase(phase: Parameters<DualBackend["runDpoPhase"]>[0]): Promise<DpoPhaseResult> {
    const pairs = phase.pairs as readonly CandidatePair[];
    const m = this.#problem.prompts[0]?.refLogits.length ?? 0;
    if (this.#options.restartFromReference) this.#policy.resetToReference();

    // Index of each pair's responses in the flattened [P·M] log-probabilities.
    const chosenIndex = torch.keep(
      torch.tensor(
        pairs.map((pair) => pair.prompt * m + pair.a),
        undefined,
        { dtype: "int64" },
      ),
    );
    const rejectedIndex = torch.keep(
      torch.tensor(
        pairs.map((pair) => pair.prompt * m + pair.b),
        undefined,
        { dtype: "int64" },
      ),
    );
    const targets = torch.keep(torch.tensor(Float32Array.from(phase.targets)));
    const [refChosen, refRejected] = torch.tidy(() => {
      const ref = this.#policy.reference.logSoftmax(1).flatten();
      return [ref.indexSelect(0, chosenIndex), ref.indexSelect(0, rejectedIndex)];
    });
    torch.keep(refChosen);
    torch.keep(refRejected);
    const optimizer = torch.adamw([
      { params: [this.#policy.logits], lr: this.#options.dpoLr, weightDecay: 0 },
    ]);

    const sums: Record<string, number> = {};
    const add = (name: string, value: number) => {
      sums[name] = (sums[name] ?? 0) + value;
    };
    for (let step = 0; step < this.#options.dpoSteps; step++) {
      torch.tidy(() => {
        const logProbs = this.#policy.logits.logSoftmax(1).flatten(); // [P·M]
        const out = dpoLoss({
          policyChosen: logProbs.indexSelect(0, chosenIndex),
          policyRejected: logProbs.indexSelect(0, rejectedIndex),
          refChosen,
          refRejected,
          beta: this.#problem.beta,
          lossType: this.#options.lossType,
          targets,
        });
        optimizer.zeroGrad();
        out.loss.backward();
        optimizer.step();
        const chosen = out.chosenRewards.toArray();
        const rejected = out.rejectedRewards.toArray();
        const n = chosen.length;
        add("loss", out.loss.item());
        add("rewards/chosen", chosen.reduce((a, b) => a + b, 0) / n);
        add("rewards/rejected", rejected.reduce((a, b) => a + b, 0) / n);
        add("rewards/accuracies", chosen.filter((c, i) => c > (rejected[i] as number)).length / n);
      });
      this.#step++;
    }
    torch.dispose([chosenIndex, rejectedIndex, targets, refChosen, refRejected]);

    const steps = Math.max(1, this.#options.dpoSteps);
    const metrics: Record<string, number | null> = {};
    for (const [name, sum] of Object.entries(sums)) metrics[name] = sum / steps;
    if (metrics["rewards/chosen"] != null && metrics["rewards/rejected"] != null) {
      metrics["rewards/margins"] = metrics["rewards/chosen"] - metrics["rewards/rejected"];
    }
    return { step: this.#step, metrics };
  }

  async estimate(context: { iteration: number }): Promise<ConstraintEstimate> {
    const policy = this.#policy.probabilities();
    const reference = referencePolicy(this.#problem);
    if (this.#options.costEstimate === "exact") {
      const scores = expectedScores(this.#problem, policy);
      return {
        costMeans: scores.costs,
        costSes: scores.costs.map(() => 0),
        unsafeShares: scores.unsafeShares,
        rewardMean: scores.reward,
        rewardSe: 0,
        kl: klDivergence(policy, reference),
        nSamples: 0,
      };
    }
    return this.#sampledEstimate(policy, reference, context.iteration);
  }

  /** K draws per prompt; the generator is seeded by (seed, iteration) so a rerun draws the same. */
  #sampledEstimate(
    policy: TabularProbabilities,
    reference: TabularProbabilities,
    iteration: number,
  ): ConstraintEstimate {
    const k = this.#options.samplesPerPrompt;
    const generator = new torch.Generator(this.#options.seed * 100_003 + iteration);
    const draws = torch.tidy(() => {
      const probs = torch.tensor(policy.flat(), [policy.length, policy[0]?.length ?? 0]);
      return toRows(torch.multinomial(probs, k, true, generator));
    });
    const problem = this.#problem;
    const costGroups = problem.constraints.map((_, j) =>
      draws.map((row, x) =>
        row.map((y) => ((problem.prompts[x] as ExactPrompt).costs[j] as number[])[y] as number),
      ),
    );
    const rewardGroups = draws.map((row, x) =>
      row.map((y) => (problem.prompts[x] as ExactPrompt).reward[y] as number),
    );
    let klSum = 0;
    for (const [x, row] of draws.entries()) {
      for (const y of row) {
        klSum += Math.log(
          ((policy[x] as number[])[y] as number) / ((reference[x] as number[])[y] as number),
        );
      }
    }
    const costs = costGroups.map((groups) => groupedMeanAndSe(groups));
    const reward = groupedMeanAndSe(rewardGroups);
    return {
      costMeans: costs.map((c) => c.mean),
      costSes: costs.map((c) => c.se),
      unsafeShares: costGroups.map((groups) => groupedShareAbove(groups, 0).mean),
      rewardMean: reward.mean,
      rewardSe: reward.se,
      kl: klSum / (draws.length * k),
      nSamples: draws.length * k,
    };
  }
}

/** Runs C-DPO on an exact problem from the reference policy; see the file comment. */
export async function runExactDualLoop(
  problem: ExactProblem,
  options: ExactRunOptions = {},
): Promise<ExactRunResult> {
  validateProblem(problem);
  const k = problem.constraints.length;
  const lambdaInit = options.lambdaInit ?? problem.constraints.map(() => 0);
  if (lambdaInit.length !== k) {
    throw invalidArgument("range", "lambdaInit", `${k} values, one per constraint`, lambdaInit);
  }
  const policy = new TabularPolicy(problem.prompts.map((prompt) => prompt.refLogits));
  const backend = new ExactBackend(problem, policy, {
    dpoSteps: options.dpoSteps ?? 60,
    dpoLr: options.dpoLr ?? 0.1,
    lossType: options.lossType ?? "sigmoid",
    restartFromReference: options.restartFromReference ?? false,
    costEstimate: options.costEstimate ?? "exact",
    samplesPerPrompt: options.samplesPerPrompt ?? 16,
    seed: options.seed ?? 0,
  });
  const records: IterationInput[] = [];
  try {
    const state = await runDualLoop(backend, {
      constraints: problem.constraints,
      pairs: candidatePairs(problem, options.pairOrder ?? "one"),
      labelMode: options.labelMode ?? "soft",
      seed: options.seed ?? 0,
      iterations: options.iterations ?? 60,
      dual: {
        lr: 0.5,
        max: 100,
        optimizer: "sgd",
        betas: [0.9, 0.999],
        eps: 1e-8,
        ...options.dual,
      },
      stop: { window: 3, lambdaTol: 1e-3, costTol: 1e-3, ...options.stop },
      state: initialLoopState(lambdaInit),
      onIteration: (record) => {
        records.push(record);
      },
    });
    if (records.length === 0) throw new CdpoError("STATE", "The dual loop ran no iteration");
    return { state, records, policy: policy.probabilities(), lambdas: state.dual.lambdas };
  } finally {
    policy.dispose();
  }
}
