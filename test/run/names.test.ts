import assert from "node:assert/strict";
import { test } from "node:test";

import { modelLabel } from "../../src/run/names.js";

test("modelLabel keeps the run folder for generic output names", () => {
  assert.equal(modelLabel("runs/cost/final"), "cost/final");
  assert.equal(modelLabel("/tmp/trial/sft/final/"), "sft/final");
  assert.equal(modelLabel("runs/demo/policy"), "demo/policy");
  assert.equal(modelLabel("runs/dpo/checkpoint-200"), "dpo/checkpoint-200");
  assert.equal(modelLabel("runs/cdpo/policy-iteration-0002"), "cdpo/policy-iteration-0002");
  assert.equal(modelLabel("../shared/models/stories260K"), "stories260K");
  assert.equal(modelLabel("C:\\models\\reward\\final"), "reward/final");
  assert.equal(modelLabel("final"), "final");
  assert.equal(modelLabel("../final"), "final");
  assert.equal(modelLabel("", "cost"), "cost");
});
