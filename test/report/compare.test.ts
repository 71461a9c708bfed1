import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { renderChart } from "../../src/report/charts.js";
import { buildCompareCharts, frontierLabel, frontierPoints } from "../../src/report/compare.js";
import { commonParent, loadRun, type RunData, writeCompareReport } from "../../src/report/index.js";
import { makeTempDir, removeTempDir, writeCdpoFixture, writeSftFixture } from "./fixture.js";

let root: string;
let runs: RunData[];
before(async () => {
  root = await makeTempDir("compare");
  // Written out of limit order, to check the sort.
  await writeCdpoFixture(path.join(root, "limit-0.2"), {
    name: "limit-0.2",
    limit: 0.2,
    offset: 0.2,
  });
  await writeCdpoFixture(path.join(root, "limit-0"), { name: "limit-0", limit: 0 });
  await writeCdpoFixture(path.join(root, "limit-0.1"), {
    name: "limit-0.1",
    limit: 0.1,
    offset: 0.1,
    withEval: false,
  });
  await writeSftFixture(path.join(root, "sft"));
  runs = [];
  for (const name of ["limit-0.2", "limit-0", "limit-0.1", "sft"]) {
    runs.push(await loadRun(path.join(root, name)));
  }
});
after(async () => {
  await removeTempDir(root);
});

describe("frontierPoints", () => {
  test("one point per C-DPO run, sorted by limit", () => {
    const points = frontierPoints(runs);
    assert.deepEqual(
      points.map((point) => [point.run, point.limit, point.source]),
      [
        ["limit-0", 0, "eval"],
        ["limit-0.1", 0.1, "iteration 3"],
        ["limit-0.2", 0.2, "eval"],
      ],
    );
  });

  test("eval row values are used when present", () => {
    const point = frontierPoints(runs).find((p) => p.run === "limit-0.2")!;
    const row = runs[0]!.evalTable!.rows.find((r) => r.name === "C-DPO")!;
    assert.equal(point.rewardMean, row.reward_mean);
    assert.equal(point.rewardSe, row.reward_se);
    assert.equal(point.costMean, row.cost_mean);
    assert.equal(point.costSe, row.cost_se);
    assert.ok(Math.abs(point.rewardMean - 1.5) < 1e-12);
  });

  test("last iteration is used without eval", () => {
    const point = frontierPoints(runs).find((p) => p.run === "limit-0.1")!;
    const last = runs[2]!.iterations.at(-1)!;
    assert.equal(point.rewardMean, last.reward_mean);
    assert.equal(point.rewardSe, last.reward_se);
    assert.equal(point.costMean, last.constraints[0]!.cost_mean);
    assert.equal(point.costSe, last.constraints[0]!.cost_se);
  });

  test("runs without a limit sort last", () => {
    const noLimit: RunData = {
      ...runs[1]!,
      name: "aaa-no-limit",
      iterations: [],
      evalTable: { prompts: "p", rows: runs[1]!.evalTable!.rows },
    };
    const points = frontierPoints([noLimit, ...runs]);
    assert.equal(points.at(-1)?.run, "aaa-no-limit");
    assert.equal(points.at(-1)?.limit, undefined);
    assert.equal(frontierLabel(points.at(-1)!), "aaa-no-limit (no limit)");
    assert.equal(frontierLabel(points[0]!), "limit 0");
  });

  test("frontier chart has one mark per run", async () => {
    const chart = buildCompareCharts(runs).find((c) => c.id === "compare-frontier");
    assert.ok(chart);
    const rendered = await renderChart(chart);
    assert.deepEqual(rendered.warnings, []);
    // Vega formats negative numbers with U+2212 MINUS SIGN; normalize it to parse values.
    const labels = [
      ...rendered.svg.matchAll(/aria-label="([^"]*)"[^>]*aria-roledescription="point"/g),
    ].map((match) => match[1]!.replace(/\u2212/g, "-"));
    assert.equal(labels.length, 3);
    for (const point of frontierPoints(runs)) {
      const label = labels.find((l) => l?.includes(`label: ${frontierLabel(point)};`));
      assert.ok(label, `no point labelled ${frontierLabel(point)} in ${labels.join(" | ")}`);
      // The raw x and y fields carry the exact values; the titled fields are rounded for display.
      const fields = new Map(label.split("; ").map((part) => part.split(": ") as [string, string]));
      assert.equal(Number(fields.get("x")), point.costMean, label);
      assert.equal(Number(fields.get("y")), point.rewardMean, label);
    }
  });

  test("overlaid λ chart has a series per run", async () => {
    const chart = buildCompareCharts(runs).find((c) => c.id === "compare-lambda");
    assert.ok(chart);
    const rendered = await renderChart(chart);
    const points = rendered.svg.match(/aria-roledescription="point"/g) ?? [];
    // Three C-DPO runs with 4 iterations and one constraint each.
    assert.equal(points.length, 12);
    for (const name of ["limit-0", "limit-0.1", "limit-0.2"]) {
      assert.ok(rendered.svg.includes(`run: ${name}"`), name);
    }
  });
});

describe("writeCompareReport", () => {
  test("writes compare.html in the common parent", async () => {
    const dirs = ["limit-0", "limit-0.1", "limit-0.2", "sft"].map((name) => path.join(root, name));
    const written = await writeCompareReport(dirs);
    assert.equal(written, path.join(root, "compare.html"));
    const html = await readFile(written, "utf8");
    assert.ok(html.includes("Comparison of 4 runs"));
    assert.ok(html.includes('data-chart="compare-frontier"'));
    assert.ok(html.includes("sft-fixture: no iterations.jsonl"));
    assert.equal((html.match(/<tr>/g) ?? []).length, 5, "header row plus one row per run");
  });

  test("rejects an empty list", async () => {
    await assert.rejects(writeCompareReport([]), RangeError);
  });
});

describe("commonParent", () => {
  test("returns the deepest shared folder", () => {
    assert.equal(commonParent(["/a/b/run1", "/a/b/run2"]), "/a/b");
    assert.equal(commonParent(["/a/b/run1", "/a/c/run2"]), "/a");
    assert.equal(commonParent(["/a/b/run1"]), "/a/b");
    assert.equal(commonParent(["/x/run1", "/y/run2"]), "/");
  });
});
