import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import path from "node:path";
import { test } from "node:test";

import { CdpoError } from "../../src/errors.js";
import {
  type CausalLM,
  createModel,
  loadCausalLM,
  loadModel,
  loadSafetensors,
  parseModelConfig,
  readModelConfig,
  readSafetensorsHeader,
  saveModel,
  saveSafetensors,
} from "../../src/models/index.js";
import * as torch from "../../src/tensor/index.js";
import { ids, tempDir, tinyLlamaConfig } from "./helpers.js";

/** Saves a tiny seeded Llama into a new folder and returns the folder. */
async function savedTinyLlama(
  overrides: Record<string, unknown> = {},
  dtype: torch.DType = "float32",
) {
  const dir = await tempDir("checkpoint");
  const model = createModel(tinyLlamaConfig(overrides), { seed: 11, dtype });
  await saveModel(model, dir);
  model.dispose();
  return dir;
}

async function writeJson(file: string, value: unknown): Promise<void> {
  await fs.writeFile(file, JSON.stringify(value));
}

function assertCdpoError(error: unknown, code: string, pattern: RegExp): true {
  assert.ok(error instanceof CdpoError, `expected a CdpoError, got ${String(error)}`);
  assert.equal(error.code, code);
  assert.match(error.message, pattern);
  return true;
}

test("missing folder, config and weights are named", async () => {
  const dir = await tempDir("missing");
  await assert.rejects(loadModel(path.join(dir, "nope")), (e) =>
    assertCdpoError(e, "FILE", /model folder not found: .*nope/),
  );
  await assert.rejects(loadModel(dir), (e) => assertCdpoError(e, "FILE", /has no config\.json/));
  await writeJson(path.join(dir, "config.json"), tinyLlamaConfig());
  await assert.rejects(loadModel(dir), (e) =>
    assertCdpoError(e, "FILE", /has no model\.safetensors \(nor model\.safetensors\.index\.json/),
  );
  await fs.rm(dir, { recursive: true });
});

test("pickle checkpoints are rejected with a conversion hint", async () => {
  const dir = await tempDir("pickle");
  await writeJson(path.join(dir, "config.json"), tinyLlamaConfig());
  await fs.writeFile(path.join(dir, "pytorch_model.bin"), Buffer.from([0x80, 0x02]));
  await assert.rejects(loadModel(dir), (e) =>
    assertCdpoError(
      e,
      "MODEL",
      /has only pytorch_model\.bin, a pickle checkpoint.*safe_serialization=True/,
    ),
  );
  await fs.rm(dir, { recursive: true });
});

test("unknown architecture lists the supported ones", async () => {
  const dir = await savedTinyLlama();
  await writeJson(
    path.join(dir, "config.json"),
    tinyLlamaConfig({ architectures: ["FalconForCausalLM"] }),
  );
  await assert.rejects(loadModel(dir), (e) =>
    assertCdpoError(
      e,
      "MODEL",
      /config\.json: architecture FalconForCausalLM is not supported; supported architectures: LlamaForCausalLM/,
    ),
  );
  await fs.rm(dir, { recursive: true });
});

test("config errors name the field", () => {
  const withoutLayers = tinyLlamaConfig();
  delete withoutLayers["num_hidden_layers"];
  const cases: [Record<string, unknown>, RegExp][] = [
    [
      tinyLlamaConfig({ hidden_size: "16" }),
      /c\.json: field hidden_size must be a positive integer but is "16"/,
    ],
    [withoutLayers, /c\.json: required field num_hidden_layers is missing/],
    [
      tinyLlamaConfig({ num_key_value_heads: 3 }),
      /num_attention_heads 4 is not a multiple of num_key_value_heads 3/,
    ],
    [
      tinyLlamaConfig({ rope_scaling: { type: "yarn", factor: 4 } }),
      /rope_scaling type "yarn" is not supported; supported: linear, dynamic, llama3/,
    ],
    [tinyLlamaConfig({ hidden_act: "mish" }), /field hidden_act must be one of silu/],
  ];
  for (const [raw, pattern] of cases) {
    assert.throws(
      () => parseModelConfig(raw, "c.json"),
      (e) => assertCdpoError(e, "CONFIG", pattern),
    );
  }
});

test("qwen2 config takes transformers defaults", () => {
  const config = parseModelConfig({
    model_type: "qwen2",
    vocab_size: 8,
    hidden_size: 8,
    intermediate_size: 8,
    num_hidden_layers: 1,
    num_attention_heads: 2,
  });
  assert.equal(config.architecture, "Qwen2ForCausalLM");
  assert.equal(config.numKeyValueHeads, 2);
  assert.equal(config.qkvBias, true);
  assert.equal(config.outputBias, false);
  assert.equal(config.normEps, 1e-6);
});

test("shape mismatch names the tensor and both shapes", async () => {
  const dir = await savedTinyLlama();
  await writeJson(path.join(dir, "config.json"), tinyLlamaConfig({ intermediate_size: 20 }));
  await assert.rejects(loadModel(dir), (e) =>
    assertCdpoError(
      e,
      "MODEL",
      /tensor model\.layers\.0\.mlp\.gate_proj\.weight in .*model\.safetensors has shape \[24, 16\] but .*config\.json gives \[20, 16\]/,
    ),
  );
  await fs.rm(dir, { recursive: true });
});

test("missing tensor is named", async () => {
  const dir = await savedTinyLlama();
  const file = path.join(dir, "model.safetensors");
  const tensors = await loadSafetensors(file);
  tensors.get("model.layers.1.self_attn.k_proj.weight")!.dispose();
  tensors.delete("model.layers.1.self_attn.k_proj.weight");
  await saveSafetensors(file, tensors);
  torch.dispose([...tensors.values()]);
  await assert.rejects(loadModel(dir), (e) =>
    assertCdpoError(
      e,
      "MODEL",
      /tensor model\.layers\.1\.self_attn\.k_proj\.weight is missing from .*model\.safetensors \(LlamaForCausalLM/,
    ),
  );
  await fs.rm(dir, { recursive: true });
});

test("truncated safetensors file is reported", async () => {
  const dir = await savedTinyLlama();
  const file = path.join(dir, "model.safetensors");
  const { size } = await fs.stat(file);
  await fs.truncate(file, size - 100);
  await assert.rejects(loadModel(dir), (e) =>
    assertCdpoError(
      e,
      "FILE",
      /model\.safetensors is truncated: tensor .* needs bytes up to \d+ but the file has \d+/,
    ),
  );
  await fs.truncate(file, 5);
  await assert.rejects(readSafetensorsHeader(file), (e) =>
    assertCdpoError(e, "FILE", /is truncated: 5 bytes/),
  );
  const header = Buffer.alloc(8);
  header.writeBigUInt64LE(1000n);
  await fs.writeFile(file, Buffer.concat([header, Buffer.from("{}")]));
  await assert.rejects(readSafetensorsHeader(file), (e) =>
    assertCdpoError(e, "FILE", /is truncated: the header needs 1008 bytes but the file has 10/),
  );
  header.writeBigUInt64LE(3n);
  await fs.writeFile(file, Buffer.concat([header, Buffer.from("{x}")]));
  await assert.rejects(readSafetensorsHeader(file), (e) =>
    assertCdpoError(e, "FILE", /the header is not JSON/),
  );
  await fs.rm(dir, { recursive: true });
});

test("sharded checkpoints save and load", async () => {
  const model = createModel(tinyLlamaConfig(), { seed: 12 }) as CausalLM;
  const dir = await tempDir("shards");
  await saveModel(model, dir, { maxShardBytes: 4000 });
  const files = (await fs.readdir(dir)).sort();
  const shards = files.filter((f) => f.endsWith(".safetensors"));
  assert.ok(shards.length > 2, `expected several shards, got ${files.join(", ")}`);
  assert.match(shards[0]!, /^model-00001-of-000\d\d\.safetensors$/);
  const index = JSON.parse(
    await fs.readFile(path.join(dir, "model.safetensors.index.json"), "utf8"),
  );
  assert.equal(index.weight_map["lm_head.weight"].startsWith("model-"), true);
  assert.equal(index.metadata.total_size, model.numParameters() * 4);

  const reloaded = (await loadModel(dir)) as CausalLM;
  torch.tidy(() => {
    const input = ids([[1, 2, 3, 4]]);
    assert.ok(
      model
        .forward({ inputIds: input })
        .logits!.equal(reloaded.forward({ inputIds: input }).logits!),
    );
  });

  // Saving again as one file removes the shards and the index.
  await saveModel(model, dir);
  assert.deepEqual((await fs.readdir(dir)).sort(), ["config.json", "model.safetensors"]);

  // An index that lists a missing shard is reported.
  await saveModel(model, dir, { maxShardBytes: 4000 });
  await fs.rm(path.join(dir, shards[1]!));
  await assert.rejects(loadModel(dir), (e) =>
    assertCdpoError(
      e,
      "FILE",
      new RegExp(`safetensors shard not found: .*${shards[1]!} \\(listed in`),
    ),
  );
  model.dispose();
  reloaded.dispose();
  await fs.rm(dir, { recursive: true });
});

test("float16 and bfloat16 checkpoints load into float32", async () => {
  for (const dtype of ["float16", "bfloat16"] as const) {
    const dir = await savedTinyLlama({}, dtype);
    const config = JSON.parse(await fs.readFile(path.join(dir, "config.json"), "utf8"));
    assert.equal(config.torch_dtype, dtype);
    const header = await readSafetensorsHeader(path.join(dir, "model.safetensors"));
    assert.equal(
      header.tensors.get("model.norm.weight")!.dtype,
      dtype === "float16" ? "F16" : "BF16",
    );
    const stored = await loadSafetensors(path.join(dir, "model.safetensors"));
    const model = await loadModel(dir);
    const auto = await loadModel(dir, { dtype: "auto" });
    const name = "model.layers.0.self_attn.q_proj.weight";
    assert.equal(model.getParameter(name).dtype, "float32");
    assert.equal(auto.getParameter(name).dtype, dtype);
    torch.tidy(() => assert.ok(model.getParameter(name).equal(stored.get(name)!.float())));
    assert.ok(auto.getParameter(name).equal(stored.get(name)!));
    torch.dispose([...stored.values()]);
    model.dispose();
    auto.dispose();
    await fs.rm(dir, { recursive: true });
  }
});

test("saved config keeps unknown keys", async () => {
  const dir = await savedTinyLlama({ custom_note: "kept", rope_theta: 5000 });
  const config = await readModelConfig(dir);
  assert.equal(config.raw["custom_note"], "kept");
  assert.equal(config.ropeTheta, 5000);
  await fs.rm(dir, { recursive: true });
});

test("createModel is reproducible from its seed", () => {
  const a = createModel(tinyLlamaConfig(), { seed: 5 });
  const b = createModel(tinyLlamaConfig(), { seed: 5 });
  const c = createModel(tinyLlamaConfig(), { seed: 6 });
  const pa = a.parameters();
  const pb = b.parameters();
  assert.ok(pa.every((p, i) => p.equal(pb[i]!)));
  assert.ok(!a.getParameter("lm_head.weight").equal(c.getParameter("lm_head.weight")));
  assert.equal(a.training, true);
  for (const m of [a, b, c]) m.dispose();
});

test("score checkpoints are not loaded as causal LMs", async () => {
  const dir = await tempDir("score-as-lm");
  const model = createModel(tinyLlamaConfig({ architectures: ["LlamaForScore"] }), { seed: 1 });
  await saveModel(model, dir);
  model.dispose();
  await assert.rejects(loadCausalLM(dir), (e) =>
    assertCdpoError(e, "MODEL", /holds a score model \(LlamaForScore\), not a causal LM/),
  );
  await fs.rm(dir, { recursive: true });
});
