import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";

import { Tokenizer as HfCoreTokenizer } from "@huggingface/tokenizers";

import {
  BYTE_BOS_ID,
  BYTE_EOS_ID,
  BYTE_PAD_ID,
  BYTE_VOCAB_SIZE,
  ByteTokenizer,
  byteTokenizerFiles,
  createByteTokenizer,
  HfTokenizer,
  loadTokenizer,
} from "../../src/tokenizer/index.js";

const TEXT = "naïve café — 日本語 🙂\n\ttab, \u0000 and \u007f";

test("byte tokenizer ids are the UTF-8 bytes", () => {
  const tokenizer = createByteTokenizer();
  const bytes = [...new TextEncoder().encode(TEXT)];
  assert.deepEqual(tokenizer.encode(TEXT, { addSpecialTokens: false }), bytes);
  assert.deepEqual(tokenizer.encode(TEXT), [BYTE_BOS_ID, ...bytes]);
  assert.equal(tokenizer.decode(tokenizer.encode(TEXT), { skipSpecialTokens: true }), TEXT);
  assert.equal(tokenizer.decode([BYTE_BOS_ID, 104, 105, BYTE_EOS_ID]), "<s>hi</s>");
});

test("byte tokenizer special tokens", () => {
  const tokenizer = createByteTokenizer();
  assert.equal(BYTE_PAD_ID, 256);
  assert.equal(BYTE_BOS_ID, 257);
  assert.equal(BYTE_EOS_ID, 258);
  assert.equal(tokenizer.vocabSize, BYTE_VOCAB_SIZE);
  assert.equal(tokenizer.vocabSize, 259);
  assert.equal(tokenizer.padId, 256);
  assert.equal(tokenizer.bosId, 257);
  assert.equal(tokenizer.eosId, 258);
  assert.equal(tokenizer.addBosToken, true);
  assert.equal(tokenizer.addEosToken, false);
  assert.equal(tokenizer.chatTemplate, null);
  // Special-token text in the input becomes the special id, as in Hugging Face tokenizers.
  assert.deepEqual(tokenizer.encode("a</s>", { addSpecialTokens: false }), [97, BYTE_EOS_ID]);
});

test("byte tokenizer saved files load back with identical ids", async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "cdpo-byte-"));
  const tokenizer = createByteTokenizer({ chatTemplate: "{{ messages[0].content }}" });
  await tokenizer.save(dir);

  const reloaded = await loadTokenizer(dir);
  assert.ok(reloaded instanceof ByteTokenizer);
  assert.deepEqual(reloaded.encode(TEXT), tokenizer.encode(TEXT));
  assert.equal(reloaded.decode(reloaded.encode(TEXT), { skipSpecialTokens: true }), TEXT);
  assert.equal(reloaded.padId, BYTE_PAD_ID);
  assert.equal(reloaded.chatTemplate, "{{ messages[0].content }}");

  // The saved tokenizer.json alone, read by @huggingface/tokenizers, adds BOS through its
  // post-processor and decodes the bytes back.
  const json = JSON.parse(await fs.readFile(path.join(dir, "tokenizer.json"), "utf8"));
  const core = new HfCoreTokenizer(json, {});
  assert.deepEqual(core.encode(TEXT).ids, tokenizer.encode(TEXT));
  assert.equal(core.decode(core.encode(TEXT).ids, { skip_special_tokens: true }), TEXT);
});

test("byte tokenizer matches @huggingface/tokenizers on its own files", () => {
  const fast = createByteTokenizer();
  const { json, config } = byteTokenizerFiles();
  const reference = new HfTokenizer(json, config);
  const texts = [
    TEXT,
    "",
    " ",
    "<s>",
    "a<s>b</s>c<pad>",
    "<</s>>",
    "</s<s>>",
    "Hello world's  end\r\n",
    "\u00ad\u0100\uffff",
  ];
  for (const text of texts) {
    for (const addSpecialTokens of [true, false]) {
      const ids = fast.encode(text, { addSpecialTokens });
      assert.deepEqual(ids, reference.encode(text, { addSpecialTokens }), JSON.stringify(text));
      for (const skipSpecialTokens of [true, false]) {
        assert.equal(
          fast.decode(ids, { skipSpecialTokens }),
          reference.decode(ids, { skipSpecialTokens }),
          JSON.stringify(text),
        );
      }
    }
  }
  // Invalid UTF-8 (a lone continuation byte, a truncated sequence) decodes the same way.
  for (const ids of [
    [0x80],
    [0xe6, 0x97],
    [104, 0xe6, BYTE_EOS_ID, 0x97, 105],
    [BYTE_PAD_ID, 0xff],
  ]) {
    for (const skipSpecialTokens of [true, false]) {
      assert.equal(
        fast.decode(ids, { skipSpecialTokens }),
        reference.decode(ids, { skipSpecialTokens }),
        JSON.stringify(ids),
      );
    }
  }
  for (let id = 0; id < BYTE_VOCAB_SIZE; id++) {
    const token = fast.idToToken(id);
    assert.equal(token, reference.idToToken(id));
    assert.equal(fast.tokenToId(token as string), id);
  }
  assert.throws(
    () => fast.decode([259]),
    /Expected token ids below 259 but received 259 at index 0/,
  );
});
