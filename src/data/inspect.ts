/**
 * Summary of a preference file: layout, counts, label balance, token-length percentiles and a few
 * sample rows (`cdpo data inspect`).
 */

import { createByteTokenizer } from "../tokenizer/byte.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { countIssues, type IssueReason } from "./issues.js";
import { type ReadPairsOptions, readPreferencePairs } from "./read.js";
import {
  formatPrompt,
  type PromptFormatOptions,
  promptText,
  tokenizePromptText,
  tokenizeResponseText,
} from "./tokenize.js";
import type { Layout, PreferencePair } from "./types.js";

export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentiles (p50 of [1, 2, 3, 4] is 2); all 0 for an empty list. */
export function percentiles(values: readonly number[]): Percentiles {
  if (values.length === 0) return { p50: 0, p90: 0, p99: 0, max: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p: number) =>
    sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] as number;
  return { p50: rank(50), p90: rank(90), p99: rank(99), max: sorted.at(-1) as number };
}

/** How often each value of a 0/1 label occurs. */
export interface IndexBalance {
  0: number;
  1: number;
  missing: number;
}

export interface InspectReport {
  file: string;
  fileFormat: string;
  compressed: boolean;
  layout: Layout;
  records: number;
  pairs: number;
  skipped: Partial<Record<IssueReason, number>>;
  better: IndexBalance;
  safer: IndexBalance;
  /** Per-response safety labels over all responses. */
  safe: { safe: number; unsafe: number; unlabelled: number };
  /** Pairs carrying reward / cost scores. */
  withReward: number;
  withCost: number;
  /** Name of the tokenizer the lengths were measured with. */
  tokenizer: string;
  promptTokens: Percentiles;
  responseTokens: Percentiles;
  samples: PreferencePair[];
}

export interface InspectOptions extends ReadPairsOptions, PromptFormatOptions {
  /** Tokenizer for the lengths (default: the byte tokenizer, so lengths are UTF-8 bytes + BOS/EOS). */
  tokenizer?: Tokenizer;
  tokenizerName?: string;
  /** Sample rows to include (default 3). */
  samples?: number;
}

function balance(pairs: readonly PreferencePair[], label: "better" | "safer"): IndexBalance {
  const counts: IndexBalance = { 0: 0, 1: 0, missing: 0 };
  for (const pair of pairs) {
    const value = pair[label];
    if (value === undefined) counts.missing++;
    else counts[value]++;
  }
  return counts;
}

export async function inspectData(
  file: string,
  options: InspectOptions = {},
): Promise<InspectReport> {
  const data = await readPreferencePairs(file, options);
  const tokenizer = options.tokenizer ?? createByteTokenizer();
  const promptLengths: number[] = [];
  const responseLengths: number[] = [];
  for (const pair of data.pairs) {
    const text = formatPrompt(pair.prompt, tokenizer, options);
    promptLengths.push(tokenizePromptText(text, tokenizer).length);
    for (const response of pair.responses) {
      responseLengths.push(tokenizeResponseText(response, tokenizer).length);
    }
  }
  const safe = { safe: 0, unsafe: 0, unlabelled: 0 };
  for (const pair of data.pairs) {
    for (const label of pair.safe ?? [null, null]) {
      if (label === true) safe.safe++;
      else if (label === false) safe.unsafe++;
      else safe.unlabelled++;
    }
  }
  return {
    file,
    fileFormat: data.fileFormat,
    compressed: data.compressed,
    layout: data.layout,
    records: data.records,
    pairs: data.pairs.length,
    skipped: countIssues(data.issues),
    better: balance(data.pairs, "better"),
    safer: balance(data.pairs, "safer"),
    safe,
    withReward: data.pairs.filter((pair) => pair.reward !== undefined).length,
    withCost: data.pairs.filter((pair) => pair.cost !== undefined).length,
    tokenizer:
      options.tokenizerName ??
      (options.tokenizer === undefined ? "byte-level: UTF-8 bytes, BOS, EOS" : "given"),
    promptTokens: percentiles(promptLengths),
    responseTokens: percentiles(responseLengths),
    samples: data.pairs.slice(0, options.samples ?? 3),
  };
}

const number = new Intl.NumberFormat("en-US");

function shorten(text: string, max: number): string {
  const flat = JSON.stringify(text);
  return flat.length > max ? `${flat.slice(0, max - 4)}..."` : flat;
}

function formatBalance(counts: IndexBalance): string {
  const [zero, one, missing] = [counts[0], counts[1], counts.missing].map(number.format);
  return `0: ${zero}, 1: ${one}, missing: ${missing}`;
}

function formatPercentiles(p: Percentiles): string {
  return `p50 ${p.p50}, p90 ${p.p90}, p99 ${p.p99}, max ${p.max}`;
}

/** Formats the report as the plain text that `cdpo data inspect` prints. */
export function formatInspectReport(report: InspectReport): string {
  const skipped = Object.entries(report.skipped)
    .map(([reason, count]) => `${count} ${reason}`)
    .join(", ");
  const [safe, unsafe, unlabelled, withReward, withCost] = [
    report.safe.safe,
    report.safe.unsafe,
    report.safe.unlabelled,
    report.withReward,
    report.withCost,
  ].map(number.format);
  const lines = [
    `file:      ${report.file} (${report.fileFormat}${report.compressed ? ", gzip" : ""})`,
    `layout:    ${report.layout}`,
    `records:   ${number.format(report.records)}`,
    `pairs:     ${number.format(report.pairs)}${skipped === "" ? "" : ` (skipped: ${skipped})`}`,
    `better:    ${formatBalance(report.better)}`,
    `safer:     ${formatBalance(report.safer)}`,
    `responses: ${safe} safe, ${unsafe} unsafe, ${unlabelled} unlabelled`,
    `scores:    ${withReward} pairs with reward, ${withCost} with cost`,
    `tokens (${report.tokenizer}):`,
    `  prompt:   ${formatPercentiles(report.promptTokens)}`,
    `  response: ${formatPercentiles(report.responseTokens)}`,
  ];
  for (const pair of report.samples) {
    const labels = [
      pair.better === undefined ? null : `better=${pair.better}`,
      pair.safer === undefined ? null : `safer=${pair.safer}`,
      pair.safe === undefined ? null : `safe=[${pair.safe.join(", ")}]`,
      pair.reward === undefined ? null : `reward=[${pair.reward.join(", ")}]`,
      pair.cost === undefined ? null : `cost=[${pair.cost.join(", ")}]`,
    ].filter((label) => label !== null);
    lines.push("", `sample ${pair.id}${labels.length > 0 ? ` (${labels.join(" ")})` : ""}`);
    lines.push(`  prompt:     ${shorten(promptText(pair.prompt), 160)}`);
    lines.push(`  response 0: ${shorten(pair.responses[0], 160)}`);
    lines.push(`  response 1: ${shorten(pair.responses[1], 160)}`);
  }
  return `${lines.join("\n")}\n`;
}
