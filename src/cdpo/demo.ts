/**
 * `cdpo demo`: the whole pipeline on the built-in safety dataset, from nothing.
 *
 * 1. Generate the dataset (PKU-SafeRLHF layout): benign prompts with correct, wrong and refusal
 *    responses, harmful prompts with a compliance and a refusal.
 * 2. Create a small Llama over the byte tokenizer and SFT it on a mix. Most benign prompts get the
 *    correct answer and a few get a refusal. Harmful prompts get a compliance or a refusal with
 *    equal odds, so the SFT model sometimes complies and sometimes refuses.
 * 3. Train a reward model on the helpfulness label and a cost model on the safety labels, both
 *    from the SFT weights with a new score head (as Safe-RLHF does).
 * 4. Run C-DPO at a cost limit, and two DPO baselines with the same number of optimizer steps:
 *    DPO on the helpfulness label only, and DPO on the safety label only.
 * 5. Evaluate SFT, both baselines and C-DPO on the held-out test prompts: learned reward and cost,
 *    and the dataset's oracle (helpful answers, refusals of harmful prompts, harmful completions).
 *
 * The output folder is the C-DPO run folder (λ trajectory in iterations.jsonl, samples, report)
 * with the other stages in subfolders and the table in eval.json.
 */
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { writeBuiltin } from "../data/builtin/index.js";
import {
  type EvalPrompt,
  type PreferencePair,
  readPreferencePairs,
  readPrompts,
} from "../data/index.js";
import { mixSeed, mulberry32 } from "../data/shuffle.js";
import { tokenizeSequences } from "../data/tokenize.js";
import { CdpoError } from "../errors.js";
import { evaluateModels } from "../eval/evaluate.js";
import { scoreResponses } from "../eval/sample.js";
import { formatEvalTable } from "../eval/table.js";
import { writeReport } from "../report/index.js";
import { writeEval, writeJsonAtomic } from "../run/folder.js";
import * as torch from "../tensor/index.js";
import { BYTE_PAD_ID, createByteTokenizer } from "../tokenizer/index.js";
import { resolvePrecision } from "../train/config.js";
import { initModel, llamaConfig } from "../train/models.js";
import { consoleProgress } from "../train/progress.js";
import { trainSft } from "../train/sft.js";
import { runStage, saveFinal } from "../train/stages.js";
import { resolveCdpoConfig } from "./config.js";
import { loadScorer } from "./models.js";
import { runCdpo } from "./train.js";

/** Sizes and step counts of the demo; {@link DEMO_DEFAULTS} and {@link DEMO_QUICK} are the presets. */
export interface DemoSettings {
  trainPairs: number;
  testPairs: number;
  model: { hidden: number; layers: number; heads: number; kvHeads: number; intermediate: number };
  /** Share of benign SFT examples that get a refusal instead of the correct answer. */
  sftBenignRefusal: number;
  /** Share of harmful SFT examples that get a compliance instead of a refusal. */
  sftHarmfulCompliance: number;
  sft: { steps: number; batchSize: number; lr: number };
  reward: { steps: number; batchSize: number; lr: number };
  cost: { steps: number; batchSize: number; lr: number };
  cdpo: {
    /** Training pairs C-DPO and the DPO baselines use (the first ones of the file). */
    pairs: number;
    iterations: number;
    dpoSteps: number;
    batchSize: number;
    lr: number;
    beta: number;
    /**
     * The cost limit is the expected cost of a reference behaviour: complying with this share of
     * the harmful estimate prompts, refusing the others, and answering the benign ones. See
     * {@link demoLimit}.
     */
    targetCompliance: number;
    lambdaLr: number;
    evalPrompts: number;
    samplesPerPrompt: number;
  };
  /** K responses per test prompt in the final evaluation. */
  evalSamples: number;
  maxNewTokens: number;
  seed: number;
}

export const DEMO_DEFAULTS: DemoSettings = {
  trainPairs: 3000,
  testPairs: 300,
  model: { hidden: 96, layers: 3, heads: 4, kvHeads: 2, intermediate: 256 },
  sftBenignRefusal: 0.1,
  sftHarmfulCompliance: 0.5,
  sft: { steps: 300, batchSize: 64, lr: 3e-3 },
  reward: { steps: 100, batchSize: 16, lr: 1e-3 },
  cost: { steps: 100, batchSize: 16, lr: 1e-3 },
  cdpo: {
    pairs: 1200,
    iterations: 8,
    dpoSteps: 30,
    batchSize: 16,
    lr: 2e-4,
    beta: 1,
    targetCompliance: 0.1,
    lambdaLr: 0.1,
    evalPrompts: 200,
    samplesPerPrompt: 4,
  },
  evalSamples: 8,
  maxNewTokens: 64,
  seed: 0,
};

/** About a fifth of the default work, for tests and a first look. */
export const DEMO_QUICK: DemoSettings = {
  ...DEMO_DEFAULTS,
  trainPairs: 1000,
  testPairs: 100,
  model: { hidden: 64, layers: 2, heads: 4, kvHeads: 2, intermediate: 176 },
  sft: { steps: 120, batchSize: 32, lr: 3e-3 },
  reward: { steps: 40, batchSize: 16, lr: 1e-3 },
  cost: { steps: 40, batchSize: 16, lr: 1e-3 },
  cdpo: {
    ...DEMO_DEFAULTS.cdpo,
    iterations: 3,
    dpoSteps: 15,
    evalPrompts: 24,
    samplesPerPrompt: 2,
  },
  evalSamples: 2,
  maxNewTokens: 56,
};

export interface DemoOptions {
  out: string;
  settings: DemoSettings;
  threads?: number;
  /** Progress bars (default: stdout is a terminal). */
  progressBars?: boolean;
  log?: (line: string) => void;
}

export interface DemoResult {
  out: string;
  evalPath: string;
  reportPath: string;
  table: Awaited<ReturnType<typeof evaluateModels>>["table"];
  seconds: number;
}

/** Response type of each response of a built-in pair ("correct", "wrong", "refusal", "complies"). */
function responseTypes(pair: PreferencePair): [string, string] {
  const a = pair.meta.response_0_type;
  const b = pair.meta.response_1_type;
  if (typeof a !== "string" || typeof b !== "string") {
    throw new CdpoError(
      "DATA",
      `Pair ${pair.id} has no response_0_type/response_1_type: not a built-in pair`,
    );
  }
  return [a, b];
}

/**
 * Builds the SFT mix: one (prompt, response) per pair. A benign prompt gets the correct answer,
 * or with probability `benignRefusal` the pair's refusal when it has one. A harmful prompt gets
 * the compliance with probability `harmfulCompliance`, else the refusal.
 */
export function sftMix(
  pairs: readonly PreferencePair[],
  options: { benignRefusal: number; harmfulCompliance: number; seed: number },
): { id: string; prompt: PreferencePair["prompt"]; response: string }[] {
  const random = mulberry32(mixSeed(options.seed, 11));
  return pairs.map((pair) => {
    const types = responseTypes(pair);
    const index = (type: string) => types.indexOf(type);
    let pick: number;
    if (types.includes("complies")) {
      pick = random() < options.harmfulCompliance ? index("complies") : index("refusal");
    } else if (types.includes("refusal") && random() < options.benignRefusal) {
      pick = index("refusal");
    } else {
      pick = index("correct");
    }
    return { id: pair.id, prompt: pair.prompt, response: pair.responses[pick] as string };
  });
}

/** The demo's cost limit and the numbers it is made of. */
export interface DemoLimit {
  limit: number;
  /** Mean cost of the dataset's correct answers to benign prompts. */
  benign: number;
  /** Mean cost of the dataset's refusals of harmful prompts. */
  refusal: number;
  /** Mean cost of the dataset's compliances with harmful prompts. */
  compliance: number;
  /** Share of harmful prompts among the prompts the constraint is estimated on. */
  harmfulShare: number;
}

/**
 * Sets the cost limit on the trained cost model's own scale: the expected cost, over the
 * estimate prompts, of a policy that answers benign prompts correctly, complies with a share
 * `targetCompliance` of harmful prompts and refuses the rest. Mean costs per response type come
 * from scoring the dataset's responses of `pairs`.
 */
export async function demoLimit(options: {
  costDir: string;
  pairs: readonly PreferencePair[];
  prompts: readonly EvalPrompt[];
  targetCompliance: number;
  precision: "fp32" | "bf16";
}): Promise<DemoLimit> {
  const scorer = await loadScorer(options.costDir, 256);
  try {
    const byType = new Map<string, number[]>();
    const prompts: PreferencePair["prompt"][] = [];
    const responses: string[] = [];
    const types: string[] = [];
    for (const pair of options.pairs) {
      const pairTypes = responseTypes(pair);
      const harmful = pairTypes.includes("complies");
      for (const index of [0, 1] as const) {
        const type = pairTypes[index] as string;
        if (type === "wrong") continue;
        prompts.push(pair.prompt);
        responses.push(pair.responses[index]);
        types.push(harmful && type === "refusal" ? "harmful-refusal" : type);
      }
    }
    const costs = scoreResponses(scorer, prompts, responses, {
      batchSize: 64,
      precision: options.precision,
    });
    for (const [i, type] of types.entries()) {
      const list = byType.get(type) ?? [];
      list.push(costs[i] as number);
      byType.set(type, list);
    }
    const mean = (type: string) => {
      const list = byType.get(type);
      if (list === undefined || list.length === 0) {
        throw new CdpoError(
          "DATA",
          `The demo data has no "${type}" response to set the cost limit from`,
        );
      }
      return list.reduce((a, b) => a + b, 0) / list.length;
    };
    const benign = mean("correct");
    const refusal = mean("harmful-refusal");
    const compliance = mean("complies");
    const harmful = options.prompts.filter(
      (p) => p.category?.startsWith("harmful/") === true,
    ).length;
    const harmfulShare = harmful / options.prompts.length;
    const rho = options.targetCompliance;
    const limit =
      harmfulShare * (rho * compliance + (1 - rho) * refusal) + (1 - harmfulShare) * benign;
    return { limit, benign, refusal, compliance, harmfulShare };
  } finally {
    scorer.model.dispose();
  }
}

/** Runs the demo; see the file comment. */
export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const started = performance.now();
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const s = options.settings;
  const out = options.out;
  const threads = options.threads ?? Math.max(1, (await import("node:os")).availableParallelism());
  torch.setNumThreads(threads);
  const precision = resolvePrecision("auto");
  const bars = options.progressBars ?? process.stdout.isTTY === true;
  const stages = 8;
  let stageNumber = 0;
  const header = (title: string) => {
    stageNumber++;
    const elapsed = ((performance.now() - started) / 1000).toFixed(0);
    log(`\n== [${stageNumber}/${stages}] ${title} (${elapsed} s elapsed) ==`);
  };
  await fs.mkdir(out, { recursive: true });
  await writeJsonAtomic(path.join(out, "demo.json"), { settings: s, threads, precision });

  // 1. Data.
  header(`Data: built-in safety dataset, ${s.trainPairs} training and ${s.testPairs} test pairs`);
  const files = await writeBuiltin(path.join(out, "data"), {
    train: s.trainPairs,
    test: s.testPairs,
    seed: s.seed,
  });
  const trainPairs = (await readPreferencePairs(files.train)).pairs;
  const testPrompts = (await readPrompts(files.prompts)).prompts;
  log(
    `cdpo demo: ${files.train}, ${files.test}, ${testPrompts.length} test prompts in ${files.prompts}`,
  );

  // 2. SFT.
  header(
    `SFT: Llama (hidden ${s.model.hidden}, ${s.model.layers} layers) from scratch, byte tokenizer, ${s.sft.steps} steps`,
  );
  const sftDir = path.join(out, "sft");
  const tokenizer = createByteTokenizer();
  const mix = sftMix(trainPairs, {
    benignRefusal: s.sftBenignRefusal,
    harmfulCompliance: s.sftHarmfulCompliance,
    seed: s.seed,
  });
  const sequences = tokenizeSequences(mix, tokenizer, { maxLength: 256 }).examples;
  const policy = initModel(llamaConfig({ ...s.model, maxPositions: 512 }), "causal-lm", s.seed);
  try {
    await fs.mkdir(sftDir, { recursive: true });
    await trainSft({
      model: policy,
      sequences,
      config: {
        steps: s.sft.steps,
        epochs: 1,
        batchSize: s.sft.batchSize,
        gradAccum: 1,
        lr: s.sft.lr,
        warmup: 0.05,
        schedule: "cosine",
        weightDecay: 0.01,
        adamBeta1: 0.9,
        adamBeta2: 0.99,
        adamEps: 1e-8,
        maxGradNorm: 1,
        logEvery: 20,
        evalEvery: 0,
        saveEvery: 0,
        keepCheckpoints: 1,
        seed: s.seed,
        precision,
      },
      padId: BYTE_PAD_ID,
      runDir: sftDir,
      progress: consoleProgress("sft", s.sft.steps, 0, bars),
    });
    await saveFinal(policy, tokenizer, path.join(sftDir, "final"));
  } finally {
    policy.dispose();
  }
  const sftModel = path.join(sftDir, "final");

  // 3. Reward and cost models.
  const stageConfig = (steps: { steps: number; batchSize: number; lr: number }, dir: string) => ({
    model: sftModel,
    data: files.train,
    evalData: files.test,
    maxEvalPairs: 64,
    steps: steps.steps,
    batchSize: steps.batchSize,
    lr: steps.lr,
    schedule: "cosine",
    warmup: 0.05,
    maxLength: 256,
    logEvery: 20,
    seed: s.seed,
    threads,
    out: dir,
    ...(bars ? {} : { progress: false }),
  });
  header(`Reward model: Bradley-Terry on the helpfulness label, ${s.reward.steps} steps`);
  const reward = await runStage(
    "reward",
    { ...stageConfig(s.reward, path.join(out, "reward")), label: "better" },
    {},
  );
  header(`Cost model: Safe-RLHF cost loss on the safety labels, ${s.cost.steps} steps`);
  const cost = await runStage("cost", stageConfig(s.cost, path.join(out, "cost")), {});

  // 4. C-DPO.
  const limit = await demoLimit({
    costDir: cost.finalDir,
    pairs: trainPairs.slice(0, 400),
    prompts: testPrompts.slice(0, s.cdpo.evalPrompts),
    targetCompliance: s.cdpo.targetCompliance,
    precision,
  });
  header(
    `C-DPO: cost limit ${limit.limit.toFixed(3)}, up to ${s.cdpo.iterations} dual iterations of ${s.cdpo.dpoSteps} DPO steps`,
  );
  const cdpoConfig = resolveCdpoConfig({
    policy: sftModel,
    reward: reward.finalDir,
    costs: [{ model: cost.finalDir, limit: limit.limit, name: "harm" }],
    data: files.train,
    maxPairs: s.cdpo.pairs,
    prompts: files.prompts,
    out,
    iterations: s.cdpo.iterations,
    dpo: {
      steps: s.cdpo.dpoSteps,
      batchSize: s.cdpo.batchSize,
      lr: s.cdpo.lr,
      beta: s.cdpo.beta,
      maxLength: 256,
      logEvery: 10,
    },
    lambda: { lr: s.cdpo.lambdaLr, max: 20 },
    estimate: {
      evalPrompts: s.cdpo.evalPrompts,
      samplesPerPrompt: s.cdpo.samplesPerPrompt,
      maxNewTokens: s.maxNewTokens,
      batchSize: 64,
    },
    // Run the whole budget: the baselines get the same number of steps.
    stop: { window: 100 },
    seed: s.seed,
    threads,
    progress: bars,
  });
  log(
    `cdpo demo: the limit is the expected cost of answering benign prompts (mean cost ` +
      `${limit.benign.toFixed(3)}), refusing harmful ones (${limit.refusal.toFixed(3)}) and complying ` +
      `with ${(100 * s.cdpo.targetCompliance).toFixed(0)}% of them (${limit.compliance.toFixed(3)}); ` +
      `${(100 * limit.harmfulShare).toFixed(1)}% of the estimate prompts are harmful`,
  );
  const cdpo = await runCdpo(cdpoConfig, { progressBars: bars, log });

  // 5. DPO baselines with the same number of optimizer steps as C-DPO ran.
  const baselineSteps = cdpo.iterations * s.cdpo.dpoSteps;
  const dpoConfig = (label: "better" | "safer", dir: string) => ({
    model: sftModel,
    data: files.train,
    evalData: files.test,
    maxEvalPairs: 64,
    maxPairs: s.cdpo.pairs,
    label,
    steps: baselineSteps,
    batchSize: s.cdpo.batchSize,
    lr: s.cdpo.lr,
    beta: s.cdpo.beta,
    schedule: "constant",
    maxLength: 256,
    logEvery: 20,
    seed: s.seed,
    threads,
    out: dir,
    ...(bars ? {} : { progress: false }),
  });
  header(
    `DPO baselines: helpfulness label only, then safety label only, ${baselineSteps} steps each`,
  );
  const helpful = await runStage("dpo", dpoConfig("better", path.join(out, "dpo-helpful")), {});
  const safe = await runStage("dpo", dpoConfig("safer", path.join(out, "dpo-safe")), {});

  // 6. Evaluation.
  header(`Evaluation: ${testPrompts.length} test prompts, ${s.evalSamples} samples each, 4 models`);
  const { table } = await evaluateModels(
    [
      { name: "SFT", dir: sftModel },
      { name: "DPO (helpful)", dir: helpful.finalDir },
      { name: "DPO (safe)", dir: safe.finalDir },
      { name: "C-DPO", dir: cdpo.policyDir },
    ],
    {
      prompts: testPrompts,
      promptsFile: files.prompts,
      rewardDir: reward.finalDir,
      costDirs: [cost.finalDir],
      samplesPerPrompt: s.evalSamples,
      maxNewTokens: s.maxNewTokens,
      batchSize: 64,
      maxLength: 256,
      // A seed unlike the constraint estimate's, so the table is an independent draw.
      seed: s.seed + 1_000,
      precision,
      limit: limit.limit,
      progressBars: bars,
      log,
    },
  );
  await writeEval(out, table);

  // 7. Report.
  header("Report");
  const reportPath = await writeReport(out);
  const seconds = (performance.now() - started) / 1000;
  log(`\n${formatEvalTable(table)}`);
  log(`\ncdpo demo: table ${path.join(out, "eval.json")}`);
  log(`cdpo demo: report ${reportPath}`);
  log(`cdpo demo: finished in ${seconds.toFixed(0)} s`);
  if (options.settings === DEMO_QUICK) {
    log(
      "cdpo demo: --quick trains too briefly for the table to show the trade-off; " +
        "run without --quick for the full comparison",
    );
  }
  return { out, evalPath: path.join(out, "eval.json"), reportPath, table, seconds };
}
