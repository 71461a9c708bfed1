import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";

import { Command } from "commander";

import { register } from "../../src/cli/commands/data.js";
import { formatInspectReport, inspectData, percentiles } from "../../src/data/inspect.js";
import { requireShared } from "../helpers/shared.js";

const root = await fs.mkdtemp(path.join(os.tmpdir(), "cdpo-inspect-"));
after(() => fs.rm(root, { recursive: true, force: true }));

/** Runs `cdpo <args>` with only the data commands registered and returns what it printed. */
async function runCli(...args: string[]): Promise<string> {
  const chunks: string[] = [];
  const program = new Command("cdpo")
    .exitOverride()
    .configureOutput({ writeOut: (text) => chunks.push(text) });
  register(program);
  await program.parseAsync(["node", "cdpo", ...args]);
  return chunks.join("");
}

test("percentiles use the nearest rank", () => {
  assert.deepEqual(percentiles([]), { p50: 0, p90: 0, p99: 0, max: 0 });
  assert.deepEqual(percentiles([4, 1, 3, 2]), { p50: 2, p90: 4, p99: 4, max: 4 });
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.deepEqual(percentiles(hundred), { p50: 50, p90: 90, p99: 99, max: 100 });
});

test("inspect reports counts, balance and byte lengths", async () => {
  const file = path.join(root, "small.jsonl");
  const records = [
    {
      prompt: "ab",
      response_0: "xyz",
      response_1: "no",
      better_response_id: 0,
      safer_response_id: 1,
      is_response_0_safe: false,
      is_response_1_safe: true,
    },
    {
      prompt: "abcd",
      response_0: "x",
      response_1: "yy",
      better_response_id: 1,
      is_response_0_safe: true,
    },
    { prompt: "a", response_0: "same", response_1: "same" },
  ];
  await fs.writeFile(file, records.map((r) => JSON.stringify(r)).join("\n"));
  const report = await inspectData(file, {
    skipInvalid: true,
    promptTemplate: "{prompt}",
    samples: 1,
  });
  assert.equal(report.layout, "pku-saferlhf");
  assert.equal(report.records, 3);
  assert.equal(report.pairs, 2);
  assert.deepEqual(report.skipped, { "identical-responses": 1 });
  assert.deepEqual(report.better, { 0: 1, 1: 1, missing: 0 });
  assert.deepEqual(report.safer, { 0: 0, 1: 1, missing: 1 });
  assert.deepEqual(report.safe, { safe: 2, unsafe: 1, unlabelled: 1 });
  // Byte tokenizer: BOS + prompt bytes, response bytes + EOS.
  assert.deepEqual(report.promptTokens, { p50: 3, p90: 5, p99: 5, max: 5 });
  assert.deepEqual(report.responseTokens, { p50: 3, p90: 4, p99: 4, max: 4 });
  assert.equal(report.samples.length, 1);
  const text = formatInspectReport(report);
  assert.match(text, /^layout: {4}pku-saferlhf$/m);
  assert.match(text, /^pairs: {5}2 \(skipped: 1 identical-responses\)$/m);
  assert.match(text, /^better: {4}0: 1, 1: 1, missing: 0$/m);
  assert.match(text, /^responses: 2 safe, 1 unsafe, 1 unlabelled$/m);
  assert.match(text, /^ {2}prompt: {3}p50 3, p90 5, p99 5, max 5$/m);
  assert.match(text, /^sample small:0 \(better=0 safer=1 safe=\[false, true\]\)$/m);
});

test("cdpo data builtin and inspect", async () => {
  const out = path.join(root, "builtin");
  const written = await runCli(
    "data",
    "builtin",
    "--out",
    out,
    "--train",
    "60",
    "--test",
    "10",
    "--harmful-fraction",
    "0.5",
    "--seed",
    "3",
  );
  assert.match(
    written,
    /Wrote 60 training pairs to .*train\.jsonl, 10 test pairs to .*test\.jsonl/,
  );
  const printed = await runCli("data", "inspect", path.join(out, "train.jsonl"), "--samples", "2");
  assert.match(printed, /^layout: {4}pku-saferlhf$/m);
  assert.match(printed, /^records: {3}60$/m);
  assert.match(printed, /^responses: 90 safe, 30 unsafe, 0 unlabelled$/m);
  assert.match(printed, /^tokens \(byte-level: UTF-8 bytes, BOS, EOS\):$/m);
  assert.equal(printed.match(/^sample /gm)?.length, 2);
  await assert.rejects(
    runCli("data", "builtin", "--out", out, "--harmful-fraction", "2"),
    /Expected a number from 0 to 1 for --harmful-fraction but received "2" \(string\)/,
  );
  await assert.rejects(
    runCli("data", "inspect", path.join(out, "train.jsonl"), "--format", "x"),
    /Expected one of pku-saferlhf/,
  );
});

test("cdpo data inspect --skip-invalid on HH-RLHF", async (t) => {
  const file = requireShared(t, "data", "hh-rlhf-harmless-base-test.jsonl.gz");
  if (!file) return;
  await assert.rejects(runCli("data", "inspect", file), /line 87 \(row 86\).*--skip-invalid/);
  const printed = await runCli("data", "inspect", file, "--skip-invalid", "--samples", "0");
  assert.match(printed, /^pairs: {5}2,303 \(skipped: 4 empty-response, 5 mismatched-prompts\)$/m);
  assert.match(printed, /^better: {4}0: 2,303, 1: 0, missing: 0$/m);
  assert.equal(printed.match(/^sample /gm), null);
});

test("cdpo data inspect with a model tokenizer", async (t) => {
  const model = requireShared(t, "models", "stories260K");
  if (!model) return;
  const out = path.join(root, "tokenized");
  await runCli("data", "builtin", "--out", out, "--train", "20", "--test", "5");
  const printed = await runCli(
    "data",
    "inspect",
    path.join(out, "test.jsonl"),
    "--tokenizer",
    model,
  );
  assert.match(printed, /^tokens \(.*stories260K\):$/m);
  assert.match(printed, /^ {2}prompt: {3}p50 \d+, p90 \d+, p99 \d+, max \d+$/m);
  // Byte lengths are larger than stories260K token counts for the same English text.
  const bytes = await runCli("data", "inspect", path.join(out, "test.jsonl"));
  const max = (text: string) => Number(/^ {2}prompt: .*max (\d+)$/m.exec(text)?.[1]);
  assert.ok(max(printed) < max(bytes), `${max(printed)} < ${max(bytes)}`);
});
