/**
 * A byte-level tokenizer for models trained from scratch.
 *
 * Ids 0-255 are the UTF-8 bytes themselves, then three special tokens:
 *
 * | id  | token   | role                                   |
 * |-----|---------|----------------------------------------|
 * | 256 | `<pad>` | padding                                |
 * | 257 | `<s>`   | BOS, added by `encode` with specials   |
 * | 258 | `</s>`  | EOS                                    |
 *
 * It is saved as an ordinary `tokenizer.json`: a BPE model with an empty merge list whose
 * vocabulary is the 256 GPT-2 byte-level symbols, a ByteLevel pre-tokenizer and decoder, and a
 * TemplateProcessing post-processor that puts `<s>` first. `@huggingface/tokenizers` loads it
 * and gives the same ids as {@link ByteTokenizer} (tested); the Rust `tokenizers` library 0.23.2
 * gave the same ids too when checked by hand.
 *
 * {@link ByteTokenizer} encodes with `TextEncoder` instead of running the BPE machinery: on the
 * 2.0 million bytes of the HH-RLHF harmless test transcripts it took 43-53 ms against 1.8-2.6 s
 * for `@huggingface/tokenizers` (2-core AMD EPYC, Node 20).
 */

import { promises as fs } from "node:fs";
import path from "node:path";

import { writeFileAtomic } from "../run/folder.js";
import {
  type ApplyChatTemplateOptions,
  type ChatMessage,
  ChatTemplateRenderer,
  parseChatTemplates,
} from "./chat.js";
import type { DecodeOptions, EncodeOptions, Tokenizer } from "./tokenizer.js";

export const BYTE_PAD_ID = 256;
export const BYTE_BOS_ID = 257;
export const BYTE_EOS_ID = 258;
export const BYTE_VOCAB_SIZE = 259;

/**
 * Builds the GPT-2 byte-to-symbol table: printable Latin-1 bytes map to themselves, the other 68 bytes
 * to code points from U+0100 upwards, so every byte has a visible, non-whitespace symbol.
 */
function byteSymbols(): string[] {
  const printable: number[] = [];
  const addRange = (from: number, to: number) => {
    for (let b = from; b <= to; b++) printable.push(b);
  };
  addRange(0x21, 0x7e);
  addRange(0xa1, 0xac);
  addRange(0xae, 0xff);
  const symbols = new Array<string>(256);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    symbols[b] = String.fromCodePoint(printable.includes(b) ? b : next++);
  }
  return symbols;
}

const BYTE_SYMBOLS = byteSymbols();

export interface ByteTokenizerOptions {
  /** A Jinja chat template to store in `tokenizer_config.json` (default: none). */
  chatTemplate?: string;
}

/** Returns the `tokenizer.json` and `tokenizer_config.json` objects of the byte tokenizer. */
export function byteTokenizerFiles(options: ByteTokenizerOptions = {}): {
  json: Record<string, unknown>;
  config: Record<string, unknown>;
} {
  const vocab: Record<string, number> = {};
  for (const [id, symbol] of BYTE_SYMBOLS.entries()) vocab[symbol] = id;
  const special = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  const json = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [
      special(BYTE_PAD_ID, "<pad>"),
      special(BYTE_BOS_ID, "<s>"),
      special(BYTE_EOS_ID, "</s>"),
    ],
    normalizer: null,
    pre_tokenizer: {
      type: "ByteLevel",
      add_prefix_space: false,
      trim_offsets: false,
      use_regex: false,
    },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [
        { SpecialToken: { id: "<s>", type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { Sequence: { id: "B", type_id: 0 } },
      ],
      special_tokens: { "<s>": { id: "<s>", ids: [BYTE_BOS_ID], tokens: ["<s>"] } },
    },
    decoder: { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
  const config: Record<string, unknown> = {
    tokenizer_class: "PreTrainedTokenizerFast",
    bos_token: "<s>",
    eos_token: "</s>",
    pad_token: "<pad>",
    add_bos_token: true,
    add_eos_token: false,
    clean_up_tokenization_spaces: false,
    model_max_length: 1_000_000,
  };
  if (options.chatTemplate !== undefined) config.chat_template = options.chatTemplate;
  return { json, config };
}

const SPECIAL_TOKENS: readonly [string, number][] = [
  ["<pad>", BYTE_PAD_ID],
  ["<s>", BYTE_BOS_ID],
  ["</s>", BYTE_EOS_ID],
];
const SPECIAL_PATTERN = /<pad>|<s>|<\/s>/g;

/** The byte-level {@link Tokenizer}; see the top of this file for its ids. */
export class ByteTokenizer implements Tokenizer {
  readonly vocabSize = BYTE_VOCAB_SIZE;
  readonly bosId = BYTE_BOS_ID;
  readonly eosId = BYTE_EOS_ID;
  readonly padId = BYTE_PAD_ID;
  readonly bosToken = "<s>";
  readonly eosToken = "</s>";
  readonly padToken = "<pad>";
  readonly addBosToken = true;
  readonly addEosToken = false;

  readonly #config: Record<string, unknown>;
  readonly #chat: ChatTemplateRenderer;
  readonly #encoder = new TextEncoder();
  readonly #decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

  /** @param config the `tokenizer_config.json` object (only `chat_template` is read from it) */
  constructor(config: Record<string, unknown> = byteTokenizerFiles().config) {
    this.#config = config;
    this.#chat = new ChatTemplateRenderer(
      parseChatTemplates(config.chat_template, "byte tokenizer config"),
      { bos_token: "<s>", eos_token: "</s>", pad_token: "<pad>", unk_token: null },
    );
  }

  get chatTemplate(): string | null {
    return this.#chat.source();
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const ids: number[] = [];
    if (options.addSpecialTokens ?? true) ids.push(BYTE_BOS_ID);
    let start = 0;
    for (const match of text.matchAll(SPECIAL_PATTERN)) {
      for (const byte of this.#encoder.encode(text.slice(start, match.index))) ids.push(byte);
      ids.push(SPECIAL_TOKENS.find(([token]) => token === match[0])?.[1] as number);
      start = match.index + match[0].length;
    }
    for (const byte of this.#encoder.encode(text.slice(start))) ids.push(byte);
    return ids;
  }

  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    // Like the ByteLevel decoder: runs of bytes are decoded together (invalid UTF-8 becomes
    // U+FFFD), special tokens are written as their text unless skipped.
    let text = "";
    let run: number[] = [];
    const flush = () => {
      if (run.length > 0) text += this.#decoder.decode(Uint8Array.from(run));
      run = [];
    };
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i] as number;
      if (Number.isInteger(id) && id >= 0 && id < 256) {
        run.push(id);
        continue;
      }
      const token = this.idToToken(id);
      if (token === null) {
        throw new RangeError(
          `Expected token ids below ${BYTE_VOCAB_SIZE} but received ${id} at index ${i}`,
        );
      }
      if (options.skipSpecialTokens === true) continue;
      flush();
      text += token;
    }
    flush();
    return text;
  }

  tokenToId(token: string): number | null {
    const special = SPECIAL_TOKENS.find(([name]) => name === token);
    if (special !== undefined) return special[1];
    const id = BYTE_SYMBOLS.indexOf(token);
    return id === -1 ? null : id;
  }

  idToToken(id: number): string | null {
    if (Number.isInteger(id) && id >= 0 && id < 256) return BYTE_SYMBOLS[id] as string;
    return SPECIAL_TOKENS.find(([, special]) => special === id)?.[0] ?? null;
  }

  applyChatTemplate(messages: ChatMessage[], options: ApplyChatTemplateOptions = {}): string {
    return this.#chat.render(messages, options);
  }

  async save(dir: string): Promise<void> {
    await fs.mkdir(dir, { recursive: true });
    const { json } = byteTokenizerFiles();
    await writeFileAtomic(path.join(dir, "tokenizer.json"), `${JSON.stringify(json)}\n`);
    await writeFileAtomic(
      path.join(dir, "tokenizer_config.json"),
      `${JSON.stringify(this.#config, null, 2)}\n`,
    );
  }
}

/** Returns whether a parsed `tokenizer.json` is the byte tokenizer's (as `save` writes it). */
export function isByteTokenizerJson(json: unknown): boolean {
  return JSON.stringify(json) === JSON.stringify(byteTokenizerFiles().json);
}

/** Creates the byte-level tokenizer described at the top of this file. */
export function createByteTokenizer(options: ByteTokenizerOptions = {}): Tokenizer {
  return new ByteTokenizer(byteTokenizerFiles(options).config);
}
