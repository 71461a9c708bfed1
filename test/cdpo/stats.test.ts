import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  chunkInto,
  groupedMeanAndSe,
  groupedShareAbove,
  meanAndSe,
  sigmoid,
  softplus,
} from "../../src/cdpo/stats.js";

describe("standard errors", () => {
  test("mean and se of known values", () => {
    // values 1..5: mean 3, sample variance 2.5, SE = sqrt(2.5/5)
    const result = meanAndSe([1, 2, 3, 4, 5]);
    assert.equal(result.mean, 3);
    assert.ok(Math.abs(result.se - Math.sqrt(0.5)) < 1e-12);
    assert.equal(result.n, 5);
  });

  test("se of one value is NaN", () => {
    assert.ok(Number.isNaN(meanAndSe([4]).se));
  });

  test("se of constant values is zero", () => {
    assert.equal(meanAndSe([2, 2, 2]).se, 0);
  });

  test("empty input throws", () => {
    assert.throws(() => meanAndSe([]), /Expected at least one value for values/);
  });

  test("grouped se is over group means", () => {
    // Group means 1, 3: mean 2, sd sqrt(2), SE = sqrt(2)/sqrt(2) = 1. Group sizes do not weigh.
    const result = groupedMeanAndSe([
      [0, 2],
      [3, 3, 3, 3],
    ]);
    assert.equal(result.mean, 2);
    assert.ok(Math.abs(result.se - 1) < 1e-12);
    assert.equal(result.n, 2);
  });

  test("grouped se ignores within-group spread", () => {
    const a = groupedMeanAndSe([
      [0, 2],
      [1, 1],
    ]);
    assert.equal(a.se, 0);
  });

  test("empty group throws", () => {
    assert.throws(() => groupedMeanAndSe([[1], []]), /groups\[1\]/);
  });

  test("share above zero per group", () => {
    const result = groupedShareAbove([
      [1, -1, 0, 2],
      [-1, -1, -1, 5],
    ]);
    assert.equal(result.mean, (0.5 + 0.25) / 2);
  });

  test("chunkInto splits prompt-major", () => {
    assert.deepEqual(chunkInto([1, 2, 3, 4, 5, 6], 2), [
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    assert.throws(() => chunkInto([1, 2, 3], 2), /multiple of 2/);
  });

  test("sigmoid and softplus are stable", () => {
    assert.equal(sigmoid(0), 0.5);
    assert.ok(sigmoid(-800) >= 0);
    assert.equal(sigmoid(800), 1);
    assert.ok(Math.abs(softplus(0) - Math.log(2)) < 1e-15);
    assert.equal(softplus(800), 800);
  });
});
