/**
 * Hugging Face model folders: `config.json` plus `model.safetensors`, or shards listed in
 * `model.safetensors.index.json`. Pickle checkpoints (`pytorch_model.bin`) are never loaded,
 * because unpickling runs arbitrary code.
 *
 * Loading builds the model with uninitialised parameters and copies each stored tensor into its
 * parameter, converting the dtype (F32, F16 and BF16 files load into any model dtype), one tensor
 * at a time. Loaded models are in evaluation mode; call `train()` before fine-tuning. Saving writes the same layout with Hugging Face names, every file atomically.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { CdpoError } from "../errors.js";
import { createParameter, defaultInit } from "../nn/index.js";
import { writeJsonAtomic } from "../run/folder.js";
import type { Device, DType, Tensor } from "../tensor/index.js";
import * as torch from "../tensor/index.js";
import {
  configForTask,
  configToJson,
  type ModelConfig,
  type ModelTask,
  parseModelConfig,
  type ScoreHeadName,
} from "./config.js";
import { backbonePrefix, buildModel, type CausalLM, type Model, type ScoreModel } from "./model.js";
import { dtypeBytes, SafetensorsReader, saveSafetensors } from "./safetensors.js";

export const CONFIG_FILE = "config.json";
export const WEIGHTS_FILE = "model.safetensors";
export const WEIGHTS_INDEX_FILE = "model.safetensors.index.json";

/** transformers' default `max_shard_size` ("5GB"). */
const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;

export interface LoadModelOptions {
  /**
   * Parameter dtype: a dtype, or "auto" for the config's `torch_dtype`. Default float32, as
   * transformers' `from_pretrained` without `torch_dtype`.
   */
  dtype?: DType | "auto";
  device?: Device;
  /**
   * Load as this kind. Default: the checkpoint's own. A causal-LM checkpoint loaded as "score"
   * keeps its backbone, drops `lm_head` and gets a new score head (drawn with `seed`).
   */
  task?: ModelTask;
  /** Name of a newly created score head. Default `score_head`. */
  scoreHead?: ScoreHeadName;
  /** Seed for newly initialised parameters. Default 0. */
  seed?: number;
}

export interface LoadReport {
  /** Weight files read. */
  files: string[];
  /** Stored tensors the model has no parameter for (ignored). */
  unexpected: string[];
  /** Parameters absent from the checkpoint that were initialised fresh (a new score head). */
  initialized: string[];
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}

async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new CdpoError("FILE", `file not found: ${file}`, { cause: error });
    }
    throw new CdpoError("FILE", `Failed to read ${file}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new CdpoError("FILE", `${file} is not valid JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

async function requireFolder(dir: string): Promise<void> {
  let stat: Awaited<ReturnType<typeof fs.stat>>;
  try {
    stat = await fs.stat(dir);
  } catch (error) {
    throw new CdpoError("FILE", `model folder not found: ${dir}`, { cause: error });
  }
  if (!stat.isDirectory())
    throw new CdpoError("FILE", `${dir} is not a folder (expected a model folder)`);
}

/** Reads and validates `DIR/config.json`. */
export async function readModelConfig(dir: string): Promise<ModelConfig> {
  await requireFolder(dir);
  const file = path.join(dir, CONFIG_FILE);
  if (!(await exists(file))) {
    throw new CdpoError(
      "FILE",
      `${dir} has no ${CONFIG_FILE}: a Hugging Face model folder needs one`,
    );
  }
  const raw = await readJson(file);
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new CdpoError("FILE", `${file} must contain a JSON object`);
  }
  return parseModelConfig(raw as Record<string, unknown>, file);
}

/** The weight files of a folder and which file holds each tensor name. */
async function locateWeights(
  dir: string,
): Promise<{ files: string[]; owner: Map<string, string> | null }> {
  const indexFile = path.join(dir, WEIGHTS_INDEX_FILE);
  if (await exists(indexFile)) {
    const index = (await readJson(indexFile)) as { weight_map?: unknown };
    const map = index?.weight_map;
    if (map === null || typeof map !== "object" || Array.isArray(map)) {
      throw new CdpoError("FILE", `${indexFile} has no weight_map object`);
    }
    const owner = new Map<string, string>();
    for (const [name, shard] of Object.entries(map as Record<string, unknown>)) {
      if (typeof shard !== "string" || shard.includes("/") || shard.includes("\\")) {
        throw new CdpoError(
          "FILE",
          `${indexFile}: weight_map entry ${name} must name a file in the folder`,
        );
      }
      owner.set(name, path.join(dir, shard));
    }
    const files = [...new Set(owner.values())];
    for (const file of files) {
      if (!(await exists(file))) {
        throw new CdpoError(
          "FILE",
          `safetensors shard not found: ${file} (listed in ${indexFile})`,
        );
      }
    }
    return { files, owner };
  }
  const single = path.join(dir, WEIGHTS_FILE);
  if (await exists(single)) return { files: [single], owner: null };
  for (const pickle of ["pytorch_model.bin", "pytorch_model.bin.index.json"]) {
    if (await exists(path.join(dir, pickle))) {
      throw new CdpoError(
        "MODEL",
        `${dir} has only ${pickle}, a pickle checkpoint, which cdpo never loads (unpickling can run ` +
          "arbitrary code). Convert it to safetensors in Python: " +
          `AutoModel.from_pretrained("${dir}").save_pretrained("${dir}", safe_serialization=True)`,
      );
    }
  }
  throw new CdpoError(
    "FILE",
    `${dir} has no ${WEIGHTS_FILE} (nor ${WEIGHTS_INDEX_FILE} for a sharded checkpoint)`,
  );
}

/** Stored tensors that are buffers or duplicates in transformers, never parameters. */
function isIgnorable(name: string, config: ModelConfig): boolean {
  if (name.endsWith(".rotary_emb.inv_freq")) return true;
  if (name.endsWith(".attn.bias") || name.endsWith(".attn.masked_bias"))
    return config.modelType === "gpt2";
  if (name === "lm_head.weight") return config.tieWordEmbeddings || config.task === "score";
  return false;
}

function formatShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

/** Loads a model folder and reports which stored tensors were ignored or newly initialised. */
export async function loadModelWithReport(
  dir: string,
  options: LoadModelOptions = {},
): Promise<{ model: Model; report: LoadReport }> {
  // config and files
  const stored = await readModelConfig(dir);
  const { files, owner } = await locateWeights(dir);
  const task = options.task ?? stored.task;
  if (task === "causal-lm" && stored.task === "score") {
    throw new CdpoError(
      "MODEL",
      `${dir} holds a score model (${stored.architecture}), not a causal LM; load it as a score model`,
    );
  }
  const config = configForTask(stored, task, options.scoreHead ?? "score_head");
  const configFile = path.join(dir, CONFIG_FILE);

  const readers: SafetensorsReader[] = [];
  try {
    const fileOf = new Map<string, SafetensorsReader>();
    for (const file of files) {
      const reader = await SafetensorsReader.open(file);
      readers.push(reader);
      for (const name of reader.names) {
        if (owner === null || owner.get(name) === file) fileOf.set(name, reader);
      }
    }
    if (owner !== null) {
      for (const [name, file] of owner) {
        if (!fileOf.has(name)) {
          throw new CdpoError(
            "MODEL",
            `tensor ${name} is missing from ${file} (the index lists it there)`,
          );
        }
      }
    }

    // model with uninitialised parameters
    const dtype =
      options.dtype === "auto" ? (stored.torchDtype ?? "float32") : (options.dtype ?? "float32");
    const device = options.device ?? "cpu";
    const model = buildModel(
      config,
      defaultInit({ generator: null, std: config.initializerRange, dtype, device }),
    );

    // Bare backbones (GPT2Model, LlamaModel) store names without the `transformer.` / `model.` prefix.
    const prefix = `${backbonePrefix(config)}.`;
    const storedNames = [...fileOf.keys()];
    const stripPrefix = !storedNames.some((name) => name.startsWith(prefix));
    const storedName = (name: string) =>
      stripPrefix && name.startsWith(prefix) ? name.slice(prefix.length) : name;

    // copy every parameter
    const used = new Set<string>();
    const initialized: string[] = [];
    const generator = new torch.Generator(options.seed ?? 0);
    try {
      for (const [name, parameter] of model.namedParameters()) {
        const key = storedName(name);
        const reader = fileOf.get(key);
        if (reader === undefined) {
          if (
            config.task === "score" &&
            stored.task !== "score" &&
            name.startsWith(`${config.scoreHead}.`)
          ) {
            initializeFresh(parameter, name, config, generator);
            initialized.push(name);
            continue;
          }
          throw new CdpoError(
            "MODEL",
            `tensor ${key} is missing from ${files.join(", ")} (${config.architecture} from ${configFile} needs it)`,
          );
        }
        const info = reader.header.tensors.get(key)!;
        const expected = parameter.shape;
        if (info.shape.length !== expected.length || info.shape.some((s, i) => s !== expected[i])) {
          throw new CdpoError(
            "MODEL",
            `tensor ${key} in ${reader.header.path} has shape ${formatShape(info.shape)} but ${configFile} ` +
              `gives ${formatShape(expected)}`,
          );
        }
        const value = await reader.read(key);
        torch.noGrad(() => parameter.copy_(value));
        value.dispose();
        used.add(key);
      }
    } catch (error) {
      model.dispose();
      throw error;
    }
    const unexpected = storedNames.filter((name) => !used.has(name) && !isIgnorable(name, config));
    // Evaluation mode (dropout off), as transformers' from_pretrained returns models.
    model.eval();
    return { model, report: { files, unexpected, initialized } };
  } finally {
    for (const reader of readers) await reader.close();
  }
}

/** Draws a parameter the checkpoint lacks: normal(0, initializer_range) weights, zero biases. */
function initializeFresh(
  parameter: Tensor,
  name: string,
  config: ModelConfig,
  generator: torch.Generator,
): void {
  const init = defaultInit({ generator, std: config.initializerRange });
  const fresh = createParameter(parameter.shape, name.endsWith(".bias") ? "zeros" : "normal", init);
  torch.noGrad(() => parameter.copy_(fresh));
  fresh.dispose();
}

/** Loads a Hugging Face model folder (see {@link LoadModelOptions}). */
export async function loadModel(dir: string, options: LoadModelOptions = {}): Promise<Model> {
  return (await loadModelWithReport(dir, options)).model;
}

/** Loads a folder as a causal LM; a score-model checkpoint is rejected with a CdpoError. */
export async function loadCausalLM(dir: string, options: LoadModelOptions = {}): Promise<CausalLM> {
  const model = await loadModel(dir, { ...options, task: "causal-lm" });
  return model as CausalLM;
}

/** Loads a folder as a score model; a causal-LM checkpoint gets a new score head. */
export async function loadScoreModel(
  dir: string,
  options: LoadModelOptions = {},
): Promise<ScoreModel> {
  const model = await loadModel(dir, { ...options, task: "score" });
  return model as ScoreModel;
}

export interface SaveModelOptions {
  /** Largest shard in bytes before the weights are split into several files. Default 5 GB. */
  maxShardBytes?: number;
}

/**
 * Writes `config.json` and the weights (one `model.safetensors`, or shards with an index when
 * larger than `maxShardBytes`) into `dir`, creating it. Each file is written atomically; weight
 * files of an earlier save in another layout are removed afterwards.
 */
export async function saveModel(
  model: Model,
  dir: string,
  options: SaveModelOptions = {},
): Promise<void> {
  const maxShardBytes = options.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  await fs.mkdir(dir, { recursive: true });
  const parameters = model.namedParameters();
  const dtype = parameters[0]?.[1].dtype ?? "float32";

  // split into shards of at most maxShardBytes (a larger single tensor gets its own shard)
  const shards: [string, Tensor][][] = [[]];
  let shardBytes = 0;
  let totalBytes = 0;
  for (const entry of parameters) {
    const bytes = entry[1].numel * dtypeBytes(entry[1].dtype);
    if (shardBytes > 0 && shardBytes + bytes > maxShardBytes) {
      shards.push([]);
      shardBytes = 0;
    }
    shards[shards.length - 1]!.push(entry);
    shardBytes += bytes;
    totalBytes += bytes;
  }

  const previous = await previousWeightFiles(dir);
  const written = new Set<string>();
  if (shards.length === 1) {
    await saveSafetensors(path.join(dir, WEIGHTS_FILE), shards[0]!);
    written.add(WEIGHTS_FILE);
  } else {
    const weightMap: Record<string, string> = {};
    const count = String(shards.length).padStart(5, "0");
    for (const [i, shard] of shards.entries()) {
      const name = `model-${String(i + 1).padStart(5, "0")}-of-${count}.safetensors`;
      await saveSafetensors(path.join(dir, name), shard);
      for (const [tensorName] of shard) weightMap[tensorName] = name;
      written.add(name);
    }
    await writeJsonAtomic(path.join(dir, WEIGHTS_INDEX_FILE), {
      metadata: { total_size: totalBytes },
      weight_map: weightMap,
    });
    written.add(WEIGHTS_INDEX_FILE);
  }
  await writeJsonAtomic(path.join(dir, CONFIG_FILE), configToJson(model.config, dtype));
  for (const name of previous) {
    if (!written.has(name)) await fs.rm(path.join(dir, name), { force: true });
  }
}

/** Weight files an earlier save left in `dir` (single file, index and its shards). */
async function previousWeightFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  if (await exists(path.join(dir, WEIGHTS_FILE))) found.push(WEIGHTS_FILE);
  const indexFile = path.join(dir, WEIGHTS_INDEX_FILE);
  if (await exists(indexFile)) {
    found.push(WEIGHTS_INDEX_FILE);
    try {
      const index = JSON.parse(await fs.readFile(indexFile, "utf8")) as {
        weight_map?: Record<string, string>;
      };
      for (const shard of new Set(Object.values(index.weight_map ?? {}))) {
        if (!shard.includes("/") && !shard.includes("\\")) found.push(shard);
      }
    } catch {
      // An unreadable old index lists nothing to remove; the new files are already complete.
    }
  }
  return found;
}
