/**
 * `cdpo data`: inspect preference files and write the built-in safety dataset.
 */

import type { Command } from "commander";

import { BUILTIN_DEFAULTS, writeBuiltin } from "../../data/builtin/generate.js";
import { formatInspectReport, inspectData } from "../../data/inspect.js";
import { LAYOUTS, type Layout } from "../../data/types.js";
import { invalidArgument } from "../../errors.js";
import { loadTokenizer } from "../../tokenizer/tokenizer.js";

interface InspectCliOptions {
  format?: string;
  tokenizer?: string;
  skipInvalid?: boolean;
  field?: string;
  samples: number;
}

interface BuiltinCliOptions {
  out: string;
  train: number;
  test: number;
  harmfulFraction: number;
  seed: number;
}

function integerOption(name: string, text: string, min?: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || (min !== undefined && value < min)) {
    const expectation = min === undefined ? "an integer" : `an integer of at least ${min}`;
    throw invalidArgument("range", name, expectation, text);
  }
  return value;
}

/** Returns a commander parser for {@link integerOption}. */
function integerParser(name: string, min?: number): (text: string) => number {
  return (text: string) => integerOption(name, text, min);
}

function fractionOption(text: string): number {
  const value = Number(text);
  if (text.trim() === "" || !(value >= 0 && value <= 1)) {
    throw invalidArgument("range", "--harmful-fraction", "a number from 0 to 1", text);
  }
  return value;
}

function layoutOption(text: string | undefined): Layout | undefined {
  if (text === undefined) return undefined;
  if ((LAYOUTS as readonly string[]).includes(text)) return text as Layout;
  throw invalidArgument("range", "--format", `one of ${LAYOUTS.join(", ")}`, text);
}

/** Prints through commander's output configuration, so callers can capture the text. */
function print(command: Command, text: string): void {
  const writeOut = command.configureOutput().writeOut;
  if (writeOut === undefined) process.stdout.write(text);
  else writeOut(text);
}

export function register(program: Command): void {
  const data = program
    .command("data")
    .description("Inspect preference data files and write the built-in safety dataset.");

  data
    .command("inspect")
    .description(
      "Read a preference file (JSONL, JSON, CSV, TSV or Parquet, optionally .gz) and print its " +
        "layout, counts, label balance, token-length percentiles and sample rows.",
    )
    .argument("<file>", "preference data file")
    .option("--format <layout>", `record layout: ${LAYOUTS.join(", ")} (default: detected)`)
    .option(
      "--tokenizer <dir>",
      "model folder whose tokenizer measures lengths (default: the byte tokenizer, UTF-8 bytes)",
    )
    .option("--skip-invalid", "skip invalid records and count them instead of stopping")
    .option("--field <name>", "for a JSON object file: the field holding the records")
    .option("--samples <n>", "number of sample rows to print", integerParser("--samples", 0), 3)
    .action(async (file: string, options: InspectCliOptions, command: Command) => {
      const format = layoutOption(options.format);
      const tokenizer =
        options.tokenizer === undefined ? undefined : await loadTokenizer(options.tokenizer);
      const report = await inspectData(file, {
        ...(format === undefined ? {} : { format }),
        ...(options.field === undefined ? {} : { field: options.field }),
        ...(tokenizer === undefined ? {} : { tokenizer, tokenizerName: options.tokenizer }),
        skipInvalid: options.skipInvalid === true,
        samples: options.samples,
      });
      print(command, formatInspectReport(report));
    });

  data
    .command("builtin")
    .description(
      "Write the built-in safety preference dataset (PKU-SafeRLHF layout): train.jsonl, " +
        "test.jsonl and the test prompts in prompts-test.json. The output depends only on the " +
        "options.",
    )
    .requiredOption("--out <dir>", "folder to write into (created if missing)")
    .option("--train <n>", "training pairs", integerParser("--train", 1), BUILTIN_DEFAULTS.train)
    .option("--test <n>", "test pairs", integerParser("--test", 1), BUILTIN_DEFAULTS.test)
    .option(
      "--harmful-fraction <f>",
      "share of pairs with a harmful prompt, 0 to 1",
      fractionOption,
      BUILTIN_DEFAULTS.harmfulFraction,
    )
    .option("--seed <s>", "random seed", integerParser("--seed"), BUILTIN_DEFAULTS.seed)
    .action(async (options: BuiltinCliOptions, command: Command) => {
      const { train, test, harmfulFraction, seed } = options;
      const files = await writeBuiltin(options.out, { train, test, harmfulFraction, seed });
      print(
        command,
        `Wrote ${train} training pairs to ${files.train}, ${test} test pairs to ${files.test} ` +
          `and the test prompts to ${files.prompts}\n`,
      );
    });
}
