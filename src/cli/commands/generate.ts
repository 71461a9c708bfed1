/**
 * `cdpo generate`: samples a continuation from a Hugging Face model folder and prints it.
 *
 * With no prompt, generation starts from the BOS token alone. A row stops at an EOS token, at a
 * BOS token (the start of a new document), or after `--max-new-tokens`. A prompt plus
 * `--max-new-tokens` past the context length is an error for GPT-2 and a warning otherwise.
 */
import { type Command, Option } from "commander";
import { invalidArgument } from "../../errors.js";
import {
  contextOverflow,
  describeContextOverflow,
  generate,
  loadCausalLM,
  startTokens,
} from "../../models/index.js";
import { loadTokenizer } from "../../tokenizer/index.js";
import { applyThreads, integerAtLeast, threadsOption } from "../options.js";

export interface GenerateCommandOptions {
  model: string;
  prompt?: string;
  greedy?: boolean;
  temperature: number;
  topP: number;
  topK: number;
  maxNewTokens: number;
  seed: number;
  repetitionPenalty: number;
  /** libtorch threads, or all cores when undefined. */
  threads?: number;
  /** Receives the context-length warning (default: one line on stderr). */
  warn?: (message: string) => void;
}

/**
 * Loads the model and tokenizer, generates, and returns the continuation and its token ids.
 *
 * @throws RangeError before any compute when a GPT-2 prompt plus `--max-new-tokens` exceeds
 *   `n_positions`; other models only warn through `options.warn`.
 */
export async function runGenerate(
  options: GenerateCommandOptions,
): Promise<{ text: string; tokens: number[] }> {
  applyThreads(options.threads);
  const [model, tokenizer] = await Promise.all([
    loadCausalLM(options.model),
    loadTokenizer(options.model),
  ]);
  try {
    model.eval();
    const prompt =
      options.prompt === undefined || options.prompt === ""
        ? startTokens(tokenizer, model)
        : tokenizer.encode(options.prompt);
    const overflow = contextOverflow(model.config, prompt.length, options.maxNewTokens);
    if (overflow !== null) {
      const message = describeContextOverflow(overflow, "--max-new-tokens");
      if (overflow.fatal) throw new RangeError(message);
      const warn = options.warn ?? ((text: string) => process.stderr.write(`${text}\n`));
      warn(`cdpo: warning: ${message}`);
    }
    const stopTokenIds = new Set(model.config.eosTokenIds);
    for (const id of [tokenizer.eosId, tokenizer.bosId, model.config.bosTokenId]) {
      if (id !== null) stopTokenIds.add(id);
    }
    const result = generate(model, [prompt], {
      maxNewTokens: options.maxNewTokens,
      greedy: options.greedy === true,
      temperature: options.temperature,
      topP: options.topP,
      topK: options.topK,
      repetitionPenalty: options.repetitionPenalty,
      seed: options.seed,
      stopTokenIds: [...stopTokenIds],
      tokenizer,
    });
    return { text: result.texts![0]!, tokens: result.tokens[0]! };
  } finally {
    model.dispose();
  }
}

function parseNumber(name: string, check: (v: number) => boolean, expectation: string) {
  return (value: string): number => {
    const parsed = Number(value);
    if (value.trim() === "" || !check(parsed))
      throw invalidArgument("range", name, expectation, Number.isNaN(parsed) ? value : parsed);
    return parsed;
  };
}

export function register(program: Command): void {
  program
    .command("generate")
    .description("Generate a continuation from a Hugging Face model folder and print it.")
    .requiredOption("--model <dir>", "model folder (config.json, model.safetensors, tokenizer)")
    .option("--prompt <text>", "text to continue (default: start from the BOS token alone)")
    .addOption(
      new Option("--greedy", "pick the most likely token at each step").conflicts([
        "temperature",
        "topP",
        "topK",
      ]),
    )
    .option(
      "--temperature <t>",
      "sampling temperature (0 is greedy)",
      parseNumber("--temperature", (v) => v >= 0 && Number.isFinite(v), "a number >= 0"),
      1,
    )
    .option(
      "--top-p <p>",
      "nucleus sampling: keep the most likely tokens up to probability p, in (0, 1]",
      parseNumber("--top-p", (v) => v > 0 && v <= 1, "a number in (0, 1]"),
      1,
    )
    .option(
      "--top-k <k>",
      "keep only the k most likely tokens (0: all)",
      integerAtLeast("--top-k", 0),
      0,
    )
    .option(
      "--max-new-tokens <n>",
      "tokens to generate at most",
      integerAtLeast("--max-new-tokens", 1),
      128,
    )
    .option("--seed <s>", "seed of the sampling generator", integerAtLeast("--seed", 0), 0)
    .option(
      "--repetition-penalty <r>",
      "penalty on tokens already present, > 0 (1: none)",
      parseNumber("--repetition-penalty", (v) => v > 0 && Number.isFinite(v), "a number > 0"),
      1,
    )
    .addOption(threadsOption())
    .action(async (opts: GenerateCommandOptions) => {
      const { text } = await runGenerate(opts);
      console.log(text);
    });
}
