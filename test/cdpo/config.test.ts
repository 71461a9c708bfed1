import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  constraintNames,
  initialLambdas,
  parseCostSpec,
  resolveCdpoConfig,
} from "../../src/cdpo/config.js";

const MINIMAL = {
  policy: "sft",
  reward: "rm",
  costs: [{ model: "cm", limit: 0 }],
  data: "pairs.jsonl",
};

describe("resolveCdpoConfig", () => {
  test("fills defaults", () => {
    const config = resolveCdpoConfig(MINIMAL);
    assert.equal(config.iterations, 10);
    assert.equal(config.labelMode, "soft");
    assert.equal(config.dpo.beta, 0.1);
    assert.equal(config.lambda.lr, 0.5);
    assert.equal(config.lambda.optimizer, "sgd");
    assert.equal(config.estimate.samplesPerPrompt, 4);
    assert.equal(config.stop.window, 3);
    assert.deepEqual(initialLambdas(config), [0]);
  });

  test("dotted overrides win over the file", () => {
    const config = resolveCdpoConfig(
      { ...MINIMAL, dpo: { beta: 0.2, steps: 5 } },
      { "dpo.beta": 0.5, iterations: 3 },
    );
    assert.equal(config.dpo.beta, 0.5);
    assert.equal(config.dpo.steps, 5);
    assert.equal(config.iterations, 3);
  });

  test("undefined overrides are ignored", () => {
    const config = resolveCdpoConfig({ ...MINIMAL, iterations: 4 }, { iterations: undefined });
    assert.equal(config.iterations, 4);
  });

  test("unknown keys suggest the known one", () => {
    assert.throws(() => resolveCdpoConfig({ ...MINIMAL, iteratons: 3, dpo: { betta: 1 } }), {
      message:
        'Invalid C-DPO config: unknown field "dpo.betta" (did you mean "beta"?); ' +
        'unknown field "iteratons" (did you mean "iterations"?)',
    });
  });

  test("unknown key inside a cost entry", () => {
    assert.throws(
      () => resolveCdpoConfig({ ...MINIMAL, costs: [{ model: "cm", limt: 0 }] }, {}, "run.yaml"),
      /Invalid C-DPO run.yaml: .*unknown field "costs.0.limt" \(did you mean "limit"\?\)/,
    );
  });

  test("range errors name the field", () => {
    assert.throws(() => resolveCdpoConfig({ ...MINIMAL, labelMode: "fuzzy" }), /field "labelMode"/);
    assert.throws(
      () => resolveCdpoConfig({ ...MINIMAL, estimate: { evalPrompts: 1 } }),
      /field "estimate.evalPrompts"/,
    );
  });

  test("lambda init per constraint must match", () => {
    assert.throws(
      () => resolveCdpoConfig({ ...MINIMAL, lambda: { init: [1, 2] } }),
      /"lambda.init" has 2 values but there are 1 constraints/,
    );
  });

  test("lambda init above max fails", () => {
    assert.throws(
      () => resolveCdpoConfig({ ...MINIMAL, lambda: { init: 5, max: 1 } }),
      /is above "lambda.max"/,
    );
  });

  test("data scores allow one constraint", () => {
    const costs = [
      { model: "a", limit: 0 },
      { model: "b", limit: 1 },
    ];
    assert.throws(
      () => resolveCdpoConfig({ ...MINIMAL, costs, pairScores: "data" }),
      /"pairScores" is "data"/,
    );
    const config = resolveCdpoConfig({ ...MINIMAL, costs, lambda: { init: [0, 1] } });
    assert.deepEqual(initialLambdas(config), [0, 1]);
  });
});

describe("cost specs", () => {
  test("dir with limit", () => {
    assert.deepEqual(parseCostSpec("runs/cost/final:0.5"), {
      model: "runs/cost/final",
      limit: 0.5,
    });
    assert.deepEqual(parseCostSpec("cm:-1"), { model: "cm", limit: -1 });
  });

  test("dir without limit", () => {
    assert.deepEqual(parseCostSpec("runs/cost/final"), { model: "runs/cost/final" });
    assert.deepEqual(parseCostSpec("C:\\models\\cost"), { model: "C:\\models\\cost" });
  });

  test("constraint names are unique", () => {
    const config = resolveCdpoConfig({
      ...MINIMAL,
      costs: [
        { model: "runs/a/final", limit: 0 },
        { model: "runs/b/final", limit: 0 },
        { model: "other/b/final", limit: 0 },
        { model: "x/harm", limit: 0, name: "harm" },
      ],
    });
    // A generic output folder is named with its run folder.
    assert.deepEqual(constraintNames(config), ["a/final", "b/final", "b/final-2", "harm"]);
  });
});
