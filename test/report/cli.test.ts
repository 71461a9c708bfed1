import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { Command } from "commander";
import { register } from "../../src/cli/commands/report.js";
import { CdpoError } from "../../src/errors.js";
import { makeTempDir, removeTempDir, writeCdpoFixture, writeSftFixture } from "./fixture.js";

let root: string;
before(async () => {
  root = await makeTempDir("report-cli");
  await writeCdpoFixture(path.join(root, "a"), { name: "a", iterations: 2, stepsPerIteration: 3 });
  await writeSftFixture(path.join(root, "b"), 5);
});
after(async () => {
  await removeTempDir(root);
});

/** Runs `cdpo report ...args` on a fresh program and returns what it printed. */
async function runReport(t: { mock: test.TestContext["mock"] }, args: string[]): Promise<string> {
  const program = new Command("cdpo").exitOverride();
  register(program);
  const printed: string[] = [];
  // console.log, not process.stdout.write: node's test runner reports through stdout.
  t.mock.method(console, "log", (...values: unknown[]) => {
    printed.push(`${values.map(String).join(" ")}\n`);
  });
  try {
    await program.parseAsync(["node", "cdpo", "report", ...args]);
  } finally {
    t.mock.restoreAll();
  }
  return printed.join("");
}

describe("cdpo report", () => {
  test("writes RUN_DIR/report.html and prints it", async (t) => {
    const dir = path.join(root, "a");
    const output = await runReport(t, [dir]);
    assert.equal(output, `Report written to ${path.join(dir, "report.html")}\n`);
    assert.ok(
      (await readFile(path.join(dir, "report.html"), "utf8")).includes(
        "<title>cdpo report: a</title>",
      ),
    );
  });

  test("--out picks the file", async (t) => {
    const out = path.join(root, "custom", "r.html");
    const output = await runReport(t, [path.join(root, "b"), "--out", out]);
    assert.equal(output, `Report written to ${out}\n`);
    assert.ok((await readFile(out, "utf8")).includes("sft-fixture"));
  });

  test("--compare writes compare.html", async (t) => {
    const output = await runReport(t, ["--compare", path.join(root, "a"), path.join(root, "b")]);
    assert.equal(output, `Report written to ${path.join(root, "compare.html")}\n`);
    assert.ok(
      (await readFile(path.join(root, "compare.html"), "utf8")).includes("Comparison of 2 runs"),
    );
  });

  test("two folders without --compare fail", async (t) => {
    await assert.rejects(
      runReport(t, [path.join(root, "a"), path.join(root, "b")]),
      (error: unknown) => {
        assert.ok(error instanceof CdpoError);
        assert.match(error.message, /takes one run folder but received 2.*--compare/);
        return true;
      },
    );
  });

  test("a missing folder fails", async (t) => {
    await assert.rejects(runReport(t, [path.join(root, "missing")]), /Run folder not found/);
  });
});
