/**
 * Runs a whole training stage from a resolved config, as the CLI commands do: data, tokenizer,
 * model, run folder, the stage's loop, and the final model in `RUN_DIR/final/`.
 */
import { existsSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { chooseByLabel, padIdFor } from "../data/batch.js";
import { writeBuiltin } from "../data/builtin/index.js";
import { type DataIssue, formatIssueSummary } from "../data/issues.js";
import { requireLabel } from "../data/labels.js";
import { readPreferencePairs } from "../data/read.js";
import { mixSeed } from "../data/shuffle.js";
import { type TokenizedPair, type TokenizedSequence, tokenizePairs } from "../data/tokenize.js";
import type { PreferencePair } from "../data/types.js";
import { CdpoError } from "../errors.js";
import { createRunFolder, readConfig, readMetrics } from "../run/folder.js";
import { METRICS_RECORD_FIELDS, type MetricsRecord } from "../run/records.js";
import * as torch from "../tensor/index.js";
import { createByteTokenizer, loadTokenizer, type Tokenizer } from "../tokenizer/index.js";
import { latestCheckpoint } from "./checkpoint.js";
import {
  type CommonConfig,
  type CostConfig,
  DEFAULT_LR,
  type DpoConfig,
  defaultThreads,
  type RewardConfig,
  resolveConfig,
  resolvePrecision,
  type SftConfig,
  type Stage,
} from "./config.js";
import { trainDpo } from "./dpo.js";
import {
  type LoopConfig,
  type ProgressFactory,
  type TrainLoopResult,
  truncateMetrics,
} from "./loop.js";
import { INIT_CONFIGS, initModel, loadModelFolder, type TrainModel } from "./models.js";
import { trainCostModel, trainRewardModel } from "./preference-models.js";
import { consoleProgress, type ProgressReporter, silentProgress } from "./progress.js";
import { trainSft } from "./sft.js";

/** Folder of a stage run's final model, written only after the last optimizer step. */
export const FINAL_DIR = "final";

/**
 * Config keys a resumed run may change: settings of the machine, not of the experiment. A
 * different thread count can change the last bits of reductions, so exact reproduction of an
 * uninterrupted run needs the same one.
 */
const RESUME_OVERRIDABLE = new Set(["resume", "progress", "config", "threads"]);

export interface StageResult extends TrainLoopResult {
  runDir: string;
  /** The final model folder. */
  finalDir: string;
  /**
   * True when `resume` named a run that had already finished: nothing was trained or written, and
   * `steps`, `train` and `eval` are read back from its metrics.jsonl.
   */
  alreadyComplete?: boolean;
}

export interface RunStageOptions {
  /** Print progress to the console (default true). */
  console?: boolean;
}

/**
 * Resolves the config (a fresh run, or the stored config of `resume`), then trains and writes
 * `RUN_DIR/final/`. `file` and `overrides` are as in {@link resolveConfig}.
 */
export async function runStage(
  stage: Stage,
  file: Record<string, unknown>,
  overrides: Record<string, unknown>,
  options: RunStageOptions = {},
): Promise<StageResult> {
  const merged = { ...file };
  for (const [key, value] of Object.entries(overrides))
    if (value !== undefined) merged[key] = value;
  const resumeDir = typeof merged.resume === "string" ? merged.resume : undefined;

  // Config: fresh, or the run's own stored config.
  let config: CommonConfig;
  if (resumeDir !== undefined) {
    const stored = await readConfig(resumeDir);
    if (stored === undefined) {
      throw new CdpoError("STATE", `Cannot resume ${resumeDir}: it has no config.json`);
    }
    if (stored.stage !== stage) {
      throw new CdpoError(
        "STATE",
        `Cannot resume ${resumeDir} with cdpo ${stage}: the run is a ${String(stored.stage)} run`,
      );
    }
    const { stage: _stage, ...storedFields } = stored;
    for (const [key, value] of Object.entries(merged)) {
      if (RESUME_OVERRIDABLE.has(key)) continue;
      if (JSON.stringify(storedFields[key]) !== JSON.stringify(value)) {
        throw new CdpoError(
          "CONFIG",
          `Cannot change "${key}" when resuming ${resumeDir} (stored ${JSON.stringify(storedFields[key])}, ` +
            `received ${JSON.stringify(value)}); a resumed run keeps its configuration.`,
        );
      }
    }
    config = resolveConfig(stage, storedFields, {
      progress: merged.progress,
      out: resumeDir,
      ...(merged.threads === undefined ? {} : { threads: merged.threads }),
    });
  } else {
    config = resolveConfig(stage, file, overrides);
  }
  const runDir = resumeDir ?? config.out!;
  const showProgress = options.console ?? true;
  // Messages before training: plain lines.
  const progress: ProgressReporter = showProgress
    ? consoleProgress(stage, 1, 0, false)
    : silentProgress;

  // A finished run has nothing to resume, so its folder is left as it is.
  if (resumeDir !== undefined) {
    const finished = await readFinishedStage(stage, runDir);
    if (finished !== undefined) {
      progress.message(
        `cdpo ${stage}: the run in ${runDir} is already complete (step ${finished.steps}), so ` +
          `there is nothing to resume. Its final model is in ${finished.finalDir}.`,
      );
      return finished;
    }
  }

  // Runtime.
  const precision = resolvePrecision(config.precision);
  const threads = config.threads ?? defaultThreads();
  torch.setNumThreads(threads);
  const lr = config.lr ?? DEFAULT_LR[stage];
  const stored = { stage, ...config, precision, threads, lr, out: runDir };
  delete (stored as { resume?: string }).resume;
  await createRunFolder(runDir, stored, {
    existing: resumeDir === undefined ? "fail" : "append",
    versions: { libtorch: torch.libtorchVersion() },
  });
  const resume = resumeDir !== undefined;
  if (resume && (await latestCheckpoint(runDir)) === undefined) {
    // Killed before its first checkpoint: start over, dropping the metrics it wrote.
    progress.message(
      `cdpo ${stage}: ${runDir} has no checkpoint yet, so the run starts over from step 0`,
    );
    await truncateMetrics(runDir, stage, 0);
  }
  const loop: LoopConfig = { ...config, precision, lr };

  // Data and tokenizer.
  const tokenizer =
    config.model !== undefined ? await loadTokenizer(config.model) : createByteTokenizer();
  const { train, evaluation, skipped } = await loadPairs(config, runDir);
  if (skipped.length > 0) {
    // --skip-invalid: the count by reason, and the first records so that they can be found.
    const first = skipped.slice(0, 3).map((issue) => `  ${issue.message}`);
    const more = skipped.length > 3 ? [`  ... and ${skipped.length - 3} more`] : [];
    progress.message(
      [`cdpo ${stage}: ${formatIssueSummary(skipped)}`, ...first, ...more].join("\n"),
    );
  }
  const tokenizeOptions = {
    maxLength: config.maxLength,
    ...(config.maxPromptLength === undefined ? {} : { maxPromptLength: config.maxPromptLength }),
  };
  const padId = padIdFor(tokenizer);

  // Model.
  const task = stage === "reward" || stage === "cost" ? "score" : "causal-lm";
  const model = await createStageModel(config, task, config.seed);

  let result: TrainLoopResult;
  try {
    const trainPairs = tokenizePairs(train, tokenizer, tokenizeOptions);
    const evalPairs = tokenizePairs(evaluation, tokenizer, tokenizeOptions);
    reportTokenization(
      progress,
      stage,
      trainPairs.examples.length,
      trainPairs.skipped.length,
      trainPairs.truncated,
    );
    const bar = config.progress ?? process.stdout.isTTY === true;
    const stageProgress: ProgressReporter | ProgressFactory = showProgress
      ? (totalSteps, startStep) => consoleProgress(stage, totalSteps, startStep, bar)
      : silentProgress;

    switch (stage) {
      case "sft": {
        const sft = config as SftConfig;
        const toSequences = (pairs: TokenizedPair[]) => sftSequences(pairs, sft);
        result = await trainSft({
          model,
          sequences: toSequences(trainPairs.examples),
          evalSequences: toSequences(evalPairs.examples),
          config: loop,
          padId,
          runDir,
          resume,
          progress: stageProgress,
        });
        break;
      }
      case "reward": {
        const reward = config as RewardConfig;
        result = await trainRewardModel({
          model,
          pairs: trainPairs.examples,
          evalPairs: evalPairs.examples,
          config: { ...loop, regularization: reward.regularization },
          label: reward.label,
          padId,
          runDir,
          resume,
          progress: stageProgress,
        });
        break;
      }
      case "cost": {
        const cost = config as CostConfig;
        result = await trainCostModel({
          model,
          pairs: trainPairs.examples,
          evalPairs: evalPairs.examples,
          config: { ...loop, regularization: cost.regularization },
          padId,
          runDir,
          resume,
          progress: stageProgress,
        });
        break;
      }
      case "dpo": {
        const dpo = config as DpoConfig;
        const choose = chooseByLabel(dpo.label);
        const labelled = (pairs: TokenizedPair[]) =>
          pairs.filter((p) => p.pair[dpo.label] !== undefined);
        const trainSet = labelled(trainPairs.examples);
        const evalSet = labelled(evalPairs.examples);
        const unlabelled = trainPairs.examples.length - trainSet.length;
        if (unlabelled > 0) {
          progress.message(
            `cdpo dpo: ${unlabelled} training pairs have no "${dpo.label}" label and are left out`,
          );
        }
        // The reference model only fills the cache. It is freed when training ends.
        const cacheFile = path.join(runDir, "reference-logps.json");
        const reference = existsSync(cacheFile)
          ? undefined
          : dpo.ref !== undefined
            ? await loadModelFolder(dpo.ref, "causal-lm", dpo.seed)
            : await createStageModel(config, "causal-lm", config.seed);
        try {
          result = await trainDpo({
            policy: model,
            ...(reference === undefined ? {} : { reference }),
            pairs: trainSet,
            evalPairs: evalSet,
            choose,
            config: {
              ...loop,
              beta: dpo.beta,
              lossType: dpo.lossType,
              labelSmoothing: dpo.labelSmoothing,
            },
            padId,
            runDir,
            resume,
            savePolicy: (dir) => model.save(dir),
            loadPolicy: (dir) => model.loadWeights(dir),
            progress: stageProgress,
          });
        } finally {
          reference?.dispose();
        }
        break;
      }
    }

    // Final model, written whole to final.tmp/ and renamed.
    const finalDir = path.join(runDir, FINAL_DIR);
    await saveFinal(model, tokenizer, finalDir);
    progress.message(`cdpo ${stage}: final model written to ${finalDir}`);
    return { ...result, runDir, finalDir };
  } finally {
    model.dispose();
  }
}

/**
 * Reads back the result of a finished stage run, or returns undefined when `runDir` has no
 * final model yet. `final/` is renamed into place only after the loop's last step, so its
 * presence means the run completed.
 */
export async function readFinishedStage(
  stage: Stage,
  runDir: string,
): Promise<StageResult | undefined> {
  const finalDir = path.join(runDir, FINAL_DIR);
  if (!existsSync(path.join(finalDir, "model.safetensors"))) return undefined;
  const records = (await readMetrics(runDir)).filter((record) => record.phase === stage);
  const lastTrain = records.filter((record) => record.loss !== undefined).at(-1);
  const lastEval = records
    .filter((record) => Object.keys(record).some((name) => name.startsWith("eval_")))
    .at(-1);
  return {
    steps: records.reduce((max, record) => Math.max(max, record.step), 0),
    train: metricValues(lastTrain),
    eval: metricValues(lastEval),
    runDir,
    finalDir,
    alreadyComplete: true,
  };
}

/** Numeric metric values of a metrics record, without its step, phase and time fields. */
function metricValues(record: MetricsRecord | undefined): Record<string, number> {
  const values: Record<string, number> = {};
  for (const [name, value] of Object.entries(record ?? {})) {
    if ((METRICS_RECORD_FIELDS as readonly string[]).includes(name)) continue;
    if (typeof value === "number") values[name] = value;
  }
  return values;
}

function reportTokenization(
  progress: ProgressReporter,
  stage: string,
  kept: number,
  skipped: number,
  truncated: number,
): void {
  progress.message(
    `cdpo ${stage}: ${kept} training pairs (${skipped} skipped as too long or empty, ${truncated} truncated)`,
  );
}

/** SFT sequences of tokenized pairs: the preferred response, or both. */
export function sftSequences(
  pairs: readonly TokenizedPair[],
  config: { responses: "chosen" | "both"; label: "better" | "safer" },
): TokenizedSequence[] {
  const sequences: TokenizedSequence[] = [];
  for (const example of pairs) {
    const indices: (0 | 1)[] =
      config.responses === "both" ? [0, 1] : [requireLabel(example.pair, config.label)];
    for (const index of indices) {
      sequences.push({
        id: `${example.id}/${index}`,
        promptIds: example.promptIds,
        responseIds: example.responseIds[index],
        truncated: example.truncated,
      });
    }
  }
  return sequences;
}

/** Builds the stage's model from `model` (a folder) or `init` (a size). */
async function createStageModel(
  config: CommonConfig,
  task: "causal-lm" | "score",
  seed: number,
): Promise<TrainModel> {
  if (config.model !== undefined) return loadModelFolder(config.model, task, seed);
  return initModel(INIT_CONFIGS[config.init!], task, seed);
}

/** FNV-1a hash of a string, for the eval split. */
function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** Whether a pair id falls in the held-out share (a pure function of id and seed). */
export function isHeldOut(id: string, seed: number, fraction: number): boolean {
  return mixSeed(seed, hashString(id)) / 4294967296 < fraction;
}

/**
 * Training and evaluation pairs: `data` ("builtin" writes the built-in dataset into the run
 * folder's `data/`), and `evalData` or a held-out share of `data`.
 */
export async function loadPairs(
  config: CommonConfig,
  runDir: string,
): Promise<{ train: PreferencePair[]; evaluation: PreferencePair[]; skipped: DataIssue[] }> {
  let trainFile = config.data;
  let evalFile = config.evalData;
  if (config.data === "builtin") {
    const files = await writeBuiltin(path.join(runDir, "data"));
    trainFile = files.train;
    evalFile ??= files.test;
  }
  const readOptions = {
    skipInvalid: config.skipInvalid,
    ...(config.dataFormat === undefined ? {} : { format: config.dataFormat }),
  };
  const read = await readPreferencePairs(trainFile, readOptions);
  const all = read.pairs;
  const skipped = [...read.issues];
  let train: PreferencePair[];
  let evaluation: PreferencePair[];
  if (evalFile !== undefined) {
    train = all;
    const evalRead = await readPreferencePairs(evalFile, readOptions);
    evaluation = evalRead.pairs;
    skipped.push(...evalRead.issues);
  } else {
    train = all.filter((pair) => !isHeldOut(pair.id, config.seed, config.evalFraction));
    evaluation = all.filter((pair) => isHeldOut(pair.id, config.seed, config.evalFraction));
  }
  if (config.maxPairs !== undefined && config.maxPairs > 0) train = train.slice(0, config.maxPairs);
  if (config.maxEvalPairs !== undefined && config.maxEvalPairs > 0) {
    evaluation = evaluation.slice(0, config.maxEvalPairs);
  }
  return { train, evaluation, skipped };
}

/** Writes the model and tokenizer to `dir` via `dir.tmp/` and a rename. */
export async function saveFinal(
  model: TrainModel,
  tokenizer: Tokenizer,
  dir: string,
): Promise<void> {
  const temp = `${dir}.tmp`;
  await fs.rm(temp, { recursive: true, force: true });
  await fs.mkdir(temp, { recursive: true });
  await model.save(temp);
  await tokenizer.save(temp);
  await fs.rm(dir, { recursive: true, force: true });
  await fs.rename(temp, dir);
}
