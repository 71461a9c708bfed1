import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { checkSettled, type SettleEntry } from "../../src/cdpo/stopping.js";

const OPTIONS = { window: 3, lambdaTol: 0.05, costTol: 0.1 };
const entry = (lambda: number, cost: number): SettleEntry => ({
  lambdas: [lambda],
  costMeans: [cost],
});

describe("checkSettled", () => {
  test("short history is not settled", () => {
    const result = checkSettled([entry(1, 0), entry(1, 0)], OPTIONS);
    assert.equal(result.settled, false);
    assert.ok(Number.isNaN(result.lambdaSpread[0]));
  });

  test("steady window is settled", () => {
    const result = checkSettled(
      [entry(0, 5), entry(1, 0), entry(1.02, 0.05), entry(1.01, 0.02)],
      OPTIONS,
    );
    assert.equal(result.settled, true);
    assert.ok(Math.abs((result.lambdaSpread[0] as number) - 0.02) < 1e-12);
    assert.ok(Math.abs((result.costSpread[0] as number) - 0.05) < 1e-12);
  });

  test("moving lambda is not settled", () => {
    const result = checkSettled([entry(1, 0), entry(1.1, 0), entry(1.2, 0)], OPTIONS);
    assert.equal(result.settled, false);
  });

  test("moving cost is not settled", () => {
    const result = checkSettled([entry(1, 0), entry(1, 0.2), entry(1, 0)], OPTIONS);
    assert.equal(result.settled, false);
  });

  test("every constraint must settle", () => {
    const history: SettleEntry[] = [0, 1, 2].map((i) => ({ lambdas: [1, i], costMeans: [0, 0] }));
    assert.equal(checkSettled(history, OPTIONS).settled, false);
  });

  test("tolerance bounds are inclusive", () => {
    const result = checkSettled([entry(1, 0), entry(1.05, 0.1), entry(1, 0)], {
      window: 3,
      lambdaTol: 0.0500001,
      costTol: 0.1000001,
    });
    assert.equal(result.settled, true);
  });
});
