/**
 * The evaluation table: one row per model with the learned models' view (mean reward, mean cost,
 * share of responses with cost > 0) and, for prompts of the built-in dataset, the oracle's view
 * (helpful answers to benign prompts, refusals of harmful prompts, harmful completions).
 *
 * Every number averages the K responses of each prompt first; its standard error is taken over
 * prompts (see src/cdpo/stats.ts).
 */

import { groupedMeanAndSe, type MeanSe } from "../cdpo/stats.js";
import { judge } from "../data/builtin/index.js";
import { invalidArgument } from "../errors.js";
import { formatNumber } from "../report/escape.js";
import type { EvalRow, EvalTable, OracleScores } from "../run/records.js";

/** One sampled response with its scores. */
export interface ScoredSample {
  promptId: string;
  /** The prompt's user text (before any template). */
  prompt: string;
  response: string;
  reward: number;
  /** One cost per cost model. */
  costs: number[];
}

/** Groups samples by prompt id, keeping the order in which prompts first appear. */
export function groupByPrompt<T extends { promptId: string }>(samples: readonly T[]): T[][] {
  const groups = new Map<string, T[]>();
  for (const sample of samples) {
    const group = groups.get(sample.promptId);
    if (group === undefined) groups.set(sample.promptId, [sample]);
    else group.push(sample);
  }
  return [...groups.values()];
}

/** Returns whether the oracle can judge every prompt (all come from the built-in dataset's templates). */
export function oracleApplies(prompts: readonly string[]): boolean {
  return prompts.length > 0 && prompts.every((prompt) => judge(prompt, "").kind !== "unknown");
}

/**
 * Computes the oracle columns over sampled responses:
 *
 * - `helpful_rate`: over benign prompts, share of responses that answer correctly without refusing;
 * - `refusal_rate_harmful`: over harmful prompts, share of responses that refuse;
 * - `harmful_rate`: over all prompts, share of responses that comply with a harmful request.
 *
 * A rate is 0 with SE 0 when its prompt set is empty (no benign or no harmful prompt).
 */
export function oracleScores(samples: readonly ScoredSample[]): OracleScores {
  const judged = groupByPrompt(samples).map((group) =>
    group.map((sample) => ({ sample, judgement: judge(sample.prompt, sample.response) })),
  );
  const benign = judged.filter((group) => group[0]?.judgement.kind === "benign");
  const harmful = judged.filter((group) => group[0]?.judgement.kind === "harmful");
  const helpful = rate(benign.map((group) => group.map((j) => (j.judgement.helpful ? 1 : 0))));
  const refusal = rate(harmful.map((group) => group.map((j) => (j.judgement.refusal ? 1 : 0))));
  const harm = rate(judged.map((group) => group.map((j) => (j.judgement.harmful ? 1 : 0))));
  return {
    helpful_rate: helpful.mean,
    helpful_se: seOrZero(helpful),
    refusal_rate_harmful: refusal.mean,
    refusal_se: seOrZero(refusal),
    harmful_rate: harm.mean,
    harmful_se: seOrZero(harm),
  };
}

function rate(groups: number[][]): MeanSe {
  if (groups.length === 0) return { mean: 0, se: 0, n: 0 };
  return groupedMeanAndSe(groups);
}

// NOTE: with one prompt the SE is undefined (NaN); the table schema needs a number, so it is 0.
function seOrZero(value: MeanSe): number {
  return Number.isFinite(value.se) ? value.se : 0;
}

/**
 * Summarises one model's samples as a table row. The costs of the first cost model give the cost
 * columns. `oracle` adds the oracle columns (see {@link oracleScores}).
 */
export function summarizeSamples(
  name: string,
  modelDir: string,
  samples: readonly ScoredSample[],
  options: { oracle: boolean },
): EvalRow {
  if (samples.length === 0)
    throw invalidArgument("range", "samples", "at least one sample", samples);
  const groups = groupByPrompt(samples);
  const reward = groupedMeanAndSe(groups.map((g) => g.map((s) => s.reward)));
  const cost = groupedMeanAndSe(groups.map((g) => g.map((s) => s.costs[0] ?? Number.NaN)));
  const unsafe = groupedMeanAndSe(groups.map((g) => g.map((s) => ((s.costs[0] ?? 0) > 0 ? 1 : 0))));
  const row: EvalRow = {
    name,
    model_dir: modelDir,
    n_prompts: groups.length,
    reward_mean: reward.mean,
    reward_se: seOrZero(reward),
    cost_mean: cost.mean,
    cost_se: seOrZero(cost),
    unsafe_share: unsafe.mean,
    unsafe_share_se: seOrZero(unsafe),
  };
  if (options.oracle) row.oracle = oracleScores(samples);
  return row;
}

function meanSe(mean: number, se: number, digits = 3): string {
  return `${mean.toFixed(digits)} ± ${se.toFixed(digits)}`;
}

function percentSe(mean: number, se: number): string {
  return `${(100 * mean).toFixed(1)}% ± ${(100 * se).toFixed(1)}`;
}

/**
 * Formats the table for the console: one line per model, mean ± SE in each column, "n/a" in
 * the oracle columns of rows without them.
 */
export function formatEvalTable(table: EvalTable): string {
  const headers = [
    "model",
    "reward",
    "cost",
    "cost > 0",
    "helpful (benign)",
    "refused (harmful)",
    "harmful",
  ];
  const rows = table.rows.map((row) => [
    row.name,
    meanSe(row.reward_mean, row.reward_se),
    meanSe(row.cost_mean, row.cost_se),
    percentSe(row.unsafe_share, row.unsafe_share_se),
    row.oracle ? percentSe(row.oracle.helpful_rate, row.oracle.helpful_se) : "n/a",
    row.oracle ? percentSe(row.oracle.refusal_rate_harmful, row.oracle.refusal_se) : "n/a",
    row.oracle ? percentSe(row.oracle.harmful_rate, row.oracle.harmful_se) : "n/a",
  ]);
  const widths = headers.map((header, i) =>
    Math.max(header.length, ...rows.map((r) => (r[i] as string).length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) =>
        i === 0 ? cell.padEnd(widths[i] as number) : cell.padStart(widths[i] as number),
      )
      .join("  ");
  const lines = [line(headers), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)];
  const notes = [`prompts: ${table.prompts}`];
  if (table.limit !== undefined) notes.push(`cost limit: ${formatNumber(table.limit)}`);
  const first = table.rows[0];
  if (first !== undefined)
    notes.push(`${first.n_prompts} prompts per model, mean ± standard error over prompts`);
  return `${lines.join("\n")}\n${notes.join("; ")}`;
}
