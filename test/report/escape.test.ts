import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  escapeHtml,
  formatMeanSe,
  formatNumber,
  formatShare,
  formatShareSe,
} from "../../src/report/escape.js";
import { element, join, table, text } from "../../src/report/html.js";

describe("escapeHtml", () => {
  test("escapes markup characters", () => {
    assert.equal(escapeHtml("<script>alert(1)</script>"), "&lt;script&gt;alert(1)&lt;/script&gt;");
    assert.equal(escapeHtml("</textarea>"), "&lt;/textarea&gt;");
    assert.equal(
      escapeHtml(`<img src=x onerror="alert('x')">`),
      "&lt;img src=x onerror=&quot;alert(&#39;x&#39;)&quot;&gt;",
    );
    assert.equal(escapeHtml("a & b"), "a &amp; b");
  });

  test("escapes an existing entity again", () => {
    assert.equal(escapeHtml("&lt;"), "&amp;lt;");
  });

  test("replaces NUL and keeps other text", () => {
    assert.equal(escapeHtml("a\0b"), "a\uFFFDb");
    assert.equal(escapeHtml("λ ≤ 0.1\nnew line\ttab"), "λ ≤ 0.1\nnew line\ttab");
  });

  test("builders escape text and attributes", () => {
    const html = element(
      "div",
      { class: 'x" onclick="alert(1)', "data-id": "<id>" },
      "<b>hi</b>",
    ).html;
    assert.equal(
      html,
      '<div class="x&quot; onclick=&quot;alert(1)" data-id="&lt;id&gt;">&lt;b&gt;hi&lt;/b&gt;</div>',
    );
    assert.equal(join([text("<a>"), text("&")], "|").html, "&lt;a&gt;|&amp;");
    const rendered = table(["<h>"], [["<c>", { content: "<d>", class: "num" }]]).html;
    assert.ok(rendered.includes("<th>&lt;h&gt;</th>"));
    assert.ok(rendered.includes("<td>&lt;c&gt;</td>"));
    assert.ok(rendered.includes('<td class="num">&lt;d&gt;</td>'));
    assert.ok(!rendered.includes("<c>"));
  });
});

describe("number formatting", () => {
  test("formatNumber", () => {
    assert.equal(formatNumber(0.123456), "0.1235");
    assert.equal(formatNumber(0.5), "0.5");
    assert.equal(formatNumber(-2), "-2");
    assert.equal(formatNumber(0), "0");
    assert.equal(formatNumber(12345.678), "12350");
    assert.equal(formatNumber(2e-5), "2.000e-5");
    assert.equal(formatNumber(3e7), "3.000e+7");
    assert.equal(formatNumber(Number.NaN), "n/a");
    assert.equal(formatNumber(null), "n/a");
    assert.equal(formatNumber(undefined), "n/a");
  });

  test("mean and share helpers", () => {
    assert.equal(formatMeanSe(1.5, 0.25), "1.5 ± 0.25");
    assert.equal(formatMeanSe(1.5, undefined), "1.5");
    assert.equal(formatShare(0.1234), "12.3%");
    assert.equal(formatShareSe(0.5, 0.031), "50.0% ± 3.1%");
    assert.equal(formatShare(Number.POSITIVE_INFINITY), "n/a");
  });
});
