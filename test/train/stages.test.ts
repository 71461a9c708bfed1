import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { readPreferencePairs } from "../../src/data/read.js";
import { readMetrics } from "../../src/run/folder.js";
import { scoreFile } from "../../src/train/score.js";
import { runStage } from "../../src/train/stages.js";

const root = mkdtempSync(join(tmpdir(), "cdpo-stages-"));
after(() => rmSync(root, { recursive: true, force: true }));

// Tiny models on the built-in safety dataset; sizes chosen to finish in seconds on 2 cores.
const COMMON = {
  data: "builtin",
  batchSize: 16,
  logEvery: 10,
  maxEvalPairs: 128,
  maxLength: 192,
  progress: false,
  precision: "fp32",
  threads: 1,
};

describe("stages on the built-in dataset", { timeout: 120_000 }, () => {
  let sftDir = "";
  let rewardDir = "";
  let costDir = "";

  test("reward model accuracy above chance", async () => {
    const out = join(root, "reward");
    const result = await runStage(
      "reward",
      {},
      { ...COMMON, init: "tiny", steps: 60, lr: 3e-3, out },
      { console: false },
    );
    rewardDir = result.finalDir;
    const accuracy = result.eval.eval_accuracy!;
    assert.ok(accuracy > 0.8, `eval_accuracy ${accuracy} is not well above chance (0.5)`);
    assert.equal(typeof result.eval["eval_score/mean"], "number");
    assert.ok(result.eval["eval_score/std"]! > 0);
    const records = await readMetrics(out);
    assert.deepEqual(
      records.filter((r) => "loss" in r).map((r) => r.step),
      [10, 20, 30, 40, 50, 60],
    );
    for (const name of ["accuracy", "score/mean", "score/std", "learning_rate", "grad_norm"]) {
      assert.equal(typeof records[0]![name], "number", `metrics record lacks ${name}`);
    }
  });

  test("cost model sign accuracy above chance", async () => {
    const out = join(root, "cost");
    const result = await runStage(
      "cost",
      {},
      { ...COMMON, init: "tiny", steps: 60, lr: 3e-3, out },
      { console: false },
    );
    costDir = result.finalDir;
    const sign = result.eval.eval_sign_accuracy!;
    assert.ok(sign > 0.8, `eval_sign_accuracy ${sign} is not well above chance (0.5)`);
    assert.ok(result.eval.eval_accuracy! > 0.7, `eval_accuracy ${result.eval.eval_accuracy}`);
  });

  test("sft lowers the response loss", async () => {
    const out = join(root, "sft");
    const result = await runStage(
      "sft",
      {},
      { ...COMMON, init: "tiny", steps: 40, lr: 3e-3, out },
      { console: false },
    );
    sftDir = result.finalDir;
    // A uniform guess over the 259 byte tokens costs ln 259 ≈ 5.56 nats per token.
    assert.ok(result.eval.eval_loss! < 3.5, `eval_loss ${result.eval.eval_loss}`);
    for (const file of [
      "config.json",
      "model.safetensors",
      "tokenizer.json",
      "tokenizer_config.json",
    ]) {
      assert.ok(existsSync(join(sftDir, file)), `final/ lacks ${file}`);
    }
    const config = JSON.parse(readFileSync(join(sftDir, "config.json"), "utf8"));
    assert.deepEqual(config.architectures, ["LlamaForCausalLM"]);
  });

  test("dpo raises held-out reward accuracy", async () => {
    const out = join(root, "dpo");
    const result = await runStage(
      "dpo",
      {},
      {
        ...COMMON,
        model: sftDir,
        maxPairs: 320,
        steps: 40,
        lr: 2e-3,
        beta: 0.1,
        evalEvery: 40,
        logEvery: 1,
        out,
      },
      { console: false },
    );
    const records = await readMetrics(out);
    const first = records.find((r) => "loss" in r)!;
    // Policy = reference at step 1: every implicit reward is 0, the sigmoid loss is ln 2.
    assert.equal(first.step, 1);
    assert.ok(Math.abs((first.loss as number) - Math.LN2) < 1e-6, `first loss ${first.loss}`);
    // Not exactly 0: the reference cache was computed in other batches (other padding).
    assert.ok(
      Math.abs(first["rewards/margins"] as number) < 1e-5,
      `margins ${first["rewards/margins"]}`,
    );
    const accuracy = result.eval["eval_rewards/accuracies"]!;
    assert.ok(accuracy > 0.75, `eval_rewards/accuracies ${accuracy}`);
    assert.ok(result.eval["eval_rewards/margins"]! > 0);
    for (const name of ["rewards/chosen", "rewards/rejected", "logps/chosen", "logps/rejected"]) {
      assert.equal(typeof result.eval[`eval_${name}`], "number", `eval lacks ${name}`);
    }
    assert.ok(existsSync(join(out, "reference-logps.json")));
  });

  test("score writes the scored layout", async () => {
    const out = join(root, "scored.jsonl");
    const data = join(root, "reward", "data", "test.jsonl");
    const result = await scoreFile({ reward: rewardDir, cost: costDir, data, out, maxLength: 192 });
    const { pairs } = await readPreferencePairs(out);
    assert.equal(pairs.length, result.pairs);
    const withScores = pairs.filter((p) => p.reward !== undefined && p.cost !== undefined);
    assert.equal(withScores.length, pairs.length);
    // The cost model trained above marks complying with a harmful request as unsafe (cost > 0).
    const agree = pairs
      .filter((p) => p.safe !== undefined && p.cost !== undefined)
      .filter((p) => [0, 1].every((k) => p.cost![k]! > 0 === (p.safe![k] === false)));
    assert.ok(agree.length / pairs.length > 0.8, `${agree.length}/${pairs.length} pairs agree`);
  });

  test("score keeps a safety ranking given with dataFormat and counts skipped records", async () => {
    const data = join(root, "safety-ranked.jsonl");
    const rows = [
      { prompt: "How do I pick a lock?", response: ["I can't help with that.", "Insert a pick."] },
      { prompt: "Say hello.", response: ["Hello!", ""] }, // empty response: invalid
      { prompt: "Name a fruit.", response: ["An apple.", "Poison berries."] },
    ];
    writeFileSync(data, rows.map((row) => JSON.stringify(row)).join("\n"));
    const out = join(root, "safety-scored.jsonl");
    const result = await scoreFile({
      cost: costDir,
      data,
      dataFormat: "ranked-safety",
      skipInvalid: true,
      out,
    });
    assert.equal(result.pairs, 2);
    assert.deepEqual(
      result.skipped.map((issue) => issue.reason),
      ["empty-response"],
    );
    const { pairs } = await readPreferencePairs(out);
    assert.deepEqual(
      pairs.map((p) => [p.safer, p.safe, p.better]),
      [
        [0, [true, false], undefined],
        [0, [true, false], undefined],
      ],
    );
    assert.ok(pairs.every((p) => p.cost?.length === 2));
  });
});
