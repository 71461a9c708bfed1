/**
 * Page shell, styles and small HTML builders shared by the run report and the comparison report.
 *
 * Every builder here takes plain text and escapes it, except the arguments typed as {@link Html},
 * which are markup built by these builders or SVG rendered by vega (which escapes its own text).
 */
import type { RenderedChart } from "./charts.js";
import { escapeHtml } from "./escape.js";

/** Markup that is already safe to insert: built here from escaped text, or rendered by vega. */
export interface Html {
  readonly html: string;
}

/** Wraps markup produced by trusted code; never call it on dataset, model or config text. */
export function trusted(html: string): Html {
  return { html };
}

/** Escapes `text` into {@link Html}. */
export function text(value: string): Html {
  return { html: escapeHtml(value) };
}

/** Joins fragments. */
export function join(parts: readonly Html[], separator = ""): Html {
  return { html: parts.map((part) => part.html).join(separator) };
}

/** Builds `<tag class="...">content</tag>` with escaped attributes. */
export function element(
  tag: string,
  attributes: Record<string, string | undefined>,
  content: Html | string = "",
): Html {
  const attrs = Object.entries(attributes)
    .filter((entry): entry is [string, string] => entry[1] !== undefined)
    .map(([name, value]) => ` ${name}="${escapeHtml(value)}"`)
    .join("");
  const inner = typeof content === "string" ? escapeHtml(content) : content.html;
  return { html: `<${tag}${attrs}>${inner}</${tag}>` };
}

/** Pass or fail badge. */
export function badge(pass: boolean, label?: string): Html {
  return element(
    "span",
    { class: pass ? "badge pass" : "badge fail" },
    label ?? (pass ? "PASS" : "FAIL"),
  );
}

/** A table cell: plain text, or markup, with an optional class. */
export type Cell = string | Html | { content: string | Html; class?: string };

/** Builds a table with a header row. Text cells are escaped. */
export function table(
  headers: readonly string[],
  rows: readonly (readonly Cell[])[],
  className?: string,
): Html {
  const head = element("tr", {}, join(headers.map((header) => element("th", {}, header))));
  const body = rows.map((row) =>
    element(
      "tr",
      {},
      join(
        row.map((cell) => {
          if (typeof cell === "string") return element("td", {}, cell);
          if ("html" in cell) return element("td", {}, cell);
          return element("td", { class: cell.class }, cell.content);
        }),
      ),
    ),
  );
  return element(
    "table",
    { class: className },
    join([element("thead", {}, head), element("tbody", {}, join(body))]),
  );
}

/** Builds a chart figure: title, the SVG, and a caption with the description. */
export function figure(chart: RenderedChart): Html {
  return element(
    "figure",
    { class: "chart", "data-chart": chart.id },
    join([
      element("h3", {}, chart.title),
      trusted(chart.svg),
      element("figcaption", {}, chart.description),
    ]),
  );
}

/** Builds a grid of chart figures. */
export function chartGrid(charts: readonly RenderedChart[]): Html {
  return element("div", { class: "grid" }, join(charts.map(figure)));
}

/** Builds a section with a heading. */
export function section(id: string, heading: string, content: Html): Html {
  return element("section", { id }, join([element("h2", {}, heading), content]));
}

// Scripts, external fonts, stylesheets and images are all blocked: the page is static, and an
// escaping bug could at worst show markup, never run it.
const CONTENT_SECURITY_POLICY =
  "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; " +
  "form-action 'none'";

const STYLES = `
:root { --fg: #1d2127; --muted: #5b6470; --line: #dde1e6; --bg-soft: #f5f7f9;
  --pass: #1e7b34; --pass-bg: #e3f4e7; --fail: #a61b1b; --fail-bg: #fbe5e5; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
  margin: 0 auto; padding: 24px 32px 48px; max-width: 1400px; line-height: 1.45; }
header { border-bottom: 2px solid var(--line); padding-bottom: 12px; margin-bottom: 16px; }
h1 { font-size: 1.6rem; margin: 0 0 8px; word-break: break-all; }
h2 { font-size: 1.25rem; margin: 28px 0 12px; border-bottom: 1px solid var(--line);
  padding-bottom: 4px; }
h3 { font-size: 1rem; margin: 0 0 6px; }
.summary { display: flex; flex-wrap: wrap; gap: 8px 28px; margin: 0; }
.summary div { min-width: 120px; }
.summary dt { font-size: 0.8rem; color: var(--muted); font-weight: 600; }
.summary dd { margin: 0; font-size: 1.05rem; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; font-size: 0.78rem; font-weight: 700; padding: 1px 8px;
  border-radius: 10px; margin-left: 6px; vertical-align: 1px; }
.badge.pass { color: var(--pass); background: var(--pass-bg); }
.badge.fail { color: var(--fail); background: var(--fail-bg); }
.notes { background: var(--bg-soft); border-left: 4px solid #c9a227; padding: 8px 14px;
  margin: 12px 0; }
.notes ul { margin: 4px 0; padding-left: 20px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(480px, 1fr)); gap: 20px; }
figure.chart { margin: 0; padding: 12px; border: 1px solid var(--line); border-radius: 6px;
  background: #fff; overflow-x: auto; }
figure.chart svg { max-width: 100%; height: auto; display: block; }
figcaption { font-size: 0.82rem; color: var(--muted); margin-top: 4px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 0.9rem;
  font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 12px; text-align: left;
  vertical-align: top; }
th { background: var(--bg-soft); font-weight: 600; }
td.num { text-align: right; white-space: nowrap; }
td.path { font-family: ui-monospace, monospace; font-size: 0.8rem; overflow-wrap: anywhere;
  min-width: 10em; }
td.pass { color: var(--pass); } td.fail { color: var(--fail); font-weight: 600; }
details { border: 1px solid var(--line); border-radius: 6px; margin: 8px 0; padding: 6px 12px; }
details > summary { cursor: pointer; font-weight: 600; }
.sample { border-top: 1px solid var(--line); padding: 8px 0; }
.sample:first-of-type { border-top: none; }
.sample .scores { font-size: 0.85rem; color: var(--muted); font-variant-numeric: tabular-nums; }
.sample pre, pre.config { white-space: pre-wrap; word-break: break-word; background: var(--bg-soft);
  padding: 8px 10px; border-radius: 4px; margin: 4px 0; max-height: 24em; overflow: auto;
  font-size: 0.85rem; }
.label { font-size: 0.8rem; color: var(--muted); font-weight: 600; }
footer { margin-top: 32px; font-size: 0.8rem; color: var(--muted); }
`;

/** Builds the whole HTML document. `title` is text; `body` is markup. */
export function page(title: string, body: Html): string {
  return [
    "<!doctype html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="${CONTENT_SECURITY_POLICY}">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="generator" content="cdpo report">',
    `<title>${escapeHtml(title)}</title>`,
    `<style>${STYLES}</style>`,
    "</head>",
    `<body>${body.html}</body>`,
    "</html>",
    "",
  ].join("\n");
}
