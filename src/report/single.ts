/**
 * HTML report of one run folder: header, charts per dual iteration and per step, tables, samples.
 */

import type { IterationRecord, MetricsRecord, SampleRecord } from "../run/records.js";
import {
  EVAL_PREFIX,
  getMetric,
  METRICS,
  METRICS_RECORD_FIELDS,
  metricInfo,
} from "../run/records.js";
import {
  type Chart,
  type IterationMeanSe,
  type IterationPoint,
  iterationLineChart,
  iterationMeanSeChart,
  renderChart,
  type StepPoint,
  scatterChart,
  stepChart,
} from "./charts.js";
import { formatMeanSe, formatNumber, formatShare, formatShareSe } from "./escape.js";
import {
  badge,
  type Cell,
  chartGrid,
  element,
  type Html,
  join,
  page,
  section,
  table,
  text,
} from "./html.js";
import { finalConstraints, type RunData } from "./load.js";

/** Options of {@link renderRunReport}. */
export interface RunReportOptions {
  /** Sample responses shown per dual iteration (default 4). */
  samplesPerIteration?: number;
  /** Time printed in the footer (default now); tests pass a fixed one. */
  generatedAt?: Date;
}

/** Builds the report HTML of `run`. */
export async function renderRunReport(
  run: RunData,
  options: RunReportOptions = {},
): Promise<string> {
  const iterationCharts = await Promise.all(buildIterationCharts(run.iterations).map(renderChart));
  const stepCharts = await Promise.all(buildStepCharts(run).map(renderChart));
  const evalChart =
    run.evalTable !== undefined && run.evalTable.rows.length > 0
      ? await renderChart(buildEvalChart(run))
      : undefined;

  const parts: Html[] = [header(run)];
  if (run.notes.length > 0) {
    parts.push(
      element(
        "div",
        { class: "notes", id: "notes" },
        join([
          element("strong", {}, "Notes on this run folder"),
          element("ul", {}, join(run.notes.map((note) => element("li", {}, note)))),
        ]),
      ),
    );
  }
  if (iterationCharts.length > 0) {
    parts.push(section("iterations", "Dual iterations", chartGrid(iterationCharts)));
  }
  if (stepCharts.length > 0) {
    parts.push(section("training", "Training metrics per step", chartGrid(stepCharts)));
  }
  if (run.evalTable !== undefined) {
    const evalParts: Html[] = [evalTableHtml(run)];
    if (evalChart !== undefined) evalParts.push(chartGrid([evalChart]));
    parts.push(section("evaluation", "Evaluation", join(evalParts)));
  }
  if (run.iterations.length > 0) {
    parts.push(section("iteration-table", "Dual iterations table", iterationTable(run.iterations)));
  }
  if (run.samples.size > 0) {
    parts.push(
      section("samples", "Sample responses", samplesHtml(run, options.samplesPerIteration ?? 4)),
    );
  }
  parts.push(footer(run, options.generatedAt ?? new Date()));
  return page(`cdpo report: ${run.name}`, join(parts));
}

// ---------------------------------------------------------------------------------------------
// Header

function summaryItem(label: string, value: Html | string): Html {
  return element("div", {}, join([element("dt", {}, label), element("dd", {}, value)]));
}

function header(run: RunData): Html {
  const items: Html[] = [summaryItem("Stage", run.stage), summaryItem("Run folder", run.dir)];
  const constraints = finalConstraints(run);
  if (constraints.length > 0) {
    items.push(
      summaryItem(
        "Limit",
        constraints.map((c) => `${c.name} ≤ ${formatNumber(c.limit)}`).join(", "),
      ),
      summaryItem(
        "Final λ",
        constraints.map((c) => `${c.name}: ${formatNumber(c.lambda)}`).join(", "),
      ),
      summaryItem(
        "Final cost vs limit",
        join(
          constraints.map((c) =>
            join([
              text(`${c.name}: ${formatMeanSe(c.costMean, c.costSe)} vs ${formatNumber(c.limit)}`),
              badge(c.satisfied),
            ]),
          ),
          "<br>",
        ),
      ),
      summaryItem("Dual iterations", String(run.iterations.length)),
    );
    const last = run.iterations.at(-1);
    if (last !== undefined) {
      items.push(summaryItem("Final reward", formatMeanSe(last.reward_mean, last.reward_se)));
    }
  }
  if (run.metrics.length > 0) {
    const maxStep = Math.max(...run.metrics.map((record) => record.step));
    items.push(summaryItem("Steps", String(maxStep)));
    const lastLoss = lastValue(run.metrics, "loss");
    if (lastLoss !== undefined) items.push(summaryItem("Last loss", formatNumber(lastLoss)));
    const lastEvalLoss = lastValue(run.metrics, `${EVAL_PREFIX}loss`);
    if (lastEvalLoss !== undefined) {
      items.push(summaryItem("Last eval loss", formatNumber(lastEvalLoss)));
    }
  }
  return element(
    "header",
    {},
    join([element("h1", {}, run.name), element("dl", { class: "summary" }, join(items))]),
  );
}

function lastValue(records: readonly MetricsRecord[], name: string): number | undefined {
  for (let i = records.length - 1; i >= 0; i--) {
    const value = getMetric(records[i]!, name);
    if (typeof value === "number" && Number.isFinite(value)) return value;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Charts

/** Builds the charts per dual iteration: λ, cost, reward, unsafe share and KL. */
export function buildIterationCharts(iterations: readonly IterationRecord[]): Chart[] {
  if (iterations.length === 0) return [];
  const lambdas: IterationPoint[] = [];
  const costs: IterationMeanSe[] = [];
  const shares: IterationPoint[] = [];
  const limits = new Map<string, number>();
  for (const record of iterations) {
    for (const constraint of record.constraints) {
      lambdas.push({
        iteration: record.iteration,
        series: constraint.name,
        value: constraint.lambda,
      });
      costs.push({
        iteration: record.iteration,
        series: constraint.name,
        mean: constraint.cost_mean,
        se: constraint.cost_se,
      });
      shares.push({
        iteration: record.iteration,
        series: `${constraint.name}: cost > 0`,
        value: constraint.unsafe_share,
      });
      if (constraint.share_over_limit !== undefined) {
        shares.push({
          iteration: record.iteration,
          series: `${constraint.name}: cost > limit`,
          value: constraint.share_over_limit,
        });
      }
      limits.set(constraint.name, constraint.limit);
    }
  }
  return [
    iterationLineChart({
      id: "lambda",
      title: "λ per dual iteration",
      description:
        "Lagrange multiplier used to relabel the preference pairs in each iteration, one " +
        "line per constraint.",
      valueTitle: "λ",
      seriesTitle: "constraint",
      points: lambdas,
    }),
    iterationMeanSeChart({
      id: "cost",
      title: "Mean cost per dual iteration",
      description:
        "Mean cost of the sampled responses with ±1 standard error bars. The dashed line is " +
        "the limit.",
      valueTitle: "cost",
      seriesTitle: "constraint",
      points: costs,
      references: [...limits].map(([series, value]) => ({ series, value })),
    }),
    iterationMeanSeChart({
      id: "reward",
      title: "Mean reward per dual iteration",
      description: "Mean reward of the sampled responses with ±1 standard error bars.",
      valueTitle: "reward",
      seriesTitle: "series",
      points: iterations.map((record) => ({
        iteration: record.iteration,
        series: "reward",
        mean: record.reward_mean,
        se: record.reward_se,
      })),
    }),
    iterationLineChart({
      id: "unsafe-share",
      title: "Unsafe share per dual iteration",
      description:
        "Share of sampled responses with cost > 0 (unsafe) and, where logged, with cost " +
        "above the limit.",
      valueTitle: "share of responses",
      seriesTitle: "share",
      points: shares,
      share: true,
    }),
    iterationLineChart({
      id: "kl",
      title: "KL to the reference per dual iteration",
      description: "Estimate of KL(policy ‖ reference) on the sampled responses.",
      valueTitle: "KL (nats)",
      seriesTitle: "series",
      points: iterations.map((record) => ({
        iteration: record.iteration,
        series: "KL",
        value: record.kl,
      })),
    }),
  ];
}

/** Metric names present in `records`, without the `eval_` prefix, in {@link METRICS} order. */
export function presentMetrics(records: readonly MetricsRecord[]): string[] {
  const names = new Set<string>();
  for (const record of records) {
    for (const key of Object.keys(record)) {
      if ((METRICS_RECORD_FIELDS as readonly string[]).includes(key)) continue;
      names.add(key.startsWith(EVAL_PREFIX) ? key.slice(EVAL_PREFIX.length) : key);
    }
  }
  const known = METRICS.map((metric) => metric.name).filter((name) => names.has(name));
  const unknown = [...names].filter((name) => metricInfo(name) === undefined).sort();
  return [...known, ...unknown];
}

/** Builds one chart per metric in `metrics.jsonl`, training and `eval_` values overlaid. */
export function buildStepCharts(run: RunData): Chart[] {
  const boundaries = run.iterations.map((record) => record.step);
  const charts: Chart[] = [];
  for (const name of presentMetrics(run.metrics)) {
    const points: StepPoint[] = [];
    let nonFinite = 0;
    for (const record of run.metrics) {
      for (const [key, series] of [
        [name, record.phase],
        [`${EVAL_PREFIX}${name}`, `eval (${record.phase})`],
      ] as const) {
        const value = getMetric(record, key);
        if (value === undefined) continue;
        if (value === null || !Number.isFinite(value)) {
          nonFinite++;
          continue;
        }
        points.push({ step: record.step, series, value });
      }
    }
    const info = metricInfo(name);
    let description = info?.description ?? "Metric not in the documented metric table";
    description += ". Each line is a training phase; eval entries are drawn separately.";
    if (nonFinite > 0) description += ` ${nonFinite} non-finite value(s) are not drawn.`;
    const hasDpo = points.some((point) => point.series === "dpo" || point.series === "eval (dpo)");
    if (hasDpo && boundaries.length > 0)
      description += " Dotted rules mark the end of each dual iteration.";
    charts.push(
      stepChart({
        id: `metric-${name}`,
        title: name,
        description,
        valueTitle: name,
        points,
        boundaries: hasDpo ? boundaries : [],
      }),
    );
  }
  return charts;
}

function buildEvalChart(run: RunData): Chart {
  const evalTable = run.evalTable!;
  return scatterChart({
    id: "eval-frontier",
    title: "Evaluation: reward against cost",
    description:
      "One point per evaluated model with ±1 standard error bars. The dashed line is the " +
      "cost limit.",
    xTitle: "mean cost",
    yTitle: "mean reward",
    points: evalTable.rows.map((row) => ({
      label: row.name,
      x: row.cost_mean,
      xSe: row.cost_se,
      y: row.reward_mean,
      ySe: row.reward_se,
    })),
    ...(evalTable.limit !== undefined ? { verticalRule: evalTable.limit } : {}),
  });
}

// ---------------------------------------------------------------------------------------------
// Tables

function num(value: string): Cell {
  return { content: value, class: "num" };
}

function evalTableHtml(run: RunData): Html {
  const evalTable = run.evalTable!;
  const limit = evalTable.limit;
  const hasOracle = evalTable.rows.some((row) => row.oracle !== undefined);
  const headers = ["Model", "Model folder", "Prompts", "Reward", "Cost", "Unsafe share"];
  if (limit !== undefined) headers.push(`Cost ≤ ${formatNumber(limit)}`);
  if (hasOracle) headers.push("Helpful (oracle)", "Refused harmful (oracle)", "Harmful (oracle)");
  const rows = evalTable.rows.map((row) => {
    const cells: Cell[] = [
      row.name,
      { content: row.model_dir, class: "path" },
      num(String(row.n_prompts)),
      num(formatMeanSe(row.reward_mean, row.reward_se)),
      num(formatMeanSe(row.cost_mean, row.cost_se)),
      num(formatShareSe(row.unsafe_share, row.unsafe_share_se)),
    ];
    if (limit !== undefined) cells.push(badge(row.cost_mean <= limit));
    if (hasOracle) {
      const oracle = row.oracle;
      cells.push(
        num(oracle ? formatShareSe(oracle.helpful_rate, oracle.helpful_se) : "n/a"),
        num(oracle ? formatShareSe(oracle.refusal_rate_harmful, oracle.refusal_se) : "n/a"),
        num(oracle ? formatShareSe(oracle.harmful_rate, oracle.harmful_se) : "n/a"),
      );
    }
    return cells;
  });
  return join([
    element("p", {}, `Prompts: ${evalTable.prompts}. Values are mean ± standard error.`),
    table(headers, rows, "eval-table"),
  ]);
}

function iterationTable(iterations: readonly IterationRecord[]): Html {
  const names = iterations[0]?.constraints.map((constraint) => constraint.name) ?? [];
  const headers = ["Iteration", "Step"];
  for (const name of names) {
    headers.push(`λ ${name}`, `λ next ${name}`, `Cost ${name}`, `Unsafe ${name}`);
  }
  headers.push("Reward", "KL", "DPO loss", "rewards/accuracies", "rewards/margins");
  const rows = iterations.map((record) => {
    const cells: Cell[] = [num(String(record.iteration)), num(String(record.step))];
    for (const constraint of record.constraints) {
      cells.push(
        num(formatNumber(constraint.lambda)),
        num(formatNumber(constraint.lambda_next)),
        {
          content: formatMeanSe(constraint.cost_mean, constraint.cost_se),
          class: constraint.cost_mean <= constraint.limit ? "num pass" : "num fail",
        },
        num(formatShare(constraint.unsafe_share)),
      );
    }
    cells.push(
      num(formatMeanSe(record.reward_mean, record.reward_se)),
      num(formatNumber(record.kl)),
      num(formatNumber(record.dpo["loss"])),
      num(formatNumber(record.dpo["rewards/accuracies"])),
      num(formatNumber(record.dpo["rewards/margins"])),
    );
    return cells;
  });
  return table(headers, rows, "iteration-table");
}

// ---------------------------------------------------------------------------------------------
// Samples

/**
 * Picks up to `count` samples to show: alternately the highest total cost and the highest reward
 * not yet picked, so that both the worst and the best responses appear. Returns the picked
 * indices in file order.
 */
export function selectSamples(samples: readonly SampleRecord[], count: number): number[] {
  const totalCost = (sample: SampleRecord) => sample.costs.reduce((sum, cost) => sum + cost, 0);
  const indices = samples.map((_, index) => index);
  const byCost = [...indices].sort((a, b) => totalCost(samples[b]!) - totalCost(samples[a]!));
  const byReward = [...indices].sort((a, b) => samples[b]!.reward - samples[a]!.reward);
  const picked = new Set<number>();
  const limit = Math.min(count, samples.length);
  let costIndex = 0;
  let rewardIndex = 0;
  while (picked.size < limit) {
    const fromCost = picked.size % 2 === 0;
    const order = fromCost ? byCost : byReward;
    let position = fromCost ? costIndex : rewardIndex;
    while (picked.has(order[position]!)) position++;
    picked.add(order[position]!);
    if (fromCost) costIndex = position + 1;
    else rewardIndex = position + 1;
  }
  return [...picked].sort((a, b) => a - b);
}

function samplesHtml(run: RunData, perIteration: number): Html {
  const names = run.iterations[0]?.constraints.map((constraint) => constraint.name) ?? [];
  const blocks: Html[] = [];
  for (const [iteration, samples] of [...run.samples].sort((a, b) => a[0] - b[0])) {
    const picked = selectSamples(samples, perIteration);
    const items = picked.map((index) => {
      const sample = samples[index]!;
      const costs = sample.costs
        .map((cost, i) => `cost ${names[i] ?? String(i)} ${formatNumber(cost)}`)
        .join(" · ");
      return element(
        "div",
        { class: "sample", "data-prompt-id": sample.prompt_id },
        join([
          element(
            "div",
            { class: "scores" },
            `prompt ${sample.prompt_id} · reward ${formatNumber(sample.reward)} · ${costs}`,
          ),
          element("div", { class: "label" }, "Prompt"),
          element("pre", { class: "prompt" }, sample.prompt),
          element("div", { class: "label" }, "Response"),
          element("pre", { class: "response" }, sample.response),
        ]),
      );
    });
    const summary =
      `Iteration ${iteration}: ${picked.length} of ${samples.length} responses ` +
      "(highest cost and highest reward)";
    blocks.push(
      element(
        "details",
        { class: "samples", "data-iteration": String(iteration) },
        join([element("summary", {}, summary), ...items]),
      ),
    );
  }
  return join(blocks);
}

// ---------------------------------------------------------------------------------------------
// Footer

function footer(run: RunData, generatedAt: Date): Html {
  const parts: Html[] = [];
  if (run.config !== undefined) {
    parts.push(
      element(
        "details",
        { class: "config" },
        join([
          element("summary", {}, "Resolved config (config.json)"),
          element("pre", { class: "config" }, JSON.stringify(run.config, null, 2)),
        ]),
      ),
    );
  }
  const versions = run.versions;
  const versionText = versions
    ? `cdpo ${versions.cdpo}, libtorch ${versions.libtorch}, Node.js ${versions.node}`
    : "versions.json is absent";
  parts.push(
    element(
      "p",
      {},
      `Run written by ${versionText}. Report generated ${generatedAt.toISOString()}.`,
    ),
  );
  return element("footer", {}, join(parts));
}
