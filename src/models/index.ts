export type { AttendOptions, ForwardInput, PassSetup } from "./attention.js";
export { KVCache, type KVCacheOptions } from "./cache.js";
export {
  CONFIG_FILE,
  type LoadModelOptions,
  type LoadReport,
  loadCausalLM,
  loadModel,
  loadModelWithReport,
  loadScoreModel,
  readModelConfig,
  type SaveModelOptions,
  saveModel,
  WEIGHTS_FILE,
  WEIGHTS_INDEX_FILE,
} from "./checkpoint.js";
export {
  configForTask,
  configToJson,
  type ModelConfig,
  type ModelTask,
  type ModelType,
  parseModelConfig,
  type RopeScaling,
  type ScoreHeadName,
  SUPPORTED_ARCHITECTURES,
} from "./config.js";
export {
  type ContextOverflow,
  contextOverflow,
  describeContextOverflow,
  type FinishReason,
  type GenerateResult,
  generate,
  generateText,
  type LogitsProcessing,
  processLogits,
  type SamplingOptions,
  startTokens,
} from "./generate.js";
export { GPT2Model } from "./gpt2.js";
export { LlamaModel } from "./llama.js";
export {
  type SequenceLogprobs,
  type SequenceLogprobsInput,
  type SequenceLogprobsOptions,
  sequenceLogprobs,
  tokenLogprobs,
} from "./logprobs.js";
export {
  type Backbone,
  backbonePrefix,
  buildModel,
  CausalLM,
  type CausalLMForwardInput,
  type CausalLMOutput,
  type CreateModelOptions,
  createModel,
  type Model,
  type ScoreForwardInput,
  ScoreModel,
  type ScoreOutput,
} from "./model.js";
export { inverseFrequencies, RotaryEmbedding } from "./rope.js";
export {
  loadSafetensors,
  readSafetensorsHeader,
  type SafetensorsDtype,
  type SafetensorsHeader,
  SafetensorsReader,
  saveSafetensors,
  type TensorInfo,
} from "./safetensors.js";
