/**
 * Configuration of `cdpo train` (C-DPO): zod schemas with each field documented where declared,
 * a config file (JSON or YAML) overridden by command-line flags, and errors that name the field
 * and suggest the closest known key for a misspelled one.
 *
 * Precedence: schema defaults < config file < flags. The resolved config is stored in the run
 * folder's `config.json`, and `--resume` reads it back from there.
 */
import { z } from "zod";
import { LAYOUTS } from "../data/types.js";
import { CdpoError } from "../errors.js";
import { modelLabel } from "../run/names.js";
import { suggestKey } from "../train/config.js";
import { DPO_LOSS_TYPES } from "../train/losses.js";
import { LABEL_MODES } from "./relabel.js";

const positiveInt = z.number().int().positive();
const count = z.number().int().nonnegative();

/** One cost constraint E[c] ≤ limit. */
export const CostConstraintSchema = z.strictObject({
  /**
   * string, required: cost model folder (a score model; cost > 0 means unsafe). It scores the
   * sampled responses of every iteration, and the pairs unless the data carries cost scores.
   */
  model: z.string().min(1),
  /** number, required: the limit C on the expected cost of the policy's responses. */
  limit: z.number(),
  /** string, optional: name in records and reports; default the model folder's name or "cost". */
  name: z.string().min(1).optional(),
});

/** The DPO phase run in every dual iteration. */
export const CdpoDpoSchema = z.strictObject({
  /** integer >= 1, optional: optimizer steps per dual iteration; overrides `epochs`. */
  steps: positiveInt.optional(),
  /** number > 0, default 1: passes over the pairs per dual iteration. */
  epochs: z.number().positive().default(1),
  /** integer >= 1, default 8: pairs per micro-batch. */
  batchSize: positiveInt.default(8),
  /** integer >= 1, default 1: micro-batches per optimizer step. */
  gradAccum: positiveInt.default(1),
  /** number > 0, default 1e-6 (TRL's DPO default): AdamW learning rate. */
  lr: z.number().positive().default(1e-6),
  /** number >= 0, default 0: warmup, a fraction of the phase's steps below 1, else steps. */
  warmup: z.number().nonnegative().default(0),
  /** "cosine" | "linear" | "constant", default "constant": decay within each phase. */
  schedule: z.enum(["cosine", "linear", "constant"]).default("constant"),
  /** number >= 0, default 0: AdamW weight decay. */
  weightDecay: z.number().nonnegative().default(0),
  /** number >= 0, default 1: gradient-norm clip; 0 disables it. */
  maxGradNorm: z.number().nonnegative().default(1),
  /** number > 0, default 0.1: β, the KL coefficient of DPO. */
  beta: z.number().positive().default(0.1),
  /** "sigmoid" | "ipo" | "hinge" | "robust", default "sigmoid": the DPO loss. */
  lossType: z.enum(DPO_LOSS_TYPES as [string, ...string[]]).default("sigmoid"),
  /** number in [0, 0.5), default 0: label smoothing ε on top of the relabelled targets. */
  labelSmoothing: z.number().min(0).lt(0.5).default(0),
  /** integer >= 1, default 512: maximum tokens of prompt + response. */
  maxLength: positiveInt.default(512),
  /** integer >= 1, optional: maximum prompt tokens (the beginning is cut). */
  maxPromptLength: positiveInt.optional(),
  /** integer >= 1, default 10: optimizer steps per metrics record. */
  logEvery: positiveInt.default(10),
  /** integer >= 0, default 0: steps between checkpoints inside a phase; 0 saves none. */
  saveEvery: count.default(0),
});

/** The dual variables λ. */
export const CdpoLambdaSchema = z.strictObject({
  /** number >= 0 or a list (one per constraint), default 0: λ before the first iteration. */
  init: z.union([z.number().nonnegative(), z.array(z.number().nonnegative()).min(1)]).default(0),
  /** number > 0, default 0.5: dual step size η (cost units to λ units). */
  lr: z.number().positive().default(0.5),
  /** number >= 0, default 100: upper bound λ_max of the projection. */
  max: z.number().nonnegative().default(100),
  /** "sgd" | "adam", default "sgd": plain projected step, or Adam on the dual gradient. */
  optimizer: z.enum(["sgd", "adam"]).default("sgd"),
  /** [number, number] in [0, 1), default [0.9, 0.999]: Adam's β1, β2 ("adam" only). */
  betas: z.tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)]).default([0.9, 0.999]),
  /** number > 0, default 1e-8: Adam's ε ("adam" only). */
  eps: z.number().positive().default(1e-8),
});

/** The constraint estimate: sampling from the policy after each DPO phase. */
export const CdpoEstimateSchema = z.strictObject({
  /** integer >= 2, default 32: N held-out prompts sampled each iteration (fewer if the file has fewer). */
  evalPrompts: z.number().int().min(2).default(32),
  /** integer >= 1, default 4: K responses sampled per prompt. */
  samplesPerPrompt: positiveInt.default(4),
  /** integer >= 1, default 64: maximum new tokens per sampled response. */
  maxNewTokens: positiveInt.default(64),
  /** number >= 0, default 1: sampling temperature (0 is greedy). */
  temperature: z.number().nonnegative().default(1),
  /** integer >= 0, default 0: top-k filter; 0 keeps every token. */
  topK: count.default(0),
  /** number in (0, 1], default 1: nucleus (top-p) filter. */
  topP: z.number().gt(0).max(1).default(1),
  /** integer >= 1, default 16: sequences generated or scored together. */
  batchSize: positiveInt.default(16),
});

/** When the dual loop stops before its iteration budget. */
export const CdpoStopSchema = z.strictObject({
  /** integer >= 2, default 3: consecutive iterations the rule looks at. */
  window: z.number().int().min(2).default(3),
  /** number >= 0, default 0.05: largest spread of λ over the window. */
  lambdaTol: z.number().nonnegative().default(0.05),
  /** number >= 0, default 0.05: largest spread of the mean cost over the window, in cost units. */
  costTol: z.number().nonnegative().default(0.05),
});

export const CdpoConfigSchema = z.strictObject({
  // --- models -------------------------------------------------------------------------------

  /** string, required: Hugging Face folder of the starting policy (usually the SFT model). */
  policy: z.string().min(1),
  /** string, optional: reference model folder; default `policy`. */
  reference: z.string().min(1).optional(),
  /**
   * string, required: reward model folder. It scores the sampled responses of every iteration,
   * and the pairs unless the data carries reward scores.
   */
  reward: z.string().min(1),
  /**
   * "auto" | "models" | "data", default "auto": where the pairs' reward and cost scores come
   * from. "data" reads the scored layout's `reward_0/1`, `cost_0/1` (one constraint only);
   * "models" scores every response once and caches the scores in the run folder; "auto" reads
   * the data's scores when every pair has them and there is one constraint, else uses the models.
   */
  pairScores: z.enum(["auto", "models", "data"]).default("auto"),
  /** list of {model, limit, name}, at least one: the cost constraints. */
  costs: z.array(CostConstraintSchema).min(1),

  // --- data ---------------------------------------------------------------------------------

  /** string, required: preference pairs (any layout the readers accept). */
  data: z.string().min(1),
  /** layout name, optional: the pairs' layout; detected from the columns when omitted. */
  dataFormat: z.enum(LAYOUTS).optional(),
  /** integer >= 1, optional: use only the first N pairs. */
  maxPairs: positiveInt.optional(),
  /**
   * string, optional: prompts for the constraint estimate (`readPrompts` formats); default: the
   * distinct prompts of `data`, in file order.
   */
  prompts: z.string().min(1).optional(),

  // --- run folder ---------------------------------------------------------------------------

  /** string, required unless resuming: the run folder to create. */
  out: z.string().min(1).optional(),

  // --- dual loop ----------------------------------------------------------------------------

  /** integer >= 1, default 10: maximum number of dual iterations. */
  iterations: positiveInt.default(10),
  /** "soft" | "sample" | "hard", default "soft": how pairs are relabelled by r − λ·c. */
  labelMode: z.enum(LABEL_MODES).default("soft"),
  /** boolean, default false: start every DPO phase from the reference, not the last policy. */
  restartFromReference: z.boolean().default(false),
  dpo: CdpoDpoSchema.default(CdpoDpoSchema.parse({})),
  lambda: CdpoLambdaSchema.default(CdpoLambdaSchema.parse({})),
  estimate: CdpoEstimateSchema.default(CdpoEstimateSchema.parse({})),
  stop: CdpoStopSchema.default(CdpoStopSchema.parse({})),

  // --- runtime ------------------------------------------------------------------------------

  /** integer >= 0, default 42: seed of data order, label draws and sampling. */
  seed: count.default(42),
  /** "auto" | "fp32" | "bf16", default "auto": bf16 autocast where the CPU has bf16 instructions. */
  precision: z.enum(["auto", "fp32", "bf16"]).default("auto"),
  /** integer >= 1, optional: libtorch threads; default all cores. */
  threads: positiveInt.optional(),
  /** boolean, optional: progress bars (default: when stdout is a terminal). */
  progress: z.boolean().optional(),
});

export type CdpoConfig = z.infer<typeof CdpoConfigSchema>;
export type CdpoConfigInput = z.input<typeof CdpoConfigSchema>;

/** Known keys of the object at `path` inside the config, for suggestions. */
function knownKeysAt(path: readonly PropertyKey[]): string[] {
  let schema: z.ZodType = CdpoConfigSchema;
  for (const part of path) {
    const unwrapped = unwrap(schema);
    if (unwrapped instanceof z.ZodObject) {
      schema = (unwrapped.shape as Record<string, z.ZodType>)[String(part)] ?? unwrapped;
    } else if (unwrapped instanceof z.ZodArray) {
      schema = unwrapped.element as z.ZodType;
    }
  }
  const last = unwrap(schema);
  return last instanceof z.ZodObject ? Object.keys(last.shape) : [];
}

function unwrap(schema: z.ZodType): z.ZodType {
  let current = schema;
  while (current instanceof z.ZodDefault || current instanceof z.ZodOptional) {
    current = current.unwrap() as z.ZodType;
  }
  return current;
}

/** Formats zod issues as one message, suggesting known keys for unknown ones. */
export function describeConfigIssues(error: z.ZodError): string {
  const parts: string[] = [];
  for (const issue of error.issues) {
    const where = issue.path.map(String).join(".");
    if (issue.code === "unrecognized_keys") {
      const known = knownKeysAt(issue.path);
      for (const key of issue.keys) {
        const name = where === "" ? key : `${where}.${key}`;
        const suggestion = suggestKey(key, known);
        parts.push(
          `unknown field "${name}"` +
            (suggestion === undefined ? "" : ` (did you mean "${suggestion}"?)`),
        );
      }
      continue;
    }
    parts.push(`${where === "" ? "config" : `field "${where}"`}: ${issue.message}`);
  }
  return parts.join("; ");
}

/** Sets `value` at a dotted path of a plain object, creating the objects on the way. */
export function setPath(target: Record<string, unknown>, dotted: string, value: unknown): void {
  const parts = dotted.split(".");
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (next === null || typeof next !== "object" || Array.isArray(next)) node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  node[parts.at(-1) as string] = value;
}

/**
 * Validates and completes a C-DPO config: `file` values, then `overrides` (dotted paths such as
 * `dpo.beta`; undefined values are ignored), then defaults. Checks the combinations the schema
 * cannot express.
 *
 * @throws CdpoError "CONFIG" naming each invalid field.
 */
export function resolveCdpoConfig(
  file: Record<string, unknown>,
  overrides: Record<string, unknown> = {},
  source = "config",
): CdpoConfig {
  const merged = structuredClone(file);
  for (const [key, value] of Object.entries(overrides)) {
    if (value !== undefined) setPath(merged, key, value);
  }
  const result = CdpoConfigSchema.safeParse(merged);
  if (!result.success) {
    throw new CdpoError("CONFIG", `Invalid C-DPO ${source}: ${describeConfigIssues(result.error)}`);
  }
  const config = result.data;

  // Combinations.
  const init = config.lambda.init;
  if (Array.isArray(init) && init.length !== config.costs.length) {
    throw new CdpoError(
      "CONFIG",
      `Invalid C-DPO ${source}: field "lambda.init" has ${init.length} values but there are ` +
        `${config.costs.length} constraints in "costs"; give one value per constraint or a single number`,
    );
  }
  if (config.pairScores === "data" && config.costs.length > 1) {
    throw new CdpoError(
      "CONFIG",
      `Invalid C-DPO ${source}: "pairScores" is "data" but there are ${config.costs.length} ` +
        'constraints; the data carries one cost per response, so use "models"',
    );
  }
  if (
    config.dpo.maxPromptLength !== undefined &&
    config.dpo.maxPromptLength >= config.dpo.maxLength
  ) {
    throw new CdpoError(
      "CONFIG",
      `Invalid C-DPO ${source}: "dpo.maxPromptLength" (${config.dpo.maxPromptLength}) must be below ` +
        `"dpo.maxLength" (${config.dpo.maxLength})`,
    );
  }
  const maxLambda = Math.max(...(Array.isArray(init) ? init : [init]));
  if (maxLambda > config.lambda.max) {
    throw new CdpoError(
      "CONFIG",
      `Invalid C-DPO ${source}: "lambda.init" (${maxLambda}) is above "lambda.max" (${config.lambda.max})`,
    );
  }
  return config;
}

/** λ before the first iteration, one per constraint. */
export function initialLambdas(config: CdpoConfig): number[] {
  const init = config.lambda.init;
  return Array.isArray(init) ? [...init] : config.costs.map(() => init);
}

/** Display names of the constraints: the given name, else the model folder's base name. */
export function constraintNames(config: CdpoConfig): string[] {
  const names: string[] = [];
  for (const [index, cost] of config.costs.entries()) {
    let name = cost.name ?? modelLabel(cost.model, "cost");
    while (names.includes(name)) name = `${name}-${index}`;
    names.push(name);
  }
  return names;
}

/**
 * Parses a `--cost` value: `DIR` or `DIR:LIMIT`. A colon followed by something that is not a
 * number stays part of the path.
 */
export function parseCostSpec(spec: string): { model: string; limit?: number } {
  const colon = spec.lastIndexOf(":");
  if (colon > 0) {
    const tail = spec.slice(colon + 1);
    const limit = Number(tail);
    if (tail.trim() !== "" && Number.isFinite(limit)) return { model: spec.slice(0, colon), limit };
  }
  return { model: spec };
}
