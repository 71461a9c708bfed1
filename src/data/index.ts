export {
  chooseByLabel,
  collatePairs,
  collateSequences,
  type PackedPairBatch,
  type PackedRows,
  type PackedSequenceBatch,
  type PaddedRows,
  type PadOptions,
  type PairBatch,
  type PairCollateOptions,
  type PreferenceChoice,
  packPairs,
  packSequences,
  padIdFor,
  type SequenceBatch,
} from "./batch.js";
export { type FileFormat, fileStem, type RawRecord, readRecords } from "./files.js";
export {
  countIssues,
  type DataIssue,
  DataRecordError,
  formatIssueSummary,
  ISSUE_REASONS,
  type IssueReason,
} from "./issues.js";
export { requireLabel } from "./labels.js";
export { parseHhTranscript } from "./layouts.js";
export {
  type PreferenceData,
  type PromptData,
  type ReadPairsOptions,
  type ReadPromptsOptions,
  readPreferencePairs,
  readPrompts,
} from "./read.js";
export {
  type EpochBatchOptions,
  epochBatches,
  mixSeed,
  mulberry32,
  shuffledIndices,
} from "./shuffle.js";
export {
  DEFAULT_PROMPT_TEMPLATE,
  formatPrompt,
  type PromptFormatOptions,
  promptText,
  type SequenceInput,
  type SkippedExample,
  type TokenizedPair,
  type TokenizedPairs,
  type TokenizedSequence,
  type TokenizedSequences,
  type TokenizeOptions,
  type TokenizeSkipReason,
  tokenizePair,
  tokenizePairs,
  tokenizePromptText,
  tokenizeResponseText,
  tokenizeSequence,
  tokenizeSequences,
} from "./tokenize.js";
export {
  type ChatMessage,
  type EvalPrompt,
  LAYOUTS,
  type LabelName,
  type Layout,
  type PreferencePair,
  type Prompt,
  type ResponseIndex,
} from "./types.js";
export { scoredRecord, writeScoredJsonl } from "./write.js";
