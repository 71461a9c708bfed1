import assert from "node:assert/strict";
import { test } from "node:test";

import {
  type CausalLM,
  createModel,
  sequenceLogprobs,
  tokenLogprobs,
} from "../../src/models/index.js";
import * as torch from "../../src/tensor/index.js";
import { assertClose, ids, tinyLlamaConfig } from "./helpers.js";

test("tokenLogprobs of hand-made logits", () => {
  torch.tidy(() => {
    // Row probabilities 1/6, 2/6, 3/6 and a uniform row.
    const logits = torch.tensor([0, Math.log(2), Math.log(3), 5, 5, 5], [2, 3]);
    const targets = torch.tensor(BigInt64Array.from([2n, 0n]));
    const result = tokenLogprobs(logits, targets);
    assert.equal(result.dtype, "float32");
    assertClose(result.toFloat64Array(), [Math.log(0.5), Math.log(1 / 3)], 1e-6);
    const bf16 = tokenLogprobs(logits.to("bfloat16"), targets);
    assert.equal(bf16.dtype, "float32");
    assertClose(bf16.toFloat64Array(), [Math.log(0.5), Math.log(1 / 3)], 0.02);
  });
});

/** Σ log softmax(logits[t-1])[token t] over masked t, in float64 from the full logits. */
function byHand(model: CausalLM, rows: number[][], lossMask: number[][]): number[] {
  return rows.map((row, r) => {
    const logits = torch.tidy(() =>
      model
        .forward({ inputIds: ids([row]) })
        .logits!.select(0, 0)
        .toFloat64Array(),
    );
    const vocab = model.config.vocabSize;
    let total = 0;
    for (let t = 1; t < row.length; t++) {
      if (lossMask[r]![t] !== 1) continue;
      const slice = logits.subarray((t - 1) * vocab, t * vocab);
      const max = Math.max(...slice);
      const lse = max + Math.log(slice.reduce((s, v) => s + Math.exp(v - max), 0));
      total += slice[row[t]!]! - lse;
    }
    return total;
  });
}

test("sequenceLogprobs matches a hand computation", () => {
  const model = createModel(tinyLlamaConfig(), { seed: 9 }) as CausalLM;
  const rows = [
    [1, 5, 9, 12, 3, 7],
    [1, 20, 21, 22, 23, 2],
  ];
  // prompt 3 tokens + response 3 tokens; prompt 2 tokens + response 4 tokens
  const lossMask = [
    [0, 0, 0, 1, 1, 1],
    [0, 0, 1, 1, 1, 1],
  ];
  const expected = byHand(model, rows, lossMask);
  torch.tidy(() => {
    const result = sequenceLogprobs(
      model,
      { inputIds: ids(rows), lossMask: ids(lossMask) },
      { returnTokenLogps: true },
    );
    assert.deepEqual(result.logps.shape, [2]);
    assert.equal(result.logps.dtype, "float32");
    assertClose(result.logps.toFloat64Array(), expected, 1e-5, "logps");
    assert.deepEqual([...result.tokenCounts.toFloat32Array()], [3, 4]);
    const perToken = result.tokenLogps!;
    assert.deepEqual(perToken.shape, [2, 6]);
    assertClose(perToken.sum(1).toFloat64Array(), expected, 1e-5, "tokenLogps");
    assert.deepEqual([...perToken.select(0, 0).narrow(0, 0, 3).toFloat32Array()], [0, 0, 0]);
    // Small chunks give the same sums.
    const chunked = sequenceLogprobs(
      model,
      { inputIds: ids(rows), lossMask: ids(lossMask) },
      { chunkTokens: 2 },
    );
    assertClose(chunked.logps.toFloat64Array(), expected, 1e-5, "chunked");
  });
  model.dispose();
});

test("sequenceLogprobs ignores padding on either side", () => {
  const model = createModel(tinyLlamaConfig(), { seed: 10 }) as CausalLM;
  const expected = byHand(model, [[1, 5, 9, 12, 3]], [[0, 0, 1, 1, 1]]);
  torch.tidy(() => {
    const result = sequenceLogprobs(model, {
      inputIds: ids([
        [0, 0, 1, 5, 9, 12, 3],
        [1, 5, 9, 12, 3, 0, 0],
      ]),
      attentionMask: ids([
        [0, 0, 1, 1, 1, 1, 1],
        [1, 1, 1, 1, 1, 0, 0],
      ]),
      lossMask: ids([
        [0, 0, 0, 0, 1, 1, 1],
        [0, 0, 1, 1, 1, 0, 0],
      ]),
    });
    assertClose(result.logps.toFloat64Array(), [expected[0]!, expected[0]!], 1e-5);
  });
  model.dispose();
});

test("sequenceLogprobs backpropagates to the parameters", () => {
  const model = createModel(tinyLlamaConfig(), { seed: 11 }) as CausalLM;
  model.train();
  torch.tidy(() => {
    const { logps } = sequenceLogprobs(model, {
      inputIds: ids([[1, 5, 9, 12]]),
      lossMask: ids([[0, 0, 1, 1]]),
    });
    logps.sum().backward();
  });
  for (const name of [
    "lm_head.weight",
    "model.embed_tokens.weight",
    "model.layers.0.self_attn.q_proj.weight",
  ]) {
    const grad = model.getParameter(name).grad;
    assert.ok(grad !== null, `${name} has no gradient`);
    assert.ok(torch.tidy(() => grad.abs().sum().item()) > 0, `${name} gradient is zero`);
    grad.dispose();
  }
  // Inference mode: no graph, same numbers.
  const value = torch.inferenceMode(() =>
    torch.tidy(() =>
      sequenceLogprobs(model, {
        inputIds: ids([[1, 5, 9, 12]]),
        lossMask: ids([[0, 0, 1, 1]]),
      }).logps.item(),
    ),
  );
  assert.ok(Number.isFinite(value) && value < 0);
  model.dispose();
});

test("sequenceLogprobs rejects response tokens on padding", () => {
  const model = createModel(tinyLlamaConfig(), { seed: 12 }) as CausalLM;
  assert.throws(
    () =>
      torch.tidy(() =>
        sequenceLogprobs(model, {
          inputIds: ids([[1, 5, 9, 0]]),
          attentionMask: ids([[1, 1, 1, 0]]),
          lossMask: ids([[0, 0, 1, 1]]),
        }),
      ),
    /lossMask marks 1 token\(s\) that attentionMask marks as padding/,
  );
  assert.throws(
    () =>
      torch.tidy(() =>
        sequenceLogprobs(model, { inputIds: ids([[1, 5, 9]]), lossMask: ids([[0, 1]]) }),
      ),
    /Expected shape \[1, 3\] like inputIds for lossMask/,
  );
  // No response token at all: zero sums and counts.
  torch.tidy(() => {
    const result = sequenceLogprobs(model, {
      inputIds: ids([[1, 5, 9]]),
      lossMask: ids([[1, 0, 0]]),
    });
    assert.deepEqual([...result.logps.toFloat32Array()], [0]);
    assert.deepEqual([...result.tokenCounts.toFloat32Array()], [0]);
  });
  model.dispose();
});
