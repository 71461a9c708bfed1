/**
 * Supervised fine-tuning: next-token cross-entropy on response tokens only, averaged over the
 * response tokens of each micro-batch (as TRL's SFTTrainer with a completion-only loss).
 */
import type { TokenizedSequence } from "../data/tokenize.js";
import * as torch from "../tensor/index.js";
import { type LanguageModel, responseLogps } from "./forward.js";
import { sequenceLayout } from "./layout.js";
import { type LoopConfig, type ProgressFactory, type TrainLoopResult, trainLoop } from "./loop.js";
import { type ProgressReporter, silentProgress } from "./progress.js";

export interface TrainSftOptions {
  model: LanguageModel;
  sequences: readonly TokenizedSequence[];
  evalSequences?: readonly TokenizedSequence[];
  config: LoopConfig & { evalBatchSize?: number };
  padId: number;
  runDir: string;
  resume?: boolean;
  progress?: ProgressReporter | ProgressFactory;
}

/** Token-weighted loss and accuracy of one batch of sequences (sums, for averaging). */
function sequenceStep(model: LanguageModel, batch: readonly TokenizedSequence[], padId: number) {
  const layout = sequenceLayout(batch, padId);
  const { tokenLogps, correct } = responseLogps(model, layout, { accuracy: true });
  const tokens = layout.sources.length;
  return {
    loss: tokenLogps.mean().neg(),
    correct: correct.float().sum().item(),
    responseTokens: tokens,
    realTokens: layout.realTokens,
  };
}

/** Runs SFT to the end of its schedule. */
export async function trainSft(options: TrainSftOptions): Promise<TrainLoopResult> {
  const { model, config, padId } = options;
  const evalSequences = options.evalSequences ?? [];
  const evalBatchSize = config.evalBatchSize ?? config.batchSize;

  const evaluate = () => {
    let lossSum = 0;
    let correct = 0;
    let tokens = 0;
    for (let start = 0; start < evalSequences.length; start += evalBatchSize) {
      const batch = evalSequences.slice(start, start + evalBatchSize);
      const forward = () =>
        torch.inferenceMode(() =>
          torch.tidy(() => {
            const r = sequenceStep(model, batch, padId);
            return { loss: r.loss.item(), correct: r.correct, tokens: r.responseTokens };
          }),
        );
      const r =
        config.precision === "bf16" ? torch.autocast(forward, { dtype: "bfloat16" }) : forward();
      lossSum += r.loss * r.tokens;
      correct += r.correct;
      tokens += r.tokens;
    }
    return {
      loss: lossSum / Math.max(1, tokens),
      mean_token_accuracy: correct / Math.max(1, tokens),
    };
  };

  return trainLoop<TokenizedSequence>({
    phase: "sft",
    runDir: options.runDir,
    config,
    items: options.sequences,
    namedParameters: model.namedParameters(),
    computeLoss: (batch) => {
      const r = sequenceStep(model, batch, padId);
      return {
        loss: r.loss,
        metrics: { mean_token_accuracy: r.correct / Math.max(1, r.responseTokens) },
        tokens: r.realTokens,
      };
    },
    ...(evalSequences.length > 0 ? { evaluate } : {}),
    setTrainMode: (train) => model.train(train),
    saveModel: (dir) => model.save(dir),
    loadModel: (dir) => model.loadWeights(dir),
    ...(options.resume === true ? { resume: "latest" } : {}),
    progress: options.progress ?? silentProgress,
    consoleMetrics: ["mean_token_accuracy"],
  });
}
