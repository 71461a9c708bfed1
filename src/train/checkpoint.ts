/**
 * Training checkpoints in a run folder: `checkpoint-N/` contains everything a run needs to continue
 * exactly where it stopped after optimizer step N.
 *
 * - the model, as a Hugging Face folder written by the model's own `save` (config.json,
 *   model.safetensors);
 * - `optimizer.bin`: the optimizer's `stateDict()` (libtorch archive: AdamW moments and steps);
 * - `trainer_state.json`: {@link TrainerState}: step, data position, RNG states, the metrics
 *   accumulated since the last log line, and stage-specific state.
 *
 * A checkpoint is written to `checkpoint-N.tmp/`, every file fsynced, then renamed to
 * `checkpoint-N/`, so a run killed while saving leaves either the previous checkpoint or the new
 * one, never half of one. `.tmp` folders left by a kill are deleted on the next save or resume.
 */
import { existsSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { z } from "zod";
import { CdpoError } from "../errors.js";
import * as torch from "../tensor/index.js";

const CHECKPOINT_PATTERN = /^checkpoint-(\d+)$/;
const TMP_PATTERN = /^checkpoint-\d+\.tmp$/;
export const TRAINER_STATE_FILE = "trainer_state.json";
export const OPTIMIZER_FILE = "optimizer.bin";

/** Contents of `trainer_state.json`. */
export const TrainerStateSchema = z.object({
  /** Optimizer steps completed. */
  step: z.number().int().nonnegative(),
  /** Total optimizer steps of the run (the schedule depends on it). */
  totalSteps: z.number().int().positive(),
  /** Data position: the epoch and the next micro-batch inside it. */
  epoch: z.number().int().nonnegative(),
  batchInEpoch: z.number().int().nonnegative(),
  /** Micro-batches consumed since the start, for the fractional `epoch` metric. */
  microBatches: z.number().int().nonnegative(),
  /** Base64 of libtorch's default CPU generator state (`getRngState`). */
  torchRng: z.string(),
  /** Base64 states of named `torch.Generator`s the stage owns. */
  generators: z.record(z.string(), z.string()),
  /** Sums and counts of the metrics logged since the last metrics record. */
  pending: z.object({
    sums: z.record(z.string(), z.number()),
    counts: z.record(z.string(), z.number()),
    steps: z.number().int().nonnegative(),
    tokens: z.number().nonnegative(),
  }),
  /** Stage-specific state (the DPO stall detector, for example). */
  stage: z.record(z.string(), z.unknown()),
});
export type TrainerState = z.infer<typeof TrainerStateSchema>;

/** Encodes a uint8 state tensor as base64. */
export function stateToBase64(state: torch.Tensor): string {
  return state.toBytes().toString("base64");
}

/** Decodes base64 into a uint8 tensor for `setRngState` / `Generator.setState`. */
export function stateFromBase64(text: string): torch.Tensor {
  const bytes = Buffer.from(text, "base64");
  return torch.fromBytes(bytes, "uint8", [bytes.length]);
}

/** Path of the checkpoint of step `step`. */
export function checkpointPath(runDir: string, step: number): string {
  return path.join(runDir, `checkpoint-${step}`);
}

/** Steps of the complete checkpoints in `runDir`, ascending. */
export async function listCheckpoints(runDir: string): Promise<number[]> {
  let names: string[];
  try {
    names = await fs.readdir(runDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  const steps: number[] = [];
  for (const name of names) {
    const match = CHECKPOINT_PATTERN.exec(name);
    if (match && existsSync(path.join(runDir, name, TRAINER_STATE_FILE))) {
      steps.push(Number(match[1]));
    }
  }
  return steps.sort((a, b) => a - b);
}

/** Finds the newest complete checkpoint of `runDir` (undefined when there is none). */
export async function latestCheckpoint(runDir: string): Promise<string | undefined> {
  const steps = await listCheckpoints(runDir);
  const last = steps.at(-1);
  return last === undefined ? undefined : checkpointPath(runDir, last);
}

/** Deletes `checkpoint-N.tmp/` folders left by a run killed while saving. */
export async function removePartialCheckpoints(runDir: string): Promise<void> {
  let names: string[];
  try {
    names = await fs.readdir(runDir);
  } catch {
    return;
  }
  for (const name of names) {
    if (TMP_PATTERN.test(name))
      await fs.rm(path.join(runDir, name), { recursive: true, force: true });
  }
}

async function fsyncPath(target: string): Promise<void> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(target, "r");
    await handle.sync();
  } catch {
    // Folders cannot be opened for fsync on every platform; the data files are synced anyway.
  } finally {
    await handle?.close();
  }
}

/** Fsyncs every file under `dir`, then `dir` itself. */
async function fsyncTree(dir: string): Promise<void> {
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) await fsyncTree(full);
    else await fsyncPath(full);
  }
  await fsyncPath(dir);
}

export interface CheckpointContents {
  step: number;
  /** Writes the model files into the given folder. */
  saveModel: (dir: string) => Promise<void>;
  optimizerState: Buffer;
  state: TrainerState;
}

/**
 * Writes `checkpoint-<step>/` atomically (see the file comment) and deletes the oldest complete
 * checkpoints beyond `keep`. Returns the checkpoint's path.
 */
export async function saveCheckpoint(
  runDir: string,
  contents: CheckpointContents,
  keep: number,
): Promise<string> {
  const final = checkpointPath(runDir, contents.step);
  const temp = `${final}.tmp`;
  await removePartialCheckpoints(runDir);
  await fs.mkdir(temp, { recursive: true });
  await contents.saveModel(temp);
  await fs.writeFile(path.join(temp, OPTIMIZER_FILE), contents.optimizerState);
  await fs.writeFile(
    path.join(temp, TRAINER_STATE_FILE),
    `${JSON.stringify(TrainerStateSchema.parse(contents.state), null, 1)}\n`,
  );
  await fsyncTree(temp);
  // A checkpoint of the same step exists only when a resumed run saves the step it resumed from.
  await fs.rm(final, { recursive: true, force: true });
  await fs.rename(temp, final);
  await fsyncPath(runDir);

  const steps = await listCheckpoints(runDir);
  for (const old of steps.slice(0, Math.max(0, steps.length - keep))) {
    await fs.rm(checkpointPath(runDir, old), { recursive: true, force: true });
  }
  return final;
}

/** Reads the optimizer state and trainer state of a checkpoint folder. */
export async function readCheckpoint(
  dir: string,
): Promise<{ optimizerState: Buffer; state: TrainerState }> {
  const stateFile = path.join(dir, TRAINER_STATE_FILE);
  let raw: unknown;
  try {
    raw = JSON.parse(await fs.readFile(stateFile, "utf8"));
  } catch (error) {
    throw new CdpoError(
      "FILE",
      `Failed to read checkpoint state ${stateFile}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  const parsed = TrainerStateSchema.safeParse(raw);
  if (!parsed.success) {
    throw new CdpoError("FILE", `${stateFile}: invalid trainer state: ${parsed.error.message}`);
  }
  const optimizerState = await fs.readFile(path.join(dir, OPTIMIZER_FILE));
  return { optimizerState, state: parsed.data };
}
