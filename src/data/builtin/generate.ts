/**
 * Generator of the built-in safety preference dataset (PKU-SafeRLHF layout).
 *
 * Labels make helpfulness and safety pull apart:
 *
 * | prompt  | responses           | better   | safer               | safe labels         |
 * |---------|---------------------|----------|---------------------|---------------------|
 * | benign  | correct vs wrong    | correct  | correct (tie-break) | both safe           |
 * | benign  | correct vs refusal  | correct  | refusal             | both safe           |
 * | harmful | complies vs refusal | complies | refusal             | complying is unsafe |
 *
 * Benign pairs are half of each kind. A policy that refuses everything is safe but unhelpful,
 * and one that complies with everything is helpful but unsafe. The safety label alone favours
 * refusing everything, because a refusal is the safer response on benign prompts too.
 *
 * The output is a pure function of the options: all randomness comes from seeded mulberry32
 * streams.
 */

import path from "node:path";

import { invalidArgument } from "../../errors.js";
import { writeFileAtomic } from "../../run/folder.js";
import { mixSeed, mulberry32 } from "../shuffle.js";
import {
  BENIGN_TEMPLATES,
  COMPLIANCES,
  type ExpectedAnswer,
  fill,
  HARM_CATEGORIES,
  HARMFUL_TEMPLATES,
  type PromptKind,
  type PromptTemplate,
  REFUSALS,
  type Slots,
  slotCombinations,
} from "./templates.js";

export interface BuiltinOptions {
  /** Training pairs (default 4000). */
  train?: number;
  /** Test pairs (default 400). */
  test?: number;
  /** Share of pairs with a harmful prompt, 0 to 1 (default 0.5). */
  harmfulFraction?: number;
  /** Seed of every random choice (default 0). */
  seed?: number;
}

export const BUILTIN_DEFAULTS: Required<BuiltinOptions> = {
  train: 4000,
  test: 400,
  harmfulFraction: 0.5,
  seed: 0,
};

/** One filled prompt of the pool. */
export interface BuiltinPrompt {
  prompt: string;
  kind: PromptKind;
  category: string;
  template: PromptTemplate;
  slots: Slots;
  answer: ExpectedAnswer | null;
}

/** An evaluation prompt as written to `prompts-test.json`. */
export interface BuiltinEvalPrompt {
  prompt: string;
  /** "benign/<category>" or "harmful/<category>". */
  category: string;
  kind: PromptKind;
}

export interface BuiltinDataset {
  /** Records in the PKU-SafeRLHF layout. */
  train: Record<string, unknown>[];
  test: Record<string, unknown>[];
  /** The distinct prompts of the test split. */
  testPrompts: BuiltinEvalPrompt[];
}

type ResponseType = "correct" | "wrong" | "refusal" | "complies";

interface Response {
  text: string;
  type: ResponseType;
}

/** Lists every distinct prompt the templates can produce, in a fixed order. */
export function builtinPromptPool(): { benign: BuiltinPrompt[]; harmful: BuiltinPrompt[] } {
  const build = (templates: readonly PromptTemplate[]) => {
    const prompts: BuiltinPrompt[] = [];
    const seen = new Set<string>();
    for (const template of templates) {
      for (const slots of slotCombinations(template)) {
        const answer = template.answer?.(slots) ?? null;
        if (template.kind === "benign" && answer === null) continue;
        const prompt = fill(template.text, slots);
        if (seen.has(prompt)) continue;
        seen.add(prompt);
        prompts.push({
          prompt,
          kind: template.kind,
          category: template.category,
          template,
          slots,
          answer,
        });
      }
    }
    return prompts;
  };
  return { benign: build(BENIGN_TEMPLATES), harmful: build(HARMFUL_TEMPLATES) };
}

function pick<T>(items: readonly T[], random: () => number): T {
  return items[Math.floor(random() * items.length)] as T;
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

function answerText(answer: ExpectedAnswer): string {
  return answer.type === "number" ? String(answer.value) : answer.value;
}

/** A wrong answer of the same type: a nearby number, or another word of the same table. */
function wrongAnswer(answer: ExpectedAnswer, random: () => number): string {
  if (answer.type === "word") return pick(answer.others, random);
  const offsets = [-3, -2, -1, 1, 2, 3].filter((offset) => answer.value + offset >= 0);
  return String(answer.value + pick(offsets, random));
}

function answerResponse(prompt: BuiltinPrompt, answer: string, random: () => number): string {
  const sentence = pick(prompt.template.responses ?? ["{answer}"], random);
  const text = fill(sentence, { ...prompt.slots, answer });
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function responsePair(prompt: BuiltinPrompt, random: () => number): [Response, Response] {
  const refusal: Response = { text: pick(REFUSALS, random), type: "refusal" };
  if (prompt.kind === "harmful") {
    return [{ text: pick(COMPLIANCES, random), type: "complies" }, refusal];
  }
  const answer = prompt.answer as ExpectedAnswer;
  const correct: Response = {
    text: answerResponse(prompt, answerText(answer), random),
    type: "correct",
  };
  if (random() < 0.5) return [correct, refusal];
  return [
    correct,
    { text: answerResponse(prompt, wrongAnswer(answer, random), random), type: "wrong" },
  ];
}

/** Derives the labels from the response types (see the table in the file comment). */
function labels(responses: [Response, Response]): {
  better: 0 | 1;
  safer: 0 | 1;
  safe: [boolean, boolean];
} {
  const types = responses.map((response) => response.type);
  const better = types[0] === "correct" || types[0] === "complies" ? 0 : 1;
  const refusal = types.indexOf("refusal");
  const safer = refusal === -1 ? better : (refusal as 0 | 1);
  const safe = types.map((type) => type !== "complies") as [boolean, boolean];
  return { better, safer, safe };
}

function pairRecord(prompt: BuiltinPrompt, random: () => number): Record<string, unknown> {
  const ordered = responsePair(prompt, random);
  const responses = (random() < 0.5 ? ordered : [ordered[1], ordered[0]]) as [Response, Response];
  const { better, safer, safe } = labels(responses);
  const record: Record<string, unknown> = {
    prompt: prompt.prompt,
    response_0: responses[0].text,
    response_1: responses[1].text,
    better_response_id: better,
    safer_response_id: safer,
    is_response_0_safe: safe[0],
    is_response_1_safe: safe[1],
    prompt_source: "cdpo-builtin",
    category: `${prompt.kind}/${prompt.category}`,
  };
  for (const index of [0, 1] as const) {
    const harmfulResponse = !safe[index];
    const harmCategories: Record<string, boolean> = {};
    for (const category of HARM_CATEGORIES) {
      harmCategories[category] = harmfulResponse && category === prompt.category;
    }
    record[`response_${index}_type`] = responses[index].type;
    record[`response_${index}_harm_category`] = harmCategories;
    record[`response_${index}_severity_level`] = harmfulResponse
      ? (prompt.template.severity ?? 1)
      : 0;
  }
  return record;
}

function checkOptions(options: Required<BuiltinOptions>): void {
  for (const name of ["train", "test"] as const) {
    const value = options[name];
    if (!Number.isInteger(value) || value < 1) {
      throw invalidArgument("range", name, "a positive integer", value);
    }
  }
  const fraction = options.harmfulFraction;
  if (typeof fraction !== "number" || !(fraction >= 0 && fraction <= 1)) {
    throw invalidArgument("range", "harmfulFraction", "a number from 0 to 1", fraction);
  }
  if (!Number.isInteger(options.seed)) {
    throw invalidArgument("range", "seed", "an integer", options.seed);
  }
}

/** Splits a shuffled pool: the first part (at least one prompt) goes to test. */
function splitPool(
  pool: BuiltinPrompt[],
  testShare: number,
): { train: BuiltinPrompt[]; test: BuiltinPrompt[] } {
  const testCount = Math.min(pool.length - 1, Math.max(1, Math.round(pool.length * testShare)));
  return { test: pool.slice(0, testCount), train: pool.slice(testCount) };
}

function makePairs(
  count: number,
  harmfulFraction: number,
  benign: BuiltinPrompt[],
  harmful: BuiltinPrompt[],
  random: () => number,
): Record<string, unknown>[] {
  const harmfulCount = Math.round(count * harmfulFraction);
  const kinds = shuffle(
    Array.from({ length: count }, (_, i) => (i < harmfulCount ? "harmful" : "benign")),
    random,
  );
  const used = { benign: 0, harmful: 0 };
  return kinds.map((kind) => {
    const pool = kind === "harmful" ? harmful : benign;
    const prompt = pool[used[kind] % pool.length] as BuiltinPrompt;
    used[kind]++;
    return pairRecord(prompt, random);
  });
}

/**
 * Generates the dataset. Train and test use disjoint prompts; within a split, prompts repeat
 * with different responses when there are more pairs than prompts.
 */
export function generateBuiltin(options: BuiltinOptions = {}): BuiltinDataset {
  const resolved: Required<BuiltinOptions> = { ...BUILTIN_DEFAULTS, ...options };
  checkOptions(resolved);
  const { train, test, harmfulFraction, seed } = resolved;

  const poolRandom = mulberry32(mixSeed(seed, 1));
  const pool = builtinPromptPool();
  const testShare = test / (train + test);
  const benign = splitPool(shuffle(pool.benign, poolRandom), testShare);
  const harmful = splitPool(shuffle(pool.harmful, poolRandom), testShare);

  const trainRecords = makePairs(
    train,
    harmfulFraction,
    benign.train,
    harmful.train,
    mulberry32(mixSeed(seed, 2)),
  );
  const testRecords = makePairs(
    test,
    harmfulFraction,
    benign.test,
    harmful.test,
    mulberry32(mixSeed(seed, 3)),
  );

  const testPrompts = shuffle([...benign.test, ...harmful.test], mulberry32(mixSeed(seed, 4))).map(
    (prompt): BuiltinEvalPrompt => ({
      prompt: prompt.prompt,
      category: `${prompt.kind}/${prompt.category}`,
      kind: prompt.kind,
    }),
  );
  return { train: trainRecords, test: testRecords, testPrompts };
}

export interface BuiltinFiles {
  train: string;
  test: string;
  prompts: string;
}

/** Generates the dataset and writes `train.jsonl`, `test.jsonl` and `prompts-test.json`. */
export async function writeBuiltin(
  outDir: string,
  options: BuiltinOptions = {},
): Promise<BuiltinFiles> {
  const dataset = generateBuiltin(options);
  const files: BuiltinFiles = {
    train: path.join(outDir, "train.jsonl"),
    test: path.join(outDir, "test.jsonl"),
    prompts: path.join(outDir, "prompts-test.json"),
  };
  const lines = (records: Record<string, unknown>[]) =>
    records.map((record) => `${JSON.stringify(record)}\n`).join("");
  await writeFileAtomic(files.train, lines(dataset.train));
  await writeFileAtomic(files.test, lines(dataset.test));
  await writeFileAtomic(files.prompts, `${JSON.stringify(dataset.testPrompts, null, 2)}\n`);
  return files;
}
