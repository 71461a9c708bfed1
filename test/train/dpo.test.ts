import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { TokenizedPair } from "../../src/data/tokenize.js";
import { createRunFolder, readMetrics } from "../../src/run/folder.js";
import * as torch from "../../src/tensor/index.js";
import {
  computeReferenceLogps,
  type DpoTrainConfig,
  REFERENCE_LOGPS_FILE,
  readReferenceLogps,
  trainDpo,
} from "../../src/train/dpo.js";
import { type LanguageModel, responseLogps } from "../../src/train/forward.js";
import { pairLayout } from "../../src/train/layout.js";
import { scheduledItems } from "../../src/train/loop.js";
import { INIT_CONFIGS, initModel, type TrainModel } from "../../src/train/models.js";
import { silentProgress } from "../../src/train/progress.js";

const root = mkdtempSync(join(tmpdir(), "cdpo-dpo-"));
after(() => rmSync(root, { recursive: true, force: true }));

/** Random byte-token pairs: prompt of 3-8 tokens, responses of 2-9 tokens ending in EOS. */
function randomPairs(count: number, seed: number): TokenizedPair[] {
  let state = seed;
  const next = (n: number) => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state % n;
  };
  const tokens = (min: number, max: number, eos: boolean) => {
    const length = min + next(max - min + 1);
    const ids = Array.from({ length }, () => 32 + next(90));
    if (eos) ids.push(258);
    return Int32Array.from(ids);
  };
  return Array.from({ length: count }, (_, i) => ({
    id: `pair-${i}`,
    promptIds: Int32Array.from([257, ...tokens(2, 7, false)]),
    responseIds: [tokens(1, 8, true), tokens(1, 8, true)] as [Int32Array, Int32Array],
    truncated: false,
    pair: { id: `pair-${i}`, prompt: "", responses: ["", ""], meta: {} },
  }));
}

const CONFIG: DpoTrainConfig = {
  steps: 12,
  epochs: 1,
  batchSize: 4,
  gradAccum: 1,
  lr: 5e-3,
  warmup: 0,
  schedule: "constant",
  weightDecay: 0,
  adamBeta1: 0.9,
  adamBeta2: 0.999,
  adamEps: 1e-8,
  maxGradNorm: 1,
  logEvery: 1,
  evalEvery: 0,
  saveEvery: 0,
  keepCheckpoints: 1,
  seed: 3,
  precision: "fp32",
  beta: 0.5,
  lossType: "sigmoid",
  labelSmoothing: 0,
};

let policy: TrainModel;
let reference: TrainModel;
before(() => {
  torch.setNumThreads(1);
  policy = initModel(INIT_CONFIGS.tiny, "causal-lm", 11);
  reference = initModel(INIT_CONFIGS.tiny, "causal-lm", 11);
});
after(() => {
  policy.dispose();
  reference.dispose();
});

async function runDir(name: string): Promise<string> {
  const dir = join(root, name);
  await createRunFolder(dir, { test: name });
  return dir;
}

describe("trainDpo", () => {
  test("fits preferences and caches reference log-probs", async () => {
    const dir = await runDir("fit");
    const pairs = randomPairs(24, 5);
    const evalPairs = randomPairs(8, 99).map((p) => ({ ...p, id: `eval-${p.id}` }));
    const result = await trainDpo({
      policy,
      reference,
      pairs,
      evalPairs,
      choose: () => 0,
      config: CONFIG,
      padId: 256,
      runDir: dir,
      savePolicy: (d) => policy.save(d),
    });
    assert.equal(result.steps, 12);
    assert.equal(result.refLogps.size, 32);
    assert.ok(existsSync(join(dir, REFERENCE_LOGPS_FILE)));
    const stored = await readReferenceLogps(join(dir, REFERENCE_LOGPS_FILE));
    assert.deepEqual(stored.get("pair-3"), result.refLogps.get("pair-3"));

    const records = (await readMetrics(dir)).filter((r) => "loss" in r);
    assert.equal(records.length, 12);
    assert.ok(Math.abs((records[0]!.loss as number) - Math.LN2) < 1e-6);
    assert.ok((records.at(-1)!.loss as number) < 0.5, `last loss ${records.at(-1)!.loss}`);
    assert.ok(result.eval["eval_rewards/margins"] !== undefined);
  });

  test("reference cache covers only scheduled pairs", async () => {
    const dir = await runDir("scheduled");
    const pairs = randomPairs(40, 31);
    const evalPairs = randomPairs(4, 77).map((p) => ({ ...p, id: `eval-${p.id}` }));
    // 3 steps of 4 pairs draw 12 of the 40 pairs (10 batches per epoch).
    const config = { ...CONFIG, steps: 3 };
    const scheduled = scheduledItems(config, pairs).map((pair) => pair.id);
    assert.equal(scheduled.length, 12);
    const messages: string[] = [];
    const options = {
      policy,
      pairs,
      evalPairs,
      choose: () => 0 as const,
      config,
      padId: 256,
      runDir: dir,
      savePolicy: (d: string) => policy.save(d),
      progress: { ...silentProgress, message: (text: string) => messages.push(text) },
    };
    const result = await trainDpo({ ...options, reference });
    assert.equal(result.steps, 3);
    const expectedIds = [...scheduled, ...evalPairs.map((pair) => pair.id)].sort();
    assert.deepEqual([...result.refLogps.keys()].sort(), expectedIds);
    const stored = await readReferenceLogps(join(dir, REFERENCE_LOGPS_FILE));
    assert.deepEqual([...stored.keys()].sort(), expectedIds);
    assert.ok(
      messages.includes(
        "cdpo dpo: computing reference log-probabilities of 16 pairs (12 training pairs that " +
          "the schedule draws, of 40, and 4 evaluation pairs)",
      ),
      messages.join("\n"),
    );

    // The values match a pass over every pair up to float32 rounding (other batches).
    const full = computeReferenceLogps(reference, pairs, {
      batchSize: CONFIG.batchSize,
      padId: 256,
      layout: "prefix",
      precision: "fp32",
    });
    for (const id of scheduled) {
      const [a0, a1] = result.refLogps.get(id)!;
      const [b0, b1] = full.get(id)!;
      assert.ok(Math.abs(a0 - b0) < 1e-4 * Math.max(1, Math.abs(b0)), `${id} response 0`);
      assert.ok(Math.abs(a1 - b1) < 1e-4 * Math.max(1, Math.abs(b1)), `${id} response 1`);
    }

    // The same schedule again (as on resume) reads the file and needs no reference model.
    const again = await trainDpo(options);
    assert.equal(again.steps, 3);
    // A longer schedule draws pairs the file lacks.
    await assert.rejects(trainDpo({ ...options, config: { ...CONFIG, steps: 10 } }), {
      message: /dpo: 28 pairs have no cached reference log-probabilities/,
    });
  });

  test("pair layouts give the same log-probs and gradients", () => {
    const pairs = randomPairs(5, 17);
    const choose = (p: TokenizedPair) => (Number(p.id.slice(5)) % 2) as 0 | 1;
    const weight = reference
      .namedParameters()
      .find(([name]) => name.endsWith("layers.0.self_attn.k_proj.weight"))![1];
    const run = (kind: "padded" | "shared-prompt" | "prefix") =>
      torch.tidy(() => {
        torch.zeroGrad([weight]);
        const { logps } = responseLogps(reference, pairLayout(pairs, choose, 256, kind).layout);
        logps.sum().backward();
        return { logps: logps.toArray(), grad: weight.grad!.toArray() };
      });
    const padded = run("padded");
    for (const kind of ["shared-prompt", "prefix"] as const) {
      const other = run(kind);
      for (let i = 0; i < padded.logps.length; i++) {
        const a = padded.logps[i]!;
        const b = other.logps[i]!;
        assert.ok(
          Math.abs(a - b) < 1e-4 * Math.max(1, Math.abs(a)),
          `${kind} slot ${i}: ${a} vs ${b}`,
        );
      }
      let worst = 0;
      for (let i = 0; i < padded.grad.length; i++)
        worst = Math.max(worst, Math.abs(padded.grad[i]! - other.grad[i]!));
      assert.ok(worst < 1e-4, `${kind} k_proj gradient differs by ${worst}`);
    }
    torch.zeroGrad([weight]);
  });

  test("reference cache follows relabelling", () => {
    const pairs = randomPairs(3, 23);
    const options = {
      batchSize: 2,
      padId: 256,
      layout: "shared-prompt" as const,
      precision: "fp32" as const,
    };
    const cache = computeReferenceLogps(reference, pairs, options);
    torch.tidy(() => {
      // Response 1 as "chosen": slot i must hold the cached value of response 1.
      const { layout } = pairLayout(pairs, () => 1, 256, "padded");
      const logps = torch.inferenceMode(() => responseLogps(reference, layout).logps.toArray());
      for (const [i, pair] of pairs.entries()) {
        const [r0, r1] = cache.get(pair.id)!;
        assert.ok(Math.abs(logps[i]! - r1) < 1e-4, `chosen ${logps[i]} vs ${r1}`);
        assert.ok(Math.abs(logps[pairs.length + i]! - r0) < 1e-4);
      }
    });
  });

  test("frozen policy stops with an error", async () => {
    const dir = await runDir("frozen");
    // The optimizer gets a decoy's parameters, so the policy itself never moves.
    const decoy = initModel(INIT_CONFIGS.tiny, "causal-lm", 12);
    const frozen: LanguageModel = {
      namedParameters: () => decoy.namedParameters(),
      train: (mode) => policy.train(mode),
      hiddenStates: (inputs) => reference.hiddenStates(inputs),
      head: (hidden) => reference.head(hidden),
      save: (d) => decoy.save(d),
      loadWeights: (d) => decoy.loadWeights(d),
    };
    try {
      await assert.rejects(
        trainDpo({
          policy: frozen,
          reference,
          pairs: randomPairs(16, 8),
          choose: () => 0,
          config: CONFIG,
          padId: 256,
          runDir: dir,
          savePolicy: (d) => frozen.save(d),
        }),
        {
          name: "CdpoError",
          message:
            /dpo: every implicit reward is still 0 at step 4, after 3 optimizer updates, so the loss stays at 0\.693147 \(ln 2\)\. The policy is frozen or detached/,
        },
      );
    } finally {
      decoy.dispose();
    }
  });

  test("missing reference is reported", async () => {
    const dir = await runDir("missing");
    await assert.rejects(
      trainDpo({
        policy,
        pairs: randomPairs(4, 1),
        choose: () => 0,
        config: CONFIG,
        padId: 256,
        runDir: dir,
        refLogpsFile: null,
        savePolicy: (d) => policy.save(d),
      }),
      /dpo: 4 pairs have no cached reference log-probabilities \(first: "pair-0"\) and no reference model was given/,
    );
  });
});
