/**
 * `cdpo eval`: the evaluation table for any models over a prompt file.
 */
import * as path from "node:path";
import type { Command } from "commander";
import { readPrompts } from "../../data/index.js";
import { CdpoError } from "../../errors.js";
import { evaluateModels } from "../../eval/evaluate.js";
import { formatEvalTable } from "../../eval/table.js";
import { writeJsonAtomic } from "../../run/folder.js";
import { modelLabel } from "../../run/names.js";
import { EvalTableSchema } from "../../run/records.js";
import { resolvePrecision } from "../../train/config.js";
import {
  applyThreads,
  finiteNumber,
  integerAtLeast,
  type PrecisionChoice,
  precisionOption,
  threadsOption,
} from "../options.js";

interface EvalCliOptions {
  models: string[];
  names?: string[];
  prompts: string;
  reward: string;
  cost: string[];
  samples: number;
  maxNewTokens: number;
  temperature: number;
  maxPrompts?: number;
  limit?: number;
  seed: number;
  out?: string;
  precision?: PrecisionChoice;
  threads?: number;
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
    .option("--samples <k>", "responses sampled per prompt", integerAtLeast("--samples", 1), 4)
    .option(
      "--max-new-tokens <n>",
      "maximum response length in tokens",
      integerAtLeast("--max-new-tokens", 1),
      64,
    )
    .option(
      "--temperature <t>",
      "sampling temperature (0 is greedy)",
      finiteNumber("--temperature"),
      1,
    )
    .option(
      "--max-prompts <n>",
      "evaluate only the first N prompts, at least 2",
      integerAtLeast("--max-prompts", 2),
    )
    .option("--limit <number>", "cost limit to record in the table", finiteNumber("--limit"))
    .option("--seed <n>", "seed of the sampling", integerAtLeast("--seed", 0), 0)
    .option("--out <file>", "write the table as JSON (the eval.json format) to this file")
    .addOption(precisionOption("auto"))
    .addOption(threadsOption())
    .action(async (options: EvalCliOptions) => {
      const names = options.names ?? options.models.map((dir) => modelLabel(path.resolve(dir)));
      if (names.length !== options.models.length) {
        throw new CdpoError(
          "CONFIG",
          `--names has ${names.length} names but --models has ${options.models.length} folders; give one name per model`,
        );
      }
      applyThreads(options.threads);
      let prompts = (await readPrompts(options.prompts)).prompts;
      if (options.maxPrompts !== undefined) prompts = prompts.slice(0, options.maxPrompts);

      const { table } = await evaluateModels(
        options.models.map((dir, i) => ({ name: names[i] as string, dir })),
        {
          prompts,
          promptsFile: options.prompts,
          rewardDir: options.reward,
          costDirs: options.cost,
          samplesPerPrompt: options.samples,
          maxNewTokens: options.maxNewTokens,
          temperature: options.temperature,
          seed: options.seed,
          precision: resolvePrecision(options.precision ?? "auto"),
          ...(options.limit === undefined ? {} : { limit: options.limit }),
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
