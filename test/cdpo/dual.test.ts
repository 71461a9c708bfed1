import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type DualOptions, dualStep, initialDualState } from "../../src/cdpo/dual.js";

const SGD: DualOptions = { lr: 0.5, max: 10, optimizer: "sgd", betas: [0.9, 0.999], eps: 1e-8 };
const ADAM: DualOptions = { ...SGD, optimizer: "adam", lr: 0.1 };

describe("dualStep", () => {
  test("sgd moves lambda by lr times violation", () => {
    const next = dualStep(initialDualState([1]), [0.4], [0.1], SGD);
    assert.ok(Math.abs((next.lambdas[0] as number) - 1.15) < 1e-12);
    assert.equal(next.t, 1);
  });

  test("sgd decreases lambda when cost is below the limit", () => {
    const next = dualStep(initialDualState([1]), [-0.5], [0.1], SGD);
    assert.ok(Math.abs((next.lambdas[0] as number) - 0.7) < 1e-12);
  });

  test("projection clips at zero", () => {
    const next = dualStep(initialDualState([0.1]), [-1], [0], SGD);
    assert.equal(next.lambdas[0], 0);
  });

  test("projection clips at lambda max", () => {
    const next = dualStep(initialDualState([9.9]), [5], [0], SGD);
    assert.equal(next.lambdas[0], 10);
  });

  test("constraints move independently", () => {
    const next = dualStep(initialDualState([1, 2]), [1, -1], [0, 0], SGD);
    assert.deepEqual(next.lambdas, [1.5, 1.5]);
  });

  test("input state is not modified", () => {
    const state = initialDualState([1]);
    dualStep(state, [2], [0], SGD);
    assert.deepEqual(state.lambdas, [1]);
    assert.equal(state.t, 0);
  });

  test("adam first step has size lr", () => {
    // Bias correction makes m̂ = g and v̂ = g² after one step, so the step is lr·sign(g).
    for (const g of [0.01, 3]) {
      const next = dualStep(initialDualState([1]), [g], [0], ADAM);
      assert.ok(Math.abs((next.lambdas[0] as number) - 1.1) < 1e-6, `g = ${g}: ${next.lambdas[0]}`);
    }
    const down = dualStep(initialDualState([1]), [-2], [0], ADAM);
    assert.ok(Math.abs((down.lambdas[0] as number) - 0.9) < 1e-6);
  });

  test("adam moments follow the recursion", () => {
    const one = dualStep(initialDualState([1]), [1], [0], ADAM);
    const two = dualStep(one, [3], [0], ADAM);
    const m = 0.9 * 0.1 + 0.1 * 3;
    const v = 0.999 * 0.001 + 0.001 * 9;
    assert.ok(Math.abs((two.m[0] as number) - m) < 1e-12);
    assert.ok(Math.abs((two.v[0] as number) - v) < 1e-12);
    const step = (0.1 * (m / (1 - 0.9 ** 2))) / (Math.sqrt(v / (1 - 0.999 ** 2)) + 1e-8);
    assert.ok(Math.abs((two.lambdas[0] as number) - ((one.lambdas[0] as number) + step)) < 1e-12);
    assert.equal(two.t, 2);
  });

  test("adam respects the projection", () => {
    const next = dualStep(initialDualState([0.05]), [-1], [0], ADAM);
    assert.equal(next.lambdas[0], 0);
  });

  test("mismatched lengths throw", () => {
    assert.throws(
      () => dualStep(initialDualState([1]), [1, 2], [0], SGD),
      /Expected one cost mean and one limit per constraint \(1\) but received 2 cost means and 1 limits/,
    );
  });

  test("non-finite cost throws", () => {
    assert.throws(
      () => dualStep(initialDualState([1]), [Number.NaN], [0], SGD),
      /Expected a finite number for costMeans\[0\] but received NaN \(number\)/,
    );
  });

  test("negative initial lambda throws", () => {
    assert.throws(() => initialDualState([-1]), RangeError);
  });
});
