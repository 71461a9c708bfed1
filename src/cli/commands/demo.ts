/**
 * `cdpo demo`: the whole pipeline on the built-in dataset, from nothing (see src/cdpo/demo.ts).
 */
import type { Command } from "commander";
import { DEMO_DEFAULTS, DEMO_QUICK, runDemo } from "../../cdpo/demo.js";
import { threadsOption } from "../options.js";

interface DemoCliOptions {
  out?: string;
  quick?: boolean;
  threads?: number;
  progress?: boolean;
}

/** `runs/demo-20250101-120000` in local time. */
function defaultOut(): string {
  const now = new Date();
  const pad = (n: number) => String(n).padStart(2, "0");
  const stamp =
    `${now.getFullYear()}${pad(now.getMonth() + 1)}${pad(now.getDate())}-` +
    `${pad(now.getHours())}${pad(now.getMinutes())}${pad(now.getSeconds())}`;
  return `runs/demo-${stamp}`;
}

export function register(program: Command): void {
  program
    .command("demo")
    .description(
      "Run the whole pipeline on the built-in safety dataset: data, SFT of a small Llama, reward " +
        "and cost models, C-DPO at a cost limit, DPO baselines on the helpfulness and the safety " +
        "label, and an evaluation table (learned scores and oracle judgements) with a report.",
    )
    .option("--out <dir>", "output folder (default: runs/demo-<timestamp>)")
    .option("--quick", "a smaller, faster version (about a fifth of the work) for tests")
    .addOption(threadsOption())
    .option("--no-progress", "print log lines instead of progress bars")
    .action(async (options: DemoCliOptions, command: Command) => {
      const { threads } = options;
      const fromCli = command.getOptionValueSource("progress") === "cli";
      await runDemo({
        out: options.out ?? defaultOut(),
        settings: options.quick === true ? DEMO_QUICK : DEMO_DEFAULTS,
        ...(threads === undefined ? {} : { threads }),
        ...(fromCli ? { progressBars: options.progress === true } : {}),
      });
    });
}
