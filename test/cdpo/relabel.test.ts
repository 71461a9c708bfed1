import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  lagrangianMargin,
  lagrangianReward,
  relabel,
  type ScoredPair,
  uniformHash,
} from "../../src/cdpo/relabel.js";

const PAIR: ScoredPair = { id: "a", reward: [2, 1], costs: [[1, -1]] };

describe("relabel", () => {
  test("lagrangian reward subtracts weighted costs", () => {
    assert.equal(lagrangianReward(2, [1, 3], [0.5, 2]), 2 - 0.5 - 6);
  });

  test("margin uses both responses", () => {
    // (2 − λ·1) − (1 − λ·(−1)) = 1 − 2λ
    assert.equal(lagrangianMargin(PAIR, [0]), 1);
    assert.equal(lagrangianMargin(PAIR, [1]), -1);
  });

  test("soft target is the sigmoid of the margin", () => {
    const [p0, p1, p2] = relabel([PAIR, PAIR, PAIR], [0], { mode: "soft", seed: 0, iteration: 0 });
    assert.ok(Math.abs((p0 as number) - 1 / (1 + Math.exp(-1))) < 1e-12);
    const half = relabel([PAIR], [0.5], { mode: "soft", seed: 0, iteration: 0 });
    assert.equal(half[0], 0.5);
    assert.equal(p1, p0);
    assert.equal(p2, p0);
  });

  test("hard target picks the larger lagrangian reward", () => {
    const opts = { mode: "hard" as const, seed: 0, iteration: 0 };
    assert.equal(relabel([PAIR], [0], opts)[0], 1);
    assert.equal(relabel([PAIR], [1], opts)[0], 0);
    assert.equal(relabel([PAIR], [0.5], opts)[0], 0.5);
  });

  test("lambda flips the preference", () => {
    const opts = { mode: "soft" as const, seed: 0, iteration: 0 };
    assert.ok((relabel([PAIR], [0], opts)[0] as number) > 0.5);
    assert.ok((relabel([PAIR], [2], opts)[0] as number) < 0.5);
  });

  test("sample labels are 0 or 1 with the soft rate", () => {
    const pairs = Array.from({ length: 4000 }, (_, i) => ({ ...PAIR, id: `p${i}` }));
    const labels = relabel(pairs, [0], { mode: "sample", seed: 7, iteration: 3 });
    assert.ok(labels.every((v) => v === 0 || v === 1));
    const rate = labels.reduce((a, b) => a + b, 0) / labels.length;
    const p = 1 / (1 + Math.exp(-1));
    // Binomial SE at n = 4000 is about 0.007; 4 SE.
    assert.ok(Math.abs(rate - p) < 0.03, `rate ${rate} vs ${p}`);
  });

  test("sample labels are reproducible per seed and iteration", () => {
    const pairs = Array.from({ length: 200 }, (_, i) => ({ ...PAIR, id: `p${i}` }));
    const a = relabel(pairs, [0.5], { mode: "sample", seed: 1, iteration: 2 });
    const b = relabel(pairs, [0.5], { mode: "sample", seed: 1, iteration: 2 });
    const c = relabel(pairs, [0.5], { mode: "sample", seed: 1, iteration: 3 });
    const d = relabel(pairs, [0.5], { mode: "sample", seed: 2, iteration: 2 });
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    assert.notDeepEqual(a, d);
  });

  test("uniform hash lies in the unit interval", () => {
    let sum = 0;
    for (let i = 0; i < 10000; i++) {
      const u = uniformHash(0, 0, `k${i}`);
      assert.ok(u >= 0);
      assert.ok(u < 1);
      sum += u;
    }
    assert.ok(Math.abs(sum / 10000 - 0.5) < 0.02);
  });

  test("unknown mode throws", () => {
    assert.throws(
      () => relabel([PAIR], [0], { mode: "fuzzy" as "soft", seed: 0, iteration: 0 }),
      /Expected one of soft, sample, hard for mode but received "fuzzy" \(string\)/,
    );
  });

  test("cost count must match constraints", () => {
    assert.throws(
      () => lagrangianMargin(PAIR, [1, 1]),
      /has 1 cost scores but there are 2 constraints/,
    );
  });
});
