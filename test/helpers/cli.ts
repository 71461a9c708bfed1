/**
 * Spawning the cdpo CLI from tests, compiled (`node --test dist/test`) or under tsx.
 */
import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const underTsx = import.meta.url.endsWith(".ts");

/** The executable and arguments that run `cdpo ARGS` in a child process. */
export function cdpoCommand(args: readonly string[]): { command: string; args: string[] } {
  const entry = join(here, underTsx ? "cdpo-entry.ts" : "cdpo-entry.js");
  const loader = underTsx ? ["--import", "tsx"] : [];
  return { command: process.execPath, args: [...loader, entry, ...args] };
}

export interface CdpoRun {
  /** Exit status, or null when a signal ended the process. */
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `cdpo ARGS` in a child process and collects its exit status and output. */
export function runCdpo(args: readonly string[]): Promise<CdpoRun> {
  const { command, args: full } = cdpoCommand(args);
  return new Promise((resolve, reject) => {
    execFile(command, full, { encoding: "utf8" }, (error, stdout, stderr) => {
      if (error === null) resolve({ code: 0, stdout, stderr });
      else if (typeof error.code === "number") resolve({ code: error.code, stdout, stderr });
      else if (error.signal) resolve({ code: null, stdout, stderr });
      else reject(error); // the process did not start
    });
  });
}
