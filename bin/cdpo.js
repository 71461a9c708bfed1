#!/usr/bin/env node
// Entry point of the `cdpo` command; the TypeScript sources compile to dist/ (npm run build).
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const compiled = join(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  "dist",
  "src",
  "cli",
  "main.js",
);
if (!existsSync(compiled)) {
  console.error(
    "cdpo: not built yet (dist/ is missing). Run `bash scripts/setup.sh` or `npm run build`.",
  );
  process.exit(1);
}
const { main } = await import(pathToFileURL(compiled).href);
await main(process.argv);
