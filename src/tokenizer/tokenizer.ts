/**
 * Tokenizers for Hugging Face model folders, backed by `@huggingface/tokenizers`.
 *
 * A folder needs `tokenizer.json`, or `vocab.json` + `merges.txt` (GPT-2 style byte-level BPE,
 * which is converted to a `tokenizer.json` in memory). `tokenizer_config.json` supplies the
 * special tokens, `add_bos_token` / `add_eos_token` and `chat_template`; `special_tokens_map.json`
 * and `chat_template.jinja` are read when present.
 */

import { promises as fs } from "node:fs";
import path from "node:path";

import { Tokenizer as HfTokenizerCore } from "@huggingface/tokenizers";

import { CdpoError } from "../errors.js";
import { writeFileAtomic } from "../run/folder.js";
import { ByteTokenizer, isByteTokenizerJson } from "./byte.js";
import {
  type ApplyChatTemplateOptions,
  type ChatMessage,
  ChatTemplateRenderer,
  parseChatTemplates,
} from "./chat.js";

export interface EncodeOptions {
  /**
   * Adds BOS and EOS as the tokenizer is configured to (`addBosToken`, `addEosToken`).
   * Default true, as in `transformers`.
   */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Drops special tokens (BOS, EOS, padding, other added special tokens). Default false. */
  skipSpecialTokens?: boolean;
}

/** A text tokenizer as the trainers and the evaluation use it. Ids are plain numbers. */
export interface Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly padId: number | null;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  readonly padToken: string | null;
  /** Whether `encode` with special tokens puts BOS first. */
  readonly addBosToken: boolean;
  /** Whether `encode` with special tokens puts EOS last. */
  readonly addEosToken: boolean;
  /** The default chat template's Jinja source, or null when the tokenizer has none. */
  readonly chatTemplate: string | null;
  encode(text: string, options?: EncodeOptions): number[];
  decode(ids: ArrayLike<number>, options?: DecodeOptions): string;
  tokenToId(token: string): number | null;
  idToToken(id: number): string | null;
  applyChatTemplate(messages: ChatMessage[], options?: ApplyChatTemplateOptions): string;
  /** Writes `tokenizer.json` and `tokenizer_config.json` into `dir` (created if missing). */
  save(dir: string): Promise<void>;
}

type JsonObject = Record<string, unknown>;

/** Returns the text of a special-token entry of `tokenizer_config.json` (string or AddedToken). */
function tokenContent(value: unknown): string | null {
  if (typeof value === "string") return value;
  if (value !== null && typeof value === "object") {
    const content = (value as { content?: unknown }).content;
    if (typeof content === "string") return content;
  }
  return null;
}

/** {@link Tokenizer} over a `tokenizer.json` object and its `tokenizer_config.json` object. */
export class HfTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly padId: number | null;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  readonly padToken: string | null;
  readonly addBosToken: boolean;
  readonly addEosToken: boolean;

  readonly #core: HfTokenizerCore;
  readonly #json: JsonObject;
  readonly #config: JsonObject;
  readonly #chat: ChatTemplateRenderer;

  /**
   * @param json the parsed `tokenizer.json`
   * @param config the parsed `tokenizer_config.json`, merged with `special_tokens_map.json`
   * @param source where the files came from, for error messages
   */
  constructor(json: JsonObject, config: JsonObject, source = "tokenizer") {
    try {
      this.#core = new HfTokenizerCore(json, config);
    } catch (error) {
      throw new CdpoError(
        "FILE",
        `${source}: @huggingface/tokenizers could not build a tokenizer from tokenizer.json ` +
          `(${(error as Error).message}).`,
        { cause: error },
      );
    }
    this.#json = json;
    this.#config = config;

    let maxId = -1;
    for (const id of this.#core.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;

    this.bosToken = tokenContent(config.bos_token);
    this.eosToken = tokenContent(config.eos_token);
    this.padToken = tokenContent(config.pad_token);
    this.bosId = this.bosToken === null ? null : this.tokenToId(this.bosToken);
    this.eosId = this.eosToken === null ? null : this.tokenToId(this.eosToken);
    this.padId = this.padToken === null ? null : this.tokenToId(this.padToken);

    // `add_bos_token` / `add_eos_token` decide when the config sets them (as LlamaTokenizerFast
    // does). Otherwise the tokenizer.json post-processor decides, so probe what it adds.
    const probe = this.#core.encode("a", { add_special_tokens: true }).ids;
    const plain = this.#core.encode("a", { add_special_tokens: false }).ids;
    const probeAddsBos = this.bosId !== null && probe[0] === this.bosId && plain[0] !== this.bosId;
    const probeAddsEos =
      this.eosId !== null && probe.at(-1) === this.eosId && plain.at(-1) !== this.eosId;
    this.addBosToken =
      this.bosId !== null &&
      (typeof config.add_bos_token === "boolean" ? config.add_bos_token : probeAddsBos);
    this.addEosToken =
      this.eosId !== null &&
      (typeof config.add_eos_token === "boolean" ? config.add_eos_token : probeAddsEos);

    this.#chat = new ChatTemplateRenderer(
      parseChatTemplates(config.chat_template, `${source} tokenizer_config.json`),
      {
        bos_token: this.bosToken,
        eos_token: this.eosToken,
        pad_token: this.padToken,
        unk_token: tokenContent(config.unk_token),
      },
    );
  }

  get chatTemplate(): string | null {
    return this.#chat.source();
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const ids = this.#core.encode(text, { add_special_tokens: false }).ids;
    if (options.addSpecialTokens ?? true) {
      if (this.addBosToken && this.bosId !== null) ids.unshift(this.bosId);
      if (this.addEosToken && this.eosId !== null) ids.push(this.eosId);
    }
    return ids;
  }

  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const list = Array.from(ids);
    // @huggingface/tokenizers 0.2 raises on an empty list.
    if (list.length === 0) return "";
    return this.#core.decode(list, { skip_special_tokens: options.skipSpecialTokens ?? false });
  }

  tokenToId(token: string): number | null {
    return this.#core.token_to_id(token) ?? null;
  }

  idToToken(id: number): string | null {
    return this.#core.id_to_token(id) ?? null;
  }

  applyChatTemplate(messages: ChatMessage[], options: ApplyChatTemplateOptions = {}): string {
    return this.#chat.render(messages, options);
  }

  async save(dir: string): Promise<void> {
    await fs.mkdir(dir, { recursive: true });
    await writeFileAtomic(path.join(dir, "tokenizer.json"), `${JSON.stringify(this.#json)}\n`);
    await writeFileAtomic(
      path.join(dir, "tokenizer_config.json"),
      `${JSON.stringify(this.#config, null, 2)}\n`,
    );
  }
}

async function readJsonIfExists(file: string): Promise<JsonObject | null> {
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new CdpoError("FILE", `Cannot read ${file}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new CdpoError("FILE", `${file} is not valid JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new CdpoError("FILE", `${file} is invalid. Expected a JSON object.`);
  }
  return value as JsonObject;
}

async function readTextIfExists(file: string): Promise<string | null> {
  try {
    return await fs.readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
}

/**
 * Builds a `tokenizer.json` object for a GPT-2 style byte-level BPE from `vocab.json` and
 * `merges.txt`, as the `transformers` GPT-2 converter does: ByteLevel pre-tokenizer, decoder and
 * post-processor around a BPE model. Added tokens come from `added_tokens_decoder` in the config.
 */
function gpt2TokenizerJson(vocab: JsonObject, mergesText: string, config: JsonObject): JsonObject {
  const merges = mergesText
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.length > 0 && !line.startsWith("#version"));
  const addedTokens: JsonObject[] = [];
  const decoder = config.added_tokens_decoder;
  if (decoder !== null && typeof decoder === "object") {
    for (const [id, entry] of Object.entries(decoder as Record<string, JsonObject>)) {
      addedTokens.push({
        id: Number(id),
        content: entry.content,
        single_word: entry.single_word ?? false,
        lstrip: entry.lstrip ?? false,
        rstrip: entry.rstrip ?? false,
        normalized: entry.normalized ?? true,
        special: entry.special ?? true,
      });
    }
  }
  const addPrefixSpace = config.add_prefix_space === true;
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: {
      type: "ByteLevel",
      add_prefix_space: addPrefixSpace,
      trim_offsets: true,
      use_regex: true,
    },
    post_processor: {
      type: "ByteLevel",
      add_prefix_space: true,
      trim_offsets: false,
      use_regex: true,
    },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: tokenContent(config.unk_token),
      continuing_subword_prefix: "",
      end_of_word_suffix: "",
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
}

/**
 * Loads the tokenizer of a Hugging Face model folder.
 *
 * Reads `tokenizer.json`, or builds one from `vocab.json` + `merges.txt` when it is missing.
 * Special tokens come from `tokenizer_config.json`, completed by `special_tokens_map.json`.
 * A `chat_template.jinja` file is used when the config has no `chat_template`.
 */
export async function loadTokenizer(modelDir: string): Promise<Tokenizer> {
  const stat = await fs.stat(modelDir).catch(() => null);
  if (stat === null) {
    throw new CdpoError("FILE", `Tokenizer folder ${modelDir} not found`);
  }
  if (!stat.isDirectory()) {
    throw new CdpoError(
      "FILE",
      `${modelDir} is not a folder: expected a Hugging Face model folder with tokenizer.json ` +
        "(single-file formats such as GGUF are not supported)",
    );
  }
  const config = (await readJsonIfExists(path.join(modelDir, "tokenizer_config.json"))) ?? {};
  const specialMap = await readJsonIfExists(path.join(modelDir, "special_tokens_map.json"));
  if (specialMap !== null) {
    for (const key of ["bos_token", "eos_token", "pad_token", "unk_token"]) {
      if (config[key] === undefined || config[key] === null) {
        if (specialMap[key] !== undefined) config[key] = specialMap[key];
      }
    }
  }
  if (config.chat_template === undefined) {
    const jinja = await readTextIfExists(path.join(modelDir, "chat_template.jinja"));
    if (jinja !== null) config.chat_template = jinja;
  }

  let json = await readJsonIfExists(path.join(modelDir, "tokenizer.json"));
  if (json === null) {
    const vocab = await readJsonIfExists(path.join(modelDir, "vocab.json"));
    const merges = await readTextIfExists(path.join(modelDir, "merges.txt"));
    if (vocab === null || merges === null) {
      const missing = ["tokenizer.json"];
      if (vocab === null) missing.push("vocab.json");
      if (merges === null) missing.push("merges.txt");
      throw new CdpoError(
        "FILE",
        `No tokenizer found in ${modelDir}: ${missing.join(", ")} not found. The folder needs ` +
          "tokenizer.json, or vocab.json and merges.txt for a GPT-2 style BPE tokenizer.",
      );
    }
    json = gpt2TokenizerJson(vocab, merges, config);
  }
  // The byte tokenizer has an exact and much faster implementation of its own.
  if (isByteTokenizerJson(json)) return new ByteTokenizer(config);
  return new HfTokenizer(json, config, modelDir);
}
