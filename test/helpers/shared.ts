/**
 * Access to the real models and data in ../shared for tests.
 *
 * A test that needs a file calls `requireShared(t, path)`: when the file is missing it fails under
 * CI (CI=true), where the folder must exist, and skips with the reason elsewhere.
 */
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { TestContext } from "node:test";
import { fileURLToPath } from "node:url";

function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "native"))) return dir;
    dir = dirname(dir);
  }
  throw new Error("test helpers: project root (package.json beside native/) not found");
}

export const PROJECT_ROOT = projectRoot();

/** Absolute path of a file under ../shared (it may not exist). */
export function sharedPath(...parts: string[]): string {
  return resolve(PROJECT_ROOT, "..", "shared", ...parts);
}

/**
 * Returns the absolute path when it exists. Otherwise fails the test under CI and skips it
 * elsewhere; the caller then returns early (`if (!path) return;`).
 */
export function requireShared(t: TestContext, ...parts: string[]): string | null {
  const path = sharedPath(...parts);
  if (existsSync(path)) return path;
  const reason = `${path} is missing: the shared models and data folder must sit beside the project`;
  if (process.env.CI === "true") throw new Error(reason);
  t.skip(reason);
  return null;
}
