import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { resolveCdpoConfig } from "../../src/cdpo/config.js";
import { runCdpo } from "../../src/cdpo/train.js";
import { loadSafetensors } from "../../src/models/safetensors.js";
import { readIterations } from "../../src/run/folder.js";
import * as torch from "../../src/tensor/index.js";
import { snapshotFolder } from "../helpers/snapshot.js";
import { writeTinySetup } from "./fixtures/lm-setup.js";

// The child is this folder's fixtures/train-child, as .ts under tsx and .js when compiled.
const here = fileURLToPath(import.meta.url);
const childScript = path.join(path.dirname(here), "fixtures", `train-child${path.extname(here)}`);

let root: string;
let base: Awaited<ReturnType<typeof writeTinySetup>>;
const quiet = () => {};

/** Runs the child on `config`; it kills itself with SIGKILL at the first log line with `killOn`. */
function runChild(
  config: object,
  killOn: string,
): Promise<{ signal: NodeJS.Signals | null; output: string }> {
  return (async () => {
    const configPath = path.join(root, `config-${Date.now()}-${Math.random()}.json`);
    await fs.writeFile(configPath, JSON.stringify(config));
    return new Promise((resolve, reject) => {
      const child = spawn(
        process.execPath,
        [...process.execArgv, childScript, configPath, killOn],
        {
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      let output = "";
      child.stdout.on("data", (chunk) => {
        output += chunk.toString();
      });
      child.stderr.on("data", (chunk) => {
        output += chunk.toString();
      });
      child.on("error", reject);
      child.on("close", (_code, signal) => resolve({ signal, output }));
    });
  })();
}

async function finalWeights(runDir: string): Promise<Map<string, number[]>> {
  const tensors = await loadSafetensors(path.join(runDir, "policy", "model.safetensors"));
  const values = new Map<string, number[]>();
  for (const [name, tensor] of tensors) values.set(name, tensor.toArray());
  torch.dispose([...tensors.values()]);
  return values;
}

function maxDifference(a: Map<string, number[]>, b: Map<string, number[]>): number {
  let max = 0;
  for (const [name, values] of a) {
    const other = b.get(name);
    assert.ok(other !== undefined, `missing ${name}`);
    for (let i = 0; i < values.length; i++)
      max = Math.max(max, Math.abs((values[i] as number) - (other[i] as number)));
  }
  return max;
}

describe("resume after SIGKILL", () => {
  let reference: { lambdas: number[][]; weights: Map<string, number[]> };

  before(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), "cdpo-resume-"));
    base = await writeTinySetup(root);
    const out = path.join(root, "uninterrupted");
    await runCdpo(resolveCdpoConfig({ ...base, out }), { log: quiet });
    const records = await readIterations(out);
    reference = {
      lambdas: records.map((r) => r.constraints.map((c) => c.lambda_next)),
      weights: await finalWeights(out),
    };
  });

  after(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  test("uninterrupted run moves lambda", () => {
    assert.equal(reference.lambdas.length, 3);
    // The limit of -1 is below any cost the random heads give, so λ grows every iteration.
    assert.ok((reference.lambdas[2]?.[0] as number) > (reference.lambdas[0]?.[0] as number));
  });

  test("resume of a finished run changes nothing", async () => {
    const out = path.join(root, "uninterrupted");
    const before = snapshotFolder(out);
    const lines: string[] = [];
    const resumed = await runCdpo(resolveCdpoConfig({ ...base, out }), {
      resume: true,
      log: (line) => lines.push(line),
    });
    assert.equal(resumed.alreadyComplete, true);
    assert.equal(resumed.iterations, 3);
    assert.equal(resumed.finished, "budget");
    assert.equal(resumed.policyDir, path.join(out, "policy"));
    assert.deepEqual(resumed.lambdas, reference.lambdas[2]);
    assert.match(
      lines[0] ?? "",
      /already complete after 3 iterations \(iteration budget spent, DPO step 12\), so there is nothing to resume/,
    );
    assert.ok(!lines.some((line) => line.startsWith("cdpo iteration")), lines.join("\n"));
    // Same files, bytes and modification times: records, state, policy folders and report.
    assert.deepEqual(snapshotFolder(out), before);
  });

  for (const [name, killOn] of [
    ["between phases", "cdpo iteration 2/3: DPO on"],
    ["inside a DPO phase", "checkpoint-6"],
  ] as const) {
    test(`kill ${name} then resume`, async () => {
      const out = path.join(root, name.replace(/ /g, "-"));
      const killed = await runChild({ ...base, out }, killOn);
      assert.equal(killed.signal, "SIGKILL", killed.output);
      const before = await readIterations(out);
      assert.equal(before.length, 1, "the kill came after iteration 1 was committed");
      if (killOn.startsWith("checkpoint")) assert.ok(existsSync(path.join(out, "checkpoint-6")));

      const resumed = await runCdpo(resolveCdpoConfig({ ...base, out }), {
        resume: true,
        log: quiet,
      });
      assert.equal(resumed.iterations, 3);
      const records = await readIterations(out);
      assert.deepEqual(
        records.map((r) => r.iteration),
        [0, 1, 2],
      );
      for (const [i, record] of records.entries()) {
        const expected = reference.lambdas[i]?.[0] as number;
        assert.ok(
          Math.abs((record.constraints[0]?.lambda_next as number) - expected) < 1e-6,
          `λ ${i}`,
        );
      }
      assert.ok(maxDifference(reference.weights, await finalWeights(out)) < 1e-5);
      // Superseded phase checkpoints and policy folders are gone.
      const names = await fs.readdir(out);
      assert.deepEqual(
        names.filter((n) => n.startsWith("checkpoint-")),
        [],
      );
      assert.deepEqual(
        names.filter((n) => n.startsWith("policy-iteration-")),
        ["policy-iteration-0002"],
      );
    });
  }
});
