/**
 * HTML escaping and number formatting for the report.
 *
 * Prompts, responses, model names and config values come from datasets and models, so every
 * piece of text that goes into the page passes through {@link escapeHtml}. The page also forbids
 * scripts with a Content-Security-Policy, but that is a second line of defense, not the first.
 */

const HTML_ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/**
 * Escapes `text` for use in HTML text content and in quoted attribute values.
 *
 * Replaces `& < > " '` with character references, so that `<script>`, `</textarea>` or
 * `<img onerror=...>` in model output shows as text. Also replaces NUL, which HTML parsers
 * drop or replace inconsistently, with U+FFFD.
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => HTML_ESCAPES[char] ?? char).replace(/\0/g, "\uFFFD");
}

/**
 * Formats a number for tables: 4 significant digits, switching to exponent notation below 1e-3
 * and above 1e6 in absolute value. `null` and non-finite values show as "n/a".
 */
export function formatNumber(value: number | null | undefined, digits = 4): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "n/a";
  if (value === 0) return "0";
  const magnitude = Math.abs(value);
  if (magnitude < 1e-3 || magnitude >= 1e6) return value.toExponential(digits - 1);
  // toPrecision then Number drops trailing zeros: 0.5000 -> 0.5.
  return String(Number(value.toPrecision(digits)));
}

/** Formats `mean ± se`, or just the mean when the standard error is missing. */
export function formatMeanSe(
  mean: number | null | undefined,
  se: number | null | undefined,
): string {
  if (se === null || se === undefined || !Number.isFinite(se)) return formatNumber(mean);
  return `${formatNumber(mean)} ± ${formatNumber(se)}`;
}

/** Formats a share in [0, 1] as a percentage with one decimal: 0.1234 -> "12.3%". */
export function formatShare(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "n/a";
  return `${(value * 100).toFixed(1)}%`;
}

/** Formats a share with its standard error as percentages: "12.3% ± 1.5%". */
export function formatShareSe(
  value: number | null | undefined,
  se: number | null | undefined,
): string {
  if (se === null || se === undefined || !Number.isFinite(se)) return formatShare(value);
  return `${formatShare(value)} ± ${formatShare(se)}`;
}
