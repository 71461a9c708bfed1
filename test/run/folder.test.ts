import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { appendFile, readdir, readFile, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { CdpoError } from "../../src/errors.js";
import {
  appendIteration,
  appendMetrics,
  createRunFolder,
  listSampleIterations,
  parseJsonLines,
  readConfig,
  readEval,
  readIterations,
  readMetrics,
  readMetricsFile,
  readSamples,
  readVersions,
  runPaths,
  samplesPath,
  writeEval,
  writeFileAtomic,
  writeJsonAtomic,
  writeSamples,
} from "../../src/run/folder.js";
import { getMetric, METRICS, MetricsRecordSchema, metricInfo } from "../../src/run/records.js";
import { makeTempDir, removeTempDir } from "../report/fixture.js";

let root: string;
before(async () => {
  root = await makeTempDir("run-folder");
});
after(async () => {
  await removeTempDir(root);
});

let counter = 0;
async function freshRun(config: Record<string, unknown> = { stage: "dpo" }): Promise<string> {
  const dir = path.join(root, `run-${counter++}`);
  await createRunFolder(dir, config, { versions: { libtorch: "2.5.1" } });
  return dir;
}

const iterationRecord = {
  iteration: 0,
  step: 10,
  constraints: [
    {
      name: "harm",
      limit: 0,
      lambda: 1,
      lambda_next: 1.2,
      cost_mean: 0.5,
      cost_se: 0.1,
      unsafe_share: 0.4,
    },
  ],
  reward_mean: 1.5,
  reward_se: 0.2,
  kl: 0.03,
  dpo: { loss: 0.6, "rewards/accuracies": 0.7 },
};

describe("createRunFolder", () => {
  test("writes config and versions", async () => {
    const dir = await freshRun({ stage: "sft", lr: 2e-5, nested: { a: [1, 2] } });
    assert.deepEqual(await readConfig(dir), { stage: "sft", lr: 2e-5, nested: { a: [1, 2] } });
    const versions = await readVersions(dir);
    assert.equal(versions?.libtorch, "2.5.1");
    assert.equal(versions?.node, process.versions.node);
    // Found by walking up from src/run (tsx) or dist/src/run (compiled) to cdpo's package.json.
    assert.match(versions?.cdpo ?? "", /^\d+\.\d+\.\d+/);
  });

  test("fails on a folder with records", async () => {
    const dir = await freshRun();
    await appendMetrics(dir, { step: 1, phase: "dpo", loss: 0.5 });
    await assert.rejects(createRunFolder(dir, {}), (error: unknown) => {
      assert.ok(error instanceof CdpoError);
      assert.equal(error.code, "STATE");
      assert.match(error.message, /metrics\.jsonl/);
      assert.match(error.message, /continue the run with --resume/);
      return true;
    });
  });

  test("append keeps records, replace deletes them", async () => {
    const dir = await freshRun();
    await appendMetrics(dir, { step: 1, phase: "dpo", loss: 0.5 });
    await writeFile(path.join(dir, "checkpoint.bin"), "weights");
    await createRunFolder(dir, { resumed: true }, { existing: "append" });
    assert.equal((await readMetrics(dir)).length, 1);
    assert.deepEqual(await readConfig(dir), { resumed: true });
    await createRunFolder(dir, {}, { existing: "replace" });
    assert.deepEqual(await readMetrics(dir), []);
    assert.equal(await readFile(path.join(dir, "checkpoint.bin"), "utf8"), "weights");
  });

  test("rejects an unknown existing mode", async () => {
    await assert.rejects(
      createRunFolder(path.join(root, "bad-mode"), {}, { existing: "keep" as "append" }),
      /Expected "fail", "append" or "replace" for options.existing but received "keep"/,
    );
  });
});

describe("metrics.jsonl", () => {
  test("round-trips records in order", async () => {
    const dir = await freshRun();
    await appendMetrics(dir, {
      step: 1,
      phase: "dpo",
      iteration: 0,
      epoch: 0.25,
      loss: 0.69,
      "rewards/accuracies": 0.5,
    });
    await appendMetrics(dir, {
      step: 2,
      phase: "dpo",
      eval_loss: 0.7,
      time: "2025-01-01T00:00:00.000Z",
    });
    const records = await readMetrics(dir);
    assert.equal(records.length, 2);
    assert.equal(records[0]?.step, 1);
    assert.equal(records[0]?.iteration, 0);
    assert.equal(records[0]?.epoch, 0.25);
    assert.equal(getMetric(records[0]!, "loss"), 0.69);
    assert.equal(getMetric(records[0]!, "rewards/accuracies"), 0.5);
    assert.equal(getMetric(records[0]!, "phase"), undefined);
    assert.equal(getMetric(records[1]!, "eval_loss"), 0.7);
    assert.equal(records[1]?.time, "2025-01-01T00:00:00.000Z");
    assert.ok(!Number.isNaN(Date.parse(records[0]!.time)));
  });

  test("stores non-finite values as null", async () => {
    const dir = await freshRun();
    await appendMetrics(dir, { step: 3, phase: "dpo", loss: Number.NaN, grad_norm: Infinity });
    const [record] = await readMetrics(dir);
    assert.equal(getMetric(record!, "loss"), null);
    assert.equal(getMetric(record!, "grad_norm"), null);
  });

  test("rejects invalid records on write", async () => {
    const dir = await freshRun();
    await assert.rejects(appendMetrics(dir, { step: -1, phase: "dpo" }), (error: unknown) => {
      assert.ok(error instanceof TypeError);
      assert.match(error.message, /Invalid metrics record: field "step"/);
      return true;
    });
    await assert.rejects(
      appendMetrics(dir, { step: 1, phase: "dpo", loss: "low" }),
      /field "loss"/,
    );
    assert.deepEqual(await readMetrics(dir), []);
  });

  test("skips a truncated last line", async () => {
    const dir = await freshRun();
    await appendMetrics(dir, { step: 1, phase: "dpo", loss: 0.6 });
    await appendMetrics(dir, { step: 2, phase: "dpo", loss: 0.5 });
    await appendFile(runPaths(dir).metrics, '{"step":3,"phase":"dpo","lo');
    const result = await readMetricsFile(dir);
    assert.equal(result.records.length, 2);
    assert.equal(result.truncatedLine, 3);
    assert.deepEqual(
      (await readMetrics(dir)).map((record) => record.step),
      [1, 2],
    );
  });

  test("reports a bad middle line with file and line", async () => {
    const dir = await freshRun();
    await appendMetrics(dir, { step: 1, phase: "dpo", loss: 0.6 });
    await appendFile(runPaths(dir).metrics, "{not json\n");
    await appendMetrics(dir, { step: 2, phase: "dpo", loss: 0.5 });
    await assert.rejects(readMetrics(dir), (error: unknown) => {
      assert.ok(error instanceof CdpoError);
      assert.equal(error.code, "DATA");
      assert.ok(
        error.message.startsWith(`${runPaths(dir).metrics}:2: invalid JSON`),
        error.message,
      );
      return true;
    });
  });

  test("reports a truncated line followed by a newline", async () => {
    // A complete line (newline-terminated) that is cut is corruption, not a killed append.
    const text = '{"step":1,"phase":"dpo","time":"2025-01-01T00:00:00Z"}\n{"step":2,"pha\n';
    assert.throws(
      () => parseJsonLines(text, "m.jsonl", MetricsRecordSchema, "metrics"),
      /m\.jsonl:2: invalid JSON/,
    );
  });

  test("reports the field of a schema error", () => {
    const text =
      '{"step":1,"phase":"dpo","time":"2025-01-01T00:00:00Z"}\n\n' +
      '{"step":2.5,"phase":"dpo","time":"2025-01-01T00:00:00Z"}\n';
    assert.throws(
      () => parseJsonLines(text, "m.jsonl", MetricsRecordSchema, "metrics"),
      /^CdpoError: m\.jsonl:3: invalid metrics record: field "step": .*int/,
    );
  });

  test("accepts a last line without newline", () => {
    const text = '{"step":1,"phase":"sft","time":"2025-01-01T00:00:00Z","loss":1}';
    const result = parseJsonLines(text, "m.jsonl", MetricsRecordSchema, "metrics");
    assert.equal(result.records.length, 1);
    assert.equal(result.truncatedLine, undefined);
  });

  test("returns [] when the file is absent", async () => {
    const dir = await freshRun();
    assert.deepEqual(await readMetrics(dir), []);
  });

  test("fails when the run folder is missing", async () => {
    await assert.rejects(readMetrics(path.join(root, "missing")), (error: unknown) => {
      assert.ok(error instanceof CdpoError);
      assert.equal(error.code, "FILE");
      assert.match(error.message, /Run folder not found: .*missing/);
      return true;
    });
  });
});

describe("iterations.jsonl", () => {
  test("round-trips and validates", async () => {
    const dir = await freshRun();
    await appendIteration(dir, iterationRecord);
    await appendIteration(dir, { ...iterationRecord, iteration: 1, step: 20 });
    const records = await readIterations(dir);
    assert.deepEqual(
      records.map((record) => [record.iteration, record.step]),
      [
        [0, 10],
        [1, 20],
      ],
    );
    assert.equal(records[0]?.constraints[0]?.lambda_next, 1.2);
    assert.equal(records[0]?.dpo["rewards/accuracies"], 0.7);
    await assert.rejects(
      appendIteration(dir, {
        ...iterationRecord,
        constraints: [{ ...iterationRecord.constraints[0]!, unsafe_share: 1.5 }],
      }),
      /field "constraints\.0\.unsafe_share"/,
    );
    await assert.rejects(
      appendIteration(dir, { ...iterationRecord, constraints: [] }),
      /constraints/,
    );
  });
});

describe("samples", () => {
  test("write, list and read per iteration", async () => {
    const dir = await freshRun();
    const sample = { prompt_id: "a", prompt: "p", response: "<b>r</b>", reward: 1, costs: [0.5] };
    const file = await writeSamples(dir, 3, [sample, { ...sample, prompt_id: "b" }]);
    assert.equal(file, samplesPath(dir, 3));
    assert.equal(path.basename(file), "iteration-0003.jsonl");
    await writeSamples(dir, 12, []);
    assert.deepEqual(await listSampleIterations(dir), [3, 12]);
    assert.deepEqual(await readSamples(dir, 3), [sample, { ...sample, prompt_id: "b" }]);
    assert.deepEqual(await readSamples(dir, 12), []);
    assert.deepEqual(await readSamples(dir, 4), []);
    await assert.rejects(
      writeSamples(dir, 1, [{ ...sample, costs: ["x" as unknown as number] }]),
      /Invalid sample 0: field "costs\.0"/,
    );
    assert.throws(() => samplesPath(dir, -1), RangeError);
  });
});

describe("eval.json", () => {
  test("round-trips and rejects bad rows", async () => {
    const dir = await freshRun();
    assert.equal(await readEval(dir), undefined);
    const table = {
      limit: 0,
      prompts: "eval.jsonl",
      rows: [
        {
          name: "C-DPO",
          model_dir: "m",
          n_prompts: 10,
          reward_mean: 1,
          reward_se: 0.1,
          cost_mean: -0.2,
          cost_se: 0.05,
          unsafe_share: 0.2,
          unsafe_share_se: 0.04,
        },
      ],
    };
    await writeEval(dir, table);
    assert.deepEqual(await readEval(dir), table);
    await writeFile(runPaths(dir).eval, JSON.stringify({ ...table, rows: [{ name: "x" }] }));
    await assert.rejects(
      readEval(dir),
      /eval\.json: invalid eval table: field "rows\.0\.model_dir"/,
    );
  });
});

describe("atomic writes", () => {
  test("leave no temporary files", async () => {
    const dir = path.join(root, "atomic", "nested");
    const file = path.join(dir, "a.json");
    await writeJsonAtomic(file, { a: 1 });
    await writeFileAtomic(file, "second");
    assert.equal(await readFile(file, "utf8"), "second");
    assert.deepEqual(await readdir(dir), ["a.json"]);
  });
});

describe("METRICS", () => {
  test("names are unique and documented", () => {
    const names = METRICS.map((metric) => metric.name);
    assert.equal(new Set(names).size, names.length);
    for (const required of [
      "loss",
      "learning_rate",
      "grad_norm",
      "rewards/chosen",
      "rewards/rejected",
      "rewards/accuracies",
      "rewards/margins",
      "logps/chosen",
      "logps/rejected",
      "accuracy",
      "sign_accuracy",
      "score/mean",
      "score/std",
    ]) {
      assert.ok(names.includes(required), required);
    }
    assert.equal(metricInfo("eval_rewards/accuracies")?.name, "rewards/accuracies");
    assert.equal(metricInfo("unknown"), undefined);
  });
});

/** Finds docs/run-folder.md above this file (test/run under tsx, dist/test/run when compiled). */
function findRunFolderDoc(): string | undefined {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, "docs", "run-folder.md");
    if (existsSync(candidate)) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

describe("docs/run-folder.md", () => {
  test("lists every metric of METRICS", async () => {
    const file = findRunFolderDoc();
    assert.ok(file, "docs/run-folder.md not found above the test file");
    const doc = await readFile(file, "utf8");
    for (const metric of METRICS) {
      const evalName = metric.eval ? `\`eval_${metric.name}\`` : "no";
      const stages = metric.stages.join(", ");
      const row = `| \`${metric.name}\` | ${stages} | ${evalName} | ${metric.description} |`;
      assert.ok(doc.includes(row), `missing or stale row: ${row}`);
    }
  });
});
