import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";

import { CdpoError } from "../../src/errors.js";
import { loadTokenizer } from "../../src/tokenizer/index.js";
import { requireShared } from "../helpers/shared.js";

async function tempDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), "cdpo-tokenizer-"));
}

test("stories260K decodes the greedy ids to the expected text", async (t) => {
  const dir = requireShared(t, "models", "stories260K");
  const idsFile = requireShared(t, "expected", "stories260K-greedy-from-bos.ids");
  const textFile = requireShared(t, "expected", "stories260K-greedy-from-bos.txt");
  if (!dir || !idsFile || !textFile) return;
  const tokenizer = await loadTokenizer(dir);
  const ids = (await fs.readFile(idsFile, "utf8")).trim().split(",").map(Number);
  // The text file ends with one newline that is not part of the generated text.
  const text = (await fs.readFile(textFile, "utf8")).replace(/\n$/, "");

  assert.equal(tokenizer.vocabSize, 512);
  assert.equal(tokenizer.bosId, 1);
  assert.equal(tokenizer.eosId, 2);
  assert.equal(tokenizer.padId, null);
  assert.equal(tokenizer.addBosToken, true);
  assert.equal(tokenizer.addEosToken, false);
  assert.equal(tokenizer.chatTemplate, null);
  assert.equal(ids[0], 1);
  assert.equal(tokenizer.decode(ids, { skipSpecialTokens: true }), text);
  assert.deepEqual(tokenizer.encode(text), ids);
  assert.deepEqual(tokenizer.encode(text, { addSpecialTokens: false }), ids.slice(1));
});

test("stories260K falls back to bytes for unknown characters", async (t) => {
  const dir = requireShared(t, "models", "stories260K");
  if (!dir) return;
  const tokenizer = await loadTokenizer(dir);
  const text = "Lily said: naïve 🙂";
  const ids = tokenizer.encode(text, { addSpecialTokens: false });
  assert.ok(ids.some((id) => (tokenizer.idToToken(id) ?? "").startsWith("<0x")));
  assert.equal(tokenizer.decode(ids), text);
});

test("GPT-2 tokenizer round-trips non-ASCII text", async (t) => {
  const dir = requireShared(t, "models", "fake-gpt2");
  if (!dir) return;
  const tokenizer = await loadTokenizer(dir);
  const text = "naïve café — 日本語 🙂";
  const ids = tokenizer.encode(text);

  assert.equal(tokenizer.vocabSize, 50257);
  assert.equal(tokenizer.bosId, 50256);
  assert.equal(tokenizer.eosId, 50256);
  assert.equal(tokenizer.padId, null);
  assert.equal(tokenizer.addBosToken, false);
  assert.deepEqual(ids.slice(0, 3), [2616, 38776, 40304]);
  assert.equal(tokenizer.decode(ids), text);
  assert.deepEqual(tokenizer.encode("Hello world"), [15496, 995]);
  assert.equal(tokenizer.decode([]), "");
  assert.equal(tokenizer.decode([15496, 50256], { skipSpecialTokens: true }), "Hello");
  assert.equal(tokenizer.decode([15496, 50256]), "Hello<|endoftext|>");
});

test("vocab.json + merges.txt give the same ids as tokenizer.json", async (t) => {
  const source = requireShared(t, "models", "fake-gpt2");
  if (!source) return;
  const dir = await tempDir();
  for (const name of ["vocab.json", "merges.txt", "tokenizer_config.json"]) {
    await fs.symlink(path.join(source, name), path.join(dir, name));
  }
  const fromJson = await loadTokenizer(source);
  const fromVocab = await loadTokenizer(dir);
  const text = "The quick brown fox's naïve café — 日本語 🙂 <|endoftext|> ok\n\n  spaces";
  assert.deepEqual(fromVocab.encode(text), fromJson.encode(text));
  assert.equal(fromVocab.decode(fromVocab.encode(text)), text);
  assert.equal(fromVocab.eosId, 50256);
  assert.equal(fromVocab.vocabSize, 50257);
});

test("tiny-gpt2 toy files load without tokenizer.json", async (t) => {
  const dir = requireShared(t, "models", "tiny-gpt2");
  if (!dir) return;
  const tokenizer = await loadTokenizer(dir);
  assert.equal(tokenizer.vocabSize, 21);
  assert.equal(tokenizer.eosId, 20);
  assert.equal(tokenizer.bosId, 20);
  assert.equal(tokenizer.addBosToken, false);
  // Merges "Ġ l", "Ġl o", "Ġlo w", "e r": " lower" is "Ġlow" + "er".
  assert.deepEqual(tokenizer.encode(" lower"), [14, 15]);
  assert.equal(tokenizer.decode([14, 15]), " lower");
  assert.equal(tokenizer.idToToken(20), "<|endoftext|>");
  assert.equal(tokenizer.tokenToId("<unk>"), 19);
});

test("loadTokenizer names the missing files", async () => {
  const dir = await tempDir();
  await assert.rejects(loadTokenizer(dir), (error: unknown) => {
    assert.ok(error instanceof CdpoError);
    assert.equal(error.code, "FILE");
    assert.match(error.message, /tokenizer\.json, vocab\.json, merges\.txt not found/);
    assert.ok(error.message.includes(dir));
    return true;
  });
  await fs.writeFile(path.join(dir, "vocab.json"), "{}");
  await assert.rejects(loadTokenizer(dir), /tokenizer\.json, merges\.txt not found/);
});

test("loadTokenizer rejects invalid JSON files", async () => {
  const dir = await tempDir();
  await fs.writeFile(path.join(dir, "tokenizer.json"), "{not json");
  await assert.rejects(loadTokenizer(dir), (error: unknown) => {
    assert.ok(error instanceof CdpoError);
    assert.equal(error.code, "FILE");
    assert.match(error.message, /tokenizer\.json is not valid JSON/);
    return true;
  });
});

test("chat templates render from a string and a named list", async (t) => {
  const source = requireShared(t, "models", "stories260K");
  if (!source) return;
  const template =
    "{{ bos_token }}{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{{ eos_token }}" +
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";
  const messages = [
    { role: "system", content: "Be brief." },
    { role: "user", content: "Hi" },
  ];
  const config = JSON.parse(await fs.readFile(path.join(source, "tokenizer_config.json"), "utf8"));

  const single = await tempDir();
  await fs.copyFile(path.join(source, "tokenizer.json"), path.join(single, "tokenizer.json"));
  await fs.writeFile(
    path.join(single, "tokenizer_config.json"),
    JSON.stringify({ ...config, chat_template: template }),
  );
  const tokenizer = await loadTokenizer(single);
  assert.equal(tokenizer.chatTemplate, template);
  assert.equal(
    tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true }),
    "<s><|system|>Be brief.</s><|user|>Hi</s><|assistant|>",
  );
  assert.equal(tokenizer.applyChatTemplate(messages), "<s><|system|>Be brief.</s><|user|>Hi</s>");

  const named = await tempDir();
  await fs.copyFile(path.join(source, "tokenizer.json"), path.join(named, "tokenizer.json"));
  const list = [
    { name: "tool_use", template: "TOOLS" },
    { name: "default", template: "{{ messages[0].content }}!" },
  ];
  await fs.writeFile(
    path.join(named, "tokenizer_config.json"),
    JSON.stringify({ ...config, chat_template: list }),
  );
  const namedTokenizer = await loadTokenizer(named);
  assert.equal(namedTokenizer.chatTemplate, "{{ messages[0].content }}!");
  assert.equal(namedTokenizer.applyChatTemplate(messages), "Be brief.!");
  assert.equal(namedTokenizer.applyChatTemplate(messages, { templateName: "tool_use" }), "TOOLS");
  assert.throws(
    () => namedTokenizer.applyChatTemplate(messages, { templateName: "rag" }),
    /no chat template named "rag". Available: tool_use, default/,
  );
});

test("applyChatTemplate without a template raises", async (t) => {
  const dir = requireShared(t, "models", "stories260K");
  if (!dir) return;
  const tokenizer = await loadTokenizer(dir);
  assert.throws(
    () => tokenizer.applyChatTemplate([{ role: "user", content: "Hi" }]),
    (error: unknown) => error instanceof CdpoError && error.code === "STATE",
  );
});

test("save writes files that load back identically", async (t) => {
  const source = requireShared(t, "models", "stories260K");
  if (!source) return;
  const tokenizer = await loadTokenizer(source);
  const dir = path.join(await tempDir(), "nested", "copy");
  await tokenizer.save(dir);
  const names = (await fs.readdir(dir)).sort();
  assert.deepEqual(names, ["tokenizer.json", "tokenizer_config.json"]);
  const copy = await loadTokenizer(dir);
  const text = "Once upon a time, Lily saw a big red ball.";
  assert.deepEqual(copy.encode(text), tokenizer.encode(text));
  assert.equal(copy.bosId, tokenizer.bosId);
  assert.equal(copy.addBosToken, true);
});
