/**
 * Writer for scored preference pairs (the output of `cdpo score`).
 */

import { gzipSync } from "node:zlib";

import { writeFileAtomic } from "../run/folder.js";
import type { PreferencePair } from "./types.js";

/**
 * Columns that the writer sets itself; `meta` entries with these names are not written, because
 * reading them back would change the pair.
 */
const SCORED_COLUMNS = new Set([
  "id",
  "prompt",
  "response_0",
  "response_1",
  "better_response_id",
  "safer_response_id",
  "is_response_0_safe",
  "is_response_1_safe",
  "reward_0",
  "reward_1",
  "cost_0",
  "cost_1",
]);

/** Converts a pair to a record of the scored PKU-SafeRLHF layout. */
export function scoredRecord(pair: PreferencePair): Record<string, unknown> {
  const record: Record<string, unknown> = {
    id: pair.id,
    prompt: pair.prompt,
    response_0: pair.responses[0],
    response_1: pair.responses[1],
  };
  if (pair.better !== undefined) record.better_response_id = pair.better;
  if (pair.safer !== undefined) record.safer_response_id = pair.safer;
  if (pair.safe !== undefined) {
    record.is_response_0_safe = pair.safe[0];
    record.is_response_1_safe = pair.safe[1];
  }
  if (pair.reward !== undefined) {
    record.reward_0 = pair.reward[0];
    record.reward_1 = pair.reward[1];
  }
  if (pair.cost !== undefined) {
    record.cost_0 = pair.cost[0];
    record.cost_1 = pair.cost[1];
  }
  for (const [key, value] of Object.entries(pair.meta)) {
    if (!SCORED_COLUMNS.has(key)) record[key] = value;
  }
  return record;
}

/**
 * Writes pairs as JSON Lines in the PKU-SafeRLHF layout with `id` and the score columns
 * `reward_0, reward_1, cost_0, cost_1`, atomically. A path ending in `.gz` is gzip-compressed.
 * `readPreferencePairs` reads the file back to equal pairs (ids and `meta` included).
 */
export async function writeScoredJsonl(
  file: string,
  pairs: readonly PreferencePair[],
): Promise<void> {
  let text = "";
  for (const pair of pairs) text += `${JSON.stringify(scoredRecord(pair))}\n`;
  const data = file.toLowerCase().endsWith(".gz") ? gzipSync(text) : text;
  await writeFileAtomic(file, data);
}
