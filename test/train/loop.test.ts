import assert from "node:assert/strict";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { createRunFolder, readMetrics } from "../../src/run/folder.js";
import * as torch from "../../src/tensor/index.js";
import {
  listCheckpoints,
  readCheckpoint,
  saveCheckpoint,
  stateFromBase64,
  stateToBase64,
  type TrainerState,
} from "../../src/train/checkpoint.js";
import { resolveConfig, suggestKey } from "../../src/train/config.js";
import {
  type LoopConfig,
  scheduledItems,
  totalStepsFor,
  trainLoop,
  truncateMetrics,
} from "../../src/train/loop.js";
import { createAdamW, decays } from "../../src/train/optim.js";
import { formatProgressLine } from "../../src/train/progress.js";
import { learningRate, resolveWarmup } from "../../src/train/schedule.js";

const root = mkdtempSync(join(tmpdir(), "cdpo-loop-"));
after(() => rmSync(root, { recursive: true, force: true }));

describe("learning-rate schedule", () => {
  const base = { lr: 1, totalSteps: 10, warmupSteps: 2 };

  test("warmup rises from 0", () => {
    assert.equal(learningRate({ ...base, kind: "cosine" }, 0), 0);
    assert.equal(learningRate({ ...base, kind: "cosine" }, 1), 0.5);
    assert.equal(learningRate({ ...base, kind: "cosine" }, 2), 1);
  });

  test("cosine, linear and constant decay", () => {
    // Halfway through the decay (step 6 of 2..10): cosine and linear both give 0.5.
    assert.ok(Math.abs(learningRate({ ...base, kind: "cosine" }, 6) - 0.5) < 1e-12);
    assert.equal(learningRate({ ...base, kind: "linear" }, 6), 0.5);
    assert.equal(learningRate({ ...base, kind: "linear" }, 10), 0);
    assert.equal(learningRate({ ...base, kind: "constant" }, 9), 1);
    assert.ok(
      Math.abs(learningRate({ ...base, kind: "cosine" }, 4) - (0.5 + 0.5 * Math.cos(Math.PI / 4))) <
        1e-12,
    );
  });

  test("warmup ratio and step count", () => {
    assert.equal(resolveWarmup(0.1, 95), 10);
    assert.equal(resolveWarmup(5, 95), 5);
    assert.equal(resolveWarmup(200, 95), 95);
  });
});

describe("stage config", () => {
  test("defaults fill in", () => {
    const config = resolveConfig("dpo", {}, { init: "tiny", data: "d.jsonl", out: "run" });
    assert.equal(config.beta, 0.1);
    assert.equal(config.lossType, "sigmoid");
    assert.equal(config.batchSize, 8);
    assert.equal(config.schedule, "cosine");
  });

  test("flags override the file", () => {
    const config = resolveConfig(
      "sft",
      { init: "tiny", data: "a", out: "r", batchSize: 4 },
      { batchSize: 2 },
    );
    assert.equal(config.batchSize, 2);
  });

  test("unknown key gets a suggestion", () => {
    assert.throws(
      () => resolveConfig("dpo", { init: "tiny", data: "d", out: "r", batch_size: 4 }),
      {
        name: "CdpoError",
        message: 'Invalid dpo config: unknown field "batch_size" (did you mean "batchSize"?)',
      },
    );
    assert.equal(suggestKey("lossTyp", ["lossType", "beta"]), "lossType");
    assert.equal(suggestKey("zzzzzz", ["lossType", "beta"]), undefined);
  });

  test("out-of-range value names the field", () => {
    assert.throws(
      () => resolveConfig("dpo", { init: "tiny", data: "d", out: "r", labelSmoothing: 0.5 }),
      /Invalid dpo config: field "labelSmoothing": /,
    );
    assert.throws(
      () => resolveConfig("dpo", { init: "tiny", data: "d", out: "r", lossType: "kto" }),
      /field "lossType": .*"sigmoid"/,
    );
  });

  test("model and init are exclusive", () => {
    assert.throws(
      () => resolveConfig("sft", { model: "m", init: "tiny", data: "d", out: "r" }),
      /give exactly one of "model" \(a Hugging Face folder\) and "init" \(tiny or small\) but received both/,
    );
    assert.throws(() => resolveConfig("sft", { data: "d", out: "r" }), /but received neither/);
  });
});

describe("optimizer groups", () => {
  test("no weight decay on biases and norm weights", () => {
    const matrix = torch.zeros([2, 2]);
    const vector = torch.zeros([2]);
    assert.equal(decays("model.layers.0.mlp.up_proj.weight", matrix), true);
    assert.equal(decays("model.norm.weight", vector), false);
    assert.equal(decays("score_head.bias", vector), false);
    torch.dispose([matrix, vector]);
  });
});

describe("checkpoints", () => {
  const state = (step: number): TrainerState => ({
    step,
    totalSteps: 100,
    epoch: 0,
    batchInEpoch: step,
    microBatches: step,
    torchRng: "",
    generators: {},
    pending: { sums: {}, counts: {}, steps: 0, tokens: 0 },
    stage: {},
  });

  test("written atomically and pruned to the last K", async () => {
    const dir = join(root, "ckpt");
    mkdirSync(dir, { recursive: true });
    // A folder left by a run killed while saving is removed by the next save.
    mkdirSync(join(dir, "checkpoint-3.tmp"));
    for (const step of [2, 4, 6]) {
      await saveCheckpoint(
        dir,
        {
          step,
          saveModel: async (d) => writeFileSync(join(d, "model.safetensors"), `weights ${step}`),
          optimizerState: Buffer.from([step]),
          state: state(step),
        },
        2,
      );
    }
    assert.deepEqual(readdirSync(dir).sort(), ["checkpoint-4", "checkpoint-6"]);
    assert.deepEqual(await listCheckpoints(dir), [4, 6]);
    const read = await readCheckpoint(join(dir, "checkpoint-6"));
    assert.equal(read.state.batchInEpoch, 6);
    assert.deepEqual([...read.optimizerState], [6]);
    assert.equal(readFileSync(join(dir, "checkpoint-6", "model.safetensors"), "utf8"), "weights 6");
  });

  test("RNG state round-trips", () => {
    torch.manualSeed(5);
    const saved = torch.tidy(() => stateToBase64(torch.getRngState()));
    const first = torch.tidy(() => torch.randn([3]).toArray());
    torch.tidy(() => torch.setRngState(stateFromBase64(saved)));
    const again = torch.tidy(() => torch.randn([3]).toArray());
    assert.deepEqual(again, first);
  });

  test("truncateMetrics drops later records of the phase", async () => {
    const dir = join(root, "truncate");
    await createRunFolder(dir, {});
    const lines = [
      { step: 1, phase: "sft", loss: 1 },
      { step: 2, phase: "sft", loss: 2 },
      { step: 3, phase: "reward", loss: 3 },
      { step: 3, phase: "sft", loss: 4 },
    ].map((r) => JSON.stringify({ ...r, time: new Date(0).toISOString() }));
    writeFileSync(join(dir, "metrics.jsonl"), `${lines.join("\n")}\n{"step": 4, "ph`);
    await truncateMetrics(dir, "sft", 2);
    const kept = await readMetrics(dir);
    assert.deepEqual(
      kept.map((r) => [r.step, r.phase]),
      [
        [1, "sft"],
        [2, "sft"],
        [3, "reward"],
      ],
    );
  });
});

describe("trainLoop", () => {
  const config: LoopConfig = {
    steps: 6,
    epochs: 1,
    batchSize: 2,
    gradAccum: 2,
    lr: 0.1,
    warmup: 0,
    schedule: "constant",
    weightDecay: 0,
    adamBeta1: 0.9,
    adamBeta2: 0.999,
    adamEps: 1e-8,
    maxGradNorm: 0,
    logEvery: 3,
    evalEvery: 0,
    saveEvery: 0,
    keepCheckpoints: 1,
    seed: 0,
    precision: "fp32",
  };

  test("steps for epochs and accumulation", () => {
    assert.equal(totalStepsFor({ ...config, steps: undefined, epochs: 2 }, 9), 5);
    assert.equal(totalStepsFor(config, 9), 6);
  });

  test("scheduled items are the drawn items", async () => {
    const dir = join(root, "scheduled");
    await createRunFolder(dir, {});
    const weight = torch.keep(torch.zeros([1], { requiresGrad: true }));
    const items = Array.from({ length: 10 }, (_, i) => i);
    const short = { ...config, steps: 2 };
    const drawn: number[] = [];
    await trainLoop<number>({
      phase: "sft",
      runDir: dir,
      config: short,
      items,
      namedParameters: [["w.weight", weight]],
      computeLoss: (batch) => {
        drawn.push(...batch);
        return { loss: torch.tensor(batch).mul(weight).mean(), tokens: batch.length };
      },
      saveModel: async () => {},
    });
    weight.dispose();
    // 2 steps × 2 micro-batches of 2: 8 of the 10 items, in their order in `items`.
    const scheduled = scheduledItems(short, items);
    assert.equal(scheduled.length, 8);
    assert.deepEqual(
      scheduled,
      drawn.sort((a, b) => a - b),
    );
  });

  test("scheduled items of a full epoch", () => {
    const items = Array.from({ length: 10 }, (_, i) => i);
    // 3 steps × 2 micro-batches reach the 5 batches of an epoch.
    assert.deepEqual(scheduledItems({ ...config, steps: 3 }, items), items);
    assert.deepEqual(scheduledItems({ ...config, steps: undefined, epochs: 1 }, items), items);
    // 0.2 epochs of 5 batches: 1 step, so 2 micro-batches of 2 items.
    const fraction = scheduledItems({ ...config, steps: undefined, epochs: 0.2 }, items);
    assert.equal(fraction.length, 4);
  });

  test("fits a line, logging averaged metrics", async () => {
    const dir = join(root, "line");
    await createRunFolder(dir, {});
    const weight = torch.keep(torch.zeros([1], { requiresGrad: true }));
    const items = Array.from({ length: 8 }, (_, i) => i / 4);
    const seen: number[][] = [];
    const result = await trainLoop<number>({
      phase: "sft",
      runDir: dir,
      config,
      items,
      namedParameters: [["w.weight", weight]],
      computeLoss: (batch) => {
        seen.push(batch);
        const x = torch.tensor(batch);
        return { loss: x.mul(weight).sub(x.mul(3)).square().mean(), tokens: batch.length };
      },
      saveModel: async () => {},
      evaluate: () => ({ loss: (weight.item() - 3) ** 2 }),
    });
    assert.equal(result.steps, 6);
    // 6 steps × 2 micro-batches of 2 = 24 items: three epochs of 8, each a permutation.
    assert.equal(seen.length, 12);
    for (let epoch = 0; epoch < 3; epoch++) {
      const items = seen
        .slice(epoch * 4, epoch * 4 + 4)
        .flat()
        .sort();
      assert.deepEqual(items, [0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75]);
    }
    const records = await readMetrics(dir);
    assert.deepEqual(
      records.map((r) => r.step),
      [3, 6, 6],
    );
    assert.equal(records[1]!.epoch, 3);
    assert.ok((records[2]!.eval_loss as number) < 9, "eval ran at the end");
    assert.ok(weight.item() > 0.3, `weight ${weight.item()} moved towards 3`);
    weight.dispose();
  });

  test("non-finite loss stops the run", async () => {
    const dir = join(root, "nan");
    await createRunFolder(dir, {});
    const weight = torch.keep(torch.zeros([1], { requiresGrad: true }));
    await assert.rejects(
      trainLoop<number>({
        phase: "sft",
        runDir: dir,
        config,
        items: [1, 2],
        namedParameters: [["w", weight]],
        computeLoss: () => ({ loss: weight.sum().div(0), tokens: 1 }),
        saveModel: async () => {},
      }),
      /sft: the loss is NaN at step 1 \(micro-batch 1\); training diverged/,
    );
    weight.dispose();
  });
});

describe("console lines", () => {
  test("one line per logging step", () => {
    const line = formatProgressLine("dpo", 200, {
      step: 20,
      loss: 0.681234,
      msPerStep: 431.2,
      tokensPerSecond: 9505.4,
      extra: { "rewards/accuracies": 0.75 },
    });
    assert.equal(
      line,
      "cdpo dpo step 20/200 loss 0.6812 431 ms/step 9,505 tokens/s rewards/accuracies 0.7500",
    );
  });
});

test("adamw groups exist even when one is empty", () => {
  const vector = torch.keep(torch.zeros([3], { requiresGrad: true }));
  const optimizer = createAdamW([["norm.weight", vector]], {
    lr: 0.1,
    weightDecay: 0.1,
    adamBeta1: 0.9,
    adamBeta2: 0.999,
    adamEps: 1e-8,
  });
  assert.equal(optimizer.getLr(1), 0.1);
  assert.ok(existsSync(root));
  vector.dispose();
});
