import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import path from "node:path";
import { test } from "node:test";

import {
  type CausalLM,
  createModel,
  generate,
  loadCausalLM,
  loadModelWithReport,
  saveModel,
} from "../../src/models/index.js";
import type { Tensor } from "../../src/tensor/index.js";
import * as torch from "../../src/tensor/index.js";
import { loadTokenizer } from "../../src/tokenizer/index.js";
import { requireShared } from "../helpers/shared.js";
import { ids, maxAbsDiff, tempDir, tinyLlamaConfig } from "./helpers.js";

async function expectedGreedy(t: import("node:test").TestContext) {
  const idsFile = requireShared(t, "expected", "stories260K-greedy-from-bos.ids");
  const textFile = requireShared(t, "expected", "stories260K-greedy-from-bos.txt");
  if (!idsFile || !textFile) return null;
  const expectedIds = (await fs.readFile(idsFile, "utf8")).trim().split(",").map(Number);
  const expectedText = await fs.readFile(textFile, "utf8");
  return { expectedIds, expectedText };
}

/** Logits of a full forward, one step at a time with a cache after a prefill of `prefill` tokens. */
function cachedLogits(model: CausalLM, input: Tensor, prefill: number, capacity: number): Tensor {
  return torch.inferenceMode(() =>
    torch.tidy(() => {
      const steps = input.size(1);
      const cache = model.createCache(input.size(0), capacity);
      const pieces = [model.forward({ inputIds: input.narrow(1, 0, prefill), cache }).logits!];
      for (let t = prefill; t < steps; t++) {
        pieces.push(model.forward({ inputIds: input.narrow(1, t, 1), cache }).logits!);
      }
      assert.equal(cache.length, steps);
      cache.dispose();
      return torch.cat(pieces, 1); // [B, T, V]
    }),
  );
}

test("stories260K greedy generation matches the reference", async (t) => {
  const dir = requireShared(t, "models", "stories260K");
  const expected = await expectedGreedy(t);
  if (!dir || !expected) return;
  const model = await loadCausalLM(dir);
  const tokenizer = await loadTokenizer(dir);
  // A first pass builds the rotary tables, which the model keeps.
  torch.inferenceMode(() => torch.tidy(() => void model.forward({ inputIds: ids([[1]]) })));
  const before = torch.liveTensors();
  const result = generate(model, [[1]], {
    greedy: true,
    maxNewTokens: 256,
    stopTokenIds: [1, 2],
    tokenizer,
  });
  assert.equal(torch.liveTensors(), before, "generation leaked tensors");
  const got = [1, ...result.tokens[0]!];
  // The first ids fail first if the rotary layout or the RMSNorm is off.
  assert.deepEqual(got.slice(0, 8), expected.expectedIds.slice(0, 8));
  assert.deepEqual(got, expected.expectedIds);
  assert.equal(result.texts![0], expected.expectedText.replace(/\n$/, ""));
  assert.deepEqual(result.finishReasons, ["length"]);
  model.dispose();
});

test("stories260K config and parameters load", async (t) => {
  const dir = requireShared(t, "models", "stories260K");
  if (!dir) return;
  const { model, report } = await loadModelWithReport(dir);
  assert.equal(model.config.architecture, "LlamaForCausalLM");
  assert.equal(model.config.numKeyValueHeads, 4);
  assert.equal(model.config.headDim, 8);
  assert.deepEqual(report.unexpected, []);
  assert.deepEqual(report.initialized, []);
  // Tied head: 47 stored tensors, no lm_head.
  assert.equal(model.namedParameters().length, 47);
  assert.ok(!model.namedParameters().some(([name]) => name === "lm_head.weight"));
  // embedding 512×64, per layer 2×64 + 64×64×2 + 32×64×2 + 3×172×64, final norm 64
  assert.equal(model.numParameters(), 32_768 + 5 * (128 + 12_288 + 33_024) + 64);
  model.dispose();
});

test("stories260K kv cache matches the full forward", async (t) => {
  const dir = requireShared(t, "models", "stories260K");
  const expected = await expectedGreedy(t);
  if (!dir || !expected) return;
  const model = await loadCausalLM(dir);
  const input = ids([expected.expectedIds.slice(0, 40)]);
  const full = torch.inferenceMode(() => model.forward({ inputIds: input }).logits!); // [1, 40, V]
  // One-row matmuls accumulate in another order than the full pass, so float32 results differ
  // in the last bits: the bound is 1e-5 relative to the largest logit (about 15 here).
  const scale = torch.tidy(() => full.abs().max().item());
  const stepped = cachedLogits(model, input, 7, 64);
  assert.ok(
    maxAbsDiff(full, stepped) <= 1e-5 * scale,
    `cache differs by ${maxAbsDiff(full, stepped)}`,
  );
  // A cache that starts too small grows and gives the same logits.
  const grown = cachedLogits(model, input, 3, 4);
  assert.ok(
    maxAbsDiff(full, grown) <= 1e-5 * scale,
    `grown cache differs by ${maxAbsDiff(full, grown)}`,
  );
  torch.dispose([input, full, stepped, grown]);
  model.dispose();
});

test("stories260K save and reload give identical logits", async (t) => {
  const dir = requireShared(t, "models", "stories260K");
  if (!dir) return;
  const model = await loadCausalLM(dir);
  const out = await tempDir("stories");
  await saveModel(model, out);
  const config = JSON.parse(await fs.readFile(path.join(out, "config.json"), "utf8"));
  assert.deepEqual(config.architectures, ["LlamaForCausalLM"]);
  assert.equal(config.model_type, "llama");
  assert.equal(config.torch_dtype, "float32");
  assert.equal(config.rope_theta, 10000);
  const reloaded = await loadCausalLM(out);
  const input = ids([[1, 403, 407, 261, 378, 432]]);
  const [a, b] = torch.inferenceMode(() => [
    model.forward({ inputIds: input }).logits!,
    reloaded.forward({ inputIds: input }).logits!,
  ]);
  assert.ok(a!.equal(b!), "logits differ after save and reload");
  const files = (await fs.readdir(out)).sort();
  assert.deepEqual(files, ["config.json", "model.safetensors"]);
  torch.dispose([input, a, b]);
  model.dispose();
  reloaded.dispose();
  await fs.rm(out, { recursive: true });
});

test("stories260K left padding gives the unpadded logits", async (t) => {
  const dir = requireShared(t, "models", "stories260K");
  if (!dir) return;
  const model = await loadCausalLM(dir);
  const long = [1, 403, 407, 261, 378, 432, 383];
  const short = [1, 403, 407, 261];
  torch.inferenceMode(() =>
    torch.tidy(() => {
      const alone = [
        model.forward({ inputIds: ids([long]) }).logits!.select(0, 0), // [7, V]
        model.forward({ inputIds: ids([short]) }).logits!.select(0, 0), // [4, V]
      ];
      const batch = ids([long, [0, 0, 0, ...short]]);
      const mask = ids([
        [1, 1, 1, 1, 1, 1, 1],
        [0, 0, 0, 1, 1, 1, 1],
      ]);
      const logits = model.forward({ inputIds: batch, attentionMask: mask }).logits!; // [2, 7, V]
      assert.ok(maxAbsDiff(logits.select(0, 0), alone[0]!) <= 1e-5);
      assert.ok(maxAbsDiff(logits.select(0, 1).narrow(0, 3, 4), alone[1]!) <= 1e-5);
      assert.ok(
        logits.isfinite().logicalNot().sum().item() === 0,
        "padding rows produced NaN or inf",
      );
    }),
  );
  model.dispose();
});

test("stories260K loads in bfloat16", async (t) => {
  const dir = requireShared(t, "models", "stories260K");
  if (!dir) return;
  const f32 = await loadCausalLM(dir);
  const bf16 = await loadCausalLM(dir, { dtype: "bfloat16" });
  assert.ok(bf16.parameters().every((p) => p.dtype === "bfloat16"));
  torch.inferenceMode(() =>
    torch.tidy(() => {
      const input = ids([[1, 403, 407, 261, 378, 432]]);
      const a = f32.forward({ inputIds: input }).logits!;
      const b = bf16.forward({ inputIds: input }).logits!;
      assert.equal(b.dtype, "bfloat16");
      // bfloat16 keeps 8 bits of mantissa; the logits of this model reach about 19 (measured
      // difference 0.19). The predicted tokens are the prompt's next tokens in both.
      assert.ok(maxAbsDiff(a, b) < 0.5, `bfloat16 logits differ by ${maxAbsDiff(a, b)}`);
      assert.deepEqual(b.argmax(-1).toArray(), [403, 407, 261, 378, 432, 383]);
      assert.deepEqual(a.argmax(-1).toArray(), [403, 407, 261, 378, 432, 383]);
    }),
  );
  f32.dispose();
  bf16.dispose();
});

test("grouped-query attention matches repeated key/value heads", () => {
  // The same weights as a model with 4 kv heads whose kv projections repeat each of the 2 heads.
  const grouped = createModel(tinyLlamaConfig(), { seed: 3 }) as CausalLM;
  const full = createModel(tinyLlamaConfig({ num_key_value_heads: 4 }), { seed: 4 }) as CausalLM;
  const groupedParams = grouped.stateDict();
  torch.noGrad(() =>
    torch.tidy(() => {
      for (const [name, parameter] of full.namedParameters()) {
        let source = groupedParams.get(name)!;
        if (/self_attn\.(k|v)_proj\.weight$/.test(name)) {
          // [2 heads * 4, 16] -> [4 heads * 4, 16], head h of the full model = head h / 2
          source = source.view(2, 1, 4, 16).expand(2, 2, 4, 16).reshape(16, 16);
        }
        parameter.copy_(source);
      }
    }),
  );
  torch.inferenceMode(() =>
    torch.tidy(() => {
      const input = ids([[1, 5, 9, 3, 7, 22, 30]]);
      const a = grouped.forward({ inputIds: input }).logits!;
      const b = full.forward({ inputIds: input }).logits!;
      assert.ok(maxAbsDiff(a, b) <= 1e-5, `differ by ${maxAbsDiff(a, b)}`);
    }),
  );
  grouped.dispose();
  full.dispose();
});

test("tiny llama kv cache matches the full forward", () => {
  const model = createModel(tinyLlamaConfig(), { seed: 6 }) as CausalLM;
  const input = ids([
    [1, 5, 9, 3, 7, 22, 30, 31, 2, 11],
    [4, 4, 8, 3, 0, 22, 39, 1, 2, 17],
  ]);
  const full = torch.inferenceMode(() => model.forward({ inputIds: input }).logits!);
  const stepped = cachedLogits(model, input, 4, 16);
  assert.ok(maxAbsDiff(full, stepped) <= 1e-5, `cache differs by ${maxAbsDiff(full, stepped)}`);
  torch.dispose([input, full, stepped]);
  model.dispose();
});

test("llama forward frees its intermediates", () => {
  const model = createModel(tinyLlamaConfig(), { seed: 1 }) as CausalLM;
  const before = torch.liveTensors();
  const logits = torch.tidy(() => {
    const out = model.forward({
      inputIds: ids([
        [1, 2, 3],
        [4, 5, 6],
      ]),
    });
    return out.logits!;
  });
  assert.deepEqual(logits.shape, [2, 3, 40]);
  // The rotary tables are built on the first pass and kept (cos and sin).
  assert.equal(torch.liveTensors(), before + 1 + 2);
  logits.dispose();
  model.dispose();
});

test("llama logitsToKeep and hiddenOnly", () => {
  const model = createModel(tinyLlamaConfig(), { seed: 1 }) as CausalLM;
  torch.tidy(() => {
    const input = ids([[1, 2, 3, 4]]);
    const full = model.forward({ inputIds: input }).logits!;
    const last = model.forward({ inputIds: input, logitsToKeep: 1 }).logits!;
    assert.deepEqual(last.shape, [1, 1, 40]);
    // With a head of more than 512 outputs, one kept row goes through a matrix-vector product and
    // four rows through a gemm. The sums then run in a different order: equal up to rounding.
    assert.ok(maxAbsDiff(last, full.narrow(1, 3, 1)) <= 1e-6);
    const hidden = model.forward({ inputIds: input, hiddenOnly: true });
    assert.equal(hidden.logits, null);
    assert.deepEqual(hidden.hiddenStates!.shape, [1, 4, 16]);
    assert.ok(maxAbsDiff(model.computeLogits(hidden.hiddenStates!), full) <= 1e-6);
  });
  model.dispose();
});

test("llama training forward and backward reach every parameter", () => {
  const model = createModel(tinyLlamaConfig({ tie_word_embeddings: true }), {
    seed: 2,
  }) as CausalLM;
  // A first pass in inference mode builds the rotary tables as inference tensors; training after
  // it must still work.
  torch.inferenceMode(() => torch.tidy(() => void model.forward({ inputIds: ids([[1, 2]]) })));
  model.train();
  const loss = torch.tidy(() => {
    const input = ids([[1, 5, 9, 3, 7]]);
    const logits = model.forward({ inputIds: input }).logits!; // [1, 5, V]
    const value = torch.crossEntropy(
      logits.narrow(1, 0, 4).reshape(4, 40),
      input.narrow(1, 1, 4).reshape(4),
    );
    value.backward();
    return value.item();
  });
  assert.ok(Math.abs(loss - Math.log(40)) < 0.1, `initial loss ${loss} should be near ln(40)`);
  for (const [name, parameter] of model.namedParameters()) {
    const grad = parameter.grad;
    assert.ok(grad !== null, `${name} has no gradient`);
    grad.dispose();
  }
  model.dispose();
});

test("rope scaling and biases follow the config", () => {
  const qwen = createModel(
    tinyLlamaConfig({ architectures: ["Qwen2ForCausalLM"], model_type: "qwen2" }),
    { seed: 0 },
  );
  const names = qwen.namedParameters().map(([name]) => name);
  assert.ok(names.includes("model.layers.0.self_attn.q_proj.bias"));
  assert.ok(names.includes("model.layers.0.self_attn.v_proj.bias"));
  assert.ok(!names.includes("model.layers.0.self_attn.o_proj.bias"));
  qwen.dispose();
  const biased = createModel(tinyLlamaConfig({ attention_bias: true, mlp_bias: true }), {
    seed: 0,
  });
  const biasedNames = biased.namedParameters().map(([name]) => name);
  assert.ok(biasedNames.includes("model.layers.1.self_attn.o_proj.bias"));
  assert.ok(biasedNames.includes("model.layers.1.mlp.down_proj.bias"));
  biased.dispose();
  for (const scaling of [
    { type: "linear", factor: 2 },
    { rope_type: "dynamic", factor: 2 },
    {
      rope_type: "llama3",
      factor: 8,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 16,
    },
  ]) {
    const model = createModel(tinyLlamaConfig({ rope_scaling: scaling }), { seed: 0 }) as CausalLM;
    torch.tidy(() => {
      const logits = model.forward({
        inputIds: ids([Array.from({ length: 70 }, (_, i) => i % 40)]),
      }).logits!;
      assert.equal(logits.isfinite().logicalNot().sum().item(), 0);
    });
    model.dispose();
  }
});

test("mistral sliding window limits attention", () => {
  const config = tinyLlamaConfig({
    architectures: ["MistralForCausalLM"],
    model_type: "mistral",
    sliding_window: 3,
  });
  const windowed = createModel(config, { seed: 5 }) as CausalLM;
  torch.tidy(() => {
    // A window of 3 lets position i attend to i-2 .. i, so through 2 layers position 6 depends
    // on tokens 2 .. 6 only.
    const a = windowed.forward({ inputIds: ids([[1, 5, 9, 3, 7, 22, 30]]) }).logits!.select(1, 6);
    const b = windowed.forward({ inputIds: ids([[4, 6, 9, 3, 7, 22, 30]]) }).logits!.select(1, 6);
    assert.ok(a.equal(b), "tokens outside the window changed the output");
    const c = windowed.forward({ inputIds: ids([[1, 5, 8, 3, 7, 22, 30]]) }).logits!.select(1, 6);
    assert.ok(!a.equal(c), "a token inside the receptive field had no effect");
  });
  windowed.dispose();
});

test("4-D attention mask packs two responses", () => {
  const model = createModel(tinyLlamaConfig(), { seed: 8 }) as CausalLM;
  torch.tidy(() => {
    // prompt [1, 5, 9], response A [12, 3], response B [7, 22, 30] packed as one row; B attends to
    // the prompt and itself but not to A, and its positions continue from the prompt.
    const packed = ids([[1, 5, 9, 12, 3, 7, 22, 30]]);
    const allowed = [
      [1, 0, 0, 0, 0, 0, 0, 0],
      [1, 1, 0, 0, 0, 0, 0, 0],
      [1, 1, 1, 0, 0, 0, 0, 0],
      [1, 1, 1, 1, 0, 0, 0, 0],
      [1, 1, 1, 1, 1, 0, 0, 0],
      [1, 1, 1, 0, 0, 1, 0, 0],
      [1, 1, 1, 0, 0, 1, 1, 0],
      [1, 1, 1, 0, 0, 1, 1, 1],
    ];
    const mask = torch.tensor(allowed.flat(), [1, 1, 8, 8], { dtype: "bool" });
    const positionIds = ids([[0, 1, 2, 3, 4, 3, 4, 5]]);
    const logits = model.forward({ inputIds: packed, attentionMask: mask, positionIds }).logits!;
    const a = model.forward({ inputIds: ids([[1, 5, 9, 12, 3]]) }).logits!;
    const b = model.forward({ inputIds: ids([[1, 5, 9, 7, 22, 30]]) }).logits!;
    assert.ok(maxAbsDiff(logits.narrow(1, 0, 5), a) <= 1e-5);
    assert.ok(maxAbsDiff(logits.narrow(1, 5, 3), b.narrow(1, 3, 3)) <= 1e-5);
    assert.throws(
      () => model.forward({ inputIds: packed, attentionMask: torch.ones([1, 1, 8, 7]) }),
      /Expected attentionMask of shape \[1, 8\] .* or \[1, 1, 8, 8\] but received \[1, 1, 8, 7\]/,
    );
  });
  model.dispose();
});
