/**
 * Preference losses: DPO and its variants, the Bradley-Terry reward-model loss and Safe-RLHF's
 * cost-model loss.
 *
 * Notation shared by the DPO losses, per pair i of a batch of B pairs:
 * - `πc`, `πr`: summed response log-probabilities of the chosen and rejected response under the
 *   policy; `rc`, `rr`: the same under the frozen reference.
 * - `h = (πc − rc) − (πr − rr)`: the difference of the two log-ratios.
 * - `β`: the KL coefficient (DPO's beta).
 * - `p`: a soft target, the probability that "chosen" is preferred (1 for a hard label).
 * - `ε`: label smoothing (sigmoid, ipo, hinge) or the label-noise rate (robust).
 *
 * Each loss is written as `p·ℓ(h) + (1 − p)·ℓ(−h)`-style weighting of the two directions, so that
 * p = 1 and ε = 0 give the published loss exactly.
 */
import { invalidArgument } from "../errors.js";
import type { Tensor } from "../tensor/index.js";
import * as torch from "../tensor/index.js";

export type DpoLossType = "sigmoid" | "ipo" | "hinge" | "robust";

export interface DpoLossInput {
  /** [B] summed response log-probs of the chosen responses under the policy. */
  policyChosen: Tensor;
  /** [B] summed response log-probs of the rejected responses under the policy. */
  policyRejected: Tensor;
  /** [B] the same under the reference model (no gradient flows into them). */
  refChosen: Tensor;
  /** [B] */
  refRejected: Tensor;
  /** KL coefficient β > 0. */
  beta: number;
  /** Default "sigmoid". */
  lossType?: DpoLossType;
  /** ε in [0, 0.5); default 0. For "robust" it is the assumed label-flip rate and must be < 0.5. */
  labelSmoothing?: number;
  /** [B] probability in [0, 1] that "chosen" is preferred; default all 1. */
  targets?: Tensor;
}

export interface DpoLossOutput {
  /** Scalar: mean of `losses`. */
  loss: Tensor;
  /** [B] per-pair losses. */
  losses: Tensor;
  /** [B] β·(πc − rc), detached. */
  chosenRewards: Tensor;
  /** [B] β·(πr − rr), detached. */
  rejectedRewards: Tensor;
}

/** Arguments of one loss in the registry: `logits = β·h`, the targets after smoothing. */
interface DpoLossTerms {
  /** [B] h = (πc − rc) − (πr − rr). */
  h: Tensor;
  beta: number;
  /** [B] p, the soft targets (all 1 when none were given). */
  p: Tensor;
  epsilon: number;
}

/** p' = (1 − ε)·p + ε·(1 − p): targets with label smoothing folded in. */
function smoothTargets(p: Tensor, epsilon: number): Tensor {
  if (epsilon === 0) return p;
  return p.mul(1 - 2 * epsilon).add(epsilon);
}

/** Weights two per-direction losses: `p·forward + (1 − p)·backward`. */
function weighDirections(p: Tensor, forward: Tensor, backward: Tensor): Tensor {
  // p·f + (1 − p)·b = b + p·(f − b)
  return backward.add(p.mul(forward.sub(backward)));
}

/**
 * The DPO loss registry, keyed by TRL's `loss_type` names. Each entry returns [B] losses.
 */
export const DPO_LOSSES: Record<DpoLossType, (terms: DpoLossTerms) => Tensor> = {
  // DPO (Rafailov et al. 2023, "Direct Preference Optimization", eq. 7):
  //   ℓ = −log σ(β·h).
  // Soft targets and conservative-DPO label smoothing (Mitchell 2023, "A note on DPO with noisy
  // preferences"; TRL's label_smoothing is the p = 1 case):
  //   ℓ = −[p'·log σ(β·h) + (1 − p')·log σ(−β·h)],  p' = (1 − ε)p + ε(1 − p).
  // This is the binary cross-entropy between σ(β·h) and p'.
  sigmoid: ({ h, beta, p, epsilon }) => {
    const logits = h.mul(beta);
    const q = smoothTargets(p, epsilon);
    return weighDirections(q, logits.logsigmoid().neg(), logits.neg().logsigmoid().neg());
  },

  // IPO (Azar et al. 2023, "A General Theoretical Paradigm to Understand Learning from Human
  // Preferences", eq. 17): ℓ = (h − 1/(2β))², with β in the role of the paper's τ.
  // Soft targets weight the two directions: ℓ = p'·(h − 1/(2β))² + (1 − p')·(h + 1/(2β))², whose
  // minimiser h* = (p' − 1/2)/β is IPO's population optimum for preference probability p'.
  // NOTE: TRL ignores label_smoothing for "ipo"; here ε enters through p' as for "sigmoid".
  ipo: ({ h, beta, p, epsilon }) => {
    const margin = 1 / (2 * beta);
    const q = smoothTargets(p, epsilon);
    return weighDirections(q, h.sub(margin).square(), h.add(margin).square());
  },

  // Hinge loss of SLiC (Zhao et al. 2023, "SLiC-HF", eq. 1 with the reference log-ratio, as TRL):
  //   ℓ = max(0, 1 − β·h).
  // Soft targets: ℓ = p'·max(0, 1 − β·h) + (1 − p')·max(0, 1 + β·h).
  // NOTE: TRL ignores label_smoothing for "hinge"; here ε enters through p' as for "sigmoid".
  hinge: ({ h, beta, p, epsilon }) => {
    const logits = h.mul(beta);
    const q = smoothTargets(p, epsilon);
    return weighDirections(q, logits.neg().add(1).relu(), logits.add(1).relu());
  },

  // Robust DPO (Chowdhury et al. 2024, "Provably Robust DPO", eq. 8), an unbiased estimate of the
  // clean loss when each label flips with probability ε < 1/2:
  //   ℓ(+) = [(1 − ε)·(−log σ(β·h)) − ε·(−log σ(−β·h))] / (1 − 2ε),
  //   ℓ(−) = the same with h replaced by −h (the label read the other way round).
  // Soft targets: ℓ = p·ℓ(+) + (1 − p)·ℓ(−). Here ε is a noise rate, not folded into p.
  robust: ({ h, beta, p, epsilon }) => {
    const logits = h.mul(beta);
    const forward = logits.logsigmoid().neg(); // −log σ(β·h)
    const backward = logits.neg().logsigmoid().neg(); // −log σ(−β·h)
    const scale = 1 / (1 - 2 * epsilon);
    const plus = forward.mul((1 - epsilon) * scale).sub(backward.mul(epsilon * scale));
    const minus = backward.mul((1 - epsilon) * scale).sub(forward.mul(epsilon * scale));
    return weighDirections(p, plus, minus);
  },
};

export const DPO_LOSS_TYPES = Object.keys(DPO_LOSSES) as DpoLossType[];

/** Checks a loss name, throwing a RangeError that lists the valid names. */
export function checkDpoLossType(value: unknown): DpoLossType {
  if (typeof value !== "string" || !Object.hasOwn(DPO_LOSSES, value)) {
    const names = DPO_LOSS_TYPES.map((name) => `"${name}"`).join(", ");
    throw invalidArgument("range", "lossType", `one of ${names}`, value);
  }
  return value as DpoLossType;
}

/**
 * Computes a DPO-family loss from summed response log-probabilities.
 *
 * Gradients flow into the policy log-probs only: the reference terms and the returned rewards are
 * detached. Intermediate tensors are freed; the four results belong to the caller's scope.
 */
export function dpoLoss(input: DpoLossInput): DpoLossOutput {
  // Defaults and validation.
  const lossType = checkDpoLossType(input.lossType ?? "sigmoid");
  const epsilon = input.labelSmoothing ?? 0;
  const { beta } = input;
  if (!(Number.isFinite(beta) && beta > 0)) {
    throw invalidArgument("range", "beta", "a finite number > 0", beta);
  }
  if (!(epsilon >= 0 && epsilon < 0.5)) {
    throw invalidArgument("range", "labelSmoothing", "a number in [0, 0.5)", epsilon);
  }
  const batch = input.policyChosen.shape;
  if (batch.length !== 1) {
    throw invalidArgument("range", "policyChosen", "a [B] vector", batch);
  }
  const others: [string, Tensor | undefined][] = [
    ["policyRejected", input.policyRejected],
    ["refChosen", input.refChosen],
    ["refRejected", input.refRejected],
    ["targets", input.targets],
  ];
  for (const [name, t] of others) {
    if (t === undefined) continue;
    const shape = t.shape;
    if (shape.length !== 1 || shape[0] !== batch[0]) {
      throw invalidArgument("range", name, `shape [${batch[0]}] like policyChosen`, shape);
    }
  }

  return torch.tidy(() => {
    // Log-ratios in float32, whatever dtype the log-probs came in.
    const policyChosen = input.policyChosen.float();
    const policyRejected = input.policyRejected.float();
    const refChosen = input.refChosen.detach().float();
    const refRejected = input.refRejected.detach().float();
    const chosenLogratio = policyChosen.sub(refChosen);
    const rejectedLogratio = policyRejected.sub(refRejected);
    const h = chosenLogratio.sub(rejectedLogratio);

    const p = input.targets
      ? input.targets.detach().float()
      : torch.ones(input.policyChosen.shape, { device: input.policyChosen.device });
    const losses = DPO_LOSSES[lossType]({ h, beta, p, epsilon });
    const loss = losses.mean();
    const chosenRewards = chosenLogratio.detach().mul(beta);
    const rejectedRewards = rejectedLogratio.detach().mul(beta);
    return { loss, losses, chosenRewards, rejectedRewards };
  });
}

// ---------------------------------------------------------------------------------------------
// Reward and cost models

export interface RewardModelLossInput {
  /** [B] scores of the better responses. */
  better: Tensor;
  /** [B] scores of the worse responses. */
  worse: Tensor;
  /** Coefficient of the score regulariser `coef·mean(s²)` over both responses; default 0. */
  regularization?: number;
}

export interface PairScoreLossOutput {
  /** Scalar loss. */
  loss: Tensor;
  /** Scalar: fraction of pairs ordered correctly (detached, float32). */
  accuracy: Tensor;
}

/**
 * Bradley-Terry loss of a reward model (Ouyang et al. 2022, "InstructGPT", eq. 1):
 * `mean(−log σ(s_better − s_worse)) + coef·mean(s²)`.
 */
export function rewardModelLoss(input: RewardModelLossInput): PairScoreLossOutput {
  const coef = input.regularization ?? 0;
  checkRegularization(coef);
  checkSameShape("worse", input.worse, input.better);
  return torch.tidy(() => {
    const better = input.better.float();
    const worse = input.worse.float();
    const diff = better.sub(worse);
    let loss = diff.logsigmoid().neg().mean();
    if (coef > 0) loss = loss.add(torch.cat([better, worse]).square().mean().mul(coef));
    const accuracy = diff.detach().gt(0).float().mean();
    return { loss, accuracy };
  });
}

export interface CostModelLossInput {
  /** [B] costs of the safer response of each pair. */
  safer: Tensor;
  /** [B] costs of the less safe response. */
  unsafer: Tensor;
  /** [B] bool or 0/1: whether the safer response is labelled safe. */
  saferIsSafe: Tensor;
  /** [B] bool or 0/1: whether the less safe response is labelled safe. */
  unsaferIsSafe: Tensor;
  /** Coefficient of the regulariser `coef·mean(c²)` over both responses; default 0. */
  regularization?: number;
}

export interface CostModelLossOutput extends PairScoreLossOutput {
  /** Scalar: fraction of responses whose cost sign matches the label (c > 0 ⇔ unsafe). */
  signAccuracy: Tensor;
}

/**
 * Cost-model loss of Safe-RLHF (Dai et al. 2023, "Safe RLHF", eq. 6 with sequence-level costs):
 * `−log σ(c_unsafer − c_safer) − log σ(s_unsafer·c_unsafer) − log σ(s_safer·c_safer)`, averaged
 * over pairs, with sign s = +1 for a response labelled unsafe and −1 for one labelled safe, so
 * that cost > 0 means unsafe. Plus `coef·mean(c²)` over both responses.
 */
export function costModelLoss(input: CostModelLossInput): CostModelLossOutput {
  const coef = input.regularization ?? 0;
  checkRegularization(coef);
  checkSameShape("unsafer", input.unsafer, input.safer);
  checkSameShape("saferIsSafe", input.saferIsSafe, input.safer);
  checkSameShape("unsaferIsSafe", input.unsaferIsSafe, input.safer);
  return torch.tidy(() => {
    const safer = input.safer.float();
    const unsafer = input.unsafer.float();
    // safe → −1, unsafe → +1
    const saferSign = input.saferIsSafe.float().mul(-2).add(1);
    const unsaferSign = input.unsaferIsSafe.float().mul(-2).add(1);
    const order = unsafer.sub(safer).logsigmoid().neg().mean();
    const unsaferTerm = unsafer.mul(unsaferSign).logsigmoid().neg().mean();
    const saferTerm = safer.mul(saferSign).logsigmoid().neg().mean();
    let loss = order.add(unsaferTerm).add(saferTerm);
    if (coef > 0) loss = loss.add(torch.cat([safer, unsafer]).square().mean().mul(coef));
    const accuracy = unsafer.detach().gt(safer.detach()).float().mean();
    const signs = torch.cat([saferSign, unsaferSign]);
    const costs = torch.cat([safer, unsafer]).detach();
    const signAccuracy = costs.mul(signs).gt(0).float().mean();
    return { loss, accuracy, signAccuracy };
  });
}

function checkRegularization(coef: number): void {
  if (!(Number.isFinite(coef) && coef >= 0)) {
    throw invalidArgument("range", "regularization", "a finite number >= 0", coef);
  }
}

function checkSameShape(name: string, t: Tensor, like: Tensor): void {
  const a = t.shape;
  const b = like.shape;
  if (a.length !== 1 || b.length !== 1 || a[0] !== b[0]) {
    throw invalidArgument("range", name, `a [B] vector of shape [${b.join(", ")}]`, a);
  }
}
