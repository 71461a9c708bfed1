import assert from "node:assert/strict";
import { test } from "node:test";
import { type Command, CommanderError, type Option } from "commander";

import { buildProgram } from "../../src/cli/main.js";
import { runCdpo } from "../helpers/cli.js";

/** Returns the program and every command below it (commander's implicit help command is not one). */
function allCommands(command: Command): Command[] {
  const found = [command];
  for (const sub of command.commands) found.push(...allCommands(sub));
  return found;
}

function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c !== null; c = c.parent) names.unshift(c.name());
  return names.join(" ");
}

/** Options that cdpo defines, without commander's --help and --version. */
function ownOptions(command: Command): Option[] {
  return command.options.filter(
    (option) => option.long !== "--help" && option.long !== "--version",
  );
}

/** Builds a program whose parse errors throw instead of exiting and whose output is discarded. */
function quietProgram(): Command {
  const program = buildProgram();
  for (const command of allCommands(program)) {
    command.exitOverride();
    command.configureOutput({ writeOut: () => {}, writeErr: () => {} });
  }
  return program;
}

class Parsed extends Error {}

/** Parses `args` and returns the options the command's action would receive, without running it. */
async function parsedOptions(args: string[]): Promise<Record<string, unknown>> {
  const program = quietProgram();
  let options: Record<string, unknown> | undefined;
  program.hook("preAction", (_program, action) => {
    options = action.opts();
    throw new Parsed();
  });
  try {
    await program.parseAsync(["node", "cdpo", ...args]);
  } catch (error) {
    if (!(error instanceof Parsed)) throw error;
  }
  assert.ok(options !== undefined, `cdpo ${args.join(" ")} did not reach its action`);
  return options;
}

/** Required options of each command, so that parsing reaches the action. */
const REQUIRED: Record<string, string[]> = {
  generate: ["--model", "m"],
  score: ["--data", "d", "--out", "o"],
  eval: ["--models", "m", "--prompts", "p", "--reward", "r", "--cost", "c"],
};

const THREADS_COMMANDS = ["sft", "train-reward", "train-cost", "dpo", "train", "score", "eval"];
const PRECISION_COMMANDS = [...THREADS_COMMANDS, "smoke"];

test("command descriptions are sentences", () => {
  for (const command of allCommands(buildProgram()).slice(1)) {
    const text = command.description();
    assert.match(text, /^[A-Z]/, `${commandPath(command)}: ${text}`);
    assert.match(text, /\.$/, `${commandPath(command)}: ${text}`);
  }
});

test("option descriptions start in lowercase", () => {
  // Acronyms and names keep their capitals: DPO, JSON, AdamW, Hugging Face.
  const start = /^(\p{Ll}|[A-Z][A-Za-z]*[A-Z]|Hugging Face )/u;
  for (const command of allCommands(buildProgram())) {
    for (const option of ownOptions(command)) {
      assert.match(option.description, start, `${commandPath(command)} ${option.flags}`);
    }
  }
});

test("defaults show as (default: X)", () => {
  for (const command of allCommands(buildProgram())) {
    const help = command.helpInformation();
    assert.doesNotMatch(help, /\(default [^:]/, commandPath(command));
    assert.doesNotMatch(help, /default: "/, commandPath(command));
    assert.doesNotMatch(help, /\bdefault [^:(]/, commandPath(command));
  }
});

test("--threads is the same option everywhere", async () => {
  const program = buildProgram();
  const withThreads = allCommands(program)
    .filter((command) => command.options.some((option) => option.long === "--threads"))
    .map((command) => command.name())
    .sort();
  assert.deepEqual(withThreads, [...THREADS_COMMANDS, "demo", "generate"].sort());
  for (const name of withThreads) {
    const command = program.commands.find((c) => c.name() === name)!;
    const option = command.options.find((o) => o.long === "--threads")!;
    assert.equal(option.flags, "--threads <n>", name);
    assert.equal(option.description, "libtorch threads (default: all cores)", name);
    const required = REQUIRED[name] ?? [];
    const parsed = await parsedOptions([name, ...required, "--threads", "3"]);
    assert.equal(parsed.threads, 3, name);
    await assert.rejects(
      parsedOptions([name, ...required, "--threads", "1.5"]),
      /Expected an integer >= 1 for --threads but received "1\.5"/,
      name,
    );
  }
});

test("--precision accepts the same values everywhere", async () => {
  const program = buildProgram();
  const withPrecision = allCommands(program)
    .filter((command) => command.options.some((option) => option.long === "--precision"))
    .map((command) => command.name())
    .sort();
  assert.deepEqual(withPrecision, [...PRECISION_COMMANDS].sort());
  const shownDefaults: Record<string, string> = {};
  for (const name of withPrecision) {
    const command = program.commands.find((c) => c.name() === name)!;
    const option = command.options.find((o) => o.long === "--precision")!;
    assert.equal(option.flags, "--precision <mode>", name);
    assert.deepEqual(option.argChoices, ["auto", "fp32", "bf16"], name);
    const match =
      /^fp32, or bf16 autocast over float32 weights; auto picks bf16 when the CPU has native bf16 instructions \(default: (\w+)\)$/.exec(
        option.description,
      );
    assert.ok(match, `${name}: ${option.description}`);
    shownDefaults[name] = match[1]!;
    const required = REQUIRED[name] ?? [];
    for (const value of ["auto", "fp32", "bf16"]) {
      const parsed = await parsedOptions([name, ...required, "--precision", value]);
      assert.equal(parsed.precision, value, `${name} --precision ${value}`);
    }
    await assert.rejects(
      parsedOptions([name, ...required, "--precision", "fp16"]),
      (error: unknown) =>
        error instanceof CommanderError &&
        error.code === "commander.invalidArgument" &&
        error.message.includes("Allowed choices are auto, fp32, bf16"),
      name,
    );
  }
  // score and smoke default to fp32, and the other commands pick by CPU.
  assert.deepEqual(shownDefaults, {
    dpo: "auto",
    eval: "auto",
    score: "fp32",
    sft: "auto",
    smoke: "fp32",
    train: "auto",
    "train-cost": "auto",
    "train-reward": "auto",
  });
});

test("numeric defaults reach the action as numbers", async () => {
  const evalOptions = await parsedOptions(["eval", ...REQUIRED.eval!]);
  assert.equal(evalOptions.samples, 4);
  assert.equal(evalOptions.maxNewTokens, 64);
  assert.equal(evalOptions.temperature, 1);
  assert.equal(evalOptions.seed, 0);
  assert.equal(evalOptions.precision, undefined);
  const builtin = await parsedOptions(["data", "builtin", "--out", "o", "--seed", "-3"]);
  assert.deepEqual(builtin, { out: "o", train: 4000, test: 400, harmfulFraction: 0.5, seed: -3 });
});

test("cdpo generate --help lists --threads", async () => {
  const run = await runCdpo(["generate", "--help"]);
  assert.equal(run.code, 0);
  assert.match(run.stdout, /^Generate a continuation from a Hugging Face model folder/m);
  assert.match(run.stdout, /^ {2}--threads <n> +libtorch threads \(default: all cores\)$/m);
});
