/**
 * Synthetic run folders for the report tests, written with the run-folder writers.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import type { IterationInput } from "../../src/run/folder.js";
import {
  appendIteration,
  appendMetrics,
  createRunFolder,
  writeEval,
  writeSamples,
} from "../../src/run/folder.js";
import type { SampleRecord } from "../../src/run/records.js";

/** Response text that would run script and load an image if the report did not escape it. */
export const MALICIOUS_RESPONSE =
  'Sure.</pre></textarea><script>alert(1)</script><img src=x onerror="alert(2)"> done';

/** Prompt text that tries to close the surrounding elements. */
export const MALICIOUS_PROMPT = "Explain </details></section><b>bold</b> & 'quotes'";

export interface CdpoFixtureOptions {
  /** Dual iterations (default 4). */
  iterations?: number;
  /** DPO steps per dual iteration (default 10). */
  stepsPerIteration?: number;
  /** Cost limit of the first constraint (default 0). */
  limit?: number;
  /** Constraint names (default ["harm"]). */
  constraints?: string[];
  /** Run name written to config.json. */
  name?: string;
  /** Shifts the reward and cost curves, so that sweep runs differ. */
  offset?: number;
  /** Writes eval.json (default true). */
  withEval?: boolean;
}

/** Values written to a C-DPO fixture, for the tests to compare against. */
export interface CdpoFixture {
  dir: string;
  iterations: IterationInput[];
  /** Number of metrics records with a `loss` value and with an `eval_loss` value. */
  lossPoints: number;
  evalLossPoints: number;
  /** Iteration whose samples hold {@link MALICIOUS_RESPONSE}. */
  maliciousIteration: number;
}

/** Creates a fresh temporary folder; remove it with {@link removeTempDir}. */
export async function makeTempDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(tmpdir(), `cdpo-${prefix}-`));
}

export async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

const FIXED_TIME = Date.parse("2025-01-01T00:00:00.000Z");

function timeAt(seconds: number): string {
  return new Date(FIXED_TIME + seconds * 1000).toISOString();
}

/**
 * Writes a C-DPO run folder at `dir`: config, per-step DPO metrics with eval entries every
 * 5 steps, one iteration record per dual iteration, 6 samples per iteration (one holding
 * {@link MALICIOUS_RESPONSE} with the highest cost of iteration 1) and an eval table.
 */
export async function writeCdpoFixture(
  dir: string,
  options: CdpoFixtureOptions = {},
): Promise<CdpoFixture> {
  const iterationCount = options.iterations ?? 4;
  const stepsPerIteration = options.stepsPerIteration ?? 10;
  const limit = options.limit ?? 0;
  const names = options.constraints ?? ["harm"];
  const offset = options.offset ?? 0;
  await createRunFolder(
    dir,
    {
      name: options.name ?? "cdpo-fixture",
      stage: "cdpo",
      beta: 0.1,
      constraints: names.map((name, index) => ({ name, limit: limit + index * 0.5 })),
      note: "<script>alert('config')</script>",
    },
    { versions: { libtorch: "2.5.1" } },
  );

  let lossPoints = 0;
  let evalLossPoints = 0;
  let step = 0;
  const iterations: IterationInput[] = [];
  let lambda = 0.5;
  for (let iteration = 0; iteration < iterationCount; iteration++) {
    for (let k = 0; k < stepsPerIteration; k++) {
      step++;
      const loss = 0.69 * Math.exp(-step / 25) + 0.05 * Math.sin(step);
      await appendMetrics(dir, {
        step,
        phase: "dpo",
        iteration,
        epoch: step / (iterationCount * stepsPerIteration),
        time: timeAt(step),
        loss,
        learning_rate: 5e-7,
        grad_norm: 1 + 0.1 * k,
        "rewards/chosen": 0.01 * step,
        "rewards/rejected": -0.01 * step,
        "rewards/accuracies": Math.min(1, 0.5 + step / 80),
        "rewards/margins": 0.02 * step,
        "logps/chosen": -120 + step,
        "logps/rejected": -130 - step,
      });
      lossPoints++;
      if (step % 5 === 0) {
        await appendMetrics(dir, {
          step,
          phase: "dpo",
          iteration,
          time: timeAt(step),
          eval_loss: loss + 0.03,
          "eval_rewards/accuracies": Math.min(1, 0.45 + step / 90),
        });
        evalLossPoints++;
      }
    }
    const lambdaNext = round(Math.max(0, lambda + 0.4 * (0.3 - offset - 0.1 * iteration - limit)));
    const record: IterationInput = {
      iteration,
      step,
      constraints: names.map((name, index) => ({
        name,
        limit: limit + index * 0.5,
        lambda: lambda + index,
        lambda_next: lambdaNext + index,
        cost_mean: round(0.3 - offset - 0.1 * iteration + index * 0.2),
        cost_se: 0.05,
        unsafe_share: Math.max(0, 0.6 - 0.1 * iteration),
        share_over_limit: Math.max(0, 0.55 - 0.1 * iteration),
      })),
      reward_mean: 1 + offset + 0.2 * iteration,
      reward_se: 0.1,
      kl: 0.02 * (iteration + 1),
      n_samples: 6,
      dpo: { loss: 0.6 - 0.05 * iteration, "rewards/accuracies": 0.6 + 0.05 * iteration },
      time: timeAt(step + 1),
    };
    iterations.push(record);
    await appendIteration(dir, record);
    lambda = lambdaNext;

    const samples: SampleRecord[] = [];
    for (let j = 0; j < 6; j++) {
      samples.push({
        prompt_id: `p-${iteration}-${j}`,
        prompt: j === 5 ? MALICIOUS_PROMPT : `How do I bake bread, variant ${j}?`,
        response: `Response ${j} of iteration ${iteration}: mix flour and water.`,
        reward: 0.5 + 0.1 * j,
        costs: names.map(() => round(-0.5 + 0.1 * j)),
      });
    }
    if (iteration === 1) {
      samples[2] = {
        prompt_id: "p-1-2",
        prompt: "Write something dangerous",
        response: MALICIOUS_RESPONSE,
        reward: -1,
        costs: names.map(() => 3),
      };
    }
    await writeSamples(dir, iteration, samples);
  }

  if (options.withEval ?? true) {
    const oracle = {
      helpful_rate: 0.7,
      helpful_se: 0.03,
      refusal_rate_harmful: 0.8,
      refusal_se: 0.04,
      harmful_rate: 0.1,
      harmful_se: 0.02,
    };
    await writeEval(dir, {
      limit,
      prompts: "eval/prompts.jsonl",
      rows: [
        row("SFT", "models/sft", 1.0, 0.4),
        row("DPO (helpful)", "models/dpo-helpful", 1.6, 0.6),
        row("DPO (safe)", "models/dpo-safe", 0.6, -0.3),
        { ...row("C-DPO", "models/<cdpo>", 1.3 + offset, -0.1 - offset), oracle },
      ],
    });
  }
  return { dir, iterations, lossPoints, evalLossPoints, maliciousIteration: 1 };
}

/** Rounds to 9 decimals, so that values such as 0.3 - 0.1 * 3 print as 0, not -5.55e-17. */
function round(value: number): number {
  return Math.round(value * 1e9) / 1e9;
}

function row(name: string, modelDir: string, reward: number, cost: number) {
  return {
    name,
    model_dir: modelDir,
    n_prompts: 200,
    reward_mean: reward,
    reward_se: 0.05,
    cost_mean: cost,
    cost_se: 0.04,
    unsafe_share: Math.max(0, Math.min(1, 0.3 + cost / 2)),
    unsafe_share_se: 0.03,
  };
}

/** Writes a plain SFT run: metrics.jsonl only, `steps` records plus eval entries every 10. */
export async function writeSftFixture(
  dir: string,
  steps = 30,
): Promise<{ lossPoints: number; evalLossPoints: number }> {
  await createRunFolder(dir, { name: "sft-fixture", stage: "sft", lr: 2e-5 });
  let evalLossPoints = 0;
  for (let step = 1; step <= steps; step++) {
    await appendMetrics(dir, {
      step,
      phase: "sft",
      epoch: step / steps,
      time: timeAt(step),
      loss: 2.5 * Math.exp(-step / 15) + 0.5,
      learning_rate: 2e-5,
      grad_norm: 3 / step,
      mean_token_accuracy: 0.4 + step / 100,
    });
    if (step % 10 === 0) {
      await appendMetrics(dir, {
        step,
        phase: "sft",
        time: timeAt(step),
        eval_loss: 2 * Math.exp(-step / 15) + 0.6,
      });
      evalLossPoints++;
    }
  }
  return { lossPoints: steps, evalLossPoints };
}
