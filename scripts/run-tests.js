#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with node's test runner.
//
// Arguments narrow the run to files whose path contains any of them: `npm test -- tensor data`.
// Node's runner prints its own summary; this script adds the plain closing line
// "N passed, N failed, N skipped" that CI reads.
import { spawn } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const testDir = join(root, "dist", "test");
if (!existsSync(testDir)) {
  console.error("run-tests: dist/test is missing; run `npm run build` first");
  process.exit(1);
}

function findTests(dir) {
  const found = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found.push(...findTests(path));
    else if (name.endsWith(".test.js")) found.push(path);
  }
  return found;
}

const filters = process.argv.slice(2);
const files = findTests(testDir).filter(
  (file) => filters.length === 0 || filters.some((f) => relative(testDir, file).includes(f)),
);
if (files.length === 0) {
  console.error(`run-tests: no test files matched ${filters.join(", ") || "(all)"}`);
  process.exit(1);
}

const child = spawn(process.execPath, ["--test", "--test-reporter=tap", ...files], {
  cwd: root,
  stdio: ["ignore", "pipe", "inherit"],
});
let tail = "";
child.stdout.on("data", (chunk) => {
  process.stdout.write(chunk);
  tail = (tail + chunk.toString()).slice(-4000);
});
child.on("close", (code) => {
  const count = (name) => Number(tail.match(new RegExp(`^# ${name} (\\d+)`, "m"))?.[1] ?? 0);
  const passed = count("pass");
  const failed = count("fail") + count("cancelled");
  const skipped = count("skipped") + count("todo");
  console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
  process.exit(code ?? 1);
});
