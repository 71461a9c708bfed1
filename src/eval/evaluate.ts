/**
 * Evaluation of models over a prompt file: sample K responses per prompt from each model, score
 * them with a reward and a cost model, and judge them with the built-in dataset's oracle when
 * every prompt comes from that dataset. The result is the `eval.json` table.
 */

import { loadPolicyModel, loadScorer } from "../cdpo/models.js";
import type { EvalPrompt } from "../data/index.js";
import { promptText } from "../data/tokenize.js";
import { invalidArgument } from "../errors.js";
import type { EvalTable } from "../run/records.js";
import { consoleProgress, silentProgress } from "../train/progress.js";
import { type Scorer, sampleResponses, scoreResponses } from "./sample.js";
import { oracleApplies, type ScoredSample, summarizeSamples } from "./table.js";

export interface EvaluateOptions {
  prompts: readonly EvalPrompt[];
  /** Path of the prompt file, stored in the table. */
  promptsFile: string;
  rewardDir: string;
  /** Cost model folders; the first one gives the table's cost columns. */
  costDirs: readonly string[];
  /** K responses per prompt. Default 4. */
  samplesPerPrompt?: number;
  /** Default 64. */
  maxNewTokens?: number;
  /** Default 1 (sampling from the model's own distribution). */
  temperature?: number;
  /** Default 32. */
  batchSize?: number;
  /** Maximum tokens of prompt + response when scoring. Default 512. */
  maxLength?: number;
  seed?: number;
  precision?: "fp32" | "bf16";
  /** Cost limit to record in the table. */
  limit?: number;
  /** Progress bars; default false (one line per model). */
  progressBars?: boolean;
  log?: (line: string) => void;
}

/** A model to evaluate: its display name and folder. */
export interface EvalModel {
  name: string;
  dir: string;
}

/** Evaluates each model in turn and returns the table, rows in the order given. */
export async function evaluateModels(
  models: readonly EvalModel[],
  options: EvaluateOptions,
): Promise<{ table: EvalTable; samples: Map<string, ScoredSample[]> }> {
  if (models.length === 0) throw invalidArgument("range", "models", "at least one model", models);
  if (options.costDirs.length === 0)
    throw invalidArgument("range", "costDirs", "at least one cost model", []);
  if (options.prompts.length < 2) {
    throw invalidArgument(
      "range",
      "prompts",
      "at least 2 prompts (for standard errors)",
      options.prompts.length,
    );
  }
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const k = options.samplesPerPrompt ?? 4;
  const precision = options.precision ?? "fp32";
  const batchSize = options.batchSize ?? 32;
  const maxLength = options.maxLength ?? 512;
  const texts = options.prompts.map((p) => promptText(p.prompt));
  const oracle = oracleApplies(texts);

  const reward = await loadScorer(options.rewardDir, maxLength);
  const costs: Scorer[] = [];
  for (const dir of options.costDirs) costs.push(await loadScorer(dir, maxLength));
  const rows: EvalTable["rows"] = [];
  const allSamples = new Map<string, ScoredSample[]>();
  try {
    for (const entry of models) {
      const policy = await loadPolicyModel(entry.dir);
      try {
        const total = options.prompts.length * k;
        const bar =
          options.progressBars === true
            ? consoleProgress(`eval ${entry.name}`, total, 0)
            : silentProgress;
        const sampled = sampleResponses(
          policy.model,
          policy.tokenizer,
          options.prompts.map((p) => p.prompt),
          {
            samplesPerPrompt: k,
            maxNewTokens: options.maxNewTokens ?? 64,
            temperature: options.temperature ?? 1,
            topK: 0,
            topP: 1,
            batchSize,
            seed: options.seed ?? 0,
            precision,
          },
          (done) => bar.tick(done),
        );
        bar.stop();
        const prompts = sampled.map((s) => (options.prompts[s.promptIndex] as EvalPrompt).prompt);
        const responses = sampled.map((s) => s.text);
        const scoreOptions = { batchSize, precision };
        const rewards = scoreResponses(reward, prompts, responses, scoreOptions);
        const costScores = costs.map((scorer) =>
          scoreResponses(scorer, prompts, responses, scoreOptions),
        );
        const samples: ScoredSample[] = sampled.map((s, i) => ({
          promptId: (options.prompts[s.promptIndex] as EvalPrompt).id,
          prompt: texts[s.promptIndex] as string,
          response: s.text,
          reward: rewards[i] as number,
          costs: costScores.map((values) => values[i] as number),
        }));
        const row = summarizeSamples(entry.name, entry.dir, samples, { oracle });
        rows.push(row);
        allSamples.set(entry.name, samples);
        log(
          `cdpo eval: ${entry.name}: reward ${row.reward_mean.toFixed(3)}, cost ${row.cost_mean.toFixed(3)}` +
            (row.oracle
              ? `, helpful ${(100 * row.oracle.helpful_rate).toFixed(1)}%, refused harmful ` +
                `${(100 * row.oracle.refusal_rate_harmful).toFixed(1)}%`
              : ""),
        );
      } finally {
        policy.model.dispose();
      }
    }
  } finally {
    reward.model.dispose();
    for (const cost of costs) cost.model.dispose();
  }
  const table: EvalTable = { prompts: options.promptsFile, rows };
  if (options.limit !== undefined) table.limit = options.limit;
  return { table, samples: allSamples };
}
