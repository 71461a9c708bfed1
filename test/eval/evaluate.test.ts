import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { readPrompts } from "../../src/data/index.js";
import { evaluateModels } from "../../src/eval/evaluate.js";
import { writeTinySetup } from "../cdpo/fixtures/lm-setup.js";

describe("evaluateModels", () => {
  let root: string;
  let setup: Awaited<ReturnType<typeof writeTinySetup>>;

  before(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), "cdpo-eval-"));
    setup = await writeTinySetup(root);
  });

  after(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  const options = (prompts: Awaited<ReturnType<typeof readPrompts>>["prompts"], file: string) => ({
    prompts,
    promptsFile: file,
    rewardDir: setup.reward,
    costDirs: [setup.costs[0]?.model as string],
    samplesPerPrompt: 3,
    maxNewTokens: 8,
    batchSize: 8,
    seed: 2,
    precision: "fp32" as const,
    limit: -1,
    log: () => {},
  });

  test("built-in prompts get oracle columns", async () => {
    const file = setup.prompts as string;
    const prompts = (await readPrompts(file)).prompts.slice(0, 4);
    const { table, samples } = await evaluateModels(
      [
        { name: "A", dir: setup.policy },
        { name: "B", dir: setup.policy },
      ],
      options(prompts, file),
    );
    assert.deepEqual(
      table.rows.map((r) => r.name),
      ["A", "B"],
    );
    assert.equal(table.limit, -1);
    assert.equal(table.prompts, file);
    const row = table.rows[0];
    assert.ok(row !== undefined);
    assert.equal(row.n_prompts, 4);
    assert.ok(row.oracle !== undefined);
    assert.equal(samples.get("A")?.length, 12);
    // Same model, same seed: the same samples and scores.
    assert.deepEqual(table.rows[1]?.cost_mean, row.cost_mean);
    // A random byte model neither answers nor refuses, so the oracle counts no helpful answer.
    assert.equal(row.oracle.helpful_rate, 0);
  });

  test("other prompts have no oracle", async () => {
    const file = path.join(root, "prompts.json");
    await fs.writeFile(
      file,
      JSON.stringify([{ prompt: "Tell me a story." }, { prompt: "Write a poem." }]),
    );
    const prompts = (await readPrompts(file)).prompts;
    const { table } = await evaluateModels(
      [{ name: "A", dir: setup.policy }],
      options(prompts, file),
    );
    assert.equal(table.rows[0]?.oracle, undefined);
    assert.equal(table.rows[0]?.n_prompts, 2);
  });

  test("one prompt is rejected", async () => {
    const file = setup.prompts as string;
    const prompts = (await readPrompts(file)).prompts.slice(0, 1);
    await assert.rejects(
      evaluateModels([{ name: "A", dir: setup.policy }], options(prompts, file)),
      /Expected at least 2 prompts \(for standard errors\) for prompts but received 1 \(number\)/,
    );
  });
});
