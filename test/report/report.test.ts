/**
 * Opens generated reports in Debian's headless Chromium through playwright-core and checks what a
 * reader sees: no errors, charts with the run's data points, and untrusted text shown as text.
 *
 * Needs /usr/bin/chromium (scripts/install-chromium.sh installs it) or the path in CDPO_CHROMIUM.
 * Without it the tests skip, or fail when CI=true.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { pathToFileURL } from "node:url";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { writeCompareReport, writeReport } from "../../src/report/index.js";
import { readMetrics } from "../../src/run/folder.js";
import { getMetric } from "../../src/run/records.js";
import {
  type CdpoFixture,
  MALICIOUS_PROMPT,
  MALICIOUS_RESPONSE,
  makeTempDir,
  removeTempDir,
  writeCdpoFixture,
  writeSftFixture,
} from "./fixture.js";

/** Chromium binary: Debian's by default, or CDPO_CHROMIUM (another build, or a missing path). */
const CHROMIUM = process.env["CDPO_CHROMIUM"] ?? "/usr/bin/chromium";
const MISSING_MESSAGE =
  `${CHROMIUM} not found. Install Debian's chromium package with scripts/install-chromium.sh ` +
  "(as root) to run the browser tests.";

/** Screenshot folder, fixed and overwritten on each run, so the images can be viewed later. */
const SCREENSHOT_DIR = path.join(tmpdir(), "cdpo-report-screenshots");

const chromiumAvailable = existsSync(CHROMIUM);
const skip = chromiumAvailable ? false : MISSING_MESSAGE;

let root: string;
let context: BrowserContext | undefined;
let fixture: CdpoFixture;
let reportPath: string;

/** What a page load logged: console errors, uncaught errors, dialogs and requests. */
interface PageLog {
  consoleErrors: string[];
  pageErrors: string[];
  dialogs: string[];
  requests: string[];
}

/** Non-file URLs the route handler aborted, over all pages. */
const blockedRequests: string[] = [];

async function openPage(file: string): Promise<{ page: Page; log: PageLog }> {
  assert.ok(context, "browser context");
  const page = await context.newPage();
  const log: PageLog = { consoleErrors: [], pageErrors: [], dialogs: [], requests: [] };
  page.on("console", (message) => {
    if (message.type() === "error") log.consoleErrors.push(message.text());
  });
  page.on("pageerror", (error) => log.pageErrors.push(error.message));
  page.on("dialog", (dialog) => {
    log.dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  page.on("request", (request) => log.requests.push(request.url()));
  await page.goto(pathToFileURL(file).href, { waitUntil: "load" });
  return { page, log };
}

function assertClean(log: PageLog, file: string): void {
  assert.deepEqual(log.consoleErrors, [], "console errors");
  assert.deepEqual(log.pageErrors, [], "page errors");
  assert.deepEqual(log.dialogs, [], "dialogs");
  assert.deepEqual(blockedRequests, [], "blocked non-file requests");
  assert.deepEqual(log.requests, [pathToFileURL(file).href], "the page requests only itself");
}

async function pointLabels(page: Page, chart: string): Promise<string[]> {
  return page
    .locator(`figure[data-chart="${chart}"] svg [aria-roledescription="point"]`)
    .evaluateAll((nodes) => nodes.map((node) => node.getAttribute("aria-label") ?? ""));
}

/** Splits an aria label "a: 1; b: x" into fields; vega writes U+2212 for minus signs. */
function labelFields(label: string): Map<string, string> {
  return new Map(
    label
      .replace(/\u2212/g, "-")
      .split("; ")
      .map((part) => {
        const colon = part.indexOf(": ");
        return [part.slice(0, colon), part.slice(colon + 2)] as [string, string];
      }),
  );
}

function assertClose(actual: number, expected: number, message: string): void {
  // Vega prints numbers in aria labels with up to 6 significant digits.
  assert.ok(
    Math.abs(actual - expected) <= 1e-5 * Math.max(1, Math.abs(expected)),
    `${message}: ${actual} vs ${expected}`,
  );
}

describe("report in headless chromium", { skip, timeout: 120_000 }, () => {
  before(async () => {
    root = await makeTempDir("report-browser");
    fixture = await writeCdpoFixture(path.join(root, "cdpo"), {
      iterations: 4,
      stepsPerIteration: 10,
    });
    reportPath = await writeReport(fixture.dir);
    // launchPersistentContext takes the profile folder as its first argument (playwright
    // rejects --user-data-dir in args), so each run gets a fresh, empty profile.
    context = await chromium.launchPersistentContext(path.join(root, "profile"), {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 900 },
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    await context.route("**/*", async (route) => {
      const url = route.request().url();
      if (url.startsWith("file:")) return route.continue();
      blockedRequests.push(url);
      return route.abort();
    });
  });
  after(async () => {
    await context?.close();
    if (root !== undefined) await removeTempDir(root);
  });

  test("opens without errors or requests", async () => {
    const { page, log } = await openPage(reportPath);
    assertClean(log, reportPath);
    assert.equal(await page.title(), "cdpo report: cdpo-fixture");
    await page.close();
  });

  test("charts show the run's points", async () => {
    const { page } = await openPage(reportPath);
    const iterations = fixture.iterations;
    for (const chart of ["lambda", "cost", "reward", "kl"]) {
      assert.equal((await pointLabels(page, chart)).length, iterations.length, chart);
    }
    assert.equal((await pointLabels(page, "unsafe-share")).length, 2 * iterations.length);
    assert.equal((await pointLabels(page, "eval-frontier")).length, 4);

    const lambdas = (await pointLabels(page, "lambda")).map(labelFields);
    for (const [index, record] of iterations.entries()) {
      const fields = lambdas[index]!;
      assert.equal(Number(fields.get("dual iteration")), record.iteration);
      assertClose(
        Number(fields.get("λ")),
        record.constraints[0]!.lambda,
        `λ at ${record.iteration}`,
      );
    }
    const costs = (await pointLabels(page, "cost")).map(labelFields);
    for (const [index, record] of iterations.entries()) {
      assertClose(Number(costs[index]!.get("cost")), record.constraints[0]!.cost_mean, "cost");
    }

    // Loss per step: a point per training record plus one per eval entry, with the logged values.
    const metrics = await readMetrics(fixture.dir);
    const losses = (await pointLabels(page, "metric-loss")).map(labelFields);
    assert.equal(losses.length, fixture.lossPoints + fixture.evalLossPoints);
    const trainLosses = losses.filter((fields) => fields.get("series") === "dpo");
    const expected = metrics.filter((record) => getMetric(record, "loss") !== undefined);
    assert.equal(trainLosses.length, expected.length);
    for (const [index, record] of expected.entries()) {
      assert.equal(Number(trainLosses[index]!.get("step")), record.step);
      assertClose(
        Number(trainLosses[index]!.get("loss")),
        getMetric(record, "loss")!,
        `loss at ${record.step}`,
      );
    }
    assert.equal(
      (await pointLabels(page, "metric-rewards/accuracies")).length,
      fixture.lossPoints + fixture.evalLossPoints,
    );
    assert.equal((await pointLabels(page, "metric-rewards/margins")).length, fixture.lossPoints);

    // Every chart is laid out with a visible size.
    const sizes = await page
      .locator("figure.chart svg")
      .evaluateAll((nodes) => nodes.map((node) => node.getBoundingClientRect().width));
    assert.ok(sizes.length >= 10, `charts: ${sizes.length}`);
    for (const width of sizes) assert.ok(width > 200, `chart width ${width}`);
    await page.close();
  });

  test("untrusted text shows as text", async () => {
    const { page, log } = await openPage(reportPath);
    const details = page.locator(`details.samples[data-iteration="${fixture.maliciousIteration}"]`);
    await details.locator("summary").click();
    const responses = await details.locator("pre.response").allTextContents();
    assert.ok(responses.includes(MALICIOUS_RESPONSE), "malicious response shown verbatim");
    assert.ok(
      await details.locator("pre.response", { hasText: "<script>alert(1)</script>" }).isVisible(),
    );
    const prompts = await page.locator("pre.prompt").allTextContents();
    assert.ok(prompts.includes(MALICIOUS_PROMPT), "malicious prompt shown verbatim");
    const count = (selector: string) => page.locator(selector).count();
    assert.equal(await count("script"), 0, "script elements");
    assert.equal(await count("img"), 0, "img elements");
    assert.equal(await count("textarea"), 0, "textarea elements");
    assert.equal(await count("b"), 0, "b elements from the prompt");
    assert.equal(await count("[onerror]"), 0, "onerror attributes");
    // The prompt's </details></section> closed nothing: the page structure is intact.
    assert.equal(await count("details.samples"), fixture.iterations.length, "sample blocks");
    assert.equal(await count("body > section"), 5, "sections");
    assert.ok(
      (await page.locator("body").textContent())?.includes("<script>alert('config')</script>"),
    );
    assert.deepEqual(log.dialogs, []);

    await mkdir(SCREENSHOT_DIR, { recursive: true });
    const screenshot = path.join(SCREENSHOT_DIR, "cdpo-report.png");
    await page.screenshot({ path: screenshot, fullPage: true });
    assert.ok((await stat(screenshot)).size > 50_000, "screenshot has content");
    await page.close();
  });

  test("SFT report opens and says what is absent", async () => {
    const dir = path.join(root, "sft");
    const counts = await writeSftFixture(dir);
    const file = await writeReport(dir);
    const { page, log } = await openPage(file);
    assertClean(log, file);
    assert.match((await page.locator("#notes").textContent()) ?? "", /not a C-DPO run/);
    assert.equal(await page.locator('figure[data-chart="lambda"]').count(), 0);
    assert.equal(
      (await pointLabels(page, "metric-loss")).length,
      counts.lossPoints + counts.evalLossPoints,
    );
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, "sft-report.png"), fullPage: true });
    await page.close();
  });

  test("compare report opens with the frontier", async () => {
    const second = await writeCdpoFixture(path.join(root, "cdpo-0.2"), {
      name: "cdpo-limit-0.2",
      limit: 0.2,
      offset: 0.1,
    });
    const file = await writeCompareReport(
      [fixture.dir, second.dir],
      path.join(root, "compare.html"),
    );
    const { page, log } = await openPage(file);
    assertClean(log, file);
    const frontier = (await pointLabels(page, "compare-frontier")).map(labelFields);
    assert.deepEqual(
      frontier.map((fields) => fields.get("label")),
      ["limit 0", "limit 0.2"],
    );
    assert.equal((await pointLabels(page, "compare-lambda")).length, 2 * fixture.iterations.length);
    assert.equal(await page.locator("table.final-table tbody tr").count(), 2);
    await page.screenshot({
      path: path.join(SCREENSHOT_DIR, "compare-report.png"),
      fullPage: true,
    });
    await page.close();
  });
});

test("chromium is installed under CI", {
  skip: process.env["CI"] !== "true" || chromiumAvailable,
}, () => {
  assert.fail(MISSING_MESSAGE);
});
