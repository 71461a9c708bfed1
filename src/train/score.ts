/**
 * `cdpo score`: per-response reward and cost scores of a preference file, written in the scored
 * PKU-SafeRLHF layout (`reward_0, reward_1, cost_0, cost_1`) that the data readers accept.
 */
import { padIdFor } from "../data/batch.js";
import type { DataIssue } from "../data/issues.js";
import { readPreferencePairs } from "../data/read.js";
import { type SequenceInput, tokenizeSequences } from "../data/tokenize.js";
import type { Layout, PreferencePair } from "../data/types.js";
import { writeScoredJsonl } from "../data/write.js";
import { CdpoError } from "../errors.js";
import * as torch from "../tensor/index.js";
import { loadTokenizer } from "../tokenizer/index.js";
import { sequenceScores } from "./forward.js";
import { sequenceLayout } from "./layout.js";
import { loadModelFolder } from "./models.js";

export interface ScoreOptions {
  /** Reward model folder; at least one of reward and cost. */
  reward?: string;
  /** Cost model folder. */
  cost?: string;
  /** Preference file to score. */
  data: string;
  /** Layout of `data` (default: detected). A safety-ranked file needs "ranked-safety". */
  dataFormat?: Layout;
  /** Skip invalid records instead of stopping at the first one; they are counted in `skipped`. */
  skipInvalid?: boolean;
  /** Output JSON Lines file (`.gz` compresses). */
  out: string;
  /** Sequences per forward pass (default 16). */
  batchSize?: number;
  /** Maximum tokens of prompt + response (default 512); longer responses are cut. */
  maxLength?: number;
  precision?: "fp32" | "bf16";
}

/** Scores every response of a preference file with a score model: [score0, score1] per pair. */
export async function scoreResponses(
  modelDir: string,
  pairs: readonly PreferencePair[],
  options: { batchSize: number; maxLength: number; precision: "fp32" | "bf16" },
): Promise<Map<string, [number, number]>> {
  const model = await loadModelFolder(modelDir, "score", 0, { allowNewHead: false });
  try {
    const tokenizer = await loadTokenizer(modelDir);
    const inputs: SequenceInput[] = pairs.flatMap((pair) =>
      [0, 1].map((k) => ({
        id: `${pair.id}\u0000${k}`,
        prompt: pair.prompt,
        response: pair.responses[k as 0 | 1],
      })),
    );
    const { examples, skipped } = tokenizeSequences(inputs, tokenizer, {
      maxLength: options.maxLength,
      maxPromptLength: Math.max(1, Math.floor(options.maxLength / 2)),
    });
    if (skipped.length > 0) {
      const first = skipped[0]!;
      throw new CdpoError(
        "DATA",
        `${skipped.length} responses cannot be scored (first: pair ${JSON.stringify(first.id.split("\u0000")[0])}, ` +
          `${first.reason}); raise --max-length`,
      );
    }
    model.train(false);
    const padId = padIdFor(tokenizer);
    const scores = new Map<string, number>();
    for (let start = 0; start < examples.length; start += options.batchSize) {
      const batch = examples.slice(start, start + options.batchSize);
      const forward = () =>
        torch.inferenceMode(() =>
          torch.tidy(() => sequenceScores(model, sequenceLayout(batch, padId)).toFloat32Array()),
        );
      const values =
        options.precision === "bf16" ? torch.autocast(forward, { dtype: "bfloat16" }) : forward();
      for (const [i, example] of batch.entries()) scores.set(example.id, values[i]!);
    }
    const result = new Map<string, [number, number]>();
    for (const pair of pairs) {
      result.set(pair.id, [scores.get(`${pair.id}\u00000`)!, scores.get(`${pair.id}\u00001`)!]);
    }
    return result;
  } finally {
    model.dispose();
  }
}

/** Scores a preference file with a reward and/or a cost model and writes the scored file. */
export async function scoreFile(
  options: ScoreOptions,
): Promise<{ pairs: number; out: string; skipped: DataIssue[] }> {
  if (options.reward === undefined && options.cost === undefined) {
    throw new CdpoError("CONFIG", "cdpo score needs --reward DIR, --cost DIR or both");
  }
  const settings = {
    batchSize: options.batchSize ?? 16,
    maxLength: options.maxLength ?? 512,
    precision: options.precision ?? "fp32",
  };
  const read = await readPreferencePairs(options.data, {
    skipInvalid: options.skipInvalid ?? false,
    ...(options.dataFormat === undefined ? {} : { format: options.dataFormat }),
  });
  const pairs = read.pairs;
  const rewards =
    options.reward === undefined
      ? undefined
      : await scoreResponses(options.reward, pairs, settings);
  const costs =
    options.cost === undefined ? undefined : await scoreResponses(options.cost, pairs, settings);
  const scored = pairs.map((pair) => {
    const next: PreferencePair = { ...pair };
    const reward = rewards?.get(pair.id);
    const cost = costs?.get(pair.id);
    if (reward !== undefined) next.reward = reward;
    if (cost !== undefined) next.cost = cost;
    return next;
  });
  await writeScoredJsonl(options.out, scored);
  return { pairs: scored.length, out: options.out, skipped: read.issues };
}
