/**
 * Schemas and types of the records in a run folder, and the table of metric names.
 *
 * Every training or demo run writes one folder (layout in docs/run-folder.md):
 *
 * - `config.json`: the resolved configuration, any JSON object.
 * - `versions.json`: {@link Versions}.
 * - `metrics.jsonl`: one {@link MetricsRecord} per line, appended while training.
 * - `iterations.jsonl`: one {@link IterationRecord} per C-DPO dual iteration.
 * - `samples/iteration-NNNN.jsonl`: the {@link SampleRecord}s drawn in dual iteration NNNN.
 * - `eval.json`: the {@link EvalTable}.
 * - `report.html`: the report written by `cdpo report`.
 *
 * The writers and readers are in `folder.ts`; this file holds only the shapes.
 */
import { z } from "zod";

/** File and folder names inside a run folder. */
export const RUN_FILES = {
  config: "config.json",
  versions: "versions.json",
  metrics: "metrics.jsonl",
  iterations: "iterations.jsonl",
  samples: "samples",
  eval: "eval.json",
  report: "report.html",
} as const;

/** Non-negative integer, used for steps, iterations and counts. */
const count = z.number().int().nonnegative();

/**
 * Metric value. JSON has no NaN or Infinity, so `JSON.stringify` stores a non-finite value (a
 * diverged loss) as `null`, and readers return `null` for it.
 */
const metricValue = z.number().nullable();

/** ISO 8601 timestamp as written by `Date#toISOString()`. */
const isoTime = z.iso.datetime({ offset: true });

/** Resolved configuration of a run: any JSON object. */
export const RunConfigSchema = z.record(z.string(), z.unknown());
export type RunConfig = z.infer<typeof RunConfigSchema>;

/** Contents of `versions.json`. */
export const VersionsSchema = z.object({
  /** Version of the cdpo package that wrote the run. */
  cdpo: z.string(),
  /** Version of libtorch loaded by the native addon, or "unknown" when it was not loaded. */
  libtorch: z.string(),
  /** Version of Node.js, as in `process.versions.node`. */
  node: z.string(),
});
export type Versions = z.infer<typeof VersionsSchema>;

/**
 * One line of `metrics.jsonl`: the metrics logged at one optimizer step.
 *
 * Besides the fixed fields below, every other key is a metric name from {@link METRICS} (or an
 * `eval_`-prefixed one for evaluation entries) whose value is a number or `null`. Keys that are not
 * in {@link METRICS} are accepted so that a stage can log extra values, but they must be numeric.
 * Read values with {@link getMetric}, which narrows the type.
 */
export interface MetricsRecord {
  /** Global optimizer step within the run folder, counted from 0 or 1 by the trainer. */
  step: number;
  /** Training stage that logged the record: "sft", "reward", "cost" or "dpo". */
  phase: string;
  /** C-DPO dual iteration the step belongs to; absent outside C-DPO. */
  iteration?: number;
  /** Epoch position; fractional values mean a point inside an epoch, as in TRL logs. */
  epoch?: number;
  /** Time the record was written, ISO 8601. */
  time: string;
  /** Metric values keyed by metric name. */
  [metric: string]: number | string | null | undefined;
}

export const MetricsRecordSchema: z.ZodType<MetricsRecord> = z
  .object({
    step: count,
    phase: z.string().min(1),
    iteration: count.optional(),
    epoch: z.number().nonnegative().optional(),
    time: isoTime,
  })
  .catchall(metricValue) as unknown as z.ZodType<MetricsRecord>;

/** Returns metric `name` of `record`: a number, `null` (stored non-finite value) or undefined. */
export function getMetric(record: MetricsRecord, name: string): number | null | undefined {
  if ((METRICS_RECORD_FIELDS as readonly string[]).includes(name)) return undefined;
  const value = record[name];
  return typeof value === "number" || value === null ? value : undefined;
}

/** Fields of a {@link MetricsRecord} that are not metric values. */
export const METRICS_RECORD_FIELDS = ["step", "phase", "iteration", "epoch", "time"] as const;

/** One constraint's state in a dual iteration of C-DPO. */
export const ConstraintStateSchema = z.object({
  /** Constraint name, e.g. the cost model's name. */
  name: z.string().min(1),
  /** Limit on the expected cost: the constraint holds when `cost_mean <= limit`. */
  limit: z.number(),
  /** Lagrange multiplier λ used to relabel pairs in this iteration. */
  lambda: z.number().nonnegative(),
  /** λ after the dual gradient step at the end of this iteration, used by the next one. */
  lambda_next: z.number().nonnegative(),
  /** Mean cost of the responses sampled in this iteration. */
  cost_mean: z.number(),
  /** Standard error of `cost_mean`. */
  cost_se: z.number().nonnegative(),
  /** Share of sampled responses with cost > 0, the cost model's "unsafe" label, in [0, 1]. */
  unsafe_share: z.number().min(0).max(1),
  /** Share of sampled responses with cost > `limit`, in [0, 1]; optional. */
  share_over_limit: z.number().min(0).max(1).optional(),
});
export type ConstraintState = z.infer<typeof ConstraintStateSchema>;

/** One line of `iterations.jsonl`: the summary of one C-DPO dual iteration. */
export const IterationRecordSchema = z.object({
  /** Dual iteration index. */
  iteration: count,
  /** Global DPO optimizer step at the end of this iteration's DPO phase. */
  step: count,
  /** State of every constraint, in the same order in every record. */
  constraints: z.array(ConstraintStateSchema).min(1),
  /** Mean reward of the responses sampled in this iteration. */
  reward_mean: z.number(),
  /** Standard error of `reward_mean`. */
  reward_se: z.number().nonnegative(),
  /** Estimate of the KL divergence from the policy to the reference model on the samples. */
  kl: z.number(),
  /** Number of responses sampled in this iteration; optional. */
  n_samples: count.optional(),
  /** DPO metrics (names from {@link METRICS}) averaged over this iteration's DPO phase. */
  dpo: z.record(z.string(), metricValue),
  /** Time the iteration ended. */
  time: isoTime,
});
export type IterationRecord = z.infer<typeof IterationRecordSchema>;

/** One line of `samples/iteration-NNNN.jsonl`: a sampled response and its scores. */
export const SampleRecordSchema = z.object({
  /** Identifier of the prompt in its dataset. */
  prompt_id: z.string(),
  /** Prompt text as shown to the model, before the chat template. Untrusted text. */
  prompt: z.string(),
  /** Generated response. Untrusted text. */
  response: z.string(),
  /** Reward model score of the response. */
  reward: z.number(),
  /** Cost model scores, one per constraint, in the order of `IterationRecord.constraints`. */
  costs: z.array(z.number()),
});
export type SampleRecord = z.infer<typeof SampleRecordSchema>;

/** Judgements of an oracle (a stronger judge model or human labels) on one evaluated model. */
export const OracleScoresSchema = z.object({
  /** Share of helpfulness prompts answered helpfully. */
  helpful_rate: z.number().min(0).max(1),
  /** Standard error of `helpful_rate`. */
  helpful_se: z.number().nonnegative(),
  /** Share of harmful prompts the model refused. */
  refusal_rate_harmful: z.number().min(0).max(1),
  /** Standard error of `refusal_rate_harmful`. */
  refusal_se: z.number().nonnegative(),
  /** Share of responses judged harmful. */
  harmful_rate: z.number().min(0).max(1),
  /** Standard error of `harmful_rate`. */
  harmful_se: z.number().nonnegative(),
});
export type OracleScores = z.infer<typeof OracleScoresSchema>;

/** One row of the evaluation table: one model scored on the evaluation prompts. */
export const EvalRowSchema = z.object({
  /** Display name, e.g. "SFT", "DPO (helpful)", "DPO (safe)", "C-DPO". */
  name: z.string().min(1),
  /** Model folder that was evaluated. */
  model_dir: z.string(),
  /** Number of prompts evaluated. */
  n_prompts: count,
  /** Mean reward over the responses. */
  reward_mean: z.number(),
  /** Standard error of `reward_mean`. */
  reward_se: z.number().nonnegative(),
  /** Mean cost over the responses. */
  cost_mean: z.number(),
  /** Standard error of `cost_mean`. */
  cost_se: z.number().nonnegative(),
  /** Share of responses with cost > 0. */
  unsafe_share: z.number().min(0).max(1),
  /** Standard error of `unsafe_share`. */
  unsafe_share_se: z.number().nonnegative(),
  /** Oracle judgements, when an oracle was run. */
  oracle: OracleScoresSchema.optional(),
});
export type EvalRow = z.infer<typeof EvalRowSchema>;

/** Contents of `eval.json`. */
export const EvalTableSchema = z.object({
  /** Cost limit the C-DPO model was trained for; absent when no limit applies. */
  limit: z.number().optional(),
  /** Path of the evaluation prompts file. */
  prompts: z.string(),
  /** One row per evaluated model, in display order. */
  rows: z.array(EvalRowSchema),
});
export type EvalTable = z.infer<typeof EvalTableSchema>;

/** Training stages that log metrics. "all" marks a metric every stage logs. */
export type MetricStage = "all" | "sft" | "reward" | "cost" | "dpo";

/** Entry of the metric names table. */
export interface MetricInfo {
  /** Key in `metrics.jsonl`, as TRL logs it. */
  name: string;
  /** Meaning of the value. */
  description: string;
  /** Stages that log it. */
  stages: readonly MetricStage[];
  /** Whether evaluation also logs it, under `eval_<name>`. */
  eval: boolean;
}

/**
 * Metric names written to `metrics.jsonl`, in the order the report shows them. This table is the
 * single source for docs/run-folder.md and the report's chart titles.
 */
export const METRICS: readonly MetricInfo[] = [
  {
    name: "loss",
    description: "Training loss of the stage, averaged over the logging interval",
    stages: ["all"],
    eval: true,
  },
  {
    name: "rewards/accuracies",
    description:
      "Share of pairs whose chosen response gets a higher implicit reward than the rejected one",
    stages: ["dpo"],
    eval: true,
  },
  {
    name: "rewards/margins",
    description: "Mean of rewards/chosen minus rewards/rejected",
    stages: ["dpo"],
    eval: true,
  },
  {
    name: "rewards/chosen",
    description:
      "Mean implicit reward β·(log πθ(y_w ∣ x) − log π_ref(y_w ∣ x)) of chosen responses",
    stages: ["dpo"],
    eval: true,
  },
  {
    name: "rewards/rejected",
    description:
      "Mean implicit reward β·(log πθ(y_l ∣ x) − log π_ref(y_l ∣ x)) of rejected responses",
    stages: ["dpo"],
    eval: true,
  },
  {
    name: "logps/chosen",
    description: "Mean summed log-probability of chosen responses under the policy",
    stages: ["dpo"],
    eval: true,
  },
  {
    name: "logps/rejected",
    description: "Mean summed log-probability of rejected responses under the policy",
    stages: ["dpo"],
    eval: true,
  },
  {
    name: "mean_token_accuracy",
    description: "Share of response tokens where the argmax prediction is the target token",
    stages: ["sft"],
    eval: true,
  },
  {
    name: "accuracy",
    description:
      "Share of pairs the preference model orders correctly (better response scored higher)",
    stages: ["reward", "cost"],
    eval: true,
  },
  {
    name: "sign_accuracy",
    description:
      "Share of responses whose cost sign matches the safety label (cost > 0 for unsafe)",
    stages: ["cost"],
    eval: true,
  },
  {
    name: "score/mean",
    description: "Mean score the reward or cost model gives the responses in the batch",
    stages: ["reward", "cost"],
    eval: true,
  },
  {
    name: "score/std",
    description: "Standard deviation of the scores in the batch",
    stages: ["reward", "cost"],
    eval: true,
  },
  {
    name: "learning_rate",
    description: "Learning rate the scheduler set for the step",
    stages: ["all"],
    eval: false,
  },
  {
    name: "grad_norm",
    description: "Global L2 norm of the gradients before clipping",
    stages: ["all"],
    eval: false,
  },
];

/** Prefix of the metric keys logged by evaluation, as in TRL (`eval_loss`). */
export const EVAL_PREFIX = "eval_";

/** Looks up a metric by name, accepting the `eval_` prefix. */
export function metricInfo(name: string): MetricInfo | undefined {
  const base = name.startsWith(EVAL_PREFIX) ? name.slice(EVAL_PREFIX.length) : name;
  return METRICS.find((metric) => metric.name === base);
}
