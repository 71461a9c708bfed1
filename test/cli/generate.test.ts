import assert from "node:assert/strict";
import { test } from "node:test";

import { runGenerate } from "../../src/cli/commands/generate.js";
import { contextOverflow, describeContextOverflow } from "../../src/models/generate.js";
import { type CausalLM, createModel, generate } from "../../src/models/index.js";
import * as torch from "../../src/tensor/index.js";
import { runCdpo } from "../helpers/cli.js";
import { requireShared } from "../helpers/shared.js";
import { tinyGpt2Config, tinyLlamaConfig } from "../models/helpers.js";

/** Counts the forward passes of `model`, so a test can tell whether generation computed. */
function countForwards(model: CausalLM): { calls: number } {
  const counter = { calls: 0 };
  const forward = model.forward.bind(model);
  model.forward = (input) => {
    counter.calls++;
    return forward(input);
  };
  return counter;
}

test("contextOverflow numbers per family", () => {
  const gpt2 = createModel(tinyGpt2Config({ n_positions: 8 }), { seed: 0 }) as CausalLM;
  const llama = createModel(tinyLlamaConfig({ max_position_embeddings: 8 }), { seed: 0 });
  assert.equal(contextOverflow(gpt2.config, 3, 5), null);
  assert.deepEqual(contextOverflow(gpt2.config, 3, 6), {
    promptLength: 3,
    maxNewTokens: 6,
    limit: 8,
    limitField: "n_positions",
    fatal: true,
  });
  assert.deepEqual(contextOverflow(llama.config, 3, 6), {
    promptLength: 3,
    maxNewTokens: 6,
    limit: 8,
    limitField: "max_position_embeddings",
    fatal: false,
  });
  gpt2.dispose();
  llama.dispose();
});

test("describeContextOverflow names numbers and fix", () => {
  const base = { limit: 8, maxNewTokens: 6 };
  const fatal = { ...base, promptLength: 3, limitField: "n_positions", fatal: true } as const;
  assert.equal(
    describeContextOverflow(fatal, "--max-new-tokens"),
    "The prompt (3 tokens) plus --max-new-tokens (6) is 9 tokens but GPT-2 has only 8 learned " +
      "positions (n_positions): lower --max-new-tokens to 5 or less, or shorten the prompt",
  );
  assert.match(
    describeContextOverflow({ ...fatal, promptLength: 8 }),
    /The prompt \(8 tokens\) plus maxNewTokens \(6\) is 14 tokens .*: shorten the prompt to fewer than 8 tokens$/,
  );
  const rotary = {
    ...base,
    promptLength: 1,
    limitField: "max_position_embeddings",
    fatal: false,
  } as const;
  assert.equal(
    describeContextOverflow(rotary),
    "The prompt (1 token) plus maxNewTokens (6) is 7 tokens, past the model's context length of " +
      "8 (max_position_embeddings); tokens after the first 8 sit at positions the model was not " +
      "trained on",
  );
});

test("generate rejects GPT-2 past n_positions before compute", () => {
  const model = createModel(tinyGpt2Config({ n_positions: 8 }), { seed: 0 }) as CausalLM;
  model.eval();
  const forwards = countForwards(model);
  assert.throws(
    () => generate(model, [[1, 2, 3]], { maxNewTokens: 6, stopTokenIds: [] }),
    (error: unknown) =>
      error instanceof RangeError &&
      /is 9 tokens but GPT-2 has only 8 learned positions \(n_positions\)/.test(error.message) &&
      /lower maxNewTokens to 5 or less/.test(error.message),
  );
  assert.equal(forwards.calls, 0);
  // The check uses the batch's maximum prompt length: 5 + 4 = 9.
  assert.throws(
    () => generate(model, [[1], [1, 2, 3, 4, 5]], { maxNewTokens: 4, stopTokenIds: [] }),
    /is 9 tokens but GPT-2 has only 8 learned positions/,
  );
  assert.equal(forwards.calls, 0);
  const fits = generate(model, [[1, 2, 3]], { maxNewTokens: 5, stopTokenIds: [], greedy: true });
  assert.equal(fits.tokens[0]!.length, 5);
  assert.equal(forwards.calls, 5);
  model.dispose();
});

test("generate runs Llama past max_position_embeddings", () => {
  const model = createModel(tinyLlamaConfig({ max_position_embeddings: 8 }), {
    seed: 0,
  }) as CausalLM;
  model.eval();
  const result = generate(model, [[1, 5, 9]], {
    maxNewTokens: 10,
    stopTokenIds: [],
    greedy: true,
  });
  assert.equal(result.tokens[0]!.length, 10);
  assert.deepEqual(result.finishReasons, ["length"]);
  model.dispose();
});

test("runGenerate applies threads", async (t) => {
  const dir = requireShared(t, "models", "stories260K");
  if (!dir) return;
  const options = { model: dir, temperature: 1, topP: 1, topK: 0, seed: 0, repetitionPenalty: 1 };
  torch.setNumThreads(2);
  const result = await runGenerate({ ...options, greedy: true, maxNewTokens: 3, threads: 1 });
  assert.equal(result.tokens.length, 3);
  assert.equal(torch.getNumThreads(), 1);
});

test("cdpo generate rejects bad --threads", async () => {
  const run = await runCdpo(["generate", "--model", "unused", "--threads", "0"]);
  assert.equal(run.code, 1);
  assert.match(run.stderr, /Expected an integer >= 1 for --threads but received "0"/);
});

test("cdpo generate GPT-2 past n_positions fails", async (t) => {
  const dir = requireShared(t, "models", "fake-gpt2");
  if (!dir) return;
  // "Hello there" is 2 GPT-2 tokens (no BOS is added): 2 + 1023 = 1025 > 1024.
  const run = await runCdpo([
    "generate",
    "--model",
    dir,
    "--prompt",
    "Hello there",
    "--max-new-tokens",
    "1023",
    "--threads",
    "1",
  ]);
  assert.equal(run.code, 1);
  assert.equal(run.stdout, "");
  assert.equal(
    run.stderr,
    "cdpo: The prompt (2 tokens) plus --max-new-tokens (1023) is 1025 tokens but GPT-2 has only " +
      "1024 learned positions (n_positions): lower --max-new-tokens to 1022 or less, or shorten " +
      "the prompt\n",
  );
});

test("cdpo generate warns past Llama context", async (t) => {
  const dir = requireShared(t, "models", "stories260K");
  if (!dir) return;
  // "Once upon a time" is BOS + 4 tokens; the context is 512 (max_position_embeddings).
  const args = ["generate", "--model", dir, "--prompt", "Once upon a time", "--greedy"];
  const past = await runCdpo([...args, "--max-new-tokens", "508", "--threads", "1"]);
  assert.equal(past.code, 0);
  assert.equal(
    past.stderr,
    "cdpo: warning: The prompt (5 tokens) plus --max-new-tokens (508) is 513 tokens, past the " +
      "model's context length of 512 (max_position_embeddings); tokens after the first 512 sit " +
      "at positions the model was not trained on\n",
  );
  assert.match(past.stdout, /^, there was a little girl/);
  const fits = await runCdpo([...args, "--max-new-tokens", "507", "--threads", "1"]);
  assert.equal(fits.code, 0);
  assert.equal(fits.stderr, "");
  assert.equal(fits.stdout, past.stdout);
});

test("cdpo generate: --temperature 0 is greedy", async (t) => {
  const dir = requireShared(t, "models", "stories260K");
  if (!dir) return;
  const args = ["generate", "--model", dir, "--max-new-tokens", "24", "--threads", "1"];
  const greedy = await runCdpo([...args, "--greedy"]);
  const zero = await runCdpo([...args, "--temperature", "0", "--seed", "5"]);
  assert.equal(greedy.code, 0, greedy.stderr);
  assert.equal(zero.code, 0, zero.stderr);
  assert.ok(greedy.stdout.length > 20, greedy.stdout);
  assert.equal(zero.stdout, greedy.stdout);
  const negative = await runCdpo([...args, "--temperature", "-1"]);
  assert.equal(negative.code, 1);
  assert.match(negative.stderr, /Expected a number >= 0 for --temperature but received -1/);
});
