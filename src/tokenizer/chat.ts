/**
 * Chat messages and chat-template rendering with `@huggingface/jinja`.
 */

import { Template } from "@huggingface/jinja";

import { CdpoError } from "../errors.js";

/** One turn of a conversation, as in Hugging Face chat datasets (`[{role, content}]`). */
export interface ChatMessage {
  /** "system", "user" or "assistant" in practice; other roles pass through to the template. */
  role: string;
  content: string;
}

export interface ApplyChatTemplateOptions {
  /** Appends the text that opens an assistant turn (Jinja variable `add_generation_prompt`). */
  addGenerationPrompt?: boolean;
  /** Name of the template to use when the config contains several (default "default"). */
  templateName?: string;
}

/** Special-token strings passed to the template, as `transformers` does. */
export interface ChatTemplateTokens {
  bos_token: string | null;
  eos_token: string | null;
  pad_token: string | null;
  unk_token: string | null;
}

/**
 * Parses the `chat_template` value of `tokenizer_config.json`: a template string, or a list of
 * `{name, template}` objects (transformers 4.43 and later). Returns a name-to-template map in
 * which a single string is stored under "default".
 */
export function parseChatTemplates(value: unknown, source: string): Map<string, string> {
  const templates = new Map<string, string>();
  if (value === undefined || value === null) return templates;
  if (typeof value === "string") {
    templates.set("default", value);
    return templates;
  }
  if (Array.isArray(value)) {
    for (const [index, entry] of value.entries()) {
      const name = (entry as { name?: unknown } | null)?.name;
      const template = (entry as { template?: unknown } | null)?.template;
      if (typeof name !== "string" || typeof template !== "string") {
        throw new CdpoError(
          "FILE",
          `${source}: chat_template[${index}] is invalid. Expected an object with string fields ` +
            `"name" and "template".`,
        );
      }
      templates.set(name, template);
    }
    return templates;
  }
  throw new CdpoError(
    "FILE",
    `${source}: chat_template is invalid. Expected a string or a list of {name, template} objects.`,
  );
}

/**
 * Renders chat templates, compiling each one once. The template receives `messages`,
 * `add_generation_prompt` and the special-token strings, the variables `transformers` passes
 * apart from tools and documents.
 */
export class ChatTemplateRenderer {
  readonly #templates: Map<string, string>;
  readonly #compiled = new Map<string, Template>();
  readonly #tokens: ChatTemplateTokens;

  constructor(templates: Map<string, string>, tokens: ChatTemplateTokens) {
    this.#templates = templates;
    this.#tokens = tokens;
  }

  /** The template used when no name is given: "default", else the first one listed. */
  get defaultName(): string | null {
    if (this.#templates.has("default")) return "default";
    const first = this.#templates.keys().next();
    return first.done ? null : first.value;
  }

  get names(): string[] {
    return [...this.#templates.keys()];
  }

  source(name?: string): string | null {
    const key = name ?? this.defaultName;
    return key === null ? null : (this.#templates.get(key) ?? null);
  }

  render(messages: ChatMessage[], options: ApplyChatTemplateOptions = {}): string {
    const name = options.templateName ?? this.defaultName;
    if (name === null) {
      throw new CdpoError(
        "STATE",
        "This tokenizer has no chat template. Format prompts with a plain prompt template instead.",
      );
    }
    const source = this.#templates.get(name);
    if (source === undefined) {
      throw new CdpoError(
        "STATE",
        `This tokenizer has no chat template named "${name}". Available: ${this.names.join(", ")}.`,
      );
    }
    let template = this.#compiled.get(name);
    if (template === undefined) {
      template = new Template(source);
      this.#compiled.set(name, template);
    }
    return template.render({
      messages,
      add_generation_prompt: options.addGenerationPrompt ?? false,
      ...this.#tokens,
    });
  }
}
