import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";

import { runCdpo } from "../helpers/cli.js";

const root = mkdtempSync(join(tmpdir(), "cdpo-cli-skip-"));
after(() => rmSync(root, { recursive: true, force: true }));

test("--skip-invalid prints skipped records", async () => {
  const rows: Record<string, string>[] = Array.from({ length: 12 }, (_, i) => ({
    prompt: `Say hi number ${i}.`,
    chosen: `Hi ${i}!`,
    rejected: "No.",
  }));
  rows[3]!.chosen = "";
  rows[7] = { prompt: "x" };
  const data = join(root, "pairs.jsonl");
  writeFileSync(data, rows.map((row) => JSON.stringify(row)).join("\n"));
  const args = ["sft", "--init", "tiny", "--data", data, "--steps", "1", "--batch-size", "2"];
  const flags = ["--threads", "1", "--no-progress", "--out", join(root, "run")];

  const strict = await runCdpo([...args, ...flags]);
  assert.equal(strict.code, 1);
  assert.match(
    strict.stderr,
    /pairs\.jsonl, line 4 \(row 3\): the response in field chosen is empty/,
  );

  const lenient = await runCdpo([...args, "--skip-invalid", ...flags]);
  assert.equal(lenient.code, 0, lenient.stderr);
  const lines = lenient.stdout.split("\n");
  assert.equal(lines[0], "cdpo sft: 2 invalid records skipped: 1 empty-response, 1 missing-field");
  assert.match(lines[1]!, /pairs\.jsonl, line 4 \(row 3\): the response in field chosen is empty/);
  assert.match(lines[2]!, /pairs\.jsonl, line 8 \(row 7\): field "chosen" is missing/);
  assert.match(lenient.stdout, /cdpo sft: \d+ training pairs/);
});
