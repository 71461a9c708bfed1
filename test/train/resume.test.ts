import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { runStage } from "../../src/train/stages.js";
import { cdpoCommand } from "../helpers/cli.js";
import { snapshotFolder } from "../helpers/snapshot.js";

const root = mkdtempSync(join(tmpdir(), "cdpo-resume-"));
after(() => rmSync(root, { recursive: true, force: true }));

// A DPO run from a tiny random model: reference cache, stall detector, data order and AdamW
// state all have to survive the kill.
const RUN_FLAGS = [
  "dpo",
  "--init",
  "tiny",
  "--data",
  "builtin",
  "--max-pairs",
  "96",
  "--max-eval-pairs",
  "24",
  "--max-length",
  "160",
  "--batch-size",
  "4",
  "--grad-accum",
  "2",
  "--steps",
  "24",
  "--lr",
  "2e-3",
  "--warmup",
  "3",
  "--log-every",
  "1",
  "--eval-every",
  "8",
  "--save-every",
  "4",
  "--keep-checkpoints",
  "2",
  "--precision",
  "fp32",
  "--threads",
  "1",
  "--seed",
  "7",
  "--no-progress",
];

function runCli(args: string[]): {
  child: ChildProcess;
  done: Promise<{ code: number | null; output: string }>;
} {
  const { command, args: full } = cdpoCommand(args);
  const child = spawn(command, full, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.on("data", (chunk) => (output += chunk));
  child.stderr!.on("data", (chunk) => (output += chunk));
  const done = new Promise<{ code: number | null; output: string }>((resolve) => {
    child.on("close", (code) => resolve({ code, output }));
  });
  return { child, done };
}

/** metrics.jsonl without the wall-clock `time` field. */
function metricsOf(dir: string): Record<string, unknown>[] {
  return readFileSync(join(dir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((line) => {
      const { time: _time, ...rest } = JSON.parse(line) as Record<string, unknown>;
      return rest;
    });
}

test("SIGKILL mid-run then --resume matches an uninterrupted run", {
  timeout: 180_000,
}, async () => {
  const straight = join(root, "straight");
  const killed = join(root, "killed");

  const reference = await runCli([...RUN_FLAGS, "--out", straight]).done;
  assert.equal(reference.code, 0, reference.output);

  // Kill the second run once its second checkpoint exists (training is then past step 8).
  const { child, done } = runCli([...RUN_FLAGS, "--out", killed]);
  const checkpoint = join(killed, "checkpoint-8");
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (existsSync(checkpoint)) {
        clearInterval(timer);
        child.kill("SIGKILL");
        resolve();
      }
    }, 10);
    child.on("close", () => {
      clearInterval(timer);
      if (!existsSync(checkpoint)) reject(new Error("the run ended before checkpoint-8 appeared"));
    });
  });
  const killedResult = await done;
  assert.equal(killedResult.code, null, "the run was killed");
  assert.ok(!existsSync(join(killed, "final")), "the killed run never reached the end");

  const resumed = await runCli(["dpo", "--resume", killed, "--no-progress"]).done;
  assert.equal(resumed.code, 0, resumed.output);
  assert.match(resumed.output, /resumed from .*checkpoint-\d+ at step \d+\/24/);

  // Same records, same values: the final train and eval metrics included.
  const expected = metricsOf(straight);
  const actual = metricsOf(killed);
  assert.deepEqual(actual, expected);
  const lastEval = actual.filter((r) => "eval_loss" in r).at(-1)!;
  assert.equal(lastEval.step, 24);
  assert.ok(typeof lastEval["eval_rewards/accuracies"] === "number");

  // Only the newest checkpoints are kept, and no partial one is left.
  const names = readdirSync(killed).filter((name) => name.startsWith("checkpoint-"));
  assert.deepEqual(names.sort(), ["checkpoint-16", "checkpoint-20"]);
  const finalWeights = readFileSync(join(killed, "final", "model.safetensors"));
  assert.ok(finalWeights.equals(readFileSync(join(straight, "final", "model.safetensors"))));
});

// Small runs for the finished-run tests. sft saves no checkpoint (the default saveEvery 0) and the
// other stages save one at step 2, so a finished run without and with checkpoints is covered.
const SMALL_RUN = {
  init: "tiny",
  data: "builtin",
  maxPairs: 16,
  maxEvalPairs: 8,
  maxLength: 128,
  batchSize: 4,
  steps: 4,
  logEvery: 1,
  lr: 1e-3,
  keepCheckpoints: 2,
  precision: "fp32",
  threads: 1,
  seed: 3,
  progress: false,
};

describe("resume of a finished run", () => {
  for (const stage of ["sft", "reward", "cost", "dpo"] as const) {
    test(`${stage} trains nothing`, async () => {
      const out = join(root, `finished-${stage}`);
      const saveEvery = stage === "sft" ? 0 : 2;
      const first = await runStage(stage, {}, { ...SMALL_RUN, saveEvery, out }, { console: false });
      assert.equal(first.steps, 4);
      const before = snapshotFolder(out);
      assert.ok(before[join("final", "model.safetensors")] !== undefined);
      if (saveEvery > 0)
        assert.ok(before[join("checkpoint-2", "trainer_state.json")] !== undefined);

      const resumed = await runStage(stage, {}, { resume: out }, { console: false });
      assert.equal(resumed.alreadyComplete, true);
      assert.equal(resumed.steps, 4);
      assert.equal(resumed.finalDir, join(out, "final"));
      assert.deepEqual(resumed.train, first.train);
      assert.deepEqual(resumed.eval, first.eval);
      // Same files with the same bytes and modification times: metrics.jsonl, checkpoints, final/.
      assert.deepEqual(snapshotFolder(out), before);
    });
  }

  test("CLI reports the finished run", { timeout: 60_000 }, async () => {
    const out = join(root, "finished-dpo");
    assert.ok(existsSync(join(out, "final")), "the dpo test above finished this run");
    const before = snapshotFolder(out);
    // --threads is a machine setting: a resumed run may change it.
    const resumed = await runCli(["dpo", "--resume", out, "--no-progress", "--threads", "1"]).done;
    assert.equal(resumed.code, 0, resumed.output);
    assert.match(resumed.output, /already complete \(step 4\), so there is nothing to resume/);
    assert.ok(resumed.output.includes(`final model is in ${join(out, "final")}`), resumed.output);
    assert.match(resumed.output, /cdpo dpo: done after 4 steps; eval_loss=/);
    assert.doesNotMatch(resumed.output, /resumed from|computing reference|step 1\/4/);
    assert.deepEqual(snapshotFolder(out), before);
    const changed = await runCli(["dpo", "--resume", out, "--steps", "6", "--no-progress"]).done;
    assert.equal(changed.code, 1);
    assert.match(changed.output, /Cannot change "steps" when resuming .* \(stored 4, received 6\)/);
  });
});
