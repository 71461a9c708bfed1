/** Small configs, temporary folders and numeric comparisons for the model tests. */
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Tensor } from "../../src/tensor/index.js";
import * as torch from "../../src/tensor/index.js";

/** Returns a 2-layer Llama with grouped-query attention (4 query heads, 2 key/value heads). */
export function tinyLlamaConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    vocab_size: 40,
    hidden_size: 16,
    intermediate_size: 24,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 64,
    rms_norm_eps: 1e-5,
    tie_word_embeddings: false,
    bos_token_id: 1,
    eos_token_id: 2,
    ...overrides,
  };
}

/** Returns a 2-layer GPT-2. */
export function tinyGpt2Config(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    architectures: ["GPT2LMHeadModel"],
    model_type: "gpt2",
    vocab_size: 30,
    n_embd: 12,
    n_layer: 2,
    n_head: 3,
    n_positions: 32,
    bos_token_id: 0,
    eos_token_id: 0,
    ...overrides,
  };
}

export async function tempDir(label: string): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), `cdpo-${label}-`));
}

/** Builds an int64 tensor [rows, length] from nested number arrays. */
export function ids(rows: number[][]): Tensor {
  const width = rows[0]!.length;
  return torch.tensor(BigInt64Array.from(rows.flat(), BigInt), [rows.length, width]);
}

/** Largest absolute difference between two tensors of the same shape. */
export function maxAbsDiff(a: Tensor, b: Tensor): number {
  assert.deepEqual(a.shape, b.shape, "shapes differ");
  return torch.tidy(() => a.float().sub(b.float()).abs().max().item());
}

export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tolerance: number,
  label = "",
): void {
  assert.equal(actual.length, expected.length, `${label} length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(
      Math.abs(actual[i]! - expected[i]!) <= tolerance,
      `${label}[${i}]: ${actual[i]} vs ${expected[i]} (tolerance ${tolerance})`,
    );
  }
}
