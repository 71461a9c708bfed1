/**
 * Spawning the cdpo CLI from tests, compiled (`node --test dist/test`) or under tsx.
 */
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
