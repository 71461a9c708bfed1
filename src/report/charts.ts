/**
 * Vega-Lite chart specs for the report, and their rendering to SVG in Node.
 *
 * Specs are compiled with vega-lite and rendered by vega's `View#toSVG()` with the "none"
 * renderer, which needs no canvas or browser. Vega 6 gives each mark in the SVG an `aria-label`
 * listing its data fields ("iteration: 2; λ: 0.5; constraint: harm") and an
 * `aria-roledescription` naming the mark type ("point", "line mark", ...), which the tests read.
 */
import * as vega from "vega";
import type { TopLevelSpec } from "vega-lite";
import { compile } from "vega-lite";
import { CdpoError } from "../errors.js";

/** Series longer than this are drawn as lines without point marks, to keep the SVG small. */
export const MAX_POINTS_PER_SERIES = 150;

const CHART_WIDTH = 380;
const CHART_HEIGHT = 200;

/** A chart to place in the report. */
export interface Chart {
  /** Stable identifier, used as the figure's `data-chart` attribute. */
  id: string;
  /** Title shown above the chart. */
  title: string;
  /** One or two sentences on what the chart shows. */
  description: string;
  spec: TopLevelSpec;
}

/** A chart rendered to an SVG string. */
export interface RenderedChart extends Omit<Chart, "spec"> {
  svg: string;
  /** Warnings that vega-lite or vega logged while compiling and rendering. */
  warnings: string[];
}

const BASE_CONFIG = {
  font: "sans-serif",
  view: { stroke: "#ddd" },
  axis: { labelFontSize: 11, titleFontSize: 12, gridColor: "#eee" },
  legend: { orient: "bottom", labelFontSize: 11, titleFontSize: 11, labelLimit: 260 },
} as const;

function baseSpec(description: string): Pick<TopLevelSpec, "$schema" | "description" | "config"> & {
  width: number;
  height: number;
} {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    description,
    width: CHART_WIDTH,
    height: CHART_HEIGHT,
    config: BASE_CONFIG,
  };
}

/** Compiles `chart.spec` and renders it to SVG. Throws CdpoError "STATE" on a vega error. */
export async function renderChart(chart: Chart): Promise<RenderedChart> {
  const warnings: string[] = [];
  const logger = vega.logger(vega.Warn, undefined, (method, _level, input) => {
    const message = (input as unknown[]).map(String).join(" ");
    if (method === "error") {
      throw new CdpoError("STATE", `Rendering chart "${chart.id}" failed: ${message}`);
    }
    warnings.push(message);
  });
  const compiled = compile(chart.spec, { logger }).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none", logger });
  try {
    const svg = await view.toSVG();
    return { id: chart.id, title: chart.title, description: chart.description, svg, warnings };
  } finally {
    view.finalize();
  }
}

/** A value at a dual iteration, for one series (a constraint or a run). */
export interface IterationPoint {
  iteration: number;
  series: string;
  value: number;
}

/** A mean and standard error at a dual iteration, for one series. */
export interface IterationMeanSe {
  iteration: number;
  series: string;
  mean: number;
  se: number;
}

/** A horizontal reference line, e.g. a cost limit, drawn in its series' color. */
export interface ReferenceLine {
  series: string;
  value: number;
}

/** A value at an optimizer step, for one series (a phase, or its eval entries). */
export interface StepPoint {
  step: number;
  series: string;
  value: number;
}

const iterationAxis = {
  field: "iteration",
  type: "quantitative",
  title: "dual iteration",
  axis: { tickMinStep: 1, format: "d" },
  scale: { zero: false, nice: false, padding: 16 },
} as const;

/**
 * Color encoding by the `series` field. The legend is dropped when there is a single series, and
 * `order` (when given) fixes which series gets the first colors.
 */
function seriesColor(title: string, series: Iterable<string>, order?: readonly string[]) {
  const distinct = new Set(series);
  return {
    field: "series",
    type: "nominal",
    title,
    ...(order !== undefined
      ? { scale: { domain: order.filter((name) => distinct.has(name)) } }
      : {}),
    ...(distinct.size <= 1 ? { legend: null } : {}),
  } as const;
}

/** Axis number format: exponent notation when every value is below 0.01 in magnitude. */
function valueAxis(values: Iterable<number>): { format?: string } {
  let max = 0;
  for (const value of values) max = Math.max(max, Math.abs(value));
  return max > 0 && max < 1e-2 ? { format: ".2~e" } : {};
}

/** Line chart of one value per dual iteration, one line per series, with a point per value. */
export function iterationLineChart(options: {
  id: string;
  title: string;
  description: string;
  valueTitle: string;
  seriesTitle: string;
  points: readonly IterationPoint[];
  /** Plots the values as percentages of 1. */
  share?: boolean;
}): Chart {
  const spec = {
    ...baseSpec(options.description),
    data: { values: options.points.map((point) => ({ ...point })) },
    mark: { type: "line", point: true, strokeWidth: 2 },
    encoding: {
      x: iterationAxis,
      y: {
        field: "value",
        type: "quantitative",
        title: options.valueTitle,
        scale: { zero: options.share === true, padding: 10 },
        axis:
          options.share === true
            ? { format: ".0%" }
            : valueAxis(options.points.map((point) => point.value)),
      },
      color: seriesColor(
        options.seriesTitle,
        options.points.map((point) => point.series),
      ),
    },
  } as TopLevelSpec;
  return { id: options.id, title: options.title, description: options.description, spec };
}

/**
 * Mean per dual iteration with ±1 standard error bars, one line per series, and optional dashed
 * reference lines (cost limits) in the same colors.
 */
export function iterationMeanSeChart(options: {
  id: string;
  title: string;
  description: string;
  valueTitle: string;
  seriesTitle: string;
  points: readonly IterationMeanSe[];
  references?: readonly ReferenceLine[];
}): Chart {
  const values = options.points.map((point) => ({
    iteration: point.iteration,
    series: point.series,
    mean: point.mean,
    lower: point.mean - point.se,
    upper: point.mean + point.se,
  }));
  const color = seriesColor(
    options.seriesTitle,
    options.points.map((point) => point.series),
  );
  const layers: unknown[] = [
    {
      mark: { type: "errorbar", ticks: true },
      encoding: {
        x: iterationAxis,
        y: { field: "lower", type: "quantitative", title: options.valueTitle },
        y2: { field: "upper" },
        color,
      },
    },
    {
      mark: { type: "line", point: true, strokeWidth: 2 },
      encoding: {
        x: iterationAxis,
        y: {
          field: "mean",
          type: "quantitative",
          title: options.valueTitle,
          scale: { zero: false, padding: 10 },
        },
        color,
      },
    },
  ];
  const references = options.references ?? [];
  if (references.length > 0) {
    layers.push({
      data: { values: references.map((line) => ({ series: line.series, limit: line.value })) },
      mark: { type: "rule", strokeDash: [6, 4], strokeWidth: 1.5 },
      encoding: { y: { field: "limit", type: "quantitative" }, color },
    });
  }
  const spec = {
    ...baseSpec(options.description),
    data: { values },
    layer: layers,
  } as TopLevelSpec;
  return { id: options.id, title: options.title, description: options.description, spec };
}

/**
 * Line chart of a metric per optimizer step, one line per series. Point marks are added when
 * every series has at most {@link MAX_POINTS_PER_SERIES} values. `boundaries` draws a light
 * vertical rule at each given step (the end of each dual iteration).
 */
export function stepChart(options: {
  id: string;
  title: string;
  description: string;
  valueTitle: string;
  points: readonly StepPoint[];
  boundaries?: readonly number[];
}): Chart {
  const lengths = new Map<string, number>();
  for (const point of options.points) {
    lengths.set(point.series, (lengths.get(point.series) ?? 0) + 1);
  }
  const showPoints = Math.max(0, ...lengths.values()) <= MAX_POINTS_PER_SERIES;
  // Training series first, so that they keep the first palette colors and eval series follow.
  const series = [...lengths.keys()];
  const seriesOrder = [
    ...series.filter((name) => !name.startsWith("eval")),
    ...series.filter((name) => name.startsWith("eval")),
  ];
  const layers: unknown[] = [];
  const boundaries = options.boundaries ?? [];
  if (boundaries.length > 0) {
    layers.push({
      data: { values: boundaries.map((step) => ({ boundary: step })) },
      mark: { type: "rule", color: "#bbb", strokeDash: [2, 3] },
      encoding: { x: { field: "boundary", type: "quantitative" } },
    });
  }
  layers.push({
    mark: { type: "line", point: showPoints ? { size: 18 } : false, strokeWidth: 1.5 },
    encoding: {
      x: { field: "step", type: "quantitative", title: "step", axis: { format: "d" } },
      y: {
        field: "value",
        type: "quantitative",
        title: options.valueTitle,
        scale: { zero: false },
        axis: valueAxis(options.points.map((point) => point.value)),
      },
      color: seriesColor("series", series, seriesOrder),
    },
  });
  const spec = {
    ...baseSpec(options.description),
    data: { values: options.points.map((point) => ({ ...point })) },
    layer: layers,
  } as TopLevelSpec;
  return { id: options.id, title: options.title, description: options.description, spec };
}

/** A labelled point with standard errors on both axes, e.g. one model or one run. */
export interface ScatterPoint {
  label: string;
  x: number;
  xSe: number;
  y: number;
  ySe: number;
}

/**
 * Scatter of labelled points with ±1 standard error bars on both axes, an optional dashed
 * vertical rule (the cost limit) and an optional line joining the points in the given order
 * (a frontier).
 */
export function scatterChart(options: {
  id: string;
  title: string;
  description: string;
  xTitle: string;
  yTitle: string;
  points: readonly ScatterPoint[];
  verticalRule?: number;
  connect?: boolean;
}): Chart {
  const values = options.points.map((point, order) => ({
    order,
    label: point.label,
    x: point.x,
    y: point.y,
    xLower: point.x - point.xSe,
    xUpper: point.x + point.xSe,
    yLower: point.y - point.ySe,
    yUpper: point.y + point.ySe,
  }));
  const x = { field: "x", type: "quantitative", title: options.xTitle, scale: { zero: false } };
  const y = { field: "y", type: "quantitative", title: options.yTitle, scale: { zero: false } };
  const layers: unknown[] = [];
  if (options.verticalRule !== undefined) {
    layers.push({
      data: { values: [{ limit: options.verticalRule }] },
      mark: { type: "rule", color: "#c0392b", strokeDash: [6, 4] },
      encoding: { x: { field: "limit", type: "quantitative" } },
    });
  }
  if (options.connect === true) {
    layers.push({
      mark: { type: "line", color: "#999", strokeWidth: 1 },
      encoding: { x, y, order: { field: "order", type: "quantitative" } },
    });
  }
  layers.push(
    {
      mark: { type: "errorbar", ticks: true, color: "#4c78a8" },
      encoding: { x: { ...x, field: "xLower" }, x2: { field: "xUpper" }, y },
    },
    {
      mark: { type: "errorbar", ticks: true, color: "#4c78a8" },
      encoding: { y: { ...y, field: "yLower" }, y2: { field: "yUpper" }, x },
    },
    {
      mark: { type: "point", filled: true, size: 60, color: "#1f4e79" },
      encoding: { x, y, tooltip: [{ field: "label" }, { field: "x" }, { field: "y" }] },
    },
    {
      mark: { type: "text", align: "left", dx: 7, dy: -7, fontSize: 11 },
      encoding: { x, y, text: { field: "label" } },
    },
  );
  const spec = {
    ...baseSpec(options.description),
    data: { values },
    layer: layers,
  } as TopLevelSpec;
  return { id: options.id, title: options.title, description: options.description, spec };
}
