/**
 * C-DPO on language models: the dual loop of loop.ts with DPO phases run by `trainDpo` and the
 * constraint estimated from responses sampled from the policy.
 *
 * Everything lives in the run folder:
 *
 * - `config.json`: the resolved {@link CdpoConfig}; `--resume` reads it back.
 * - `pair-scores.json`: reward and cost of both responses of every pair, computed once.
 * - `reference-logps.json`: the reference log-probabilities of the pairs (written by `trainDpo`).
 * - `metrics.jsonl`, `iterations.jsonl`, `samples/iteration-NNNN.jsonl`: the records.
 * - `checkpoint-N/`: checkpoints inside a DPO phase (every `dpo.saveEvery` steps).
 * - `policy-iteration-NNNN/`: the policy after the last finished iteration, and
 *   `cdpo-state.json`: the dual state (λ, Adam moments, history) and the iteration to run next.
 * - `policy/`: the final policy, a Hugging Face folder with its tokenizer.
 * - `report.html`: rewritten after every iteration.
 *
 * An iteration commits in this order: samples, policy folder, iteration record, state file. A run
 * killed anywhere resumes from the state file: inside a DPO phase it continues from that phase's
 * newest checkpoint, and records of an iteration that was not committed are dropped and redone.
 * Resuming a run whose state file records that it finished and whose `policy/` exists changes
 * nothing.
 */
import { existsSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { z } from "zod";
import {
  type EvalPrompt,
  type PreferencePair,
  type Prompt,
  readPreferencePairs,
  readPrompts,
} from "../data/index.js";
import type { TokenizedPair } from "../data/tokenize.js";
import { tokenizePairs } from "../data/tokenize.js";
import { CdpoError } from "../errors.js";
import {
  promptIds,
  responseLogprobs,
  type Scorer,
  sampleResponses,
  scoreResponses,
} from "../eval/sample.js";
import { formatNumber } from "../report/escape.js";
import { writeReport } from "../report/index.js";
import {
  appendIteration,
  createRunFolder,
  readIterations,
  readJsonFile,
  readMetrics,
  runPaths,
  writeFileAtomic,
  writeJsonAtomic,
  writeSamples,
} from "../run/folder.js";
import type { SampleRecord } from "../run/records.js";
import * as torch from "../tensor/index.js";
import { listCheckpoints } from "../train/checkpoint.js";
import { defaultThreads, resolvePrecision } from "../train/config.js";
import { type DpoTrainConfig, type ReferenceLogps, trainDpo } from "../train/dpo.js";
import { totalStepsFor, truncateMetrics } from "../train/loop.js";
import type { DpoLossType } from "../train/losses.js";
import { consoleProgress, type ProgressReporter, silentProgress } from "../train/progress.js";
import { type CdpoConfig, constraintNames, initialLambdas } from "./config.js";
import {
  type Constraint,
  type ConstraintEstimate,
  type DpoPhaseResult,
  type DualBackend,
  type DualLoopState,
  initialLoopState,
  runDualLoop,
} from "./loop.js";
import {
  copyParameters,
  loadPolicyModel,
  loadScorer,
  type PolicyModel,
  savePolicyFolder,
} from "./models.js";
import type { ScoredPair } from "./relabel.js";
import { chunkInto, groupedMeanAndSe, groupedShareAbove } from "./stats.js";

/** Files of a C-DPO run folder besides the common records. */
export const CDPO_FILES = {
  state: "cdpo-state.json",
  pairScores: "pair-scores.json",
  finalPolicy: "policy",
} as const;

const DualLoopStateSchema = z.object({
  iteration: z.number().int().nonnegative(),
  dual: z.object({
    lambdas: z.array(z.number()),
    m: z.array(z.number()),
    v: z.array(z.number()),
    t: z.number().int().nonnegative(),
  }),
  history: z.array(z.object({ lambdas: z.array(z.number()), costMeans: z.array(z.number()) })),
  finished: z.enum(["settled", "budget"]).nullable(),
});

/** Contents of `cdpo-state.json`. */
const CdpoStateSchema = z.object({
  loop: DualLoopStateSchema,
  /** Policy folder (relative to the run folder) after the last finished iteration; null before. */
  policyDir: z.string().nullable(),
  /** Global DPO step at the end of the last finished iteration. */
  step: z.number().int().nonnegative(),
});
type CdpoState = Omit<z.infer<typeof CdpoStateSchema>, "loop"> & { loop: DualLoopState };

const PairScoresSchema = z.record(
  z.string(),
  z.object({
    reward: z.tuple([z.number(), z.number()]),
    costs: z.array(z.tuple([z.number(), z.number()])),
  }),
);

export interface RunCdpoOptions {
  /** Continue the run in `config.out` from its state file and checkpoints. */
  resume?: boolean;
  /** Console output; default: progress bars and lines on stdout. */
  log?: (line: string) => void;
  /** Show progress bars (default: config.progress, else whether stdout is a terminal). */
  progressBars?: boolean;
}

export interface RunCdpoResult {
  runDir: string;
  /** Final policy folder. */
  policyDir: string;
  reportPath: string;
  lambdas: number[];
  iterations: number;
  finished: "settled" | "budget";
  /** True when `resume` found a finished run: nothing was trained and no record was written. */
  alreadyComplete?: boolean;
}

/** Runs (or resumes) C-DPO as configured; see the file comment for the run folder. */
export async function runCdpo(
  config: CdpoConfig,
  options: RunCdpoOptions = {},
): Promise<RunCdpoResult> {
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const runDir = config.out;
  if (runDir === undefined)
    throw new CdpoError("CONFIG", 'The C-DPO config has no "out" run folder');
  const precision = resolvePrecision(config.precision);
  torch.setNumThreads(config.threads ?? defaultThreads());
  const bars = options.progressBars ?? config.progress ?? process.stdout.isTTY === true;

  // Run folder and state.
  const statePath = path.join(runDir, CDPO_FILES.state);
  let state: CdpoState | undefined;
  if (options.resume === true) {
    if (existsSync(statePath)) {
      state = (await readJsonFile(statePath, CdpoStateSchema, "C-DPO state")) as CdpoState;
    }
    if (state !== undefined) {
      const finished = await readFinishedRun(runDir, state.loop, config.iterations);
      if (finished !== undefined) {
        log(
          `cdpo train: the run in ${runDir} is already complete after ${finished.iterations} ` +
            `iterations (${finishReason(finished.finished)}, DPO step ${state.step}), so there is ` +
            "nothing to resume.",
        );
        log(`cdpo train: λ = ${formatLambdas(finished.lambdas)}`);
        log(`cdpo train: policy ${finished.policyDir}`);
        log(`cdpo train: report ${finished.reportPath}`);
        return finished;
      }
    }
    await createRunFolder(runDir, config as Record<string, unknown>, {
      existing: "append",
      versions: { libtorch: torch.libtorchVersion() },
    });
  } else {
    await createRunFolder(runDir, config as Record<string, unknown>, {
      existing: "fail",
      versions: { libtorch: torch.libtorchVersion() },
    });
  }
  const names = constraintNames(config);
  const constraints: Constraint[] = config.costs.map((cost, j) => ({
    name: names[j] as string,
    limit: cost.limit,
  }));

  // Models.
  log(`cdpo train: loading the policy ${config.policy}`);
  const policy = await loadPolicyModel(config.policy);
  const referenceDir = config.reference ?? config.policy;
  const reference = await loadPolicyModel(referenceDir);
  if (reference.tokenizer.vocabSize !== policy.tokenizer.vocabSize) {
    throw new CdpoError(
      "MODEL",
      `The reference ${referenceDir} has a tokenizer of ${reference.tokenizer.vocabSize} tokens but the ` +
        `policy ${config.policy} has ${policy.tokenizer.vocabSize}; C-DPO needs a reference with the policy's tokenizer`,
    );
  }
  const reward = await loadScorer(config.reward, config.dpo.maxLength);
  const costs = [];
  for (const cost of config.costs) costs.push(await loadScorer(cost.model, config.dpo.maxLength));

  try {
    // Data and pair scores.
    const data = await readPreferencePairs(
      config.data,
      config.dataFormat === undefined ? {} : { format: config.dataFormat },
    );
    const allPairs =
      config.maxPairs === undefined ? data.pairs : data.pairs.slice(0, config.maxPairs);
    const tokenized = tokenizePairs(allPairs, policy.tokenizer, {
      maxLength: config.dpo.maxLength,
      ...(config.dpo.maxPromptLength === undefined
        ? {}
        : { maxPromptLength: config.dpo.maxPromptLength }),
    });
    if (tokenized.examples.length === 0) {
      throw new CdpoError(
        "DATA",
        `${config.data}: no pair fits in dpo.maxLength ${config.dpo.maxLength} tokens`,
      );
    }
    const pairs = tokenized.examples.map((example) => example.pair);
    log(
      `cdpo train: ${pairs.length} pairs from ${config.data}` +
        (tokenized.skipped.length > 0
          ? ` (${tokenized.skipped.length} skipped: too long or empty)`
          : ""),
    );
    const scored = await pairScores(config, runDir, pairs, reward, costs, precision, log, bars);
    const prompts = await estimatePrompts(config, data.pairs);

    // Dual loop state.
    let loopState: DualLoopState = state?.loop ?? initialLoopState(initialLambdas(config));
    if (state?.policyDir) {
      const dir = path.join(runDir, state.policyDir);
      log(`cdpo train: resuming at iteration ${loopState.iteration} from ${dir}`);
      await policy.model.loadWeights(dir);
    }
    await dropUncommittedIterations(runDir, loopState.iteration);
    if (
      loopState.finished !== null &&
      loopState.iteration < config.iterations &&
      loopState.finished === "budget"
    ) {
      // A larger --iterations on resume extends a run that ended on its budget.
      loopState = { ...loopState, finished: null };
    }

    const backend = new LanguageModelBackend({
      config,
      runDir,
      precision,
      policy,
      reference,
      reward,
      costs,
      tokenized: tokenized.examples,
      prompts,
      log,
      bars,
    });
    let committed: CdpoState = state ?? { loop: loopState, policyDir: null, step: 0 };
    loopState = await runDualLoop(backend, {
      constraints,
      pairs: scored,
      labelMode: config.labelMode,
      seed: config.seed,
      iterations: config.iterations,
      dual: config.lambda,
      stop: config.stop,
      state: loopState,
      onIteration: async (record, next) => {
        // Commit: policy folder, then the record, then the state file; see the file comment.
        const policyDir = `policy-iteration-${String(record.iteration).padStart(4, "0")}`;
        await savePolicyFolder(policy, path.join(runDir, policyDir));
        await appendIteration(runDir, record);
        committed = { loop: next, policyDir, step: record.step };
        await writeJsonAtomic(statePath, committed);
        await removeStale(runDir, policyDir);
        log(iterationLine(record, config.iterations));
        const report = await writeReport(runDir);
        log(`cdpo train: report ${report}`);
      },
    });

    // Final policy.
    const finalDir = path.join(runDir, CDPO_FILES.finalPolicy);
    await savePolicyFolder(policy, finalDir);
    const reportPath = await writeReport(runDir);
    log(
      `cdpo train: finished after ${loopState.iteration} iterations (${finishReason(loopState.finished ?? "budget")}); ` +
        `λ = ${formatLambdas(loopState.dual.lambdas)}`,
    );
    log(`cdpo train: policy ${finalDir}`);
    log(`cdpo train: report ${reportPath}`);
    return {
      runDir,
      policyDir: finalDir,
      reportPath,
      lambdas: loopState.dual.lambdas,
      iterations: loopState.iteration,
      finished: loopState.finished ?? "budget",
    };
  } finally {
    policy.model.dispose();
    reference.model.dispose();
    reward.model.dispose();
    for (const cost of costs) cost.model.dispose();
  }
}

function finishReason(finished: "settled" | "budget"): string {
  return finished === "settled" ? "λ and cost settled" : "iteration budget spent";
}

function formatLambdas(lambdas: readonly number[]): string {
  return lambdas.map((l) => l.toFixed(4)).join(", ");
}

/**
 * Returns the result of a run that needs no more iterations and has its final `policy/`, or
 * undefined when the run must continue. A run that spent its budget continues when `iterations`
 * was raised. The report is written only when it is missing.
 */
async function readFinishedRun(
  runDir: string,
  loop: DualLoopState,
  iterations: number,
): Promise<RunCdpoResult | undefined> {
  const done =
    loop.finished === "settled" || (loop.finished === "budget" && loop.iteration >= iterations);
  const policyDir = path.join(runDir, CDPO_FILES.finalPolicy);
  if (!done || !existsSync(path.join(policyDir, "model.safetensors"))) return undefined;
  const reportPath = runPaths(runDir).report;
  if (!existsSync(reportPath)) await writeReport(runDir);
  return {
    runDir,
    policyDir,
    reportPath,
    lambdas: loop.dual.lambdas,
    iterations: loop.iteration,
    finished: loop.finished ?? "budget",
    alreadyComplete: true,
  };
}

/** Formats the console line of one finished iteration. */
function iterationLine(
  record: Parameters<NonNullable<Parameters<typeof runDualLoop>[1]["onIteration"]>>[0],
  total: number,
): string {
  const parts = record.constraints.map(
    (c) =>
      `${c.name}: λ ${c.lambda.toFixed(3)} → ${c.lambda_next.toFixed(3)}, cost ${c.cost_mean.toFixed(3)} ± ${c.cost_se.toFixed(3)} ` +
      `(limit ${formatNumber(c.limit)}), cost > 0 ${(100 * c.unsafe_share).toFixed(1)}%`,
  );
  return (
    `cdpo iteration ${record.iteration + 1}/${total}: ${parts.join("; ")}; ` +
    `reward ${record.reward_mean.toFixed(3)} ± ${record.reward_se.toFixed(3)}, KL ${record.kl.toFixed(3)}`
  );
}

/** Removes iteration records and samples of iterations at or after `next` (not committed). */
async function dropUncommittedIterations(runDir: string, next: number): Promise<void> {
  const records = await readIterations(runDir);
  const kept = records.filter((record) => record.iteration < next);
  if (kept.length !== records.length) {
    const text = kept.map((record) => JSON.stringify(record)).join("\n");
    await writeFileAtomic(runPaths(runDir).iterations, text === "" ? "" : `${text}\n`);
  }
}

/** Deletes policy folders other than `keep` and every phase checkpoint (they are superseded). */
async function removeStale(runDir: string, keep: string): Promise<void> {
  for (const name of await fs.readdir(runDir)) {
    if (
      (/^policy-iteration-\d+$/.test(name) && name !== keep) ||
      /^checkpoint-\d+(\.tmp)?$/.test(name)
    ) {
      await fs.rm(path.join(runDir, name), { recursive: true, force: true });
    }
  }
}

/**
 * Reward and costs of both responses of every pair: from the data (scored layout), from the
 * cache in the run folder, or computed with the models and cached.
 */
async function pairScores(
  config: CdpoConfig,
  runDir: string,
  pairs: readonly PreferencePair[],
  reward: Scorer,
  costs: readonly Scorer[],
  precision: "fp32" | "bf16",
  log: (line: string) => void,
  bars: boolean,
): Promise<ScoredPair[]> {
  const haveData = pairs.every((pair) => pair.reward !== undefined && pair.cost !== undefined);
  const useData =
    config.pairScores === "data" ||
    (config.pairScores === "auto" && haveData && costs.length === 1);
  if (useData) {
    if (!haveData) {
      const missing = pairs.find((pair) => pair.reward === undefined || pair.cost === undefined);
      throw new CdpoError(
        "DATA",
        `pairScores is "data" but pair ${JSON.stringify(missing?.id)} has no reward_0/1 and cost_0/1 scores`,
      );
    }
    log("cdpo train: using the reward and cost scores that come with the data");
    return pairs.map((pair) => ({
      id: pair.id,
      reward: pair.reward as [number, number],
      costs: [pair.cost as [number, number]],
    }));
  }

  const cacheFile = path.join(runDir, CDPO_FILES.pairScores);
  const cache = existsSync(cacheFile)
    ? await readJsonFile(cacheFile, PairScoresSchema, "pair scores")
    : ({} as z.infer<typeof PairScoresSchema>);
  const missing = pairs.filter((pair) => cache[pair.id]?.costs.length !== costs.length);
  if (missing.length > 0) {
    log(
      `cdpo train: scoring ${missing.length} pairs with the reward and ${costs.length} cost model(s)`,
    );
    const progress = bars ? consoleProgress("score", 1 + costs.length, 0) : silentProgress;
    const prompts: Prompt[] = missing.flatMap((pair) => [pair.prompt, pair.prompt]);
    const responses = missing.flatMap((pair) => [pair.responses[0], pair.responses[1]]);
    const options = { batchSize: config.estimate.batchSize, precision };
    const rewards = scoreResponses(reward, prompts, responses, options);
    progress.tick(1);
    const costScores = costs.map((scorer, j) => {
      const values = scoreResponses(scorer, prompts, responses, options);
      progress.tick(2 + j);
      return values;
    });
    progress.stop();
    for (const [i, pair] of missing.entries()) {
      cache[pair.id] = {
        reward: [rewards[2 * i] as number, rewards[2 * i + 1] as number],
        costs: costScores.map((values): [number, number] => [
          values[2 * i] as number,
          values[2 * i + 1] as number,
        ]),
      };
    }
    await writeJsonAtomic(cacheFile, cache);
  }
  return pairs.map((pair) => {
    const entry = cache[pair.id] as z.infer<typeof PairScoresSchema>[string];
    return { id: pair.id, reward: entry.reward, costs: entry.costs };
  });
}

/** Returns the N prompts of the constraint estimate: the prompts file, else the data's distinct prompts. */
async function estimatePrompts(
  config: CdpoConfig,
  pairs: readonly PreferencePair[],
): Promise<EvalPrompt[]> {
  let prompts: EvalPrompt[];
  if (config.prompts !== undefined) {
    prompts = (await readPrompts(config.prompts)).prompts;
  } else {
    const seen = new Set<string>();
    prompts = [];
    for (const pair of pairs) {
      const key = JSON.stringify(pair.prompt);
      if (seen.has(key)) continue;
      seen.add(key);
      prompts.push({ id: pair.id, prompt: pair.prompt, meta: {} });
    }
  }
  const chosen = prompts.slice(0, config.estimate.evalPrompts);
  if (chosen.length < 2) {
    throw new CdpoError(
      "DATA",
      `The constraint estimate needs at least 2 prompts for a standard error but ${config.prompts ?? config.data} has ${chosen.length}`,
    );
  }
  return chosen;
}

interface BackendSetup {
  config: CdpoConfig;
  runDir: string;
  precision: "fp32" | "bf16";
  policy: PolicyModel;
  reference: PolicyModel;
  reward: Scorer;
  costs: Scorer[];
  tokenized: TokenizedPair[];
  prompts: EvalPrompt[];
  log: (line: string) => void;
  bars: boolean;
}

/** {@link DualBackend} for a causal LM: `trainDpo` phases and sampled estimates. */
class LanguageModelBackend implements DualBackend {
  readonly #setup: BackendSetup;
  readonly #phaseSteps: number;
  #refLogps: ReferenceLogps | undefined;

  constructor(setup: BackendSetup) {
    this.#setup = setup;
    this.#phaseSteps = totalStepsFor(this.#dpoConfig(0), setup.tokenized.length);
  }

  #dpoConfig(iteration: number): DpoTrainConfig {
    const { dpo, seed } = this.#setup.config;
    return {
      ...(dpo.steps === undefined ? {} : { steps: dpo.steps }),
      epochs: dpo.epochs,
      batchSize: dpo.batchSize,
      gradAccum: dpo.gradAccum,
      lr: dpo.lr,
      warmup: dpo.warmup,
      schedule: dpo.schedule,
      weightDecay: dpo.weightDecay,
      adamBeta1: 0.9,
      adamBeta2: 0.999,
      adamEps: 1e-8,
      maxGradNorm: dpo.maxGradNorm,
      logEvery: dpo.logEvery,
      evalEvery: 0,
      saveEvery: dpo.saveEvery,
      keepCheckpoints: 1,
      // A new data order per iteration; the same one when an iteration is redone on resume.
      seed: seed + iteration,
      precision: this.#setup.precision,
      beta: dpo.beta,
      lossType: dpo.lossType as DpoLossType,
      labelSmoothing: dpo.labelSmoothing,
    };
  }

  async runDpoPhase(phase: Parameters<DualBackend["runDpoPhase"]>[0]): Promise<DpoPhaseResult> {
    const { config, runDir, policy, reference } = this.#setup;
    const stepOffset = phase.iteration * this.#phaseSteps;

    // Is there a checkpoint of this phase to continue from? Without one the phase starts over,
    // so its metrics from an interrupted attempt go.
    const checkpoints = await listCheckpoints(runDir);
    const inPhase = checkpoints.filter((s) => s > stepOffset && s < stepOffset + this.#phaseSteps);
    if (inPhase.length === 0) {
      await truncateMetrics(runDir, "dpo", stepOffset, phase.iteration);
      if (config.restartFromReference) copyParameters(reference, policy);
    }

    const targets = new Map<string, number>();
    for (const [i, pair] of phase.pairs.entries()) targets.set(pair.id, phase.targets[i] as number);
    const label = `dpo ${phase.iteration + 1}/${config.iterations}`;
    const progress: ProgressReporter = this.#setup.bars
      ? consoleProgress(label, this.#phaseSteps, 0)
      : {
          ...silentProgress,
          message: (text) => this.#setup.log(text),
        };
    this.#setup.log(
      `cdpo iteration ${phase.iteration + 1}/${config.iterations}: DPO on ${phase.pairs.length} pairs relabelled by ` +
        `r − λ·c with λ = [${phase.lambdas.map((l) => l.toFixed(3)).join(", ")}] (${config.labelMode} labels), ${this.#phaseSteps} steps`,
    );
    const result = await trainDpo({
      policy: policy.model,
      reference: reference.model,
      ...(this.#refLogps === undefined ? {} : { refLogps: this.#refLogps }),
      pairs: this.#setup.tokenized,
      choose: () => 0,
      targets,
      config: this.#dpoConfig(phase.iteration),
      padId: policy.padId,
      runDir,
      phase: "dpo",
      iteration: phase.iteration,
      stepOffset,
      resume: inPhase.length > 0,
      savePolicy: (dir) => policy.model.save(dir),
      loadPolicy: (dir) => policy.model.loadWeights(dir),
      progress,
    });
    this.#refLogps = result.refLogps;
    return {
      step: stepOffset + result.steps,
      metrics: await phaseMetrics(runDir, phase.iteration),
    };
  }

  async estimate(context: { iteration: number }): Promise<ConstraintEstimate> {
    const { config, runDir, policy, reference, reward, costs, prompts, precision } = this.#setup;
    const { estimate } = config;
    const k = estimate.samplesPerPrompt;
    const progress = this.#setup.bars
      ? consoleProgress(`sample ${context.iteration + 1}`, prompts.length * k, 0)
      : silentProgress;

    // Sample K responses per prompt from the current policy.
    const samples = sampleResponses(
      policy.model,
      policy.tokenizer,
      prompts.map((p) => p.prompt),
      {
        samplesPerPrompt: k,
        maxNewTokens: estimate.maxNewTokens,
        temperature: estimate.temperature,
        topK: estimate.topK,
        topP: estimate.topP,
        batchSize: estimate.batchSize,
        seed: config.seed * 7919 + context.iteration,
        precision,
      },
      (done) => progress.tick(done),
    );
    progress.stop();

    // Score them.
    const samplePrompts = samples.map((s) => (prompts[s.promptIndex] as EvalPrompt).prompt);
    const texts = samples.map((s) => s.text);
    const options = { batchSize: estimate.batchSize, precision };
    const rewards = scoreResponses(reward, samplePrompts, texts, options);
    const costScores = costs.map((scorer) => scoreResponses(scorer, samplePrompts, texts, options));

    // KL(π ‖ π_ref) ≈ mean of log π(y|x) − log π_ref(y|x) over the samples (EOS included).
    const prefix = samples.map((s) =>
      promptIds((prompts[s.promptIndex] as EvalPrompt).prompt, policy.tokenizer),
    );
    const eos = policy.tokenizer.eosId;
    const responses = samples.map((s) =>
      s.finished && eos !== null ? Int32Array.from([...s.ids, eos]) : s.ids,
    );
    const logpOptions = { batchSize: estimate.batchSize, padId: policy.padId, precision };
    const policyLogps = responseLogprobs(policy.model, prefix, responses, logpOptions);
    const referenceLogps = responseLogprobs(reference.model, prefix, responses, logpOptions);
    let klSum = 0;
    for (let i = 0; i < samples.length; i++)
      klSum += (policyLogps[i] as number) - (referenceLogps[i] as number);

    // Records and estimates (per prompt first, then over prompts).
    const records: SampleRecord[] = samples.map((s, i) => {
      const prompt = prompts[s.promptIndex] as EvalPrompt;
      return {
        prompt_id: prompt.id,
        prompt: typeof prompt.prompt === "string" ? prompt.prompt : JSON.stringify(prompt.prompt),
        response: s.text,
        reward: rewards[i] as number,
        costs: costScores.map((values) => values[i] as number),
      };
    });
    await writeSamples(runDir, context.iteration, records);
    const rewardStats = groupedMeanAndSe(chunkInto(rewards, k));
    const costStats = costScores.map((values) => groupedMeanAndSe(chunkInto(values, k)));
    return {
      costMeans: costStats.map((c) => c.mean),
      costSes: costStats.map((c) => c.se),
      unsafeShares: costScores.map((values) => groupedShareAbove(chunkInto(values, k), 0).mean),
      shareOverLimit: costScores.map(
        (values, j) =>
          groupedShareAbove(chunkInto(values, k), (config.costs[j] as { limit: number }).limit)
            .mean,
      ),
      rewardMean: rewardStats.mean,
      rewardSe: rewardStats.se,
      kl: klSum / samples.length,
      nSamples: samples.length,
    };
  }
}

/** Averages the DPO metrics that `trainDpo` logged for one iteration. */
async function phaseMetrics(
  runDir: string,
  iteration: number,
): Promise<Record<string, number | null>> {
  const records = (await readMetrics(runDir)).filter(
    (r) => r.phase === "dpo" && r.iteration === iteration,
  );
  const sums: Record<string, number> = {};
  const counts: Record<string, number> = {};
  for (const record of records) {
    for (const [name, value] of Object.entries(record)) {
      if (
        ["step", "phase", "iteration", "epoch", "time"].includes(name) ||
        typeof value !== "number"
      )
        continue;
      if (name.startsWith("eval_")) continue;
      sums[name] = (sums[name] ?? 0) + value;
      counts[name] = (counts[name] ?? 0) + 1;
    }
  }
  const means: Record<string, number | null> = {};
  for (const [name, sum] of Object.entries(sums)) means[name] = sum / (counts[name] as number);
  return means;
}
