export {
  ACTIVATIONS,
  activation,
  Conv1D,
  Dropout,
  Embedding,
  LayerNorm,
  Linear,
  RMSNorm,
} from "./layers.js";
export { createParameter, defaultInit, Module, ModuleList, type ParameterInit } from "./module.js";
