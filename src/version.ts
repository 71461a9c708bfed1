/** cdpo's own version, read from package.json at run time. */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

function findPackageJson(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, "package.json");
    try {
      const text = readFileSync(candidate, "utf8");
      if (JSON.parse(text).name === "cdpo") return text;
    } catch {
      // not here; try the parent folder
    }
    dir = dirname(dir);
  }
  return '{"version":"0.0.0"}';
}

export const CDPO_VERSION: string = JSON.parse(findPackageJson()).version;
