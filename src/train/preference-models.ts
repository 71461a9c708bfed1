/**
 * Reward and cost models: a score head on a transformer, trained on preference pairs.
 *
 * - Reward model: Bradley-Terry on (better, worse) by the `better` or `safer` label.
 * - Cost model, as Safe-RLHF trains it: the less safe response should cost more, and the cost's
 *   sign should match the response's safety label (cost > 0 means unsafe).
 *
 * Both responses of a pair are scored in one forward pass; the default layout ("prefix", or
 * "shared-prompt" where the model lacks it) runs the prompt once.
 */
import type { PreferenceChoice } from "../data/batch.js";
import { requireLabel } from "../data/labels.js";
import type { TokenizedPair } from "../data/tokenize.js";
import type { Tensor } from "../tensor/index.js";
import * as torch from "../tensor/index.js";
import { defaultPairLayout, type ScoringModel, sequenceScores } from "./forward.js";
import { type PairLayoutKind, pairLayout } from "./layout.js";
import { type LoopConfig, type ProgressFactory, type TrainLoopResult, trainLoop } from "./loop.js";
import { costModelLoss, rewardModelLoss } from "./losses.js";
import { type ProgressReporter, silentProgress } from "./progress.js";

export interface TrainPreferenceModelOptions {
  model: ScoringModel;
  pairs: readonly TokenizedPair[];
  evalPairs?: readonly TokenizedPair[];
  config: LoopConfig & {
    regularization: number;
    evalBatchSize?: number;
    layout?: PairLayoutKind;
  };
  padId: number;
  runDir: string;
  resume?: boolean;
  progress?: ProgressReporter | ProgressFactory;
}

/** Mean and population standard deviation of a score vector. */
function scoreStats(scores: Tensor): { "score/mean": number; "score/std": number } {
  const detached = scores.detach();
  return {
    "score/mean": detached.mean().item(),
    "score/std": detached.numel > 1 ? detached.std(null, 0).item() : 0,
  };
}

type PairStep = (batch: readonly TokenizedPair[]) => {
  loss: Tensor;
  metrics: Record<string, number>;
  tokens: number;
  pairs: number;
};

async function trainPairScores(
  phase: "reward" | "cost",
  options: TrainPreferenceModelOptions,
  step: PairStep,
): Promise<TrainLoopResult> {
  const { model, config } = options;
  const evalPairs = options.evalPairs ?? [];
  const evalBatchSize = config.evalBatchSize ?? config.batchSize;

  const evaluate = () => {
    const sums: Record<string, number> = {};
    let total = 0;
    for (let start = 0; start < evalPairs.length; start += evalBatchSize) {
      const batch = evalPairs.slice(start, start + evalBatchSize);
      const forward = () =>
        torch.inferenceMode(() =>
          torch.tidy(() => {
            const r = step(batch);
            return { values: { loss: r.loss.item(), ...r.metrics }, pairs: r.pairs };
          }),
        );
      const r =
        config.precision === "bf16" ? torch.autocast(forward, { dtype: "bfloat16" }) : forward();
      for (const [name, value] of Object.entries(r.values)) {
        sums[name] = (sums[name] ?? 0) + value * r.pairs;
      }
      total += r.pairs;
    }
    const means: Record<string, number> = {};
    for (const [name, sum] of Object.entries(sums)) means[name] = sum / Math.max(1, total);
    return means;
  };

  return trainLoop<TokenizedPair>({
    phase,
    runDir: options.runDir,
    config,
    items: options.pairs,
    namedParameters: model.namedParameters(),
    computeLoss: (batch) => {
      const r = step(batch);
      return { loss: r.loss, metrics: r.metrics, tokens: r.tokens };
    },
    ...(evalPairs.length > 0 ? { evaluate } : {}),
    setTrainMode: (train) => model.train(train),
    saveModel: (dir) => model.save(dir),
    loadModel: (dir) => model.loadWeights(dir),
    ...(options.resume === true ? { resume: "latest" } : {}),
    progress: options.progress ?? silentProgress,
    consoleMetrics: phase === "cost" ? ["accuracy", "sign_accuracy"] : ["accuracy"],
  });
}

/** Trains a Bradley-Terry reward model; `label` picks the better response of each pair. */
export async function trainRewardModel(
  options: TrainPreferenceModelOptions & { label: "better" | "safer" },
): Promise<TrainLoopResult> {
  const choose: PreferenceChoice = (example) => requireLabel(example.pair, options.label);
  const layoutKind = options.config.layout ?? defaultPairLayout(options.model);
  return trainPairScores("reward", options, (batch) => {
    const { layout } = pairLayout(batch, choose, options.padId, layoutKind);
    const scores = sequenceScores(options.model, layout); // [2B]: better, then worse
    const b = batch.length;
    const out = rewardModelLoss({
      better: scores.narrow(0, 0, b),
      worse: scores.narrow(0, b, b),
      regularization: options.config.regularization,
    });
    return {
      loss: out.loss,
      metrics: { accuracy: out.accuracy.item(), ...scoreStats(scores) },
      tokens: layout.realTokens,
      pairs: b,
    };
  });
}

/** Trains a Safe-RLHF cost model; needs the `safer` label and both `safe` labels of each pair. */
export async function trainCostModel(
  options: TrainPreferenceModelOptions,
): Promise<TrainLoopResult> {
  const choose: PreferenceChoice = (example) => requireLabel(example.pair, "safer");
  const layoutKind = options.config.layout ?? defaultPairLayout(options.model);
  return trainPairScores("cost", options, (batch) => {
    const { layout, batch: info } = pairLayout(batch, choose, options.padId, layoutKind);
    const b = batch.length;
    const saferIsSafe = new Float32Array(b);
    const unsaferIsSafe = new Float32Array(b);
    for (const [i, example] of batch.entries()) {
      const safe = requireLabel(example.pair, "safe");
      const safer = info.chosen[i]!;
      saferIsSafe[i] = safe[safer] ? 1 : 0;
      unsaferIsSafe[i] = safe[1 - safer] ? 1 : 0;
    }
    const scores = sequenceScores(options.model, layout); // [2B]: safer, then less safe
    const out = costModelLoss({
      safer: scores.narrow(0, 0, b),
      unsafer: scores.narrow(0, b, b),
      saferIsSafe: torch.tensor(saferIsSafe),
      unsaferIsSafe: torch.tensor(unsaferIsSafe),
      regularization: options.config.regularization,
    });
    return {
      loss: out.loss,
      metrics: {
        accuracy: out.accuracy.item(),
        sign_accuracy: out.signAccuracy.item(),
        ...scoreStats(scores),
      },
      tokens: layout.realTokens,
      pairs: b,
    };
  });
}
