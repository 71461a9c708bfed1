import assert from "node:assert/strict";
import { appendFile, mkdir, readFile } from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { CdpoError } from "../../src/errors.js";
import { MAX_POINTS_PER_SERIES, renderChart, stepChart } from "../../src/report/charts.js";
import { loadRun, writeReport } from "../../src/report/index.js";
import {
  buildIterationCharts,
  buildStepCharts,
  presentMetrics,
  selectSamples,
} from "../../src/report/single.js";
import { appendMetrics, createRunFolder, runPaths } from "../../src/run/folder.js";
import {
  type CdpoFixture,
  MALICIOUS_PROMPT,
  MALICIOUS_RESPONSE,
  makeTempDir,
  removeTempDir,
  writeCdpoFixture,
  writeSftFixture,
} from "./fixture.js";

let root: string;
let fixture: CdpoFixture;
let html: string;
before(async () => {
  root = await makeTempDir("render");
  fixture = await writeCdpoFixture(path.join(root, "cdpo"));
  html = await readFile(await writeReport(fixture.dir), "utf8");
});
after(async () => {
  await removeTempDir(root);
});

/** Returns the markup of the figure with `data-chart="id"`. */
function figureHtml(page: string, id: string): string {
  const start = page.indexOf(`data-chart="${id}"`);
  assert.ok(start >= 0, `no chart ${id}`);
  const end = page.indexOf("</figure>", start);
  return page.slice(start, end);
}

function countPoints(markup: string): number {
  return (markup.match(/aria-roledescription="point"/g) ?? []).length;
}

describe("run report HTML", () => {
  test("is written to report.html by default", async () => {
    assert.equal(await writeReport(fixture.dir), runPaths(fixture.dir).report);
    const custom = path.join(root, "out", "custom.html");
    assert.equal(await writeReport(fixture.dir, custom), custom);
    assert.ok((await readFile(custom, "utf8")).startsWith("<!doctype html>"));
  });

  test("escapes untrusted text", () => {
    assert.ok(!/<script/i.test(html), "no script element");
    assert.ok(!/<img/i.test(html), "no img element");
    assert.ok(!html.includes("</textarea>"));
    assert.ok(html.includes("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert.ok(html.includes("&lt;/pre&gt;&lt;/textarea&gt;"));
    assert.ok(html.includes("&lt;img src=x onerror=&quot;alert(2)&quot;&gt;"));
    assert.ok(html.includes("Explain &lt;/details&gt;&lt;/section&gt;&lt;b&gt;bold&lt;/b&gt;"));
    // config.json text is escaped too.
    assert.ok(html.includes("&lt;script&gt;alert(&#39;config&#39;)&lt;/script&gt;"));
    assert.ok(html.includes("models/&lt;cdpo&gt;"));
    assert.ok(MALICIOUS_RESPONSE.includes("<script>"));
    assert.ok(MALICIOUS_PROMPT.includes("</details>"));
  });

  test("loads nothing from outside", () => {
    assert.match(html, /<meta http-equiv="Content-Security-Policy" content="default-src 'none';/);
    assert.ok(!/<[^>]*\s(?:src|href|xlink:href)=/i.test(html), "no src or href attributes");
    assert.ok(!/<link\b/i.test(html), "no link element");
    assert.ok(!/@import|url\(/i.test(html), "no CSS imports or urls");
    // The only URLs are the SVG and XLink namespace names, which browsers never fetch.
    const urls = new Set(html.match(/https?:\/\/[^\s"'<>]+/g) ?? []);
    assert.deepEqual([...urls].sort(), [
      "http://www.w3.org/1999/xlink",
      "http://www.w3.org/2000/svg",
    ]);
  });

  test("header shows limit, final λ and badge", () => {
    const header = html.slice(html.indexOf("<header>"), html.indexOf("</header>"));
    const last = fixture.iterations.at(-1)!.constraints[0]!;
    assert.ok(header.includes("cdpo-fixture"));
    assert.ok(header.includes("harm ≤ 0"));
    assert.ok(header.includes(`harm: ${last.lambda_next}`), header);
    assert.ok(header.includes(`harm: ${last.cost_mean} ± ${last.cost_se} vs 0`), header);
    // cost_mean 0 <= limit 0
    assert.ok(header.includes('<span class="badge pass">PASS</span>'));
  });

  test("charts hold one point per value", () => {
    const iterations = fixture.iterations.length;
    assert.equal(countPoints(figureHtml(html, "lambda")), iterations);
    // cost: a point per mean; the error bars are separate marks.
    assert.equal(countPoints(figureHtml(html, "cost")), iterations);
    assert.equal(countPoints(figureHtml(html, "reward")), iterations);
    // unsafe share: cost > 0 and cost > limit series.
    assert.equal(countPoints(figureHtml(html, "unsafe-share")), 2 * iterations);
    assert.equal(countPoints(figureHtml(html, "kl")), iterations);
    assert.equal(
      countPoints(figureHtml(html, "metric-loss")),
      fixture.lossPoints + fixture.evalLossPoints,
    );
    assert.equal(
      countPoints(figureHtml(html, "metric-rewards/accuracies")),
      fixture.lossPoints + fixture.evalLossPoints,
    );
    assert.equal(countPoints(figureHtml(html, "metric-rewards/margins")), fixture.lossPoints);
    assert.equal(countPoints(figureHtml(html, "eval-frontier")), 4);
  });

  test("λ marks carry the logged values", () => {
    const figure = figureHtml(html, "lambda");
    for (const record of fixture.iterations) {
      const lambda = record.constraints[0]!.lambda;
      const label = `dual iteration: ${record.iteration}; λ: ${lambda}; constraint: harm`;
      assert.ok(figure.includes(label), label);
    }
  });

  test("the limit is drawn as a rule", () => {
    const figure = figureHtml(html, "cost");
    assert.match(
      figure,
      /aria-label="limit: 0; constraint: harm"[^>]*aria-roledescription="rule mark"/,
    );
  });

  test("renders without vega warnings", async () => {
    const run = await loadRun(fixture.dir);
    for (const chart of [...buildIterationCharts(run.iterations), ...buildStepCharts(run)]) {
      const rendered = await renderChart(chart);
      assert.deepEqual(rendered.warnings, [], chart.id);
    }
  });

  test("tables and samples are present", () => {
    assert.ok(html.includes('class="eval-table"'));
    assert.equal((html.match(/<details class="samples"/g) ?? []).length, fixture.iterations.length);
    assert.equal((html.match(/class="sample"/g) ?? []).length, 4 * fixture.iterations.length);
    assert.ok(html.includes("Iteration 1: 4 of 6 responses"));
  });
});

describe("reports of other runs", () => {
  test("SFT run shows loss curves and says what is absent", async () => {
    const dir = path.join(root, "sft");
    const counts = await writeSftFixture(dir);
    const page = await readFile(await writeReport(dir), "utf8");
    assert.ok(page.includes("iterations.jsonl is absent: this is not a C-DPO run"));
    assert.ok(page.includes("eval.json is absent"));
    assert.ok(!page.includes('data-chart="lambda"'));
    assert.ok(!page.includes('id="samples"'));
    assert.equal(
      countPoints(figureHtml(page, "metric-loss")),
      counts.lossPoints + counts.evalLossPoints,
    );
    assert.equal(countPoints(figureHtml(page, "metric-mean_token_accuracy")), counts.lossPoints);
    assert.match(page, /<dt>Stage<\/dt><dd>sft<\/dd>/);
  });

  test("truncated last line is noted, not fatal", async () => {
    const dir = path.join(root, "killed");
    await writeSftFixture(dir, 12);
    await appendFile(runPaths(dir).metrics, '{"step":13,"phase":"sft","lo');
    const page = await readFile(await writeReport(dir), "utf8");
    const lines = (await readFile(runPaths(dir).metrics, "utf8")).split("\n").length;
    assert.ok(page.includes(`metrics.jsonl line ${lines} is truncated`), "note names the line");
    assert.equal(countPoints(figureHtml(page, "metric-loss")), 12 + 1);
  });

  test("a bad middle line fails with its line", async () => {
    const dir = path.join(root, "corrupt");
    await writeSftFixture(dir, 3);
    await appendFile(
      runPaths(dir).metrics,
      '{"step":"four","phase":"sft","time":"2025-01-01T00:00:00Z"}\n',
    );
    await appendMetrics(dir, { step: 5, phase: "sft", loss: 1 });
    await assert.rejects(writeReport(dir), (error: unknown) => {
      assert.ok(error instanceof CdpoError);
      assert.equal(error.code, "DATA");
      assert.match(error.message, /metrics\.jsonl:4: invalid metrics record: field "step"/);
      return true;
    });
  });

  test("an empty run folder still renders", async () => {
    const dir = path.join(root, "empty");
    await createRunFolder(dir, { stage: "reward" });
    const page = await readFile(await writeReport(dir), "utf8");
    assert.ok(page.includes("metrics.jsonl is absent or empty"));
    assert.ok(!page.includes("<figure"));
  });

  test("a folder without run records fails", async () => {
    const dir = path.join(root, "not-a-run");
    await mkdir(dir, { recursive: true });
    await assert.rejects(writeReport(dir), /is not a run folder: it has none of config.json/);
  });

  test("a missing run folder fails", async () => {
    await assert.rejects(writeReport(path.join(root, "nope")), /Run folder not found/);
  });
});

describe("chart helpers", () => {
  test("long series are drawn without points", async () => {
    const points = Array.from({ length: MAX_POINTS_PER_SERIES + 1 }, (_, step) => ({
      step,
      series: "dpo",
      value: step,
    }));
    const rendered = await renderChart(
      stepChart({ id: "long", title: "t", description: "d", valueTitle: "v", points }),
    );
    assert.equal(countPoints(rendered.svg), 0);
    assert.equal((rendered.svg.match(/aria-roledescription="line mark"/g) ?? []).length, 1);
    const short = await renderChart(
      stepChart({
        id: "short",
        title: "t",
        description: "d",
        valueTitle: "v",
        points: points.slice(0, 20),
      }),
    );
    assert.equal(countPoints(short.svg), 20);
  });

  test("presentMetrics orders by the table", async () => {
    const run = await loadRun(fixture.dir);
    const names = presentMetrics(run.metrics);
    assert.deepEqual(names.slice(0, 3), ["loss", "rewards/accuracies", "rewards/margins"]);
    assert.ok(names.includes("grad_norm"));
    assert.ok(!names.some((name) => name.startsWith("eval_")));
  });

  test("selectSamples alternates highest cost and reward", () => {
    const sample = (reward: number, cost: number) => ({
      prompt_id: String(reward),
      prompt: "p",
      response: "r",
      reward,
      costs: [cost],
    });
    const samples = [sample(0, 0), sample(5, -1), sample(1, 9), sample(4, 2), sample(3, 1)];
    assert.deepEqual(selectSamples(samples, 2), [1, 2]);
    assert.deepEqual(selectSamples(samples, 3), [1, 2, 3]);
    assert.deepEqual(selectSamples(samples, 10), [0, 1, 2, 3, 4]);
    assert.deepEqual(selectSamples([], 4), []);
  });
});
