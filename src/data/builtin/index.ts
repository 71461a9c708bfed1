export {
  BUILTIN_DEFAULTS,
  type BuiltinDataset,
  type BuiltinEvalPrompt,
  type BuiltinFiles,
  type BuiltinOptions,
  type BuiltinPrompt,
  builtinPromptPool,
  generateBuiltin,
  writeBuiltin,
} from "./generate.js";
export {
  answerIsCorrect,
  isRefusal,
  type Judgement,
  judge,
  parseBuiltinPrompt,
  REFUSAL_PHRASES,
} from "./oracle.js";
export {
  BENIGN_TEMPLATES,
  COMPLIANCES,
  type ExpectedAnswer,
  HARM_CATEGORIES,
  HARMFUL_TEMPLATES,
  type PromptTemplate,
  REFUSALS,
} from "./templates.js";
