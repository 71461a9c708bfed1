export {
  BYTE_BOS_ID,
  BYTE_EOS_ID,
  BYTE_PAD_ID,
  BYTE_VOCAB_SIZE,
  ByteTokenizer,
  type ByteTokenizerOptions,
  byteTokenizerFiles,
  createByteTokenizer,
  isByteTokenizerJson,
} from "./byte.js";
export {
  type ApplyChatTemplateOptions,
  type ChatMessage,
  ChatTemplateRenderer,
  parseChatTemplates,
} from "./chat.js";
export {
  type DecodeOptions,
  type EncodeOptions,
  HfTokenizer,
  loadTokenizer,
  type Tokenizer,
} from "./tokenizer.js";
