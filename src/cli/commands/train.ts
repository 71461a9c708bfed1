/**
 * `cdpo train`: C-DPO from a config file, with flags that override it.
 */
import * as path from "node:path";
import { type Command, Option } from "commander";
import {
  CdpoConfigSchema,
  CdpoDpoSchema,
  CdpoEstimateSchema,
  CdpoLambdaSchema,
  parseCostSpec,
  resolveCdpoConfig,
} from "../../cdpo/config.js";
import { runCdpo } from "../../cdpo/train.js";
import { LAYOUTS } from "../../data/types.js";
import { CdpoError, invalidArgument } from "../../errors.js";
import { readConfig } from "../../run/folder.js";
import { configSource, readConfigOption } from "../config-file.js";
import { precisionOption, threadsOption } from "../options.js";

interface TrainCliOptions {
  config?: string;
  policy?: string;
  reference?: string;
  reward?: string;
  cost?: string[];
  limit?: string;
  data?: string;
  prompts?: string;
  out?: string;
  resume?: string;
  iterations?: string;
  dpoSteps?: string;
  dataFormat?: string;
  dpoLr?: string;
  beta?: string;
  lambdaInit?: string;
  lambdaLr?: string;
  lambdaMax?: string;
  lambdaOptimizer?: string;
  labelMode?: string;
  samplesPerPrompt?: string;
  evalPrompts?: string;
  maxNewTokens?: string;
  restartFromReference?: boolean;
  seed?: string;
  precision?: string;
  threads?: number;
  progress?: boolean;
}

// Schema defaults for the help text. Only the schema applies them, after the config file.
const DPO_DEFAULTS = CdpoDpoSchema.parse({});
const LAMBDA_DEFAULTS = CdpoLambdaSchema.parse({});
const ESTIMATE_DEFAULTS = CdpoEstimateSchema.parse({});
const { shape } = CdpoConfigSchema;
const TOP_DEFAULTS = {
  iterations: shape.iterations.parse(undefined),
  labelMode: shape.labelMode.parse(undefined),
  seed: shape.seed.parse(undefined),
};

function numberOption(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value))
    throw invalidArgument("type", flag, "a number", text);
  return value;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Turns `--cost` values and `--limit` into the `costs` list, or undefined when neither is given. */
function costsFromFlags(
  specs: readonly string[] | undefined,
  limit: number | undefined,
  fileCosts: unknown,
): unknown {
  if (specs === undefined || specs.length === 0) {
    if (limit === undefined) return undefined;
    // --limit alone sets the limit of every constraint of the config file.
    if (!Array.isArray(fileCosts)) {
      throw new CdpoError(
        "CONFIG",
        "--limit needs a cost model: pass --cost DIR or give costs in --config",
      );
    }
    return fileCosts.map((cost) => ({ ...(cost as object), limit }));
  }
  return specs.map((spec) => {
    const parsed = parseCostSpec(spec);
    const value = parsed.limit ?? limit;
    if (value === undefined) {
      throw new CdpoError(
        "CONFIG",
        `--cost ${spec} has no limit: write --cost ${spec}:LIMIT or pass --limit`,
      );
    }
    return { model: parsed.model, limit: value };
  });
}

export function register(program: Command): void {
  program
    .command("train")
    .description(
      "Run C-DPO: DPO on pairs relabelled by r − λ·c, with λ moved by dual gradient steps on the " +
        "cost of responses sampled from the policy. Writes a run folder with records, samples, " +
        "checkpoints, the final policy and an HTML report.",
    )
    .option("--config <file>", "JSON or YAML config (fields in docs/cdpo.md); flags override it")
    .option(
      "--policy <dir>",
      "starting policy, a Hugging Face model folder (usually the SFT model)",
    )
    .option("--reference <dir>", "reference model folder (default: the policy)")
    .option("--reward <dir>", "reward model folder")
    .option(
      "--cost <dir[:limit]>",
      "cost model folder, optionally with its limit; repeat for several",
      collect,
    )
    .option("--limit <number>", "cost limit C for every --cost without its own")
    .option("--data <file>", "preference pairs (any layout cdpo data reads)")
    .addOption(
      new Option("--data-format <layout>", "layout of --data (default: detected)").choices([
        ...LAYOUTS,
      ]),
    )
    .option("--prompts <file>", "prompts for the constraint estimate (default: the data's prompts)")
    .addOption(new Option("--out <dir>", "run folder to create").conflicts("resume"))
    .option("--resume <dir>", "continue the run in this folder from its last checkpoint")
    .option(
      "--iterations <n>",
      `maximum number of dual iterations (default: ${TOP_DEFAULTS.iterations})`,
    )
    .option(
      "--dpo-steps <n>",
      "DPO optimizer steps per dual iteration (default: enough for dpo.epochs passes over the pairs)",
    )
    .option("--dpo-lr <number>", `DPO learning rate (default: ${DPO_DEFAULTS.lr.toExponential()})`)
    .option("--beta <number>", `DPO's KL coefficient β (default: ${DPO_DEFAULTS.beta})`)
    .option(
      "--lambda-init <number>",
      `λ before the first iteration (default: ${LAMBDA_DEFAULTS.init})`,
    )
    .option("--lambda-lr <number>", `dual step size η (default: ${LAMBDA_DEFAULTS.lr})`)
    .option("--lambda-max <number>", `upper bound of λ (default: ${LAMBDA_DEFAULTS.max})`)
    .addOption(
      new Option(
        "--lambda-optimizer <name>",
        `dual update (default: ${LAMBDA_DEFAULTS.optimizer})`,
      ).choices(["sgd", "adam"]),
    )
    .addOption(
      new Option(
        "--label-mode <mode>",
        `relabelling of pairs (default: ${TOP_DEFAULTS.labelMode})`,
      ).choices(["soft", "sample", "hard"]),
    )
    .option(
      "--samples-per-prompt <k>",
      "responses sampled per prompt for the constraint estimate " +
        `(default: ${ESTIMATE_DEFAULTS.samplesPerPrompt})`,
    )
    .option(
      "--eval-prompts <n>",
      `prompts sampled for the constraint estimate (default: ${ESTIMATE_DEFAULTS.evalPrompts})`,
    )
    .option(
      "--max-new-tokens <n>",
      `maximum length of sampled responses in tokens (default: ${ESTIMATE_DEFAULTS.maxNewTokens})`,
    )
    .option(
      "--restart-from-reference",
      "start every DPO phase from the reference, not the last policy",
    )
    .option(
      "--seed <n>",
      `seed of data order, label draws and sampling (default: ${TOP_DEFAULTS.seed})`,
    )
    .addOption(precisionOption("auto"))
    .addOption(threadsOption())
    .option("--no-progress", "print log lines instead of progress bars")
    .action(async (options: TrainCliOptions, command: Command) => {
      // Config source: the resumed run's own config, else --config, else nothing.
      let file: Record<string, unknown> = {};
      let source = "flags";
      if (options.resume !== undefined) {
        const stored = await readConfig(options.resume);
        if (stored === undefined) {
          throw new CdpoError(
            "STATE",
            `${options.resume} has no config.json; is it a cdpo train run folder?`,
          );
        }
        file = { ...stored, out: options.resume };
        source = configSource(path.join(options.resume, "config.json"));
      } else if (options.config !== undefined) {
        file = readConfigOption(options.config);
        source = configSource(options.config);
      }

      const overrides: Record<string, unknown> = {
        policy: options.policy,
        reference: options.reference,
        reward: options.reward,
        costs: costsFromFlags(options.cost, numberOption("--limit", options.limit), file.costs),
        data: options.data,
        dataFormat: options.dataFormat,
        prompts: options.prompts,
        out: options.out,
        iterations: numberOption("--iterations", options.iterations),
        "dpo.steps": numberOption("--dpo-steps", options.dpoSteps),
        "dpo.lr": numberOption("--dpo-lr", options.dpoLr),
        "dpo.beta": numberOption("--beta", options.beta),
        "lambda.init": numberOption("--lambda-init", options.lambdaInit),
        "lambda.lr": numberOption("--lambda-lr", options.lambdaLr),
        "lambda.max": numberOption("--lambda-max", options.lambdaMax),
        "lambda.optimizer": options.lambdaOptimizer,
        labelMode: options.labelMode,
        "estimate.samplesPerPrompt": numberOption("--samples-per-prompt", options.samplesPerPrompt),
        "estimate.evalPrompts": numberOption("--eval-prompts", options.evalPrompts),
        "estimate.maxNewTokens": numberOption("--max-new-tokens", options.maxNewTokens),
        restartFromReference: options.restartFromReference === true ? true : undefined,
        seed: numberOption("--seed", options.seed),
        precision: options.precision,
        threads: options.threads,
        // commander sets progress to true unless --no-progress was given.
        progress: command.getOptionValueSource("progress") === "cli" ? options.progress : undefined,
      };
      const config = resolveCdpoConfig(file, overrides, source);
      if (config.out === undefined) {
        throw new CdpoError(
          "CONFIG",
          "The run folder is missing: pass --out RUN_DIR (or --resume RUN_DIR)",
        );
      }
      await runCdpo(config, { resume: options.resume !== undefined });
    });
}
