import assert from "node:assert/strict";
import { test } from "node:test";

import {
  DEFAULT_PROMPT_TEMPLATE,
  formatPrompt,
  type PreferencePair,
  type TokenizedPair,
  tokenizePair,
  tokenizePairs,
  tokenizeSequences,
} from "../../src/data/index.js";
import {
  BYTE_BOS_ID,
  BYTE_EOS_ID,
  byteTokenizerFiles,
  createByteTokenizer,
  HfTokenizer,
  loadTokenizer,
} from "../../src/tokenizer/index.js";
import { requireShared } from "../helpers/shared.js";

const bytes = (text: string) => [...new TextEncoder().encode(text)];

function pair(prompt: PreferencePair["prompt"], a: string, b: string, id = "p:0"): PreferencePair {
  return { id, prompt, responses: [a, b], better: 0, meta: {} };
}

function tokenized(result: TokenizedPair | string): TokenizedPair {
  assert.notEqual(typeof result, "string", `pair was skipped: ${String(result)}`);
  return result as TokenizedPair;
}

test("default prompt template and multi-turn rendering", () => {
  assert.equal(DEFAULT_PROMPT_TEMPLATE, "\n\nHuman: {prompt}\n\nAssistant: ");
  assert.equal(formatPrompt("Hi", null), "\n\nHuman: Hi\n\nAssistant: ");
  assert.equal(
    formatPrompt(
      [
        { role: "system", content: "Be brief." },
        { role: "user", content: "U1" },
        { role: "assistant", content: "A1" },
        { role: "user", content: "U2" },
      ],
      null,
    ),
    "Be brief.\n\nHuman: U1\n\nAssistant: A1\n\nHuman: U2\n\nAssistant: ",
  );
  assert.equal(formatPrompt("Hi", null, { promptTemplate: "Q: {prompt}\nA:" }), "Q: Hi\nA:");
  assert.throws(
    () => formatPrompt("Hi", null, { promptTemplate: "no slot" }),
    (error: unknown) =>
      error instanceof RangeError &&
      error.message ===
        'Expected a template containing "{prompt}" once for promptTemplate but received "no slot" (string)',
  );
});

test("byte tokenizer pair: BOS once, EOS once, masks on responses", () => {
  const tokenizer = createByteTokenizer();
  const example = tokenized(tokenizePair(pair("Hi", "Yes</s>", "No"), tokenizer));
  const promptText = "\n\nHuman: Hi\n\nAssistant: ";
  assert.deepEqual([...example.promptIds], [BYTE_BOS_ID, ...bytes(promptText)]);
  // "Yes</s>" already ends with EOS, so no second one is added.
  assert.deepEqual([...example.responseIds[0]], [...bytes("Yes"), BYTE_EOS_ID]);
  assert.deepEqual([...example.responseIds[1]], [...bytes("No"), BYTE_EOS_ID]);
  assert.equal(example.truncated, false);
  assert.equal(example.id, "p:0");

  // A prompt that already starts with BOS text gets no second BOS.
  const withBos = tokenized(
    tokenizePair(pair("x", "a", "b"), tokenizer, { promptTemplate: "<s>{prompt}:" }),
  );
  assert.deepEqual([...withBos.promptIds], [BYTE_BOS_ID, ...bytes("x:")]);
});

test("tokenizer without EOS adds no id", () => {
  const { json, config } = byteTokenizerFiles();
  const tokenizer = new HfTokenizer(json, { ...config, eos_token: null });
  assert.equal(tokenizer.eosId, null);
  const example = tokenized(tokenizePair(pair("Hi", "ab", "c"), tokenizer));
  assert.deepEqual([...example.responseIds[0]], bytes("ab"));
  assert.deepEqual([...example.responseIds[1]], bytes("c"));
  assert.ok([...example.promptIds, ...example.responseIds[0]].every(Number.isInteger));
  const noEos = tokenized(
    tokenizePair(pair("Hi", "ab", "c"), createByteTokenizer(), { addEos: false }),
  );
  assert.deepEqual([...noEos.responseIds[0]], bytes("ab"));
});

test("GPT-2 prompt ending in a space stays a prefix", async (t) => {
  const dir = requireShared(t, "models", "fake-gpt2");
  if (!dir) return;
  const tokenizer = await loadTokenizer(dir);
  const example = tokenized(tokenizePair(pair("Say hello", "Hello there", "Go away"), tokenizer));
  const promptText = formatPrompt("Say hello", tokenizer);
  assert.ok(promptText.endsWith(" "));
  // GPT-2 has no BOS to add.
  assert.deepEqual([...example.promptIds], tokenizer.encode(promptText));
  const joined = [...example.promptIds, ...example.responseIds[0]];
  assert.deepEqual(joined.slice(0, example.promptIds.length), [...example.promptIds]);
  assert.equal(joined.at(-1), 50256);
  assert.equal(tokenizer.decode(joined.slice(0, -1)), `${promptText}Hello there`);
  // Tokenizing the joined text would merge the trailing space into "ĠHello" and shift the
  // boundary; separate tokenization keeps it.
  const whole = tokenizer.encode(`${promptText}Hello there`);
  assert.notDeepEqual(whole.slice(0, example.promptIds.length), [...example.promptIds]);
});

test("stories260K pair starts with one BOS", async (t) => {
  const dir = requireShared(t, "models", "stories260K");
  if (!dir) return;
  const tokenizer = await loadTokenizer(dir);
  const example = tokenized(
    tokenizePair(pair("Tell a story", "Once upon a time", "No"), tokenizer),
  );
  const sequence = [...example.promptIds, ...example.responseIds[0]];
  assert.equal(sequence[0], 1);
  assert.equal(sequence.filter((id) => id === 1).length, 1);
  assert.equal(sequence.at(-1), 2);
  assert.equal(sequence.filter((id) => id === 2).length, 1);
});

test("chat template is used when the tokenizer has one", () => {
  const template =
    "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}" +
    "{% if add_generation_prompt %}[assistant]{% endif %}";
  const tokenizer = createByteTokenizer({ chatTemplate: template });
  const example = tokenized(tokenizePair(pair("Hi", "a", "b"), tokenizer));
  // The template writes "<s>" itself, which encodes to BOS; no second BOS is added.
  assert.deepEqual([...example.promptIds], [BYTE_BOS_ID, ...bytes("[user]Hi[assistant]")]);
  const plain = tokenized(
    tokenizePair(pair("Hi", "a", "b"), tokenizer, { useChatTemplate: false }),
  );
  assert.deepEqual([...plain.promptIds], [BYTE_BOS_ID, ...bytes("\n\nHuman: Hi\n\nAssistant: ")]);
});

test("maxLength cuts both responses to the longer one's budget", () => {
  const tokenizer = createByteTokenizer();
  const template = "{prompt}>";
  // Prompt: BOS + "abc>" = 5 tokens. Responses: 3 + EOS = 4 and 12 + EOS = 13 tokens.
  const example = tokenized(
    tokenizePair(pair("abc", "xyz", "0123456789AB"), tokenizer, {
      promptTemplate: template,
      maxLength: 12,
    }),
  );
  assert.equal(example.truncated, true);
  assert.equal(example.promptIds.length, 5);
  assert.deepEqual([...example.responseIds[0]], [...bytes("xyz"), BYTE_EOS_ID]);
  assert.deepEqual([...example.responseIds[1]], bytes("0123456"));
  const exact = tokenized(
    tokenizePair(pair("abc", "xyz", "0123456789AB"), tokenizer, {
      promptTemplate: template,
      maxLength: 18,
    }),
  );
  assert.equal(exact.truncated, false);
  assert.equal(exact.responseIds[1].length, 13);
});

test("maxPromptLength keeps BOS and the end of the prompt", () => {
  const tokenizer = createByteTokenizer();
  const example = tokenized(
    tokenizePair(pair("0123456789", "a", "b"), tokenizer, {
      promptTemplate: "{prompt}",
      maxPromptLength: 4,
    }),
  );
  assert.deepEqual([...example.promptIds], [BYTE_BOS_ID, ...bytes("789")]);
  assert.equal(example.truncated, true);
  assert.throws(
    () => tokenizePair(pair("p", "a", "b"), tokenizer, { maxLength: 8, maxPromptLength: 8 }),
    /Expected maxPromptLength below maxLength but received maxPromptLength 8 and maxLength 8/,
  );
  assert.throws(
    () => tokenizePair(pair("p", "a", "b"), tokenizer, { maxLength: 0 }),
    /Expected a positive integer for maxLength but received 0 \(number\)/,
  );
});

test("pairs with no room left are skipped and counted", () => {
  const tokenizer = createByteTokenizer();
  const pairs = [
    pair("short", "a", "b", "keep"),
    pair("a prompt that is far too long", "a", "b", "long"),
    pair("short", "0123456789", "b", "cut"),
  ];
  const result = tokenizePairs(pairs, tokenizer, { promptTemplate: "{prompt}", maxLength: 10 });
  assert.deepEqual(
    result.examples.map((e) => e.id),
    ["keep", "cut"],
  );
  assert.deepEqual(result.skipped, [{ id: "long", reason: "no-room-for-response" }]);
  assert.equal(result.truncated, 1);
  const empty = tokenizePairs([pair("p", "", "b", "empty")], tokenizer, { addEos: false });
  assert.deepEqual(empty.skipped, [{ id: "empty", reason: "empty-response" }]);
});

test("tokenizeSequences for SFT", () => {
  const tokenizer = createByteTokenizer();
  const result = tokenizeSequences(
    [
      { id: "s0", prompt: "Hi", response: "Hello" },
      { id: "s1", prompt: "x".repeat(50), response: "y" },
    ],
    tokenizer,
    { promptTemplate: "{prompt}:", maxLength: 20 },
  );
  assert.equal(result.examples.length, 1);
  const [first] = result.examples;
  assert.deepEqual([...(first?.promptIds ?? [])], [BYTE_BOS_ID, ...bytes("Hi:")]);
  assert.deepEqual([...(first?.responseIds ?? [])], [...bytes("Hello"), BYTE_EOS_ID]);
  assert.deepEqual(result.skipped, [{ id: "s1", reason: "no-room-for-response" }]);
});
