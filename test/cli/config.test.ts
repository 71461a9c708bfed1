import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";

import { buildProgram } from "../../src/cli/main.js";
import { CdpoError } from "../../src/errors.js";
import { runCdpo } from "../helpers/cli.js";

const root = mkdtempSync(join(tmpdir(), "cdpo-cli-config-"));
after(() => rmSync(root, { recursive: true, force: true }));

/** Every command that takes --config, with the name its validation errors use. */
const CONFIG_COMMANDS = [
  { command: "sft", label: "sft" },
  { command: "train-reward", label: "reward" },
  { command: "train-cost", label: "cost" },
  { command: "dpo", label: "dpo" },
  { command: "train", label: "C-DPO" },
];

/** Runs the program in this process; action errors reject the promise. */
function parse(args: string[]): Promise<unknown> {
  return buildProgram().parseAsync(["node", "cdpo", ...args]);
}

function cdpoError(code: string, message: string): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof CdpoError, `expected a CdpoError, received ${String(error)}`);
    assert.equal(error.code, code);
    assert.equal(error.message, message);
    return true;
  };
}

test("missing --config file names path and option", async () => {
  const missing = join(root, "absent.yaml");
  for (const { command } of CONFIG_COMMANDS) {
    await assert.rejects(
      parse([command, "--config", missing, "--out", join(root, "run")]),
      cdpoError(
        "FILE",
        `Config file not found: ${missing} (given with --config). Check the path, or leave out ` +
          "--config and pass the settings as options.",
      ),
      command,
    );
  }
  const underFile = join(root, "plain.txt", "config.yaml");
  writeFileSync(join(root, "plain.txt"), "");
  await assert.rejects(
    parse(["sft", "--config", underFile]),
    /Config file not found: .*plain\.txt/,
  );
});

test("--config folder is not a file", async () => {
  for (const { command } of CONFIG_COMMANDS) {
    await assert.rejects(
      parse([command, "--config", root]),
      cdpoError(
        "FILE",
        `Config file ${root} (given with --config) is not a file: pass a JSON or YAML file`,
      ),
      command,
    );
  }
});

test("config validation errors name the file", async () => {
  const file = join(root, "bad.yaml");
  writeFileSync(file, "lr: fast\nbogus: 1\n");
  for (const { command, label } of CONFIG_COMMANDS) {
    await assert.rejects(
      parse([command, "--config", file, "--out", join(root, `run-${command}`)]),
      (error: unknown) => {
        assert.ok(error instanceof CdpoError, `${command}: ${String(error)}`);
        assert.equal(error.code, "CONFIG");
        assert.ok(
          error.message.startsWith(`Invalid ${label} config ${file}: `),
          `${command}: ${error.message}`,
        );
        assert.match(error.message, /unknown field "bogus"/);
        return true;
      },
    );
  }
  const stage = ["--init", "tiny", "--data", "builtin", "--out", join(root, "run-sft")];
  await assert.rejects(
    parse(["sft", "--config", file, ...stage]),
    /^CdpoError: Invalid sft config .*bad\.yaml: field "lr": .*expected number/,
  );
});

test("config syntax errors name the file", async () => {
  const file = join(root, "broken.yaml");
  writeFileSync(file, "a: [\n");
  await assert.rejects(parse(["dpo", "--config", file]), (error: unknown) => {
    assert.ok(error instanceof CdpoError);
    assert.ok(error.message.startsWith(`${file}: invalid config syntax: `), error.message);
    return true;
  });
});

test("cdpo sft prints the missing config error", async () => {
  const missing = join(root, "nope.json");
  const run = await runCdpo(["sft", "--config", missing]);
  assert.equal(run.code, 1);
  assert.equal(run.stdout, "");
  assert.equal(
    run.stderr,
    `cdpo: Config file not found: ${missing} (given with --config). Check the path, or leave ` +
      "out --config and pass the settings as options.\n",
  );
});

test("--out with --resume is rejected", async () => {
  for (const command of ["dpo", "train"]) {
    const result = await runCdpo([command, "--out", join(root, "a"), "--resume", join(root, "b")]);
    assert.equal(result.code, 1, `${command}: ${result.stderr}`);
    assert.match(result.stderr, /option '--out <dir>' cannot be used with option '--resume <dir>'/);
  }
});

test("JSON syntax error gives line, column", async () => {
  const file = join(root, "syntax.json");
  writeFileSync(file, '{\n  "steps": 3,\n  bad: 1\n}\n');
  const result = await runCdpo(["sft", "--config", file, "--out", join(root, "never")]);
  assert.equal(result.code, 1);
  assert.ok(
    result.stderr.includes(
      `${file}: invalid config syntax: Expected double-quoted property name in JSON at ` +
        "position 18 (line 3, column 3):\n  bad: 1\n  ^",
    ),
    result.stderr,
  );
});
