/**
 * The training commands: `cdpo sft`, `cdpo train-reward`, `cdpo train-cost`, `cdpo dpo`, and
 * `cdpo score`. Each training command reads `--config FILE` (JSON or YAML); flags override it.
 * Field meanings, defaults and ranges are documented in src/train/config.ts and docs/training.md.
 */
import { type Command, InvalidArgumentError, Option } from "commander";
import { formatIssueSummary } from "../../data/issues.js";
import { LAYOUTS } from "../../data/types.js";
import { resolveConfig, resolvePrecision, type Stage } from "../../train/config.js";
import { scoreFile } from "../../train/score.js";
import { runStage } from "../../train/stages.js";
import { configSource, readConfigOption } from "../config-file.js";
import { applyThreads, type PrecisionChoice, precisionOption, threadsOption } from "../options.js";

function integer(name: string, min: number) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < min) {
      throw new InvalidArgumentError(
        `Expected an integer >= ${min} for ${name} but received "${value}".`,
      );
    }
    return parsed;
  };
}

function number(name: string) {
  return (value: string): number => {
    const parsed = Number(value);
    if (value.trim() === "" || !Number.isFinite(parsed)) {
      throw new InvalidArgumentError(`Expected a number for ${name} but received "${value}".`);
    }
    return parsed;
  };
}

/** Flags every training stage takes (names match the config fields, camelCased by commander). */
function addCommonOptions(command: Command): Command {
  return command
    .option("--config <file>", "JSON or YAML file of config fields; flags override it")
    .option("--model <dir>", "Hugging Face model folder to start from")
    .addOption(
      new Option("--init <size>", "create a model from scratch with the byte tokenizer").choices([
        "tiny",
        "small",
      ]),
    )
    .option("--data <file>", 'preference file (any supported layout), or "builtin"')
    .option("--eval-data <file>", "held-out preference file (default: a split of --data)")
    .addOption(
      new Option("--data-format <layout>", "layout of --data (default: detected)").choices([
        ...LAYOUTS,
      ]),
    )
    .option("--skip-invalid", "skip invalid records and print a summary instead of stopping")
    .option(
      "--eval-fraction <x>",
      "share of --data held out when --eval-data is absent (default: 0.1)",
      number("--eval-fraction"),
    )
    .option("--max-pairs <n>", "train on the first N pairs only", integer("--max-pairs", 0))
    .option(
      "--max-eval-pairs <n>",
      "evaluate on the first N held-out pairs only",
      integer("--max-eval-pairs", 0),
    )
    .addOption(new Option("--out <dir>", "run folder to create").conflicts("resume"))
    .option("--resume <dir>", "continue an interrupted run from its last checkpoint")
    .option("--steps <n>", "optimizer steps (overrides --epochs)", integer("--steps", 1))
    .option("--epochs <x>", "passes over the training data (default: 1)", number("--epochs"))
    .option(
      "--batch-size <n>",
      "sequences or pairs per micro-batch (default: 8)",
      integer("--batch-size", 1),
    )
    .option(
      "--grad-accum <n>",
      "micro-batches per optimizer step (default: 1)",
      integer("--grad-accum", 1),
    )
    .option("--lr <x>", "peak learning rate (default: 2e-5; 1e-6 for dpo)", number("--lr"))
    .option(
      "--warmup <x>",
      "warmup: a fraction of the steps below 1, else a step count (default: 0)",
      number("--warmup"),
    )
    .addOption(
      new Option("--schedule <kind>", "decay after warmup (default: cosine)").choices([
        "cosine",
        "linear",
        "constant",
      ]),
    )
    .option(
      "--weight-decay <x>",
      "AdamW weight decay, not applied to biases and norms (default: 0.01)",
      number("--weight-decay"),
    )
    .option(
      "--max-grad-norm <x>",
      "global gradient-norm clip, 0 to disable (default: 1)",
      number("--max-grad-norm"),
    )
    .option(
      "--max-length <n>",
      "maximum tokens of prompt + response (default: 512)",
      integer("--max-length", 1),
    )
    .option("--max-prompt-length <n>", "maximum prompt tokens", integer("--max-prompt-length", 1))
    .option(
      "--log-every <n>",
      "optimizer steps per metrics record (default: 10)",
      integer("--log-every", 1),
    )
    .option(
      "--eval-every <n>",
      "optimizer steps between evaluations, 0: at the end only (default: 0)",
      integer("--eval-every", 0),
    )
    .option(
      "--save-every <n>",
      "optimizer steps between checkpoints, 0: none (default: 0)",
      integer("--save-every", 0),
    )
    .option(
      "--keep-checkpoints <n>",
      "checkpoints kept (default: 2)",
      integer("--keep-checkpoints", 1),
    )
    .option(
      "--seed <n>",
      "seed of data order, initialisation and dropout (default: 42)",
      integer("--seed", 0),
    )
    .addOption(precisionOption("auto"))
    .addOption(threadsOption())
    .option("--progress", "draw a progress bar (default: when stdout is a terminal)")
    .option("--no-progress", "print one line per logging step instead of a progress bar");
}

interface StageFlags {
  config?: string;
  [key: string]: unknown;
}

type ScoreFlags = Omit<Parameters<typeof scoreFile>[0], "precision"> & {
  precision?: PrecisionChoice;
  threads?: number;
};

async function runFromFlags(stage: Stage, flags: StageFlags): Promise<void> {
  const { config: configFile, ...overrides } = flags;
  const file = configFile === undefined ? {} : readConfigOption(configFile);
  if (overrides.resume === undefined) {
    // Validating here lets the errors name the config file. runStage resolves the same config again.
    resolveConfig(stage, file, overrides, configSource(configFile));
  }
  const result = await runStage(stage, file, overrides);
  const shown = Object.entries(result.eval)
    .map(([name, value]) => `${name}=${value.toFixed(4)}`)
    .join(" ");
  process.stdout.write(
    `cdpo ${stage}: done after ${result.steps} ${result.steps === 1 ? "step" : "steps"}${shown ? `; ${shown}` : ""}\n`,
  );
}

export function register(program: Command): void {
  addCommonOptions(
    program
      .command("sft")
      .description(
        "Supervised fine-tuning on prompt/response pairs; loss on response tokens only.",
      ),
  )
    .addOption(
      new Option(
        "--responses <which>",
        "train on the preferred response or on both (default: chosen)",
      ).choices(["chosen", "both"]),
    )
    .addOption(
      new Option(
        "--label <name>",
        "label that picks the preferred response (default: better)",
      ).choices(["better", "safer"]),
    )
    .action((flags: StageFlags) => runFromFlags("sft", flags));

  addCommonOptions(
    program
      .command("train-reward")
      .description("Train a Bradley-Terry reward model on preference pairs."),
  )
    .addOption(
      new Option("--label <name>", "label that orders each pair (default: better)").choices([
        "better",
        "safer",
      ]),
    )
    .option(
      "--regularization <x>",
      "coefficient of the score regulariser coef·mean(s²) (default: 0)",
      number("--regularization"),
    )
    .action((flags: StageFlags) => runFromFlags("reward", flags));

  addCommonOptions(
    program
      .command("train-cost")
      .description(
        "Train a Safe-RLHF cost model (cost > 0 means unsafe); needs safer and per-response safe labels.",
      ),
  )
    .option(
      "--regularization <x>",
      "coefficient of the cost regulariser coef·mean(c²) (default: 0.001)",
      number("--regularization"),
    )
    .action((flags: StageFlags) => runFromFlags("cost", flags));

  addCommonOptions(
    program
      .command("dpo")
      .description("Direct Preference Optimization against a fixed reference model."),
  )
    .option("--ref <dir>", "reference model folder (default: the starting model)")
    .option("--beta <x>", "KL coefficient β (default: 0.1)", number("--beta"))
    .addOption(
      new Option("--loss-type <name>", "DPO loss (default: sigmoid)").choices([
        "sigmoid",
        "ipo",
        "hinge",
        "robust",
      ]),
    )
    .option(
      "--label-smoothing <x>",
      "label smoothing ε in [0, 0.5) (default: 0)",
      number("--label-smoothing"),
    )
    .addOption(
      new Option(
        "--label <name>",
        "label that picks the chosen response (default: better)",
      ).choices(["better", "safer"]),
    )
    .action((flags: StageFlags) => runFromFlags("dpo", flags));

  program
    .command("score")
    .description(
      "Score both responses of every pair with a reward and/or cost model and write the scored " +
        "layout (reward_0, reward_1, cost_0, cost_1) that cdpo's data readers accept.",
    )
    .option("--reward <dir>", "reward model folder")
    .option("--cost <dir>", "cost model folder")
    .requiredOption("--data <file>", "preference file to score")
    .addOption(
      new Option("--data-format <layout>", "layout of --data (default: detected)").choices([
        ...LAYOUTS,
      ]),
    )
    .option("--skip-invalid", "skip invalid records and print a summary instead of stopping")
    .requiredOption("--out <file>", "JSON Lines file to write (.gz compresses)")
    .option(
      "--batch-size <n>",
      "sequences per forward pass (default: 16)",
      integer("--batch-size", 1),
    )
    .option(
      "--max-length <n>",
      "maximum tokens of prompt + response (default: 512)",
      integer("--max-length", 1),
    )
    .addOption(precisionOption("fp32"))
    .addOption(threadsOption())
    .action(async (flags: ScoreFlags) => {
      const { threads, precision, ...options } = flags;
      applyThreads(threads);
      const result = await scoreFile({
        ...options,
        precision: resolvePrecision(precision ?? "fp32"),
      });
      const skipped = formatIssueSummary(result.skipped);
      process.stdout.write(
        `cdpo score: ${result.pairs} pairs written to ${result.out}` +
          `${skipped === "" ? "" : ` (${skipped})`}\n`,
      );
    });
}
