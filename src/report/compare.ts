/**
 * Side-by-side report of several runs, typically a sweep over cost limits: λ and cost curves
 * overlaid by run, a table of final values, and the reward-against-cost frontier.
 */
import {
  type Chart,
  type IterationMeanSe,
  type IterationPoint,
  iterationLineChart,
  iterationMeanSeChart,
  type ReferenceLine,
  renderChart,
  scatterChart,
} from "./charts.js";
import { formatMeanSe, formatNumber, formatShare } from "./escape.js";
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
} from "./html.js";
import type { RunData } from "./load.js";

/** One run's final position on the reward-against-cost plane. */
export interface FrontierPoint {
  /** Run display name. */
  run: string;
  /** Cost limit of the run's first constraint, or undefined when the run has none. */
  limit: number | undefined;
  rewardMean: number;
  rewardSe: number;
  costMean: number;
  costSe: number;
  /**
   * Source of the values: "eval" for the `C-DPO` row of eval.json (the final model), or
   * "iteration N" for the samples of the last dual iteration when there is no such row.
   */
  source: string;
}

/** Name of the eval.json row that contains the C-DPO model's scores. */
export const CDPO_EVAL_ROW = "C-DPO";

/**
 * Computes the frontier: one point per run, sorted by limit (runs without a limit last, then by
 * name). Uses the eval.json row named {@link CDPO_EVAL_ROW} when present, since it scores the
 * final model, and otherwise the last dual iteration, whose samples come from the policy before
 * its last DPO phase. Runs with neither are left out. With several constraints, the first one's
 * cost and limit are used.
 */
export function frontierPoints(runs: readonly RunData[]): FrontierPoint[] {
  const points: FrontierPoint[] = [];
  for (const run of runs) {
    const last = run.iterations.at(-1);
    const firstConstraint = last?.constraints[0];
    const limit = firstConstraint?.limit ?? run.evalTable?.limit;
    const evalRow = run.evalTable?.rows.find((row) => row.name === CDPO_EVAL_ROW);
    if (evalRow !== undefined) {
      points.push({
        run: run.name,
        limit,
        rewardMean: evalRow.reward_mean,
        rewardSe: evalRow.reward_se,
        costMean: evalRow.cost_mean,
        costSe: evalRow.cost_se,
        source: "eval",
      });
    } else if (last !== undefined && firstConstraint !== undefined) {
      points.push({
        run: run.name,
        limit,
        rewardMean: last.reward_mean,
        rewardSe: last.reward_se,
        costMean: firstConstraint.cost_mean,
        costSe: firstConstraint.cost_se,
        source: `iteration ${last.iteration}`,
      });
    }
  }
  return points.sort((a, b) => {
    if (a.limit === undefined || b.limit === undefined) {
      if (a.limit !== b.limit) return a.limit === undefined ? 1 : -1;
      return a.run.localeCompare(b.run);
    }
    return a.limit - b.limit || a.run.localeCompare(b.run);
  });
}

/** Label of a frontier point: its limit. */
export function frontierLabel(point: FrontierPoint): string {
  return point.limit === undefined
    ? `${point.run} (no limit)`
    : `limit ${formatNumber(point.limit)}`;
}

/** Gives each run a unique display name, adding the folder when two runs share a name. */
function uniqueNames(runs: readonly RunData[]): RunData[] {
  const counts = new Map<string, number>();
  for (const run of runs) counts.set(run.name, (counts.get(run.name) ?? 0) + 1);
  return runs.map((run) =>
    (counts.get(run.name) ?? 0) > 1 ? { ...run, name: `${run.name} (${run.dir})` } : run,
  );
}

/** Builds the overlaid λ and cost charts and the frontier chart. */
export function buildCompareCharts(runs: readonly RunData[]): Chart[] {
  const multiConstraint = runs.some((run) => (run.iterations[0]?.constraints.length ?? 0) > 1);
  const seriesName = (run: RunData, constraint: string) =>
    multiConstraint ? `${run.name}: ${constraint}` : run.name;
  const lambdas: IterationPoint[] = [];
  const costs: IterationMeanSe[] = [];
  const limits: ReferenceLine[] = [];
  for (const run of runs) {
    for (const record of run.iterations) {
      for (const constraint of record.constraints) {
        const series = seriesName(run, constraint.name);
        lambdas.push({ iteration: record.iteration, series, value: constraint.lambda });
        costs.push({
          iteration: record.iteration,
          series,
          mean: constraint.cost_mean,
          se: constraint.cost_se,
        });
      }
    }
    for (const constraint of run.iterations.at(-1)?.constraints ?? []) {
      limits.push({ series: seriesName(run, constraint.name), value: constraint.limit });
    }
  }
  const charts: Chart[] = [];
  if (lambdas.length > 0) {
    charts.push(
      iterationLineChart({
        id: "compare-lambda",
        title: "λ per dual iteration",
        description: "Lagrange multiplier per dual iteration, one line per run.",
        valueTitle: "λ",
        seriesTitle: "run",
        points: lambdas,
      }),
      iterationMeanSeChart({
        id: "compare-cost",
        title: "Mean cost per dual iteration",
        description:
          "Mean sampled cost with ±1 standard error bars, one line per run. " +
          "Dashed lines are each run's limit.",
        valueTitle: "cost",
        seriesTitle: "run",
        points: costs,
        references: limits,
      }),
    );
  }
  const frontier = frontierPoints(runs);
  if (frontier.length > 0) {
    charts.push(
      scatterChart({
        id: "compare-frontier",
        title: "Reward against cost",
        description:
          "Final mean reward against mean cost per run, labelled by cost limit, with ±1 " +
          "standard error bars. The line joins runs in order of limit.",
        xTitle: "mean cost",
        yTitle: "mean reward",
        points: frontier.map((point) => ({
          label: frontierLabel(point),
          x: point.costMean,
          xSe: point.costSe,
          y: point.rewardMean,
          ySe: point.rewardSe,
        })),
        connect: true,
      }),
    );
  }
  return charts;
}

function finalTable(runs: readonly RunData[]): Html {
  const frontier = new Map(frontierPoints(runs).map((point) => [point.run, point]));
  const headers = [
    "Run",
    "Stage",
    "Iterations",
    "Limit",
    "Final λ",
    "Last sampled cost",
    "Within limit",
    "Last sampled reward",
    "Unsafe share",
    "KL",
    "Frontier point",
  ];
  const rows = runs.map((run) => {
    const last = run.iterations.at(-1);
    const constraints = last?.constraints ?? [];
    const point = frontier.get(run.name);
    const cells: Cell[] = [
      run.name,
      run.stage,
      { content: String(run.iterations.length), class: "num" },
      { content: constraints.map((c) => formatNumber(c.limit)).join(", ") || "n/a", class: "num" },
      {
        content: constraints.map((c) => formatNumber(c.lambda_next)).join(", ") || "n/a",
        class: "num",
      },
      {
        content: constraints.map((c) => formatMeanSe(c.cost_mean, c.cost_se)).join(", ") || "n/a",
        class: "num",
      },
      constraints.length > 0 ? join(constraints.map((c) => badge(c.cost_mean <= c.limit))) : "n/a",
      { content: last ? formatMeanSe(last.reward_mean, last.reward_se) : "n/a", class: "num" },
      {
        content: constraints.map((c) => formatShare(c.unsafe_share)).join(", ") || "n/a",
        class: "num",
      },
      { content: last ? formatNumber(last.kl) : "n/a", class: "num" },
      point
        ? `reward ${formatMeanSe(point.rewardMean, point.rewardSe)}, ` +
          `cost ${formatMeanSe(point.costMean, point.costSe)} (${point.source})`
        : "n/a",
    ];
    return cells;
  });
  return table(headers, rows, "final-table");
}

/** Builds the comparison report HTML of `runs`. */
export async function renderCompareReport(
  inputRuns: readonly RunData[],
  options: { generatedAt?: Date } = {},
): Promise<string> {
  const runs = uniqueNames(inputRuns);
  const charts = await Promise.all(buildCompareCharts(runs).map(renderChart));
  const notes: string[] = [];
  const frontierRuns = new Set(frontierPoints(runs).map((point) => point.run));
  for (const run of runs) {
    if (run.iterations.length === 0)
      notes.push(`${run.name}: no iterations.jsonl, so no λ or cost curve.`);
    if (!frontierRuns.has(run.name)) {
      notes.push(`${run.name}: no C-DPO eval row and no dual iteration, so no frontier point.`);
    }
  }
  const parts: Html[] = [
    element(
      "header",
      {},
      join([
        element("h1", {}, `Comparison of ${runs.length} runs`),
        element("p", {}, runs.map((run) => run.dir).join(", ")),
      ]),
    ),
  ];
  if (notes.length > 0) {
    parts.push(
      element(
        "div",
        { class: "notes", id: "notes" },
        element("ul", {}, join(notes.map((note) => element("li", {}, note)))),
      ),
    );
  }
  if (charts.length > 0) parts.push(section("charts", "Curves and frontier", chartGrid(charts)));
  parts.push(section("final", "Final values", finalTable(runs)));
  parts.push(
    element(
      "footer",
      {},
      element("p", {}, `Report generated ${(options.generatedAt ?? new Date()).toISOString()}.`),
    ),
  );
  return page(`cdpo comparison: ${runs.map((run) => run.name).join(", ")}`, join(parts));
}
