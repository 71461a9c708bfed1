/**
 * Model configuration: Hugging Face `config.json` read into one typed, validated object.
 *
 * The original JSON object is kept in `raw`, so saving writes back every key cdpo does not use
 * (generation settings, tokenizer ids, notes) next to the ones it updates.
 */
import { CdpoError } from "../errors.js";
import { ACTIVATIONS } from "../nn/layers.js";
import type { DType } from "../tensor/index.js";

export type ModelType = "llama" | "mistral" | "qwen2" | "gpt2";

/** Output kind of a model: next-token logits, or one scalar score per sequence. */
export type ModelTask = "causal-lm" | "score";

/** Parameter-name layout of the score head (see docs/models.md). */
export type ScoreHeadName = "score_head" | "score";

export interface RopeScaling {
  type: "linear" | "dynamic" | "llama3";
  factor: number;
  /** llama3 only. */
  lowFreqFactor: number;
  /** llama3 only. */
  highFreqFactor: number;
  /** llama3 only: the context length the model was pretrained with. */
  originalMaxPositionEmbeddings: number;
}

export interface ModelConfig {
  modelType: ModelType;
  /** The `architectures[0]` class name, e.g. `LlamaForCausalLM`. */
  architecture: string;
  task: ModelTask;
  vocabSize: number;
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  intermediateSize: number;
  maxPositionEmbeddings: number;
  /** `rms_norm_eps` (Llama family) or `layer_norm_epsilon` (GPT-2). */
  normEps: number;
  hiddenAct: string;
  initializerRange: number;
  tieWordEmbeddings: boolean;
  /** Bias on the q, k and v projections. */
  qkvBias: boolean;
  /** Bias on the attention output projection. */
  outputBias: boolean;
  mlpBias: boolean;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  /** Mistral's sliding attention window in tokens, or null for full attention. */
  slidingWindow: number | null;
  attentionDropout: number;
  /** GPT-2 only. */
  residDropout: number;
  /** GPT-2 only. */
  embdDropout: number;
  /** GPT-2 only: divide attention scores by (layer index + 1) as well. */
  scaleAttnByInverseLayerIdx: boolean;
  /** GPT-2 only: scale attention scores by 1/sqrt(head_dim). */
  scaleAttnWeights: boolean;
  bosTokenId: number | null;
  /** Every end-of-sequence id (`eos_token_id` may be a list). */
  eosTokenIds: number[];
  padTokenId: number | null;
  /** The checkpoint's `torch_dtype`, or null when absent. */
  torchDtype: DType | null;
  /** Score models: the head's parameter name and whether it has a bias. */
  scoreHead: ScoreHeadName;
  scoreBias: boolean;
  /** The config.json object as read (or as given to createModel). */
  raw: Record<string, unknown>;
}

const CAUSAL_ARCHITECTURES: Record<string, ModelType> = {
  LlamaForCausalLM: "llama",
  MistralForCausalLM: "mistral",
  Qwen2ForCausalLM: "qwen2",
  GPT2LMHeadModel: "gpt2",
  // Bare backbones (no head in the checkpoint): loaded as causal LMs with a tied head.
  LlamaModel: "llama",
  GPT2Model: "gpt2",
};

const SCORE_ARCHITECTURES: Record<string, [ModelType, ScoreHeadName]> = {
  // Safe-RLHF's score models (beaver reward and cost models): head `score_head`.
  LlamaForScore: ["llama", "score_head"],
  MistralForScore: ["mistral", "score_head"],
  Qwen2ForScore: ["qwen2", "score_head"],
  GPT2ForScore: ["gpt2", "score_head"],
  // transformers' sequence classifiers with num_labels 1: head `score`, no bias.
  LlamaForSequenceClassification: ["llama", "score"],
  MistralForSequenceClassification: ["mistral", "score"],
  Qwen2ForSequenceClassification: ["qwen2", "score"],
  GPT2ForSequenceClassification: ["gpt2", "score"],
};

/** Every `architectures` value cdpo loads. */
export const SUPPORTED_ARCHITECTURES: readonly string[] = [
  ...Object.keys(CAUSAL_ARCHITECTURES),
  ...Object.keys(SCORE_ARCHITECTURES),
];

const MODEL_TYPES: readonly ModelType[] = ["llama", "mistral", "qwen2", "gpt2"];

/** The causal-LM architecture name written for each model type. */
export const CAUSAL_LM_ARCHITECTURE: Record<ModelType, string> = {
  llama: "LlamaForCausalLM",
  mistral: "MistralForCausalLM",
  qwen2: "Qwen2ForCausalLM",
  gpt2: "GPT2LMHeadModel",
};

/** The Safe-RLHF score-model architecture name written for each model type. */
export const SCORE_ARCHITECTURE: Record<ModelType, string> = {
  llama: "LlamaForScore",
  mistral: "MistralForScore",
  qwen2: "Qwen2ForScore",
  gpt2: "GPT2ForScore",
};

const TORCH_DTYPES: Record<string, DType> = {
  float32: "float32",
  float: "float32",
  float16: "float16",
  half: "float16",
  bfloat16: "bfloat16",
  float64: "float64",
};

/** Reads typed fields from the raw object; every error names the source and the key. */
class FieldReader {
  constructor(
    readonly raw: Record<string, unknown>,
    readonly source: string,
  ) {}

  fail(key: string, expectation: string): never {
    const value = this.raw[key];
    throw new CdpoError(
      "CONFIG",
      `${this.source}: field ${key} must be ${expectation} but is ${JSON.stringify(value)}`,
    );
  }

  has(key: string): boolean {
    return this.raw[key] !== undefined && this.raw[key] !== null;
  }

  /** Reads a positive integer; an undefined `fallback` makes the field required. */
  size(key: string, fallback?: number): number {
    if (!this.has(key)) {
      if (fallback === undefined) {
        throw new CdpoError("CONFIG", `${this.source}: required field ${key} is missing`);
      }
      return fallback;
    }
    const value = this.raw[key];
    if (typeof value !== "number" || !Number.isInteger(value) || value <= 0) {
      this.fail(key, "a positive integer");
    }
    return value;
  }

  number(
    key: string,
    fallback: number,
    check: (v: number) => boolean,
    expectation: string,
  ): number {
    if (!this.has(key)) return fallback;
    const value = this.raw[key];
    if (typeof value !== "number" || !Number.isFinite(value) || !check(value)) {
      this.fail(key, expectation);
    }
    return value;
  }

  boolean(key: string, fallback: boolean): boolean {
    if (!this.has(key)) return fallback;
    const value = this.raw[key];
    if (typeof value !== "boolean") this.fail(key, "true or false");
    return value;
  }

  string(key: string, fallback: string): string {
    if (!this.has(key)) return fallback;
    const value = this.raw[key];
    if (typeof value !== "string") this.fail(key, "a string");
    return value;
  }

  /** Reads a token id, or null when absent. */
  tokenId(key: string): number | null {
    if (!this.has(key)) return null;
    const value = this.raw[key];
    if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
      this.fail(key, "a non-negative integer token id");
    }
    return value;
  }

  /** Reads a token id or a list of them (`eos_token_id`). */
  tokenIds(key: string): number[] {
    if (!this.has(key)) return [];
    const value = this.raw[key];
    const list = Array.isArray(value) ? value : [value];
    for (const id of list) {
      if (typeof id !== "number" || !Number.isInteger(id) || id < 0) {
        this.fail(key, "a token id or a list of token ids");
      }
    }
    return list as number[];
  }
}

function resolveArchitecture(fields: FieldReader): {
  architecture: string;
  modelType: ModelType;
  task: ModelTask;
  scoreHead: ScoreHeadName;
} {
  const raw = fields.raw;
  const architectures = raw["architectures"];
  let architecture: string | null = null;
  if (architectures !== undefined && architectures !== null) {
    if (
      !Array.isArray(architectures) ||
      architectures.length === 0 ||
      typeof architectures[0] !== "string"
    ) {
      fields.fail("architectures", "a non-empty list of class names");
    }
    architecture = architectures[0] as string;
  }
  const modelTypeValue = raw["model_type"];
  if (architecture === null) {
    if (typeof modelTypeValue !== "string" || !MODEL_TYPES.includes(modelTypeValue as ModelType)) {
      throw new CdpoError(
        "MODEL",
        `${fields.source}: has no architectures field and model_type ${JSON.stringify(modelTypeValue)} ` +
          `is not one of ${MODEL_TYPES.join(", ")}`,
      );
    }
    const modelType = modelTypeValue as ModelType;
    return {
      architecture: CAUSAL_LM_ARCHITECTURE[modelType],
      modelType,
      task: "causal-lm",
      scoreHead: "score_head",
    };
  }
  const causal = CAUSAL_ARCHITECTURES[architecture];
  const score = SCORE_ARCHITECTURES[architecture];
  if (causal === undefined && score === undefined) {
    throw new CdpoError(
      "MODEL",
      `${fields.source}: architecture ${architecture} is not supported; supported architectures: ` +
        `${SUPPORTED_ARCHITECTURES.join(", ")}`,
    );
  }
  const modelType = causal ?? score![0];
  if (typeof modelTypeValue === "string" && modelTypeValue !== modelType) {
    throw new CdpoError(
      "MODEL",
      `${fields.source}: model_type ${modelTypeValue} does not match architecture ${architecture} ` +
        `(expected model_type ${modelType})`,
    );
  }
  return {
    architecture,
    modelType,
    task: causal !== undefined ? "causal-lm" : "score",
    scoreHead: score?.[1] ?? "score_head",
  };
}

function parseRopeScaling(fields: FieldReader, maxPositions: number): RopeScaling | null {
  const value = fields.raw["rope_scaling"];
  if (value === undefined || value === null) return null;
  if (typeof value !== "object" || Array.isArray(value)) {
    fields.fail("rope_scaling", "an object with a type and a factor");
  }
  const scaling = value as Record<string, unknown>;
  const type = scaling["rope_type"] ?? scaling["type"];
  if (type === "default") return null;
  if (type !== "linear" && type !== "dynamic" && type !== "llama3") {
    throw new CdpoError(
      "CONFIG",
      `${fields.source}: rope_scaling type ${JSON.stringify(type)} is not supported; ` +
        "supported: linear, dynamic, llama3",
    );
  }
  const inner = new FieldReader(scaling, `${fields.source} rope_scaling`);
  const factor = inner.number("factor", Number.NaN, (v) => v >= 1, "a number >= 1");
  if (Number.isNaN(factor)) {
    throw new CdpoError("CONFIG", `${fields.source}: rope_scaling needs a factor`);
  }
  return {
    type,
    factor,
    lowFreqFactor: inner.number("low_freq_factor", 1, (v) => v > 0, "a positive number"),
    highFreqFactor: inner.number("high_freq_factor", 4, (v) => v > 0, "a positive number"),
    originalMaxPositionEmbeddings: inner.size("original_max_position_embeddings", maxPositions),
  };
}

/**
 * Validates a Hugging Face config object and returns the typed config.
 *
 * `source` names the file (or "config") in error messages. Size fields (vocabulary, hidden size,
 * layers, heads, and the MLP width for the Llama family) are required; the others take the
 * defaults of the `transformers` config classes.
 */
export function parseModelConfig(raw: Record<string, unknown>, source = "config"): ModelConfig {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new CdpoError("CONFIG", `${source}: expected a JSON object`);
  }
  const fields = new FieldReader(raw, source);
  const { architecture, modelType, task, scoreHead } = resolveArchitecture(fields);
  const probability = (v: number) => v >= 0 && v < 1;

  let config: ModelConfig;
  if (modelType === "gpt2") {
    const hiddenSize = fields.size("n_embd");
    const numHeads = fields.size("n_head");
    const maxPositions = fields.size("n_positions", 1024);
    config = {
      modelType,
      architecture,
      task,
      vocabSize: fields.size("vocab_size"),
      hiddenSize,
      numHiddenLayers: fields.size("n_layer"),
      numAttentionHeads: numHeads,
      numKeyValueHeads: numHeads,
      headDim: hiddenSize / numHeads,
      intermediateSize: fields.size("n_inner", 4 * hiddenSize),
      maxPositionEmbeddings: maxPositions,
      normEps: fields.number("layer_norm_epsilon", 1e-5, (v) => v > 0, "a positive number"),
      hiddenAct: fields.string("activation_function", "gelu_new"),
      initializerRange: fields.number("initializer_range", 0.02, (v) => v > 0, "a positive number"),
      tieWordEmbeddings: fields.boolean("tie_word_embeddings", true),
      qkvBias: true,
      outputBias: true,
      mlpBias: true,
      ropeTheta: 0,
      ropeScaling: null,
      slidingWindow: null,
      attentionDropout: fields.number("attn_pdrop", 0.1, probability, "a probability in [0, 1)"),
      residDropout: fields.number("resid_pdrop", 0.1, probability, "a probability in [0, 1)"),
      embdDropout: fields.number("embd_pdrop", 0.1, probability, "a probability in [0, 1)"),
      scaleAttnByInverseLayerIdx: fields.boolean("scale_attn_by_inverse_layer_idx", false),
      scaleAttnWeights: fields.boolean("scale_attn_weights", true),
      bosTokenId: fields.tokenId("bos_token_id"),
      eosTokenIds: fields.tokenIds("eos_token_id"),
      padTokenId: fields.tokenId("pad_token_id"),
      torchDtype: null,
      scoreHead,
      scoreBias: false,
      raw,
    };
    if (!Number.isInteger(config.headDim)) {
      throw new CdpoError(
        "CONFIG",
        `${source}: n_embd ${hiddenSize} is not divisible by n_head ${numHeads}`,
      );
    }
  } else {
    const hiddenSize = fields.size("hidden_size");
    const numHeads = fields.size("num_attention_heads");
    const numKvHeads = fields.size("num_key_value_heads", numHeads);
    const maxPositions = fields.size("max_position_embeddings", 2048);
    const attentionBias = fields.boolean("attention_bias", false);
    if (modelType === "qwen2" && fields.boolean("use_sliding_window", false)) {
      throw new CdpoError(
        "CONFIG",
        `${source}: use_sliding_window true is not supported for qwen2 (per-layer windows)`,
      );
    }
    config = {
      modelType,
      architecture,
      task,
      vocabSize: fields.size("vocab_size"),
      hiddenSize,
      numHiddenLayers: fields.size("num_hidden_layers"),
      numAttentionHeads: numHeads,
      numKeyValueHeads: numKvHeads,
      headDim: fields.size("head_dim", Math.floor(hiddenSize / numHeads)),
      intermediateSize: fields.size("intermediate_size"),
      maxPositionEmbeddings: maxPositions,
      normEps: fields.number("rms_norm_eps", 1e-6, (v) => v > 0, "a positive number"),
      hiddenAct: fields.string("hidden_act", "silu"),
      initializerRange: fields.number("initializer_range", 0.02, (v) => v > 0, "a positive number"),
      tieWordEmbeddings: fields.boolean("tie_word_embeddings", false),
      // Qwen2 always has q/k/v biases and no output bias; Llama's attention_bias covers all four.
      qkvBias: modelType === "qwen2" ? true : attentionBias,
      outputBias: modelType === "qwen2" ? false : attentionBias,
      mlpBias: fields.boolean("mlp_bias", false),
      ropeTheta: fields.number("rope_theta", 10000, (v) => v > 0, "a positive number"),
      ropeScaling: parseRopeScaling(fields, maxPositions),
      slidingWindow:
        modelType === "mistral" && fields.has("sliding_window")
          ? fields.size("sliding_window")
          : null,
      attentionDropout: fields.number(
        "attention_dropout",
        0,
        probability,
        "a probability in [0, 1)",
      ),
      residDropout: 0,
      embdDropout: 0,
      scaleAttnByInverseLayerIdx: false,
      scaleAttnWeights: true,
      bosTokenId: fields.tokenId("bos_token_id"),
      eosTokenIds: fields.tokenIds("eos_token_id"),
      padTokenId: fields.tokenId("pad_token_id"),
      torchDtype: null,
      scoreHead,
      scoreBias: false,
      raw,
    };
    if (numHeads % numKvHeads !== 0) {
      throw new CdpoError(
        "CONFIG",
        `${source}: num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`,
      );
    }
    if (config.headDim % 2 !== 0) {
      throw new CdpoError(
        "CONFIG",
        `${source}: head dimension ${config.headDim} must be even for rotary embeddings`,
      );
    }
  }

  if (!(ACTIVATIONS as readonly string[]).includes(config.hiddenAct)) {
    fields.fail(
      modelType === "gpt2" ? "activation_function" : "hidden_act",
      `one of ${ACTIVATIONS.join(", ")}`,
    );
  }
  const dtypeName = fields.string("torch_dtype", "");
  if (dtypeName !== "") {
    const dtype = TORCH_DTYPES[dtypeName];
    if (dtype === undefined) return fields.fail("torch_dtype", "float32, float16 or bfloat16");
    config.torchDtype = dtype;
  }
  if (task === "score") {
    if (scoreHead === "score") {
      const labels = fields.size("num_labels", labelCount(raw));
      if (labels !== 1) {
        throw new CdpoError(
          "CONFIG",
          `${source}: ${architecture} needs num_labels 1 to be used as a score model, found ${labels}`,
        );
      }
    } else {
      const scoreDim = fields.size("score_dim", 1);
      if (scoreDim !== 1) {
        throw new CdpoError("CONFIG", `${source}: score_dim ${scoreDim} is not supported (only 1)`);
      }
      config.scoreBias = fields.boolean("bias", false);
    }
  }
  return config;
}

/** transformers stores num_labels implicitly as the size of id2label. */
function labelCount(raw: Record<string, unknown>): number {
  const id2label = raw["id2label"];
  if (id2label !== null && typeof id2label === "object") return Object.keys(id2label).length;
  return 2;
}

/**
 * The config with its architecture switched to `task` (a causal LM's config for a score model
 * built on it, for example); `scoreHead` picks the score head's name.
 */
export function configForTask(
  config: ModelConfig,
  task: ModelTask,
  scoreHead: ScoreHeadName = "score_head",
): ModelConfig {
  if (config.task === task) return config;
  if (task === "causal-lm") {
    return { ...config, task, architecture: CAUSAL_LM_ARCHITECTURE[config.modelType] };
  }
  const architecture =
    scoreHead === "score_head"
      ? SCORE_ARCHITECTURE[config.modelType]
      : `${CAUSAL_LM_ARCHITECTURE[config.modelType].replace(/ForCausalLM$|LMHeadModel$/, "")}ForSequenceClassification`;
  return { ...config, task, architecture, scoreHead, scoreBias: false };
}

/**
 * The config.json object to save: the raw keys, with the architecture, model type and dtype
 * updated (and, for score models, the head's settings).
 */
export function configToJson(config: ModelConfig, dtype: DType): Record<string, unknown> {
  const json: Record<string, unknown> = { ...config.raw };
  json["architectures"] = [savedArchitecture(config)];
  json["model_type"] = config.modelType;
  json["torch_dtype"] = dtype;
  if (config.task === "score") {
    if (config.scoreHead === "score") {
      json["num_labels"] = 1;
      json["id2label"] = { "0": "LABEL_0" };
      json["label2id"] = { LABEL_0: 0 };
    } else {
      json["score_dim"] = 1;
      json["bias"] = config.scoreBias;
    }
  }
  return json;
}

/** Bare backbones (`GPT2Model`, `LlamaModel`) are saved with their head as causal LMs. */
function savedArchitecture(config: ModelConfig): string {
  if (config.architecture === "GPT2Model" || config.architecture === "LlamaModel") {
    return CAUSAL_LM_ARCHITECTURE[config.modelType];
  }
  return config.architecture;
}
