/**
 * `cdpo eval`: the evaluation table for any models over a prompt file.
 */
import * as path from "node:path";
import type { Command } from "commander";
import { readPrompts } from "../../data/index.js";
import { CdpoError, invalidArgument } from "../../errors.js";
import { evaluateModels } from "../../eval/evaluate.js";
import { formatEvalTable } from "../../eval/table.js";
import { writeJsonAtomic } from "../../run/folder.js";
import { EvalTableSchema } from "../../run/records.js";
import * as torch from "../../tensor/index.js";
import { defaultThreads, resolvePrecision } from "../../train/config.js";

interface EvalCliOptions {
  models: string[];
  names?: string[];
  prompts: string;
  reward: string;
  cost: string[];
  samples: string;
  maxNewTokens: string;
  temperature: string;
  maxPrompts?: string;
  limit?: string;
  seed: string;
  out?: string;
  precision: string;
  threads?: string;
}

function integer(flag: string, text: string, min: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min)
    throw invalidArgument("range", flag, `an integer >= ${min}`, text);
  return value;
}

function number(flag: string, text: string): number {
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value))
    throw invalidArgument("type", flag, "a number", text);
  return value;
}

export function register(program: Command): void {
  program
    .command("eval")
    .description(
      "Sample K responses per prompt from each model, score them with a reward and a cost model, " +
        "and print the table (mean reward, mean cost, share with cost > 0, with standard errors over " +
        "prompts). Prompts of the built-in dataset also get the oracle's columns (helpful answers, " +
        "refusals of harmful prompts, harmful completions); other prompts show n/a there.",
    )
    .requiredOption("--models <dir...>", "model folders to evaluate")
    .option("--names <name...>", "display names, one per model (default: the folder names)")
    .requiredOption("--prompts <file>", "prompt file (JSON, JSONL, CSV, ... with a prompt column)")
    .requiredOption("--reward <dir>", "reward model folder")
    .requiredOption("--cost <dir...>", "cost model folder(s); the first gives the cost columns")
    .option("--samples <k>", "responses sampled per prompt", "4")
    .option("--max-new-tokens <n>", "maximum response length in tokens", "64")
    .option("--temperature <t>", "sampling temperature (0 is greedy)", "1")
    .option("--max-prompts <n>", "evaluate only the first N prompts")
    .option("--limit <number>", "cost limit to record in the table")
    .option("--seed <n>", "seed of the sampling", "0")
    .option("--out <file>", "write the table as JSON (the eval.json format) to this file")
    .option("--precision <p>", "auto, fp32 or bf16", "auto")
    .option("--threads <n>", "libtorch threads (default: all cores)")
    .action(async (options: EvalCliOptions) => {
      const names = options.names ?? options.models.map((dir) => path.basename(path.resolve(dir)));
      if (names.length !== options.models.length) {
        throw new CdpoError(
          "CONFIG",
          `--names has ${names.length} names but --models has ${options.models.length} folders; give one name per model`,
        );
      }
      if (!["auto", "fp32", "bf16"].includes(options.precision)) {
        throw invalidArgument("range", "--precision", "auto, fp32 or bf16", options.precision);
      }
      torch.setNumThreads(
        options.threads === undefined ? defaultThreads() : integer("--threads", options.threads, 1),
      );
      let prompts = (await readPrompts(options.prompts)).prompts;
      if (options.maxPrompts !== undefined)
        prompts = prompts.slice(0, integer("--max-prompts", options.maxPrompts, 2));

      const { table } = await evaluateModels(
        options.models.map((dir, i) => ({ name: names[i] as string, dir })),
        {
          prompts,
          promptsFile: options.prompts,
          rewardDir: options.reward,
          costDirs: options.cost,
          samplesPerPrompt: integer("--samples", options.samples, 1),
          maxNewTokens: integer("--max-new-tokens", options.maxNewTokens, 1),
          temperature: number("--temperature", options.temperature),
          seed: integer("--seed", options.seed, 0),
          precision: resolvePrecision(options.precision as "auto" | "fp32" | "bf16"),
          ...(options.limit === undefined ? {} : { limit: number("--limit", options.limit) }),
          progressBars: process.stdout.isTTY === true,
        },
      );
      process.stdout.write(`\n${formatEvalTable(table)}\n`);
      if (options.out !== undefined) {
        await writeJsonAtomic(options.out, EvalTableSchema.parse(table));
        process.stdout.write(`cdpo eval: table written to ${options.out}\n`);
      }
    });
}
