/**
 * Snapshots of a folder's files, to check that a command left a run folder untouched.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";

/** Content hash and modification time of one file. */
export interface FileSnapshot {
  sha256: string;
  mtimeMs: number;
}

/** Snapshots every file under `dir` (recursively), keyed by path relative to `dir`. */
export function snapshotFolder(dir: string): Record<string, FileSnapshot> {
  const files: Record<string, FileSnapshot> = {};
  const visit = (folder: string) => {
    const entries = readdirSync(folder, { withFileTypes: true }).sort((a, b) =>
      a.name.localeCompare(b.name),
    );
    for (const entry of entries) {
      const full = join(folder, entry.name);
      if (entry.isDirectory()) {
        visit(full);
        continue;
      }
      files[relative(dir, full)] = {
        sha256: createHash("sha256").update(readFileSync(full)).digest("hex"),
        mtimeMs: statSync(full).mtimeMs,
      };
    }
  };
  visit(dir);
  return files;
}
