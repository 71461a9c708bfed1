import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import { test } from "node:test";

import { runGenerate } from "../../src/cli/commands/generate.js";
import {
  type CausalLM,
  createModel,
  generate,
  loadCausalLM,
  processLogits,
} from "../../src/models/index.js";
import * as torch from "../../src/tensor/index.js";
import { loadTokenizer } from "../../src/tokenizer/index.js";
import { requireShared } from "../helpers/shared.js";
import { tinyLlamaConfig } from "./helpers.js";

const NONE = { repetitionPenalty: 1, temperature: 1, topK: 0, topP: 1 };

function processed(logits: number[], options: Partial<typeof NONE>, seen: number[] = []): number[] {
  return torch.tidy(() => [
    ...processLogits(torch.tensor(logits, [1, logits.length]), [new Set(seen)], {
      ...NONE,
      ...options,
    }).toFloat32Array(),
  ]);
}

test("repetition penalty divides positive and multiplies negative logits", () => {
  assert.deepEqual(processed([2, -1, 0.5, 3], { repetitionPenalty: 2 }, [0, 1]), [1, -2, 0.5, 3]);
  assert.deepEqual(processed([2, -1, 0.5, 3], { repetitionPenalty: 2 }, []), [2, -1, 0.5, 3]);
});

test("temperature, top-k and top-p filter logits", () => {
  assert.deepEqual(processed([2, -1, 0.5, 3], { temperature: 0.5 }), [4, -2, 1, 6]);
  const inf = Number.NEGATIVE_INFINITY;
  assert.deepEqual(processed([2, -1, 0.5, 3], { topK: 2 }), [2, inf, inf, 3]);
  // Probabilities 0.1, 0.2, 0.3, 0.4: top-p 0.65 keeps 0.4 and 0.3 (0.7 >= 0.65).
  const logits = [0.1, 0.2, 0.3, 0.4].map(Math.log);
  const filtered = processed(logits, { topP: 0.65 });
  assert.deepEqual(
    filtered.map((v) => v === inf),
    [true, true, false, false],
  );
  // top-p 0.75 needs the third token too; the most likely token always stays.
  assert.deepEqual(
    processed(logits, { topP: 0.75 }).map((v) => v === inf),
    [true, false, false, false],
  );
  assert.deepEqual(
    processed(logits, { topP: 0.01 }).map((v) => v === inf),
    [true, true, true, false],
  );
});

test("sampling is reproducible from the seed", () => {
  const model = createModel(tinyLlamaConfig(), { seed: 1 }) as CausalLM;
  model.eval();
  const prompts = [
    [1, 5, 9],
    [1, 7],
  ];
  const options = { maxNewTokens: 12, stopTokenIds: [], temperature: 1.5 };
  const a = generate(model, prompts, { ...options, seed: 42 });
  const b = generate(model, prompts, { ...options, seed: 42 });
  const c = generate(model, prompts, { ...options, seed: 43 });
  assert.deepEqual(a.tokens, b.tokens);
  assert.notDeepEqual(a.tokens, c.tokens);
  assert.equal(a.tokens[0]!.length, 12);
  assert.deepEqual(a.finishReasons, ["length", "length"]);
  assert.equal(a.texts, null);
  // top-k 1 leaves one candidate: sampling then equals greedy decoding.
  const greedy = generate(model, prompts, { maxNewTokens: 12, stopTokenIds: [], greedy: true });
  const topOne = generate(model, prompts, { maxNewTokens: 12, stopTokenIds: [], topK: 1, seed: 7 });
  assert.deepEqual(topOne.tokens, greedy.tokens);
  model.dispose();
});

test("left-padded batches generate what single prompts do", () => {
  const model = createModel(tinyLlamaConfig(), { seed: 2 }) as CausalLM;
  model.eval();
  const prompts = [
    [1, 5, 9, 14, 3, 8],
    [1, 7],
    [1, 30, 31],
  ];
  const options = { maxNewTokens: 10, stopTokenIds: [], greedy: true };
  const batch = generate(model, prompts, options);
  const single = prompts.map((p) => generate(model, [p], options).tokens[0]);
  assert.deepEqual(batch.tokens, single);
  model.dispose();
});

test("rows stop at their stop token and the rest continue", () => {
  const model = createModel(tinyLlamaConfig(), { seed: 2 }) as CausalLM;
  model.eval();
  const free = generate(
    model,
    [
      [1, 5, 9],
      [1, 7],
    ],
    { maxNewTokens: 8, stopTokenIds: [], greedy: true },
  );
  const stopAt = free.tokens[0]![2]!;
  assert.ok(!free.tokens[0]!.slice(0, 2).includes(stopAt), "pick a seed whose third token is new");
  const stopped = generate(
    model,
    [
      [1, 5, 9],
      [1, 7],
    ],
    { maxNewTokens: 8, stopTokenIds: [stopAt], greedy: true },
  );
  assert.deepEqual(stopped.tokens[0], free.tokens[0]!.slice(0, 3));
  assert.equal(stopped.finishReasons[0], "stop_token");
  const cut = free.tokens[1]!.indexOf(stopAt);
  assert.deepEqual(stopped.tokens[1], cut < 0 ? free.tokens[1] : free.tokens[1]!.slice(0, cut + 1));
  model.dispose();
});

test("generate checks its arguments", () => {
  const model = createModel(tinyLlamaConfig(), { seed: 2 }) as CausalLM;
  assert.throws(() => generate(model, [[]]), /Expected at least one token .* for prompts\[0\]/);
  assert.throws(
    () => generate(model, [[1, 40]]),
    /Expected token ids in \[0, 40\) for prompts\[0\] but received 40/,
  );
  assert.throws(
    () => generate(model, [[1]], { topP: 0 }),
    /Expected a number in \(0, 1\] for topP/,
  );
  assert.throws(
    () => generate(model, [[1]], { stopStrings: ["x"] }),
    /stopStrings needs a tokenizer/,
  );
  model.dispose();
});

test("stories260K stops at a stop string", async (t) => {
  const dir = requireShared(t, "models", "stories260K");
  if (!dir) return;
  const model = await loadCausalLM(dir);
  const tokenizer = await loadTokenizer(dir);
  const result = generate(model, [[1]], {
    greedy: true,
    maxNewTokens: 64,
    stopStrings: ["Lily"],
    tokenizer,
  });
  assert.equal(result.texts![0], "Once upon a time, there was a little girl named ");
  assert.equal(result.finishReasons[0], "stop_string");
  model.dispose();
});

test("cdpo generate continues from BOS", async (t) => {
  const dir = requireShared(t, "models", "stories260K");
  const textFile = requireShared(t, "expected", "stories260K-greedy-from-bos.txt");
  if (!dir || !textFile) return;
  const expected = await fs.readFile(textFile, "utf8");
  const options = { model: dir, temperature: 1, topP: 1, topK: 0, seed: 0, repetitionPenalty: 1 };
  const greedy = await runGenerate({ ...options, greedy: true, maxNewTokens: 30 });
  assert.equal(greedy.tokens.length, 30);
  assert.ok(expected.startsWith(greedy.text), `${greedy.text} is not a prefix of the reference`);
  const sampled = await runGenerate({
    ...options,
    maxNewTokens: 30,
    seed: 5,
    temperature: 0.8,
    topP: 0.9,
  });
  const again = await runGenerate({
    ...options,
    maxNewTokens: 30,
    seed: 5,
    temperature: 0.8,
    topP: 0.9,
  });
  assert.equal(sampled.text, again.text);
  assert.ok(sampled.text.length > 0);
});

test("bfloat16 model samples with a repetition penalty", () => {
  const model = createModel(tinyLlamaConfig(), { seed: 3, dtype: "bfloat16" }) as CausalLM;
  const result = generate(model, [[1, 2, 3]], {
    maxNewTokens: 5,
    stopTokenIds: [],
    seed: 1,
    repetitionPenalty: 1.3,
  });
  assert.equal(result.tokens[0]!.length, 5);
  assert.ok(result.tokens[0]!.every((id) => id >= 0 && id < 40));
  model.dispose();
});
