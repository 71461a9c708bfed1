/**
 * DPO against a fixed reference model, as a library call (`trainDpo`) that `cdpo dpo` and the
 * C-DPO loop share.
 *
 * - Chosen and rejected responses go through one forward pass per micro-batch (the
 *   "prefix" and "shared-prompt" layouts run each prompt once; "padded" concatenates 2B rows as
 *   TRL does; see layout.ts).
 * - Reference log-probabilities are computed once, before training, in inference mode, for the
 *   evaluation pairs and the training pairs the schedule draws (all of them once the run covers
 *   an epoch, else the first steps' batches). They are cached per pair id and response index (not
 *   per chosen/rejected, so a relabelling by C-DPO and reshuffled epochs read the right values).
 *   Evaluation reads the same cache.
 * - Training stops with an error when the policy cannot move. That is the case when policy and
 *   reference log-probs share storage, or when every implicit reward is still 0 (up to rounding)
 *   after a few optimizer updates, so the loss is stuck at its starting value (ln 2 for
 *   "sigmoid").
 */
import { existsSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import type { PreferenceChoice } from "../data/batch.js";
import type { TokenizedPair } from "../data/tokenize.js";
import { CdpoError } from "../errors.js";
import { writeJsonAtomic } from "../run/folder.js";
import type { Tensor } from "../tensor/index.js";
import * as torch from "../tensor/index.js";
import { defaultPairLayout, type LanguageModel, responseLogps } from "./forward.js";
import { type PairLayoutKind, pairLayout } from "./layout.js";
import {
  earlyReporter,
  type LoopConfig,
  type ProgressFactory,
  scheduledItems,
  type TrainLoopResult,
  trainLoop,
} from "./loop.js";
import { type DpoLossType, dpoLoss } from "./losses.js";
import { type ProgressReporter, silentProgress } from "./progress.js";

/** Reference log-probabilities per pair id: [response 0, response 1], summed over tokens. */
export type ReferenceLogps = Map<string, [number, number]>;

/** File in the run folder holding the reference cache, so a resumed run reads the same values. */
export const REFERENCE_LOGPS_FILE = "reference-logps.json";

/**
 * Optimizer updates at 10% or more of the peak learning rate after which implicit rewards that
 * are still zero (up to rounding) stop the run.
 */
export const STALL_UPDATES = 3;

/**
 * Rewards below this share of β·|log-prob| count as zero. The reference cache is computed in other
 * batches than training (other padding, so other matmul shapes), which leaves float32 rounding
 * differences of about 1e-7 relative between policy and reference log-probs of the same weights.
 */
const STALL_RELATIVE_TOLERANCE = 4e-6;

export interface DpoTrainConfig extends LoopConfig {
  beta: number;
  lossType: DpoLossType;
  labelSmoothing: number;
  /** Token layout of a micro-batch; default: "prefix" when the policy supports it, else "shared-prompt". */
  layout?: PairLayoutKind;
  /** Pairs per evaluation and reference micro-batch; default `batchSize`. */
  evalBatchSize?: number;
}

export interface TrainDpoOptions {
  /** The model being trained (its parameters are updated in place). */
  policy: LanguageModel;
  /** Reference model; needed unless the caches cover every pair the run uses. Never updated. */
  reference?: LanguageModel;
  /** Precomputed reference cache (from an earlier call); missing ids are computed. */
  refLogps?: ReferenceLogps;
  /** Training pairs. */
  pairs: readonly TokenizedPair[];
  /** Held-out pairs evaluated every `evalEvery` steps and at the end. */
  evalPairs?: readonly TokenizedPair[];
  /** Picks the chosen response of each pair (a label, or a C-DPO relabelling). */
  choose: PreferenceChoice;
  /** Soft targets: probability that the chosen response is preferred, per pair id (default 1). */
  targets?: ReadonlyMap<string, number>;
  config: DpoTrainConfig;
  padId: number;
  runDir: string;
  /** Metrics phase tag (default "dpo") and C-DPO iteration tag. */
  phase?: string;
  iteration?: number;
  /** Global step of this call's step 0 in the run folder's metrics. */
  stepOffset?: number;
  /** Continue from the newest checkpoint of this phase in `runDir` (see trainLoop). */
  resume?: boolean;
  /** Writes the policy (config.json + model.safetensors) into a folder, for checkpoints. */
  savePolicy: (dir: string) => Promise<void>;
  /** Loads checkpoint weights into the policy; required with `resume`. */
  loadPolicy?: (dir: string) => Promise<void>;
  /** File of the reference cache (default `runDir/reference-logps.json`); null stores none. */
  refLogpsFile?: string | null;
  progress?: ProgressReporter | ProgressFactory;
}

export interface TrainDpoResult extends TrainLoopResult {
  /**
   * The reference cache: the evaluation pairs, the training pairs this run drew, and any entries
   * it was given or read. Pass it to the next call.
   */
  refLogps: ReferenceLogps;
}

/** Runs DPO to the end of its schedule; see the file comment. */
export async function trainDpo(options: TrainDpoOptions): Promise<TrainDpoResult> {
  const { config, policy, choose } = options;
  const layoutKind = config.layout ?? defaultPairLayout(policy);
  const evalPairs = options.evalPairs ?? [];
  const phase = options.phase ?? "dpo";
  const progress = earlyReporter(options.progress);

  // Reference cache: given, stored in the run folder, or computed now.
  const cacheFile =
    options.refLogpsFile === undefined
      ? path.join(options.runDir, REFERENCE_LOGPS_FILE)
      : options.refLogpsFile;
  const refLogps: ReferenceLogps = new Map(options.refLogps ?? []);
  if (cacheFile !== null && existsSync(cacheFile)) {
    for (const [id, values] of await readReferenceLogps(cacheFile)) {
      if (!refLogps.has(id)) refLogps.set(id, values);
    }
  }
  // The pairs are those of the whole schedule from step 0, also on resume, so their reference
  // values are computed in the same batches (the same float rounding) as in an uninterrupted run.
  const missingTrain = scheduledItems(config, options.pairs).filter((p) => !refLogps.has(p.id));
  const missingEval = evalPairs.filter((pair) => !refLogps.has(pair.id));
  const missing = [...missingTrain, ...missingEval];
  if (missing.length > 0) {
    if (options.reference === undefined) {
      throw new CdpoError(
        "TRAINING",
        `${phase}: ${missing.length} pairs have no cached reference log-probabilities ` +
          `(first: ${JSON.stringify(missing[0]!.id)}) and no reference model was given`,
      );
    }
    progress.message(
      `cdpo ${phase}: computing reference log-probabilities of ${missing.length} pairs ` +
        `(${missingTrain.length} training pairs that the schedule draws, of ` +
        `${options.pairs.length}, and ${missingEval.length} evaluation pairs)`,
    );
    const computed = computeReferenceLogps(options.reference, missing, {
      batchSize: config.evalBatchSize ?? config.batchSize,
      padId: options.padId,
      layout: config.layout ?? defaultPairLayout(options.reference),
      precision: config.precision,
    });
    for (const [id, values] of computed) refLogps.set(id, values);
    if (cacheFile !== null) await writeReferenceLogps(cacheFile, refLogps);
  }

  // Per-batch tensors of the cached reference values and targets.
  const referenceFor = (batch: { ids: string[]; chosen: Uint8Array }) => {
    const chosen = new Float32Array(batch.ids.length);
    const rejected = new Float32Array(batch.ids.length);
    for (const [i, id] of batch.ids.entries()) {
      const values = refLogps.get(id)!;
      const c = batch.chosen[i]!;
      chosen[i] = values[c]!;
      rejected[i] = values[1 - c]!;
    }
    return { refChosen: torch.tensor(chosen), refRejected: torch.tensor(rejected) };
  };
  const targetsFor = (ids: readonly string[]): Tensor | undefined => {
    if (options.targets === undefined) return undefined;
    const values = ids.map((id) => options.targets!.get(id) ?? 1);
    return torch.tensor(values);
  };

  /** Loss and metrics of one micro-batch of pairs. */
  const pairStep = (examples: readonly TokenizedPair[]) => {
    const { layout, batch } = pairLayout(examples, choose, options.padId, layoutKind);
    const { logps } = responseLogps(policy, layout);
    const b = batch.size;
    const policyChosen = logps.narrow(0, 0, b);
    const policyRejected = logps.narrow(0, b, b);
    const { refChosen, refRejected } = referenceFor(batch);
    if (
      policyChosen.sharesStorageWith(refChosen) ||
      policyRejected.sharesStorageWith(refRejected)
    ) {
      throw new CdpoError(
        "TRAINING",
        `${phase}: the policy and reference log-probabilities are the same tensor; the reference ` +
          "must be computed separately (and before training) from a frozen model",
      );
    }
    const targets = targetsFor(batch.ids);
    const out = dpoLoss({
      policyChosen,
      policyRejected,
      refChosen,
      refRejected,
      beta: config.beta,
      lossType: config.lossType,
      labelSmoothing: config.labelSmoothing,
      ...(targets === undefined ? {} : { targets }),
    });
    const chosenRewards = out.chosenRewards;
    const rejectedRewards = out.rejectedRewards;
    const metrics = {
      "rewards/chosen": chosenRewards.mean().item(),
      "rewards/rejected": rejectedRewards.mean().item(),
      "rewards/accuracies": chosenRewards.gt(rejectedRewards).float().mean().item(),
      "rewards/margins": chosenRewards.sub(rejectedRewards).mean().item(),
      "logps/chosen": policyChosen.detach().mean().item(),
      "logps/rejected": policyRejected.detach().mean().item(),
    };
    const maxAbsReward = Math.max(
      chosenRewards.abs().max().item(),
      rejectedRewards.abs().max().item(),
    );
    const maxAbsLogp = Math.max(1, logps.detach().abs().max().item());
    const stalled = maxAbsReward <= STALL_RELATIVE_TOLERANCE * config.beta * maxAbsLogp;
    return { loss: out.loss, metrics, tokens: layout.realTokens, stalled, pairs: b };
  };

  // Stall detector state (kept in checkpoints).
  let updatesWithLr = 0;
  let stepStalled = true;

  const evaluate =
    evalPairs.length === 0
      ? undefined
      : () =>
          evaluatePairs(
            evalPairs,
            config.evalBatchSize ?? config.batchSize,
            config.precision,
            (batch) =>
              torch.tidy(() => {
                const r = pairStep(batch);
                return { loss: r.loss.item(), metrics: r.metrics, pairs: r.pairs };
              }),
          );

  const result = await trainLoop<TokenizedPair>({
    phase,
    ...(options.iteration === undefined ? {} : { iteration: options.iteration }),
    runDir: options.runDir,
    config,
    items: options.pairs,
    namedParameters: policy.namedParameters(),
    computeLoss: (batch) => {
      const r = pairStep(batch);
      stepStalled &&= r.stalled;
      return { loss: r.loss, metrics: r.metrics, tokens: r.tokens };
    },
    ...(evaluate === undefined ? {} : { evaluate }),
    setTrainMode: (train) => policy.train(train),
    saveModel: options.savePolicy,
    ...(options.loadPolicy === undefined ? {} : { loadModel: options.loadPolicy }),
    stageState: {
      get: () => ({ updatesWithLr }),
      set: (state) => {
        updatesWithLr = Number(state.updatesWithLr ?? 0);
      },
    },
    afterStep: (step, metrics, lr) => {
      const loss = metrics.loss ?? Number.NaN;
      if (updatesWithLr >= STALL_UPDATES && stepStalled) {
        throw new CdpoError(
          "TRAINING",
          `${phase}: every implicit reward is still 0 at step ${step}, after ${updatesWithLr} ` +
            `optimizer updates, so the loss stays at ${loss.toFixed(6)}` +
            `${config.lossType === "sigmoid" ? " (ln 2)" : ""}. The policy is frozen or detached: ` +
            "check that the optimized parameters are the ones the policy's forward pass uses, " +
            "that they require gradients, and that its log-probabilities are not computed " +
            "without gradients.",
        );
      }
      if (lr >= 0.1 * config.lr) updatesWithLr++;
      stepStalled = true;
    },
    ...(options.stepOffset === undefined ? {} : { stepOffset: options.stepOffset }),
    ...(options.resume === true ? { resume: "latest" } : {}),
    progress: options.progress ?? silentProgress,
    consoleMetrics: ["rewards/accuracies", "rewards/margins"],
  });
  return { ...result, refLogps };
}

/** Averages per-batch losses and metrics over evaluation pairs, weighted by pair count. */
export function evaluatePairs(
  pairs: readonly TokenizedPair[],
  batchSize: number,
  precision: "fp32" | "bf16",
  run: (batch: TokenizedPair[]) => { loss: number; metrics: Record<string, number>; pairs: number },
): Record<string, number> {
  const sums: Record<string, number> = {};
  let total = 0;
  for (let start = 0; start < pairs.length; start += batchSize) {
    const batch = pairs.slice(start, start + batchSize);
    const forward = () => torch.inferenceMode(() => run(batch));
    const r = precision === "bf16" ? torch.autocast(forward, { dtype: "bfloat16" }) : forward();
    for (const [name, value] of Object.entries({ loss: r.loss, ...r.metrics })) {
      sums[name] = (sums[name] ?? 0) + value * r.pairs;
    }
    total += r.pairs;
  }
  const means: Record<string, number> = {};
  for (const [name, sum] of Object.entries(sums)) means[name] = sum / Math.max(1, total);
  return means;
}

/**
 * Computes reference log-probabilities of both responses of every pair, in inference mode (and
 * under bf16 autocast when `precision` is bf16, as training runs the policy).
 */
export function computeReferenceLogps(
  reference: LanguageModel,
  pairs: readonly TokenizedPair[],
  options: { batchSize: number; padId: number; layout: PairLayoutKind; precision: "fp32" | "bf16" },
): ReferenceLogps {
  const result: ReferenceLogps = new Map();
  reference.train(false);
  const responseZeroFirst: PreferenceChoice = () => 0;
  for (let start = 0; start < pairs.length; start += options.batchSize) {
    const batch = pairs.slice(start, start + options.batchSize);
    const values = torch.tidy(() => {
      const forward = () =>
        torch.inferenceMode(() => {
          const { layout } = pairLayout(batch, responseZeroFirst, options.padId, options.layout);
          return responseLogps(reference, layout).logps.toFloat32Array();
        });
      return options.precision === "bf16"
        ? torch.autocast(forward, { dtype: "bfloat16" })
        : forward();
    });
    for (const [i, pair] of batch.entries()) {
      result.set(pair.id, [values[i]!, values[batch.length + i]!]);
    }
  }
  return result;
}

/** Writes a reference cache as `{ "id": [logp0, logp1], ... }`, atomically. */
export async function writeReferenceLogps(file: string, cache: ReferenceLogps): Promise<void> {
  await writeJsonAtomic(file, Object.fromEntries(cache));
}

/** Reads a reference cache written by {@link writeReferenceLogps}. */
export async function readReferenceLogps(file: string): Promise<ReferenceLogps> {
  let raw: unknown;
  try {
    raw = JSON.parse(await fs.readFile(file, "utf8"));
  } catch (error) {
    throw new CdpoError(
      "FILE",
      `Failed to read reference cache ${file}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  const cache: ReferenceLogps = new Map();
  for (const [id, values] of Object.entries(raw as Record<string, unknown>)) {
    if (
      !Array.isArray(values) ||
      values.length !== 2 ||
      !values.every((v) => typeof v === "number" && Number.isFinite(v))
    ) {
      throw new CdpoError("FILE", `${file}: entry ${JSON.stringify(id)} must be [logp0, logp1]`);
    }
    cache.set(id, [values[0] as number, values[1] as number]);
  }
  return cache;
}
