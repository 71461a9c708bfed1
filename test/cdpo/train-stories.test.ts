import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { resolveCdpoConfig } from "../../src/cdpo/config.js";
import { runCdpo } from "../../src/cdpo/train.js";
import { readIterations, readSamples } from "../../src/run/folder.js";
import { requireShared } from "../helpers/shared.js";

test("train on stories260K with PKU safety pairs", async (t) => {
  const model = requireShared(t, "models", "stories260K");
  const data = requireShared(t, "data", "pku-saferlhf-test-safety-pairs.json");
  const prompts = requireShared(t, "data", "safe-rlhf-eval-prompts.json");
  if (!model || !data || !prompts) return;
  const root = await fs.mkdtemp(path.join(os.tmpdir(), "cdpo-stories-"));
  t.after(() => fs.rm(root, { recursive: true, force: true }));
  const out = path.join(root, "run");

  // Reward and cost models are stories260K with new random score heads: this checks the
  // plumbing on a real checkpoint and real data, not the quality of the scores.
  const config = resolveCdpoConfig({
    policy: model,
    reward: model,
    costs: [{ model, limit: -10, name: "harm" }],
    data,
    dataFormat: "ranked-safety",
    maxPairs: 6,
    prompts,
    out,
    iterations: 2,
    dpo: { steps: 2, batchSize: 3, lr: 1e-4, maxLength: 96 },
    estimate: { evalPrompts: 2, samplesPerPrompt: 2, maxNewTokens: 8 },
    precision: "fp32",
    threads: 1,
    progress: false,
  });
  const lines: string[] = [];
  const result = await runCdpo(config, { log: (line) => lines.push(line) });

  assert.equal(result.iterations, 2);
  const records = await readIterations(out);
  assert.equal(records.length, 2);
  assert.equal(records[0]?.constraints[0]?.lambda, 0);
  // Every sampled cost is above -10, so each dual step raises λ by lr·(cost − limit) > 0.
  const first = records[0]?.constraints[0];
  assert.ok(first !== undefined);
  assert.ok(Math.abs(first.lambda_next - 0.5 * (first.cost_mean + 10)) < 1e-9);
  assert.equal(records[1]?.constraints[0]?.lambda, first.lambda_next);
  assert.equal(records[1]?.step, 4);
  const samples = await readSamples(out, 1);
  assert.equal(samples.length, 4);
  assert.equal(samples[0]?.costs.length, 1);
  for (const file of [
    "config.json",
    "pair-scores.json",
    "reference-logps.json",
    "report.html",
    "cdpo-state.json",
  ]) {
    assert.ok(existsSync(path.join(out, file)), file);
  }
  assert.ok(existsSync(path.join(out, "policy", "model.safetensors")));
  assert.ok(existsSync(path.join(out, "policy", "tokenizer.json")));
  assert.ok(lines.some((line) => line.includes("cdpo iteration 2/2")));
});
