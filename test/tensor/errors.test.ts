import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { CdpoError } from "../../src/errors.js";
import * as torch from "../../src/tensor/index.js";
import { native } from "../../src/tensor/native.js";

test("shape mismatch carries the op and libtorch's message", () => {
  const a = torch.ones([2, 3]);
  const b = torch.ones([4, 5]);
  assert.throws(
    () => a.matmul(b),
    (error: unknown) => {
      assert.ok(error instanceof CdpoError);
      assert.equal(error.code, "TORCH");
      assert.equal(
        error.message,
        "matmul: mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)",
      );
      return true;
    },
  );
});

test("broadcast mismatch, bad dtype and bad index raise", () => {
  assert.throws(
    () => torch.ones([2, 3]).add(torch.ones([4])),
    /^CdpoError: add: The size of tensor a \(3\)/,
  );
  assert.throws(
    () => torch.ones([3]).gather(0, torch.ones([2])),
    /gather: gather\(\): Expected dtype int64 for index/,
  );
  assert.throws(
    () => torch.ones([3]).indexSelect(0, torch.tensor([5], [1], { dtype: "int64" })),
    /indexSelect: .*out of range/i,
  );
  assert.throws(
    () => torch.embedding(torch.ones([3, 2]), torch.tensor([3], [1], { dtype: "int64" })),
    /embedding: .*out of range/i,
  );
  assert.throws(() => torch.ones([2]).view(3), /view: shape '\[3\]' is invalid/);
});

test("argument errors name the argument and value", () => {
  assert.throws(() => torch.zeros([2, -1]), {
    name: "RangeError",
    message: "Expected non-negative integer sizes for shape but received [2,-1] (array)",
  });
  assert.throws(
    () => torch.tensor([1, 2, 3], [2, 2]),
    /Expected 4 elements for shape \[2, 2\] but received 3/,
  );
  assert.throws(
    () => torch.setNumThreads(0),
    /Expected an integer >= 1 for threads but received 0 \(number\)/,
  );
  assert.throws(
    () => torch.ones([2]).to("float8" as torch.DType),
    /for dtype but received "float8"/,
  );
});

test("no input from JavaScript crashes the process", () => {
  const raw = native as unknown as Record<string, (...args: unknown[]) => unknown>;
  const live = torch.ones([2]);
  const junk: unknown[] = [undefined, null, 1, "x", {}, [], [1, 2], () => 1, Symbol("s"), 2n];
  const skip = new Set([
    "setErrorClass",
    "Optimizer",
    "withGradMode",
    "withInferenceMode",
    "withAutocast",
    // Valid junk (1, 1) would map every later allocation of this process with its own mmap.
    "setMallocThresholds",
  ]);
  let calls = 0;
  for (const [name, fn] of Object.entries(raw)) {
    if (typeof fn !== "function" || skip.has(name)) continue;
    for (const a of junk) {
      for (const b of [...junk, live.handle]) {
        try {
          fn(a, b, a);
        } catch {
          // An exception is the expected outcome; a crash would end the test process.
        }
        calls++;
      }
    }
  }
  assert.ok(calls > 1000);
  assert.throws(
    () => new (native.Optimizer as unknown as new (...a: unknown[]) => unknown)("adam", [], {}),
    /'adamw' or 'sgd'/,
  );
  assert.throws(() => native.withGradMode(true, 5 as unknown as () => void), /must be a function/);
  for (const args of [
    [-1, 0],
    [0, -1],
    [2 ** 31, 0],
    ["1", 0],
    [1.5, 0],
  ]) {
    assert.throws(
      () => (native.setMallocThresholds as (...a: unknown[]) => boolean)(...args),
      /setMallocThresholds/,
    );
  }
});

test("malloc thresholds: default and user-tuned", () => {
  const underTsx = import.meta.url.endsWith(".ts");
  const module = new URL(`../../src/tensor/index.${underTsx ? "ts" : "js"}`, import.meta.url);
  const base = { ...process.env };
  for (const key of ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"]) {
    delete base[key];
  }
  const probe = (env: Record<string, string>): unknown => {
    const script = `import(${JSON.stringify(module.href)}).then((t) => console.log(JSON.stringify(t.mallocThresholds())))`;
    const result = spawnSync(
      process.execPath,
      [...(underTsx ? ["--import", "tsx"] : []), "-e", script],
      { env: { ...base, ...env }, encoding: "utf8" },
    );
    assert.equal(result.status, 0, result.stderr);
    return JSON.parse(result.stdout.trim());
  };
  if (process.platform === "linux") {
    assert.deepEqual(probe({}), { mmapThreshold: 32 * 2 ** 20, trimThreshold: 64 * 2 ** 20 });
  }
  assert.equal(probe({ MALLOC_MMAP_THRESHOLD_: "65536" }), null);
  assert.equal(probe({ GLIBC_TUNABLES: "glibc.malloc.trim_threshold=1000000" }), null);
});
