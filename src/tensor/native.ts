/**
 * Loads the libtorch addon built from `native/` and declares its raw interface.
 *
 * Nothing outside `src/tensor/` calls this module: the {@link Tensor} class and the functions in
 * `src/tensor/index.ts` wrap every entry point with types, defaults and memory tracking.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CdpoError } from "../errors.js";

/**
 * A native handle on one libtorch tensor: an integer (slot index and generation) into the addon's
 * per-thread tensor table. Only the addon interprets it.
 */
export type Handle = number & { readonly __brand: "TensorHandle" };
/** An opaque native handle on one libtorch random generator. */
export type GeneratorHandle = { readonly __brand: "GeneratorHandle" };

export type Scalar = number | boolean;
type H = Handle;
type Dims = number[] | null;

export interface NativeOptimizer {
  step(): void;
  zeroGrad(setToNone: boolean): void;
  setLr(lr: number, group: number | null): void;
  getLr(group: number): number;
  stateDict(): Buffer;
  loadStateDict(state: Buffer): void;
}

/** The addon's exports, one libtorch call each (see native/src/*.cc for argument order). */
export interface NativeAddon {
  // tensor.cc
  fromBytes(bytes: ArrayBufferView, dtype: string, shape: number[], device?: string): H;
  toBytes(t: H): Buffer;
  item(t: H): number | boolean;
  info(t: H): { shape: number[]; dtype: string; device: string; requiresGrad: boolean };
  shape(t: H): number[];
  dtype(t: H): string;
  device(t: H): string;
  dispose(t: H): void;
  isDisposed(t: H): boolean;
  liveTensors(): number;
  zeros(shape: number[], dtype: string, device?: string): H;
  ones(shape: number[], dtype: string, device?: string): H;
  empty(shape: number[], dtype: string, device?: string): H;
  full(shape: number[], value: Scalar, dtype: string, device?: string): H;
  arange(start: number, end: number, step: number, dtype: string, device?: string): H;
  randn(shape: number[], dtype: string, device: string, gen: GeneratorHandle | null): H;
  rand(shape: number[], dtype: string, device: string, gen: GeneratorHandle | null): H;
  randint(
    low: number,
    high: number,
    shape: number[],
    dtype: string,
    device: string,
    gen: GeneratorHandle | null,
  ): H;
  to(t: H, dtype: string | null, device: string | null): H;
  contiguous(t: H): H;
  clone(t: H): H;
  createGenerator(seed: number): GeneratorHandle;
  generatorState(gen: GeneratorHandle | null): H;
  setGeneratorState(gen: GeneratorHandle | null, state: H): void;
  manualSeed(seed: number): void;
  setNumThreads(threads: number): void;
  getNumThreads(): number;
  setMallocThresholds(mmapBytes: number, trimBytes: number): boolean;
  cudaDeviceCount(): number;
  versions(): { libtorch: string; cuda: boolean; parallel: string; cpuCapability: string };
  setErrorClass(ctor: new (code: string, message: string) => Error): void;
  // ops.cc: unary
  [unary: string]: unknown;
  // autograd.cc
  requiresGrad_(t: H, flag: boolean): H;
  requiresGrad(t: H): boolean;
  isLeaf(t: H): boolean;
  retainGrad(t: H): void;
  grad(t: H): H | null;
  setGrad(t: H, g: H | null): void;
  zeroGrads(ts: H[], setToNone: boolean): void;
  backward(t: H, grad: H | null, retainGraph: boolean): void;
  clipGradNorm(ts: H[], maxNorm: number, normType: number): number;
  withGradMode<T>(enabled: boolean, fn: () => T): T;
  withInferenceMode<T>(fn: () => T): T;
  isGradEnabled(): boolean;
  isInferenceMode(): boolean;
  withAutocast<T>(deviceType: string, dtype: string, enabled: boolean, fn: () => T): T;
  isAutocastEnabled(deviceType: string): boolean;
  hasScaledDotProductAttention: boolean;
  Optimizer: new (
    kind: string,
    groups: { params: H[]; lr: number; weightDecay: number }[],
    options: Record<string, unknown>,
  ) => NativeOptimizer;
}

/** Typed access to ops that share a calling convention. */
export type Unary = (t: H) => H;
export type { Dims };

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

function addonPath(): string {
  // dist/src/tensor -> project root; src/tensor under tsx -> one level less.
  const candidates = [
    process.env.CDPO_NATIVE_ADDON,
    join(root, "native", "build", "Release", "cdpo_native.node"),
    join(root, "..", "native", "build", "Release", "cdpo_native.node"),
    join(
      dirname(fileURLToPath(import.meta.url)),
      "..",
      "..",
      "native",
      "build",
      "Release",
      "cdpo_native.node",
    ),
  ];
  for (const candidate of candidates) {
    if (candidate && existsSync(candidate)) return candidate;
  }
  throw new CdpoError(
    "NOT_FOUND",
    "The cdpo native addon is not built (native/build/Release/cdpo_native.node is missing). " +
      "Run `npm run build:native` (or `bash scripts/setup.sh`), which finds libtorch and builds it.",
  );
}

/**
 * Makes idle OpenMP threads sleep instead of spin, unless the user chose a policy. libgomp reads
 * this when libtorch loads it, so it is set before the addon is required. With spinning threads a
 * 2-core machine shared with one other busy process ran a small model's training step 15 times
 * slower at 2 threads than at 1 (18.7 s against 1.2 s); with PASSIVE it was 1.0 s.
 */
function configureOpenMp(): void {
  if (process.env.OMP_WAIT_POLICY === undefined && process.env.GOMP_SPINCOUNT === undefined) {
    process.env.OMP_WAIT_POLICY = "PASSIVE";
  }
}

/**
 * Serves freed tensors' memory back from glibc's heap instead of fresh `mmap` calls, unless the
 * user tuned malloc through `MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_` or `GLIBC_TUNABLES`.
 *
 * glibc maps every block of 128 KiB or more with its own `mmap` and unmaps it on free. Each op
 * whose output has that size (an [8, 8192] float32 logits block is 256 KiB) then pays for system
 * calls and page faults, until the first large free raises the threshold (glibc's dynamic rule,
 * capped at 32 MiB). A PyTorch script usually reaches the cap while building its model. cdpo creates
 * parameters in place, so it never did, and its decoding ran the same libtorch calls 15% slower:
 * 18.5 against 16.0 ms for one decoding step's matrix products (`bench/models.ts` model, batch 8).
 * These are the values of the raised rule: 32 MiB, with trimming at twice that.
 */
function configureMalloc(addon: NativeAddon): MallocThresholds | null {
  const env = process.env;
  const tuned =
    env.MALLOC_MMAP_THRESHOLD_ !== undefined ||
    env.MALLOC_TRIM_THRESHOLD_ !== undefined ||
    /malloc\.(mmap|trim)_threshold/.test(env.GLIBC_TUNABLES ?? "");
  if (tuned) return null;
  const settings = { mmapThreshold: 32 * 1024 * 1024, trimThreshold: 64 * 1024 * 1024 };
  return addon.setMallocThresholds(settings.mmapThreshold, settings.trimThreshold)
    ? settings
    : null;
}

/** glibc malloc thresholds in bytes. */
export interface MallocThresholds {
  mmapThreshold: number;
  trimThreshold: number;
}

/** The thresholds {@link configureMalloc} set when the addon loaded; null when it left malloc alone. */
export let mallocSettings: MallocThresholds | null = null;

function load(): NativeAddon {
  configureOpenMp();
  const path = addonPath();
  const require = createRequire(import.meta.url);
  try {
    const addon = require(path) as NativeAddon;
    addon.setErrorClass(CdpoError as unknown as new (code: string, message: string) => Error);
    mallocSettings = configureMalloc(addon);
    return addon;
  } catch (error) {
    if (error instanceof CdpoError) throw error;
    throw new CdpoError(
      "NOT_FOUND",
      `Failed to load the cdpo native addon from ${path}: ${(error as Error).message}. ` +
        "If libtorch moved or was upgraded, rebuild with `npm run build:native`.",
      { cause: error },
    );
  }
}

export const native: NativeAddon = load();

/** Returns a native function by name, typed by the caller. */
export function op<F>(name: string): F {
  const fn = native[name];
  if (typeof fn !== "function") throw new CdpoError("NOT_FOUND", `native op ${name} is missing`);
  return fn as F;
}
