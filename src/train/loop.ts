/**
 * The training loop every stage shares: seeded data order, gradient accumulation, AdamW with a
 * warmup schedule, global-norm clipping, bf16 autocast, metrics in TRL names, periodic evaluation
 * and atomic checkpoints that resume to the same losses.
 *
 * A stage supplies the examples and a `computeLoss` for one micro-batch; the loop does the rest.
 * Step numbers in `metrics.jsonl` are `stepOffset + step`, so several phases (C-DPO iterations)
 * can log into one run folder.
 */
import { existsSync } from "node:fs";
import * as fs from "node:fs/promises";
import { epochBatches } from "../data/shuffle.js";
import { CdpoError } from "../errors.js";
import { appendMetrics, runPaths, writeFileAtomic } from "../run/folder.js";
import type { Tensor } from "../tensor/index.js";
import * as torch from "../tensor/index.js";
import {
  latestCheckpoint,
  readCheckpoint,
  removePartialCheckpoints,
  saveCheckpoint,
  stateFromBase64,
  stateToBase64,
  type TrainerState,
} from "./checkpoint.js";
import { createAdamW } from "./optim.js";
import { type ProgressReporter, silentProgress } from "./progress.js";
import { learningRate, resolveWarmup, type ScheduleKind } from "./schedule.js";

/** Loop settings (a subset of the stage configs in config.ts, already resolved). */
export interface LoopConfig {
  steps?: number | undefined;
  epochs: number;
  batchSize: number;
  gradAccum: number;
  lr: number;
  warmup: number;
  schedule: ScheduleKind;
  weightDecay: number;
  adamBeta1: number;
  adamBeta2: number;
  adamEps: number;
  maxGradNorm: number;
  logEvery: number;
  evalEvery: number;
  saveEvery: number;
  keepCheckpoints: number;
  seed: number;
  precision: "fp32" | "bf16";
}

/** Factory of the console reporter, called once the loop has its step count and starting step. */
export type ProgressFactory = (totalSteps: number, startStep: number) => ProgressReporter;

/** Returns a reporter for the messages printed before the loop has its step count. */
export function earlyReporter(
  progress: ProgressReporter | ProgressFactory | undefined,
): ProgressReporter {
  if (progress === undefined) return silentProgress;
  return typeof progress === "function" ? progress(1, 0) : progress;
}

/** Result of `computeLoss` for one micro-batch. */
export interface MicroBatchResult {
  /** Scalar loss with gradient; the loop scales it by 1/gradAccum before backward. */
  loss: Tensor;
  /** Metric values of the micro-batch (TRL names, without `loss`), averaged over the interval. */
  metrics?: Record<string, number>;
  /** Tokens processed (for tokens/s). */
  tokens: number;
}

/** Stage hooks kept in checkpoints (for example a stall detector's counters). */
export interface StageState {
  get(): Record<string, unknown>;
  set(state: Record<string, unknown>): void;
}

export interface TrainLoopOptions<Item> {
  /** Metrics `phase` tag: "sft", "reward", "cost" or "dpo". */
  phase: string;
  /** C-DPO dual iteration tag written into every metrics record. */
  iteration?: number;
  runDir: string;
  config: LoopConfig;
  /** Training examples, shuffled per epoch by (seed, epoch). */
  items: readonly Item[];
  namedParameters: readonly (readonly [string, Tensor])[];
  /** Forward pass and loss of one micro-batch, with gradient recording on. */
  computeLoss: (batch: Item[]) => MicroBatchResult;
  /** Evaluation metrics without the `eval_` prefix, computed without gradients. */
  evaluate?: () => Record<string, number>;
  /** Switches dropout on (training) or off (evaluation). */
  setTrainMode?: (train: boolean) => void;
  /** Writes the model (config.json + model.safetensors) into a folder. */
  saveModel: (dir: string) => Promise<void>;
  /** Loads a checkpoint's model weights into the parameters, when resuming. */
  loadModel?: (dir: string) => Promise<void>;
  /** Named generators the stage draws from; their states go into checkpoints. */
  generators?: Record<string, torch.Generator>;
  stageState?: StageState;
  /** Called after each optimizer step with the step's mean metrics (loss included). */
  afterStep?: (step: number, metrics: Record<string, number>, lr: number) => void;
  /** Global step of this phase's step 0 in the run folder's metrics (default 0). */
  stepOffset?: number;
  /**
   * Continue from a checkpoint: a checkpoint folder, or "latest" for the newest checkpoint of
   * `runDir` whose step lies inside this phase (nothing to resume when there is none).
   */
  resume?: string;
  /** Console output: a reporter, or a factory called with the total and starting step. */
  progress?: ProgressReporter | ProgressFactory;
  /** Extra values shown on the console at each logging step. */
  consoleMetrics?: readonly string[];
}

export interface TrainLoopResult {
  /** Optimizer steps of this phase run in total (including the ones before a resume). */
  steps: number;
  /** The last training metrics record's values (averaged over its interval). */
  train: Record<string, number>;
  /** The final evaluation's values, `eval_`-prefixed; empty without `evaluate`. */
  eval: Record<string, number>;
  /** Step the phase resumed from, or undefined when it started fresh. */
  resumedFrom?: number;
}

/** Running sums of metrics over the current logging interval. */
class MetricAccumulator {
  sums: Record<string, number> = {};
  counts: Record<string, number> = {};
  steps = 0;
  tokens = 0;

  add(values: Record<string, number>): void {
    for (const [name, value] of Object.entries(values)) {
      this.sums[name] = (this.sums[name] ?? 0) + value;
      this.counts[name] = (this.counts[name] ?? 0) + 1;
    }
  }

  means(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, sum] of Object.entries(this.sums)) out[name] = sum / (this.counts[name] ?? 1);
    return out;
  }

  reset(): void {
    this.sums = {};
    this.counts = {};
    this.steps = 0;
    this.tokens = 0;
  }

  toJSON(): TrainerState["pending"] {
    return { sums: this.sums, counts: this.counts, steps: this.steps, tokens: this.tokens };
  }

  load(state: TrainerState["pending"]): void {
    this.sums = { ...state.sums };
    this.counts = { ...state.counts };
    this.steps = state.steps;
    this.tokens = state.tokens;
  }
}

/** Total optimizer steps for a dataset of `items` examples. */
export function totalStepsFor(config: LoopConfig, items: number): number {
  if (config.steps !== undefined) return config.steps;
  const batchesPerEpoch = Math.ceil(items / config.batchSize);
  return Math.max(1, Math.ceil((config.epochs * batchesPerEpoch) / config.gradAccum));
}

/** Micro-batches of epoch `epoch`, in the order the loop draws them. */
function batchesOfEpoch<Item>(config: LoopConfig, items: readonly Item[], epoch: number): Item[][] {
  return epochBatches(items, { batchSize: config.batchSize, seed: config.seed, epoch });
}

/**
 * Returns the items that a run of the whole schedule draws, in their order in `items`: the
 * first `totalSteps × gradAccum` micro-batches of epoch 0, or every item once that count reaches
 * a full epoch. It depends only on the config, so a resumed run gets the same list.
 */
export function scheduledItems<Item>(config: LoopConfig, items: readonly Item[]): Item[] {
  const microBatches = totalStepsFor(config, items.length) * config.gradAccum;
  const firstEpoch = batchesOfEpoch(config, items, 0);
  if (microBatches >= firstEpoch.length) return [...items];
  const drawn = new Set(firstEpoch.slice(0, microBatches).flat());
  return items.filter((item) => drawn.has(item));
}

/**
 * Removes the records of `phase` (and `iteration`, when given) after `step` from metrics.jsonl,
 * so a resumed run rewrites them.
 */
export async function truncateMetrics(
  runDir: string,
  phase: string,
  step: number,
  iteration?: number,
): Promise<void> {
  const file = runPaths(runDir).metrics;
  if (!existsSync(file)) return;
  const text = await fs.readFile(file, "utf8");
  const kept: string[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    let record: { step?: unknown; phase?: unknown; iteration?: unknown };
    try {
      record = JSON.parse(line);
    } catch {
      continue; // an append cut short by the kill
    }
    const samePhase =
      record.phase === phase && (iteration === undefined || record.iteration === iteration);
    if (samePhase && typeof record.step === "number" && record.step > step) continue;
    kept.push(line);
  }
  await writeFileAtomic(file, kept.length > 0 ? `${kept.join("\n")}\n` : "");
}

/**
 * Runs the loop to the end of the schedule and returns the final metrics. Writes metrics records
 * and checkpoints into `runDir` (which must exist).
 */
export async function trainLoop<Item>(options: TrainLoopOptions<Item>): Promise<TrainLoopResult> {
  const { config, phase, runDir, items } = options;
  let progress = earlyReporter(options.progress);
  const stepOffset = options.stepOffset ?? 0;
  if (items.length === 0) {
    throw new CdpoError(
      "TRAINING",
      `${phase}: no training examples (after filtering and the eval split)`,
    );
  }

  // Schedule and optimizer.
  const totalSteps = totalStepsFor(config, items.length);
  const batchesPerEpoch = Math.ceil(items.length / config.batchSize);
  const schedule = {
    kind: config.schedule,
    lr: config.lr,
    totalSteps,
    warmupSteps: resolveWarmup(config.warmup, totalSteps),
  };
  const params = options.namedParameters.filter(([, p]) => p.requiresGrad).map(([, p]) => p);
  if (params.length === 0) {
    throw new CdpoError(
      "TRAINING",
      `${phase}: the model has no trainable parameters (requiresGrad is off)`,
    );
  }
  const optimizer = createAdamW(options.namedParameters, config);
  const accumulator = new MetricAccumulator();

  // Data position and RNG: fresh, or restored from a checkpoint.
  let step = 0;
  let epoch = 0;
  let batchInEpoch = 0;
  let microBatches = 0;
  let resumedFrom: number | undefined;
  torch.manualSeed(config.seed);
  const checkpointDir = await findResumeCheckpoint(options, stepOffset, totalSteps);
  if (checkpointDir !== undefined) {
    const { optimizerState, state } = await readCheckpoint(checkpointDir);
    if (state.totalSteps !== totalSteps) {
      throw new CdpoError(
        "STATE",
        `${checkpointDir} was written by a run of ${state.totalSteps} steps, but this run has ` +
          `${totalSteps}; resume with the run's own configuration.`,
      );
    }
    if (options.loadModel === undefined) {
      throw new CdpoError("STATE", `${phase}: resuming needs a loadModel hook`);
    }
    await options.loadModel(checkpointDir);
    optimizer.loadStateDict(optimizerState);
    step = state.step;
    epoch = state.epoch;
    batchInEpoch = state.batchInEpoch;
    microBatches = state.microBatches;
    torch.tidy(() => torch.setRngState(stateFromBase64(state.torchRng)));
    for (const [name, generator] of Object.entries(options.generators ?? {})) {
      const saved = state.generators[name];
      if (saved !== undefined) torch.tidy(() => generator.setState(stateFromBase64(saved)));
    }
    accumulator.load(state.pending);
    options.stageState?.set(state.stage);
    resumedFrom = step;
    await truncateMetrics(runDir, phase, stepOffset + step, options.iteration);
    progress.message(`cdpo ${phase}: resumed from ${checkpointDir} at step ${step}/${totalSteps}`);
  } else {
    await removePartialCheckpoints(runDir);
  }
  if (typeof options.progress === "function") progress = options.progress(totalSteps, step);

  // Epoch batches are a pure function of (seed, epoch); keep the current epoch's list.
  let epochList: Item[][] | undefined;
  let epochListFor = -1;
  const nextBatch = (): Item[] => {
    if (batchInEpoch >= batchesPerEpoch) {
      epoch++;
      batchInEpoch = 0;
    }
    if (epochListFor !== epoch) {
      epochList = batchesOfEpoch(config, items, epoch);
      epochListFor = epoch;
    }
    const batch = epochList![batchInEpoch]!;
    batchInEpoch++;
    microBatches++;
    return batch;
  };

  const tags = (globalStep: number) => ({
    step: globalStep,
    phase,
    ...(options.iteration === undefined ? {} : { iteration: options.iteration }),
  });

  const runEvaluation = async (): Promise<Record<string, number>> => {
    if (options.evaluate === undefined) return {};
    options.setTrainMode?.(false);
    const values = options.evaluate();
    options.setTrainMode?.(true);
    const prefixed: Record<string, number> = {};
    for (const [name, value] of Object.entries(values)) prefixed[`eval_${name}`] = value;
    await appendMetrics(runDir, {
      ...tags(stepOffset + step),
      epoch: microBatches / batchesPerEpoch,
      ...prefixed,
    });
    const shown = Object.entries(prefixed)
      .map(([name, value]) => `${name} ${value.toFixed(4)}`)
      .join(" ");
    progress.message(`cdpo ${phase} eval step ${step}/${totalSteps} ${shown}`);
    return prefixed;
  };

  let lastTrain: Record<string, number> = {};
  let lastEval: Record<string, number> = {};
  let intervalStart = performance.now();
  options.setTrainMode?.(true);

  while (step < totalSteps) {
    // One optimizer step: gradAccum micro-batches.
    const lr = learningRate(schedule, step);
    optimizer.setLr(lr);
    optimizer.zeroGrad();
    const stepMetrics = new MetricAccumulator();
    let stepTokens = 0;
    for (let micro = 0; micro < config.gradAccum; micro++) {
      const batch = nextBatch();
      const result = torch.tidy(() => {
        const out =
          config.precision === "bf16"
            ? torch.autocast(() => options.computeLoss(batch), { dtype: "bfloat16" })
            : options.computeLoss(batch);
        const loss = out.loss.item();
        const scaled = config.gradAccum === 1 ? out.loss : out.loss.div(config.gradAccum);
        scaled.backward();
        return { loss, metrics: out.metrics ?? {}, tokens: out.tokens };
      });
      if (!Number.isFinite(result.loss)) {
        throw new CdpoError(
          "TRAINING",
          `${phase}: the loss is ${result.loss} at step ${step + 1} (micro-batch ${micro + 1}); ` +
            "training diverged. Lower the learning rate or use --precision fp32.",
        );
      }
      stepMetrics.add({ loss: result.loss, ...result.metrics });
      stepTokens += result.tokens;
    }
    const gradNorm = torch.clipGradNorm(
      params,
      config.maxGradNorm > 0 ? config.maxGradNorm : 3e38, // 3e38: no clipping, still in float range
    );
    optimizer.step();
    step++;

    const means = stepMetrics.means();
    accumulator.add({ ...means, learning_rate: lr, grad_norm: gradNorm });
    accumulator.steps++;
    accumulator.tokens += stepTokens;
    options.afterStep?.(step, means, lr);
    progress.tick(step);

    // Logging.
    if (step % config.logEvery === 0 || step === totalSteps) {
      const values = accumulator.means();
      const elapsed = performance.now() - intervalStart;
      await appendMetrics(runDir, {
        ...tags(stepOffset + step),
        epoch: microBatches / batchesPerEpoch,
        ...values,
      });
      const extra: Record<string, number> = {};
      for (const name of options.consoleMetrics ?? []) {
        const value = values[name];
        if (value !== undefined) extra[name] = value;
      }
      progress.log({
        step,
        loss: values.loss ?? Number.NaN,
        msPerStep: elapsed / Math.max(1, accumulator.steps),
        tokensPerSecond: (accumulator.tokens * 1000) / Math.max(elapsed, 1e-9),
        extra,
      });
      lastTrain = values;
      accumulator.reset();
      intervalStart = performance.now();
    }

    // Evaluation.
    const evalNow = config.evalEvery > 0 && step % config.evalEvery === 0;
    if (evalNow || step === totalSteps) lastEval = await runEvaluation();

    // Checkpoint.
    if (config.saveEvery > 0 && step % config.saveEvery === 0 && step < totalSteps) {
      const state: TrainerState = {
        step,
        totalSteps,
        epoch,
        batchInEpoch,
        microBatches,
        torchRng: torch.tidy(() => stateToBase64(torch.getRngState())),
        generators: Object.fromEntries(
          Object.entries(options.generators ?? {}).map(([name, g]) => [
            name,
            torch.tidy(() => stateToBase64(g.getState())),
          ]),
        ),
        pending: accumulator.toJSON(),
        stage: options.stageState?.get() ?? {},
      };
      const written = await saveCheckpoint(
        runDir,
        {
          step: stepOffset + step,
          saveModel: options.saveModel,
          optimizerState: optimizer.stateDict(),
          state,
        },
        config.keepCheckpoints,
      );
      progress.message(`cdpo ${phase}: checkpoint ${written}`);
    }
  }
  progress.stop();
  options.setTrainMode?.(false);

  return {
    steps: step,
    train: lastTrain,
    eval: lastEval,
    ...(resumedFrom === undefined ? {} : { resumedFrom }),
  };
}

/** Finds the checkpoint to resume from; undefined means start fresh. */
async function findResumeCheckpoint<Item>(
  options: TrainLoopOptions<Item>,
  stepOffset: number,
  totalSteps: number,
): Promise<string | undefined> {
  if (options.resume === undefined) return undefined;
  if (options.resume !== "latest") return options.resume;
  const latest = await latestCheckpoint(options.runDir);
  if (latest === undefined) return undefined;
  const step = Number(/checkpoint-(\d+)$/.exec(latest)?.[1]);
  // A checkpoint outside this phase's global step range belongs to another phase.
  return step > stepOffset && step < stepOffset + totalSteps ? latest : undefined;
}
