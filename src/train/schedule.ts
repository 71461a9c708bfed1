/**
 * Learning-rate schedules: linear warmup from 0, then cosine, linear or no decay to the end, as
 * `transformers`' get_cosine_schedule_with_warmup / get_linear_schedule_with_warmup /
 * get_constant_schedule_with_warmup.
 */
import { invalidArgument } from "../errors.js";

export type ScheduleKind = "cosine" | "linear" | "constant";

export interface ScheduleOptions {
  kind: ScheduleKind;
  /** Peak learning rate. */
  lr: number;
  /** Optimizer steps in the whole run. */
  totalSteps: number;
  /** Warmup steps (already resolved from a ratio). */
  warmupSteps: number;
}

/** Warmup steps for a `warmup` config value: below 1 a fraction of the run, else a step count. */
export function resolveWarmup(warmup: number, totalSteps: number): number {
  if (!(warmup >= 0)) throw invalidArgument("range", "warmup", "a number >= 0", warmup);
  return warmup < 1 ? Math.ceil(warmup * totalSteps) : Math.min(warmup, totalSteps);
}

/**
 * Learning rate of optimizer step `step`, 0-based. Warmup rises as lr·step/warmupSteps, so the
 * first update of a warmed-up run uses 0, as in `transformers`.
 */
export function learningRate(options: ScheduleOptions, step: number): number {
  const { kind, lr, totalSteps, warmupSteps } = options;
  if (step < warmupSteps) return (lr * step) / Math.max(1, warmupSteps);
  if (kind === "constant") return lr;
  const progress = (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
  if (kind === "linear") return lr * Math.max(0, 1 - progress);
  return lr * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * Math.min(1, progress))));
}
