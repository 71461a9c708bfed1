/**
 * The `cdpo` command line: builds the commander program from one file per command group.
 *
 * Each file in src/cli/commands exports `register(program)`. Errors that cdpo raises on purpose
 * (CdpoError, TypeError and RangeError from argument checks) print as one line without a stack;
 * set CDPO_DEBUG=1 to see stacks.
 */
import { Command } from "commander";
import { CdpoError } from "../errors.js";
import { CDPO_VERSION } from "../version.js";
import { register as registerData } from "./commands/data.js";
import { register as registerDemo } from "./commands/demo.js";
import { register as registerEval } from "./commands/eval.js";
import { register as registerGenerate } from "./commands/generate.js";
import { register as registerReport } from "./commands/report.js";
import { register as registerSmoke } from "./commands/smoke.js";
import { register as registerTrain } from "./commands/train.js";
import { register as registerTrainStages } from "./commands/train-stages.js";

export function buildProgram(): Command {
  const program = new Command("cdpo")
    .description(
      "Safety alignment of language models by Constrained DPO (C-DPO), on libtorch from TypeScript",
    )
    .version(CDPO_VERSION, "-V, --version", "print the cdpo version");
  registerSmoke(program);
  registerData(program);
  registerReport(program);
  registerGenerate(program);
  registerTrain(program);
  registerDemo(program);
  registerEval(program);
  registerTrainStages(program);
  return program;
}

/** Prints how to continue before exiting with the usual status for SIGINT (128 + 2). */
function onInterrupt(): void {
  console.error(
    "\ncdpo: interrupted. A training run continues from its last checkpoint with --resume RUN_DIR.",
  );
  process.exit(130);
}

export async function main(argv: string[] = process.argv): Promise<void> {
  process.once("SIGINT", onInterrupt);
  try {
    await buildProgram().parseAsync(argv);
  } catch (error) {
    const known =
      error instanceof CdpoError || error instanceof TypeError || error instanceof RangeError;
    if (process.env.CDPO_DEBUG === "1" || !known) {
      console.error(error);
    } else {
      console.error(`cdpo: ${(error as Error).message}`);
    }
    process.exitCode = 1;
  }
}
