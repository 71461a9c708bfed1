import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { DEMO_QUICK, runDemo } from "../../src/cdpo/demo.js";
import { readEval, readIterations, readSamples } from "../../src/run/folder.js";

// The quick demo trains five models and takes minutes, so it runs in CI and when asked for.
const enabled = process.env.CI === "true" || process.env.CDPO_DEMO_TEST === "1";

test("quick demo end to end", {
  skip: enabled ? false : "set CDPO_DEMO_TEST=1 to run (minutes)",
}, async (t) => {
  const out = await fs.mkdtemp(path.join(os.tmpdir(), "cdpo-demo-"));
  t.after(() => fs.rm(out, { recursive: true, force: true }));
  const lines: string[] = [];
  const result = await runDemo({
    out,
    settings: DEMO_QUICK,
    progressBars: false,
    log: (l) => lines.push(l),
  });

  // Stage headers and the table were printed.
  assert.equal(lines.filter((l) => /^\n== \[\d\/8\]/.test(l)).length, 8);
  assert.ok(lines.some((l) => l.includes("cdpo iteration 3/3: harm: λ")));
  assert.ok(lines.some((l) => l.startsWith("\nmodel")));

  // The table: four rows with learned scores and oracle columns.
  const table = await readEval(out);
  assert.ok(table !== undefined);
  assert.deepEqual(
    table.rows.map((r) => r.name),
    ["SFT", "DPO (helpful)", "DPO (safe)", "C-DPO"],
  );
  assert.equal(table.limit, result.table.limit);
  for (const row of table.rows) {
    assert.ok(row.oracle !== undefined, row.name);
    assert.ok(row.n_prompts >= 10);
    assert.ok(Number.isFinite(row.cost_mean), row.name);
    assert.ok(row.cost_se > 0, row.name);
  }
  // Training on the safety label alone lowers the cost below training on helpfulness alone.
  const cost = (name: string) => table.rows.find((r) => r.name === name)?.cost_mean as number;
  assert.ok(
    cost("DPO (safe)") < cost("DPO (helpful)"),
    `${cost("DPO (safe)")} vs ${cost("DPO (helpful)")}`,
  );

  // The λ trajectory and the samples are in the run folder, with the report.
  const iterations = await readIterations(out);
  assert.equal(iterations.length, 3);
  assert.equal(iterations[0]?.constraints[0]?.lambda, 0);
  assert.equal(
    (await readSamples(out, 2)).length,
    DEMO_QUICK.cdpo.evalPrompts * DEMO_QUICK.cdpo.samplesPerPrompt,
  );
  assert.ok(existsSync(result.reportPath));
  for (const dir of [
    "sft/final",
    "reward/final",
    "cost/final",
    "dpo-helpful/final",
    "dpo-safe/final",
    "policy",
  ]) {
    assert.ok(existsSync(path.join(out, dir, "model.safetensors")), dir);
  }
});
