/**
 * Shared helpers of the benchmarks: timing, the PyTorch reference run, and the report line.
 *
 * Every benchmark prints one line that other tools read:
 *   bench <name> ours=<value> pytorch=<value> ratio=<ours/pytorch> <unit>
 * (the models group prints medians and, as the ratio, the median of per-round ratios). For rates (GFLOP/s, tokens/s, pairs/s) a ratio above 1 means cdpo is faster. For times per
 * call (µs) the ratio is also ours/pytorch, so there a ratio below 1 means cdpo is faster.
 */
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import * as torch from "../src/tensor/index.js";

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const SOURCE_BENCH_DIR = BENCH_DIR.includes(`${join("dist", "bench")}`)
  ? join(BENCH_DIR, "..", "..", "bench")
  : BENCH_DIR;

/** Python interpreter for the PyTorch side: CDPO_BENCH_PYTHON, else Debian's python3 with torch. */
export function pythonWithTorch(): string | null {
  const candidates = [process.env.CDPO_BENCH_PYTHON, "/usr/bin/python3", "python3"].filter(
    (c): c is string => Boolean(c),
  );
  for (const python of candidates) {
    const probe = spawnSync(python, ["-c", "import torch"], { encoding: "utf8" });
    if (probe.status === 0) return python;
  }
  return null;
}

/**
 * Runs `bench/py/<script>` with the given JSON arguments and returns its JSON output, or null
 * when no Python with torch is installed. The script receives the thread count to use.
 */
export function runPytorch<T>(script: string, args: Record<string, unknown>): T | null {
  const python = pythonWithTorch();
  if (python === null) return null;
  const path = join(SOURCE_BENCH_DIR, "py", script);
  const payload = JSON.stringify({ threads: torch.getNumThreads(), ...args });
  const result = spawnSync(python, [path, payload], {
    encoding: "utf8",
    env: { ...process.env, OMP_NUM_THREADS: String(torch.getNumThreads()) },
    maxBuffer: 16 * 2 ** 20,
  });
  if (result.status !== 0) {
    throw new Error(`PyTorch reference ${script} failed:\n${result.stderr}`);
  }
  const lines = result.stdout.trim().split("\n");
  return JSON.parse(lines[lines.length - 1] ?? "null") as T;
}

/**
 * A long-lived PyTorch reference process, for benchmarks that alternate short measurements of
 * both sides so that a change in machine load hits both alike.
 *
 * `bench/py/<script>` receives the JSON arguments (with the thread count) as its first argument,
 * builds what it measures, then prints one JSON line for each task name written to its stdin.
 */
export class PytorchSession {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #pending: { resolve: (value: unknown) => void; reject: (error: Error) => void }[] = [];
  #stderr = "";
  #exit: Error | null = null;

  private constructor(child: ChildProcessWithoutNullStreams, script: string) {
    this.#child = child;
    child.stderr.on("data", (chunk: Buffer) => {
      this.#stderr += chunk.toString();
    });
    createInterface({ input: child.stdout }).on("line", (line) => {
      const waiting = this.#pending.shift();
      if (waiting === undefined) return;
      try {
        waiting.resolve(JSON.parse(line));
      } catch (error) {
        waiting.reject(new Error(`PyTorch reference ${script} printed a non-JSON line: ${line}`));
      }
    });
    child.on("exit", (code, signal) => {
      this.#exit = new Error(
        `PyTorch reference ${script} exited (${signal ?? `code ${code}`}):\n${this.#stderr}`,
      );
      for (const waiting of this.#pending.splice(0)) waiting.reject(this.#exit);
    });
  }

  /** Starts `bench/py/<script>`; null when no Python with torch is installed. */
  static open(script: string, args: Record<string, unknown>): PytorchSession | null {
    const python = pythonWithTorch();
    if (python === null) return null;
    const payload = JSON.stringify({ threads: torch.getNumThreads(), ...args });
    const child = spawn(python, [join(SOURCE_BENCH_DIR, "py", script), payload], {
      env: { ...process.env, OMP_NUM_THREADS: String(torch.getNumThreads()) },
    });
    return new PytorchSession(child, script);
  }

  /** Runs one task in the reference process and returns the JSON value it prints. */
  ask<T>(task: string): Promise<T> {
    if (this.#exit !== null) return Promise.reject(this.#exit);
    return new Promise<T>((resolve, reject) => {
      this.#pending.push({ resolve: resolve as (value: unknown) => void, reject });
      this.#child.stdin.write(`${task}\n`);
    });
  }

  /** Ends the reference process (it exits when its stdin closes). */
  close(): void {
    this.#child.stdin.end();
  }
}

/** Median of a non-empty list. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Median seconds per call of `fn` after `warmup` calls, over at least `minSeconds`. */
export function timeIt(
  fn: () => void,
  options: { warmup?: number; minSeconds?: number; minRuns?: number } = {},
): number {
  const warmup = options.warmup ?? 2;
  const minSeconds = options.minSeconds ?? 1;
  const minRuns = options.minRuns ?? 3;
  for (let i = 0; i < warmup; i++) fn();
  const samples: number[] = [];
  const start = performance.now();
  while (samples.length < minRuns || (performance.now() - start) / 1000 < minSeconds) {
    const t0 = performance.now();
    fn();
    samples.push((performance.now() - t0) / 1000);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)]!;
}

function format(value: number | null): string {
  if (value === null || !Number.isFinite(value)) return "n/a";
  if (Math.abs(value) >= 100) return value.toFixed(1);
  if (Math.abs(value) >= 1) return value.toFixed(3);
  return value.toPrecision(4);
}

/**
 * Prints the benchmark line; `extra` adds key=value fields after the unit (mfu=..., note=...).
 * `pairedRatio`, from benchmarks that alternate both sides, replaces ours/pytorch as the ratio.
 */
export function report(
  name: string,
  ours: number,
  pytorch: number | null,
  unit: string,
  extra: Record<string, string | number> = {},
  pairedRatio: number | null = null,
): void {
  const ratio = pytorch === null || pytorch === 0 ? null : (pairedRatio ?? ours / pytorch);
  const fields = Object.entries(extra).map(
    ([k, v]) => ` ${k}=${typeof v === "number" ? format(v) : v}`,
  );
  console.log(
    `bench ${name} ours=${format(ours)} pytorch=${format(pytorch)} ratio=${format(ratio)} ${unit}${fields.join("")}`,
  );
}
