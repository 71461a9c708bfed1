/**
 * `cdpo report`: writes the HTML report of a run folder, or compares several.
 */
import type { Command } from "commander";
import { CdpoError } from "../../errors.js";
import { writeCompareReport, writeReport } from "../../report/index.js";

interface ReportOptions {
  out?: string;
  compare?: boolean;
}

export function register(program: Command): void {
  program
    .command("report")
    .description(
      "Write a self-contained HTML report of a run folder: λ, cost, reward and KL per dual " +
        "iteration, training curves, the evaluation table and sample responses.",
    )
    .argument("<run-dirs...>", "run folder; with --compare, one or more run folders")
    .option(
      "--out <file>",
      "HTML file to write (default: RUN_DIR/report.html, or compare.html in the runs' common " +
        "parent folder with --compare)",
    )
    .option(
      "--compare",
      "put several runs side by side: overlaid λ and cost curves, final values and the " +
        "reward-against-cost frontier",
    )
    .action(async (runDirs: string[], options: ReportOptions) => {
      let written: string;
      if (options.compare === true) {
        written = await writeCompareReport(runDirs, options.out);
      } else {
        if (runDirs.length !== 1) {
          throw new CdpoError(
            "CONFIG",
            `cdpo report takes one run folder but received ${runDirs.length}: ` +
              `${runDirs.join(" ")}. Pass --compare to put several runs side by side.`,
          );
        }
        written = await writeReport(runDirs[0]!, options.out);
      }
      console.log(`Report written to ${written}`);
    });
}
