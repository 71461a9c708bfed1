/**
 * Configuration of the training stages: zod schemas with each field documented where declared,
 * loading from JSON or YAML, CLI overrides and error messages with "did you mean" suggestions.
 *
 * Precedence: schema defaults < config file (`--config FILE`) < command-line flags.
 */
import { readFileSync } from "node:fs";
import os from "node:os";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { LAYOUTS } from "../data/types.js";
import { CdpoError } from "../errors.js";
import type { DpoLossType } from "./losses.js";

/** Positive integer. */
const positiveInt = z.number().int().positive();
/** Non-negative integer. */
const count = z.number().int().nonnegative();

/** Fields every stage shares. */
const CommonShape = {
  // --- model --------------------------------------------------------------------------------

  /** string, optional: Hugging Face model folder to start from. Exactly one of model and init. */
  model: z.string().min(1).optional(),
  /**
   * "tiny" | "small", optional: create a model from scratch with the byte tokenizer instead of
   * loading one. Exactly one of model and init.
   */
  init: z.enum(["tiny", "small"]).optional(),

  // --- data ---------------------------------------------------------------------------------

  /** string, required: preference file (any layout the data readers accept), or "builtin". */
  data: z.string().min(1),
  /** string, optional: held-out preference file for evaluation; default: split from `data`. */
  evalData: z.string().min(1).optional(),
  /**
   * layout name, optional: the layout of `data` and `evalData` (pku-saferlhf, hh-rlhf, generic,
   * ranked, ranked-safety); detected from the columns when omitted.
   */
  dataFormat: z.enum(LAYOUTS).optional(),
  /**
   * boolean, default false: skip invalid or degenerate records (printing a summary by reason)
   * instead of stopping at the first one.
   */
  skipInvalid: z.boolean().default(false),
  /**
   * number in [0, 0.5], default 0.1: share of `data` held out for evaluation when `evalData` is
   * not given. The split is a pure function of the pair ids and `seed`.
   */
  evalFraction: z.number().min(0).max(0.5).default(0.1),
  /** integer >= 1, default 512: maximum tokens of prompt + response; longer responses are cut. */
  maxLength: positiveInt.default(512),
  /** integer >= 1, optional: maximum prompt tokens; longer prompts lose their beginning. */
  maxPromptLength: positiveInt.optional(),
  /** integer >= 0, optional: use only the first N pairs of `data` (0 or absent: all). */
  maxPairs: count.optional(),
  /** integer >= 0, optional: evaluate on the first N held-out pairs only (0 or absent: all). */
  maxEvalPairs: count.optional(),

  // --- run folder ---------------------------------------------------------------------------

  /** string, required unless resuming: run folder to create. */
  out: z.string().min(1).optional(),
  /** string, optional: run folder of an interrupted run to continue from its last checkpoint. */
  resume: z.string().min(1).optional(),

  // --- schedule -----------------------------------------------------------------------------

  /** integer >= 1, optional: optimizer steps to run; overrides `epochs`. */
  steps: positiveInt.optional(),
  /** number > 0, default 1: passes over the training data (fractions allowed). */
  epochs: z.number().positive().default(1),
  /** integer >= 1, default 8: sequences (SFT) or pairs per micro-batch. */
  batchSize: positiveInt.default(8),
  /** integer >= 1, default 1: micro-batches whose gradients are summed per optimizer step. */
  gradAccum: positiveInt.default(1),
  /** number > 0, optional: peak learning rate; the default depends on the stage. */
  lr: z.number().positive().optional(),
  /**
   * number >= 0, default 0: warmup length. Below 1 it is a fraction of the total steps,
   * otherwise a number of steps (an integer).
   */
  warmup: z
    .number()
    .nonnegative()
    .default(0)
    .refine(
      (v) => v < 1 || Number.isInteger(v),
      "a warmup of 1 or more must be a whole number of steps",
    ),
  /** "cosine" | "linear" | "constant", default "cosine": decay after warmup, to 0 at the end. */
  schedule: z.enum(["cosine", "linear", "constant"]).default("cosine"),
  /** number >= 0, default 0.01: AdamW weight decay; biases and norm weights never decay. */
  weightDecay: z.number().nonnegative().default(0.01),
  /** number in [0, 1), default 0.9: AdamW β1. */
  adamBeta1: z.number().min(0).lt(1).default(0.9),
  /** number in [0, 1), default 0.999: AdamW β2. */
  adamBeta2: z.number().min(0).lt(1).default(0.999),
  /** number > 0, default 1e-8: AdamW ε. */
  adamEps: z.number().positive().default(1e-8),
  /** number >= 0, default 1: global gradient-norm clip; 0 disables clipping. */
  maxGradNorm: z.number().nonnegative().default(1),

  // --- logging, evaluation, checkpoints -------------------------------------------------------

  /** integer >= 1, default 10: optimizer steps per metrics record (averaged over the interval). */
  logEvery: positiveInt.default(10),
  /** integer >= 0, default 0: optimizer steps between evaluations; 0 evaluates only at the end. */
  evalEvery: count.default(0),
  /** integer >= 0, default 0: optimizer steps between checkpoints; 0 saves none. */
  saveEvery: count.default(0),
  /** integer >= 1, default 2: checkpoints kept; older ones are deleted. */
  keepCheckpoints: positiveInt.default(2),

  // --- runtime ------------------------------------------------------------------------------

  /** integer >= 0, default 42: seed of the data order, initialisation and dropout. */
  seed: count.default(42),
  /**
   * "auto" | "fp32" | "bf16", default "auto": bf16 runs forward and loss under bfloat16 autocast
   * with float32 weights and optimizer state; auto picks bf16 when the CPU has native bf16
   * instructions (avx512_bf16 or amx_bf16) and fp32 otherwise.
   */
  precision: z.enum(["auto", "fp32", "bf16"]).default("auto"),
  /** integer >= 1, default: all cores (`os.availableParallelism()`): libtorch threads. */
  threads: positiveInt.optional(),
  /** boolean, default: true when stdout is a TTY: draw a progress bar instead of log lines. */
  progress: z.boolean().optional(),
};

/** `cdpo sft`: supervised fine-tuning on prompt/response data. */
export const SftConfigSchema = z.strictObject({
  ...CommonShape,
  /**
   * "chosen" | "both", default "chosen": train on the preferred response of each pair only, or
   * on both responses.
   */
  responses: z.enum(["chosen", "both"]).default("chosen"),
  /** "better" | "safer", default "better": label that picks the preferred response. */
  label: z.enum(["better", "safer"]).default("better"),
});

/** `cdpo train-reward`: Bradley-Terry reward model. */
export const RewardConfigSchema = z.strictObject({
  ...CommonShape,
  /** "better" | "safer", default "better": label that orders each pair. */
  label: z.enum(["better", "safer"]).default("better"),
  /** number >= 0, default 0: coefficient of the score regulariser coef·mean(s²). */
  regularization: z.number().nonnegative().default(0),
});

/** `cdpo train-cost`: Safe-RLHF cost model (needs `safer` and per-response `safe` labels). */
export const CostConfigSchema = z.strictObject({
  ...CommonShape,
  /** number >= 0, default 0.001: coefficient of the cost regulariser coef·mean(c²). */
  regularization: z.number().nonnegative().default(0.001),
});

/** `cdpo dpo`: DPO against a fixed reference model. */
export const DpoConfigSchema = z.strictObject({
  ...CommonShape,
  /** string, optional: reference model folder; default: the starting policy itself. */
  ref: z.string().min(1).optional(),
  /** number > 0, default 0.1: β, the KL coefficient. */
  beta: z.number().positive().default(0.1),
  /** "sigmoid" | "ipo" | "hinge" | "robust", default "sigmoid": loss (see src/train/losses.ts). */
  lossType: z
    .enum(["sigmoid", "ipo", "hinge", "robust"] satisfies DpoLossType[])
    .default("sigmoid"),
  /** number in [0, 0.5), default 0: label smoothing ε (label-flip rate for "robust"). */
  labelSmoothing: z.number().min(0).lt(0.5).default(0),
  /** "better" | "safer", default "better": label that picks the chosen response. */
  label: z.enum(["better", "safer"]).default("better"),
});

export type SftConfig = z.infer<typeof SftConfigSchema>;
export type RewardConfig = z.infer<typeof RewardConfigSchema>;
export type CostConfig = z.infer<typeof CostConfigSchema>;
export type DpoConfig = z.infer<typeof DpoConfigSchema>;
export type CommonConfig = SftConfig | RewardConfig | CostConfig | DpoConfig;

export type Stage = "sft" | "reward" | "cost" | "dpo";

export const STAGE_SCHEMAS = {
  sft: SftConfigSchema,
  reward: RewardConfigSchema,
  cost: CostConfigSchema,
  dpo: DpoConfigSchema,
} as const;

/** Default peak learning rates (TRL's DPO default for dpo; common fine-tuning values else). */
export const DEFAULT_LR: Record<Stage, number> = {
  sft: 2e-5,
  reward: 2e-5,
  cost: 2e-5,
  dpo: 1e-6,
};

// ---------------------------------------------------------------------------------------------
// Errors with suggestions

/** Levenshtein distance, for "did you mean" suggestions. */
function editDistance(a: string, b: string): number {
  const previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = previous[0]!;
    previous[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = previous[j]!;
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      previous[j] = Math.min(above + 1, previous[j - 1]! + 1, diagonal + cost);
      diagonal = above;
    }
  }
  return previous[b.length]!;
}

/** Finds the known key closest to `key` (ignoring case, `-` and `_`), if one is close enough. */
export function suggestKey(key: string, known: readonly string[]): string | undefined {
  const normalise = (s: string) => s.toLowerCase().replace(/[-_]/g, "");
  const target = normalise(key);
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of known) {
    const distance = editDistance(target, normalise(candidate));
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(target.length / 3)) ? best : undefined;
}

/** Formats zod issues as one message: each field, what was wrong, and suggestions for typos. */
function describeIssues(error: z.ZodError, known: readonly string[]): string {
  const parts: string[] = [];
  for (const issue of error.issues) {
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        const suggestion = suggestKey(key, known);
        parts.push(
          `unknown field "${key}"${suggestion === undefined ? "" : ` (did you mean "${suggestion}"?)`}`,
        );
      }
      continue;
    }
    const field = issue.path.length > 0 ? `field "${issue.path.join(".")}"` : "config";
    parts.push(`${field}: ${issue.message}`);
  }
  return parts.join("; ");
}

// ---------------------------------------------------------------------------------------------
// Loading

/** Reads a JSON or YAML config file (by extension; YAML is a superset of JSON otherwise). */
/**
 * Turns the character offset in a JSON.parse message ("... at position 53") into a line and
 * column with the line itself and a caret, as the YAML parser reports; "" without an offset.
 */
function jsonWhere(text: string, message: string): string {
  const match = /at position (\d+)/.exec(message);
  if (match === null) return "";
  const offset = Math.min(Number(match[1]), text.length);
  const start = text.lastIndexOf("\n", offset - 1) + 1;
  const end = text.indexOf("\n", offset);
  const line = text.slice(0, start).split("\n").length;
  const column = offset - start + 1;
  const source = text.slice(start, end === -1 ? undefined : end);
  return ` (line ${line}, column ${column}):\n${source}\n${" ".repeat(column - 1)}^`;
}

export function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new CdpoError("FILE", `Failed to read config file ${file}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  let value: unknown;
  try {
    value = file.toLowerCase().endsWith(".json") ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    const message = (error as Error).message;
    throw new CdpoError(
      "CONFIG",
      `${file}: invalid config syntax: ${message}${jsonWhere(text, message)}`,
      {
        cause: error,
      },
    );
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new CdpoError("CONFIG", `${file}: expected a mapping of config fields at the top level`);
  }
  return value as Record<string, unknown>;
}

/**
 * Validates and completes a stage config: `file` values, then `overrides` (flags, already
 * camelCased; undefined entries are ignored), then defaults.
 *
 * @throws CdpoError "CONFIG" naming each invalid field, with suggestions for unknown ones.
 */
export function resolveConfig<S extends Stage>(
  stage: S,
  file: Record<string, unknown>,
  overrides: Record<string, unknown> = {},
  source = "config",
): z.infer<(typeof STAGE_SCHEMAS)[S]> {
  const schema = STAGE_SCHEMAS[stage] as z.ZodObject;
  const merged: Record<string, unknown> = { ...file };
  for (const [key, value] of Object.entries(overrides)) {
    if (value !== undefined) merged[key] = value;
  }
  const result = schema.safeParse(merged);
  if (!result.success) {
    const known = Object.keys(schema.shape);
    throw new CdpoError(
      "CONFIG",
      `Invalid ${stage} ${source}: ${describeIssues(result.error, known)}`,
    );
  }
  const config = result.data as Record<string, unknown>;
  if (config.resume === undefined) {
    if ((config.model === undefined) === (config.init === undefined)) {
      throw new CdpoError(
        "CONFIG",
        `Invalid ${stage} ${source}: give exactly one of "model" (a Hugging Face folder) and ` +
          `"init" (tiny or small) but received ${config.model === undefined ? "neither" : "both"}`,
      );
    }
    if (config.out === undefined) {
      throw new CdpoError(
        "CONFIG",
        `Invalid ${stage} ${source}: "out" (the run folder) is missing`,
      );
    }
  }
  return config as z.infer<(typeof STAGE_SCHEMAS)[S]>;
}

/** Documented field names of a stage, for help text and suggestions. */
export function configKeys(stage: Stage): string[] {
  return Object.keys((STAGE_SCHEMAS[stage] as z.ZodObject).shape);
}

// ---------------------------------------------------------------------------------------------
// Runtime choices

/** Tells whether the CPU has native bfloat16 instructions (Linux: /proc/cpuinfo flags). */
export function cpuHasBf16(): boolean {
  try {
    const info = readFileSync("/proc/cpuinfo", "utf8");
    return /\b(avx512_bf16|amx_bf16)\b/.test(info);
  } catch {
    // Not Linux, or no /proc: assume no native bf16 and train in fp32.
    return false;
  }
}

/** Resolves "auto" precision to the one this machine runs. */
export function resolvePrecision(precision: "auto" | "fp32" | "bf16"): "fp32" | "bf16" {
  if (precision !== "auto") return precision;
  return cpuHasBf16() ? "bf16" : "fp32";
}

/** Returns the default thread count: `os.availableParallelism()`. */
export function defaultThreads(): number {
  return os.availableParallelism();
}
