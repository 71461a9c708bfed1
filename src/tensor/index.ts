/**
 * cdpo's tensor API: libtorch through the native addon, with PyTorch's names.
 *
 * ```ts
 * import * as torch from "./tensor/index.js";
 * const loss = torch.tidy(() => torch.randn([4, 8]).matmul(w).square().mean());
 * ```
 *
 * Memory rule: `tidy(fn)` frees the tensors created inside it when it returns, except the ones it
 * returns. Tensors created outside any scope live until `dispose()`. The garbage collector's
 * finalizer frees forgotten ones too, but only as a backstop. `liveTensors()` counts native
 * handles for leak tests.
 */
import { CdpoError, invalidArgument } from "../errors.js";
import {
  type GeneratorHandle,
  type Handle,
  type MallocThresholds,
  mallocSettings,
  native,
  op,
  type Scalar,
} from "./native.js";
import { type Device, DTYPES, type DType, Tensor, type TensorOrScalar } from "./tensor.js";

export { dispose, keep, scopeDepth, type TensorContainer, tidy } from "./scope.js";
export type { Device, DType, Scalar, TensorOrScalar };
export { DTYPES, Tensor };

// --- creation ----------------------------------------------------------------------------------

export interface CreateOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
}

type NumericArray =
  | Float32Array
  | Float64Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Int8Array
  | Int16Array;

const TYPED_DTYPE: [new (...args: never[]) => NumericArray, DType][] = [
  [Float32Array, "float32"],
  [Float64Array, "float64"],
  [Int32Array, "int32"],
  [BigInt64Array, "int64"],
  [Uint8Array, "uint8"],
  [Int8Array, "int8"],
  [Int16Array, "int16"],
];

function checkShape(name: string, shape: readonly number[]): number {
  if (!Array.isArray(shape)) throw invalidArgument("type", name, "an array of sizes", shape);
  let numel = 1;
  for (const size of shape) {
    if (!Number.isInteger(size) || size < 0) {
      throw invalidArgument("range", name, "non-negative integer sizes", shape);
    }
    numel *= size;
  }
  return numel;
}

function finish(handle: Handle, options: CreateOptions | undefined): Tensor {
  const tensor = new Tensor(handle);
  if (options?.requiresGrad) tensor.requiresGrad_(true);
  return tensor;
}

/**
 * Creates a tensor from a typed array or a number array, copying the data.
 *
 * The dtype defaults to the typed array's own (Float32Array gives float32, BigInt64Array int64,
 * ...) and to float32 for a number array. The shape defaults to one dimension.
 */
export function tensor(
  data: NumericArray | readonly number[] | readonly boolean[],
  shape?: readonly number[],
  options: CreateOptions = {},
): Tensor {
  const length = data.length;
  const dims = shape ? [...shape] : [length];
  const numel = checkShape("shape", dims);
  if (numel !== length) {
    throw new RangeError(
      `Expected ${numel} elements for shape [${dims.join(", ")}] but received ${length}`,
    );
  }
  const target = options.dtype;
  if (target !== undefined && !DTYPES.includes(target)) {
    throw invalidArgument("type", "dtype", `one of ${DTYPES.join(", ")}`, target);
  }
  let source: NumericArray;
  let sourceDtype: DType;
  if (Array.isArray(data)) {
    if (target === "int64") {
      source = BigInt64Array.from(data as number[], (v) => BigInt(Math.trunc(Number(v))));
      sourceDtype = "int64";
    } else if (target === "int32" || target === "bool" || target === "uint8") {
      source = Int32Array.from(data as number[], (v) => Number(v));
      sourceDtype = "int32";
    } else {
      source = Float32Array.from(data as number[], (v) => Number(v));
      sourceDtype = "float32";
      if (target === "float64") {
        source = Float64Array.from(data as number[], (v) => Number(v));
        sourceDtype = "float64";
      }
    }
  } else {
    const match = TYPED_DTYPE.find(([ctor]) => data instanceof ctor);
    if (!match) throw invalidArgument("type", "data", "a typed array or number[]", data);
    source = data as NumericArray;
    sourceDtype = match[1];
  }
  let handle = native.fromBytes(source, sourceDtype, dims, "cpu");
  const dtype = target ?? sourceDtype;
  const device = options.device ?? "cpu";
  if (dtype !== sourceDtype || device !== "cpu") {
    const converted = native.to(handle, dtype, device);
    native.dispose(handle);
    handle = converted;
  }
  return finish(handle, options);
}

/** Creates a tensor from raw little-endian element bytes (safetensors payloads, for example). */
export function fromBytes(
  bytes: ArrayBufferView,
  dtype: DType,
  shape: readonly number[],
  options: Omit<CreateOptions, "dtype"> = {},
): Tensor {
  checkShape("shape", shape);
  return finish(native.fromBytes(bytes, dtype, [...shape], options.device ?? "cpu"), options);
}

export function scalarTensor(value: number, options: CreateOptions = {}): Tensor {
  return full([], value, options);
}

export function zeros(shape: readonly number[], options: CreateOptions = {}): Tensor {
  checkShape("shape", shape);
  return finish(
    native.zeros([...shape], options.dtype ?? "float32", options.device ?? "cpu"),
    options,
  );
}

export function ones(shape: readonly number[], options: CreateOptions = {}): Tensor {
  checkShape("shape", shape);
  return finish(
    native.ones([...shape], options.dtype ?? "float32", options.device ?? "cpu"),
    options,
  );
}

export function empty(shape: readonly number[], options: CreateOptions = {}): Tensor {
  checkShape("shape", shape);
  return finish(
    native.empty([...shape], options.dtype ?? "float32", options.device ?? "cpu"),
    options,
  );
}

export function full(shape: readonly number[], value: Scalar, options: CreateOptions = {}): Tensor {
  checkShape("shape", shape);
  const dtype = options.dtype ?? (typeof value === "boolean" ? "bool" : "float32");
  return finish(native.full([...shape], value, dtype, options.device ?? "cpu"), options);
}

export function zerosLike(t: Tensor): Tensor {
  return zeros(t.shape, { dtype: t.dtype, device: t.device });
}

export function onesLike(t: Tensor): Tensor {
  return ones(t.shape, { dtype: t.dtype, device: t.device });
}

/** `arange(end)` or `arange(start, end, step)`; int64 unless a dtype is given. */
export function arange(
  startOrEnd: number,
  end?: number,
  step = 1,
  options: CreateOptions = {},
): Tensor {
  const start = end === undefined ? 0 : startOrEnd;
  const stop = end === undefined ? startOrEnd : end;
  if (step === 0) throw invalidArgument("range", "step", "a non-zero number", step);
  return finish(
    native.arange(start, stop, step, options.dtype ?? "int64", options.device ?? "cpu"),
    options,
  );
}

/** A seeded random generator for reproducible sampling and initialisation. */
export class Generator {
  readonly handle: GeneratorHandle;

  constructor(seed: number) {
    if (!Number.isSafeInteger(seed) || seed < 0) {
      throw invalidArgument("range", "seed", "a non-negative safe integer", seed);
    }
    this.handle = native.createGenerator(seed);
  }

  /** Returns the generator's full state as a uint8 tensor, for checkpoints. */
  getState(): Tensor {
    return new Tensor(native.generatorState(this.handle));
  }

  setState(state: Tensor): void {
    native.setGeneratorState(this.handle, state.handle);
  }
}

export interface RandomOptions extends CreateOptions {
  generator?: Generator;
}

export function randn(shape: readonly number[], options: RandomOptions = {}): Tensor {
  checkShape("shape", shape);
  return finish(
    native.randn(
      [...shape],
      options.dtype ?? "float32",
      options.device ?? "cpu",
      options.generator?.handle ?? null,
    ),
    options,
  );
}

export function rand(shape: readonly number[], options: RandomOptions = {}): Tensor {
  checkShape("shape", shape);
  return finish(
    native.rand(
      [...shape],
      options.dtype ?? "float32",
      options.device ?? "cpu",
      options.generator?.handle ?? null,
    ),
    options,
  );
}

/** Integers drawn uniformly from [low, high). */
export function randint(
  low: number,
  high: number,
  shape: readonly number[],
  options: RandomOptions = {},
): Tensor {
  checkShape("shape", shape);
  if (!(high > low))
    throw new RangeError(`Expected high > low for randint but received low=${low}, high=${high}`);
  return finish(
    native.randint(
      low,
      high,
      [...shape],
      options.dtype ?? "int64",
      options.device ?? "cpu",
      options.generator?.handle ?? null,
    ),
    options,
  );
}

// --- functional ops ----------------------------------------------------------------------------

const F = {
  cat: op<(ts: Handle[], dim: number) => Handle>("cat"),
  stack: op<(ts: Handle[], dim: number) => Handle>("stack"),
  where:
    op<
      (
        c: Handle,
        a: Handle | Scalar,
        b: Handle | Scalar,
        aIsScalar: boolean,
        bIsScalar: boolean,
      ) => Handle
    >("where"),
  linear: op<(x: Handle, w: Handle, b: Handle | null) => Handle>("linear"),
  crossEntropy:
    op<
      (
        l: Handle,
        t: Handle,
        ignore: number,
        reduction: string,
        smoothing: number,
        w: Handle | null,
      ) => Handle
    >("crossEntropy"),
  embedding: op<(w: Handle, i: Handle, padding: number | null) => Handle>("embedding"),
  multinomial:
    op<(p: Handle, n: number, replacement: boolean, g: GeneratorHandle | null) => Handle>(
      "multinomial",
    ),
  dropout: op<(x: Handle, p: number, train: boolean) => Handle>("dropout"),
  layerNorm:
    op<(x: Handle, shape: number[], w: Handle | null, b: Handle | null, eps: number) => Handle>(
      "layerNorm",
    ),
  einsum: op<(eq: string, ts: Handle[]) => Handle>("einsum"),
  sdpa: op<
    (q: Handle, k: Handle, v: Handle, m: Handle | null, p: number, causal: boolean) => Handle
  >("scaledDotProductAttention"),
};

const handles = (tensors: readonly Tensor[]): Handle[] => tensors.map((t) => t.handle);
const optionalHandle = (t: Tensor | null | undefined): Handle | null => (t ? t.handle : null);

export function cat(tensors: readonly Tensor[], dim = 0): Tensor {
  return new Tensor(F.cat(handles(tensors), dim));
}

export function stack(tensors: readonly Tensor[], dim = 0): Tensor {
  return new Tensor(F.stack(handles(tensors), dim));
}

/** Elementwise `condition ? input : other`; either branch may be a number. */
export function where(condition: Tensor, input: TensorOrScalar, other: TensorOrScalar): Tensor {
  const h = (v: TensorOrScalar) => (v instanceof Tensor ? v.handle : v);
  return new Tensor(
    F.where(
      condition.handle,
      h(input),
      h(other),
      !(input instanceof Tensor),
      !(other instanceof Tensor),
    ),
  );
}

/** `input @ weight.T + bias`, weight laid out [out, in] as in PyTorch and Hugging Face. */
export function linear(input: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
  return new Tensor(F.linear(input.handle, weight.handle, optionalHandle(bias)));
}

export function matmul(a: Tensor, b: Tensor): Tensor {
  return a.matmul(b);
}

export function bmm(a: Tensor, b: Tensor): Tensor {
  return a.bmm(b);
}

export interface CrossEntropyOptions {
  /** Target value whose positions add nothing to the loss. Default -100, as PyTorch. */
  ignoreIndex?: number;
  reduction?: "mean" | "sum" | "none";
  labelSmoothing?: number;
  weight?: Tensor;
}

/** Cross entropy of logits [N, C] (or [N, C, ...]) against int64 class targets [N]. */
export function crossEntropy(
  logits: Tensor,
  target: Tensor,
  options: CrossEntropyOptions = {},
): Tensor {
  return new Tensor(
    F.crossEntropy(
      logits.handle,
      target.handle,
      options.ignoreIndex ?? -100,
      options.reduction ?? "mean",
      options.labelSmoothing ?? 0,
      optionalHandle(options.weight),
    ),
  );
}

export function embedding(
  weight: Tensor,
  indices: Tensor,
  paddingIdx: number | null = null,
): Tensor {
  return new Tensor(F.embedding(weight.handle, indices.handle, paddingIdx));
}

/** Draws `numSamples` indices per row of non-negative weights `probs` [..., C]. */
export function multinomial(
  probs: Tensor,
  numSamples: number,
  replacement = false,
  generator: Generator | null = null,
): Tensor {
  return new Tensor(
    F.multinomial(probs.handle, numSamples, replacement, generator?.handle ?? null),
  );
}

export function dropout(input: Tensor, p: number, train: boolean): Tensor {
  if (!(p >= 0 && p <= 1)) throw invalidArgument("range", "p", "a probability in [0, 1]", p);
  if (!train || p === 0) return input.clone();
  return new Tensor(F.dropout(input.handle, p, train));
}

export function layerNorm(
  input: Tensor,
  normalizedShape: readonly number[],
  weight: Tensor | null,
  bias: Tensor | null,
  eps = 1e-5,
): Tensor {
  return new Tensor(
    F.layerNorm(
      input.handle,
      [...normalizedShape],
      optionalHandle(weight),
      optionalHandle(bias),
      eps,
    ),
  );
}

export function einsum(equation: string, ...operands: Tensor[]): Tensor {
  return new Tensor(F.einsum(equation, handles(operands)));
}

export function softmax(input: Tensor, dim: number): Tensor {
  return input.softmax(dim);
}

export function logSoftmax(input: Tensor, dim: number): Tensor {
  return input.logSoftmax(dim);
}

/** Whether libtorch has a fused `scaled_dot_product_attention` (2.0 and later). */
export const hasFusedAttention: boolean = native.hasScaledDotProductAttention;

/**
 * Attention `softmax(q kᵀ / √d + mask) v` over [B, H, T, D] inputs.
 *
 * `mask` is additive (0 or -inf, broadcastable to [B, H, Tq, Tk]) or boolean (true = attend).
 * Uses libtorch's fused kernel where the version has it; otherwise the explicit form.
 */
export function scaledDotProductAttention(
  query: Tensor,
  key: Tensor,
  value: Tensor,
  mask: Tensor | null = null,
  isCausal = false,
): Tensor {
  if (hasFusedAttention) {
    return new Tensor(
      F.sdpa(query.handle, key.handle, value.handle, optionalHandle(mask), 0, isCausal),
    );
  }
  return attentionExplicit(query, key, value, mask, isCausal);
}

/** Computes attention in the explicit form, for libtorch versions without the fused kernel. */
export function attentionExplicit(
  query: Tensor,
  key: Tensor,
  value: Tensor,
  mask: Tensor | null,
  isCausal: boolean,
): Tensor {
  const headDim = query.size(-1);
  const tq = query.size(-2);
  const tk = key.size(-2);
  const kt = key.transpose(-2, -1);
  const raw = query.matmul(kt); // [B, H, Tq, Tk]
  kt.dispose();
  let scores = raw.mul(1 / Math.sqrt(headDim));
  raw.dispose();
  if (isCausal) {
    // Query i may attend to keys j <= i + (tk - tq): the queries are the last tq positions.
    const allowed = ones([tq, tk], { dtype: "bool", device: query.device });
    const causal = allowed.tril(tk - tq);
    allowed.dispose();
    const blocked = causal.logicalNot();
    causal.dispose();
    const masked = scores.maskedFill(blocked, Number.NEGATIVE_INFINITY);
    blocked.dispose();
    scores.dispose();
    scores = masked;
  }
  if (mask !== null) {
    let next: Tensor;
    if (mask.dtype === "bool") {
      const blocked = mask.logicalNot();
      next = scores.maskedFill(blocked, Number.NEGATIVE_INFINITY);
      blocked.dispose();
    } else {
      next = scores.add(mask);
    }
    scores.dispose();
    scores = next;
  }
  const weights = scores.softmax(-1);
  scores.dispose();
  const out = weights.matmul(value); // [B, H, Tq, D]
  weights.dispose();
  return out;
}

// --- autograd and modes --------------------------------------------------------------------------

/** Runs `fn` with gradient recording off (PyTorch's `torch.no_grad()`). */
export function noGrad<T>(fn: () => T): T {
  return native.withGradMode(false, fn);
}

/** Runs `fn` with gradient recording on, also inside a `noGrad` scope. */
export function enableGrad<T>(fn: () => T): T {
  return native.withGradMode(true, fn);
}

/** Runs `fn` in inference mode: no autograd state at all, for sampling and scoring. */
export function inferenceMode<T>(fn: () => T): T {
  return native.withInferenceMode(fn);
}

export function isGradEnabled(): boolean {
  return native.isGradEnabled();
}

/** Returns whether an `inferenceMode` scope is open. */
export function isInferenceMode(): boolean {
  return native.isInferenceMode();
}

/**
 * Runs `fn` under libtorch's autocast: matmuls and linears run in `dtype` (bfloat16 by default on
 * the CPU, float16 or bfloat16 on CUDA) while parameters and their gradients stay float32.
 */
export function autocast<T>(
  fn: () => T,
  options: { deviceType?: "cpu" | "cuda"; dtype?: "bfloat16" | "float16"; enabled?: boolean } = {},
): T {
  const deviceType = options.deviceType ?? "cpu";
  const dtype = options.dtype ?? (deviceType === "cpu" ? "bfloat16" : "float16");
  return native.withAutocast(deviceType, dtype, options.enabled ?? true, fn);
}

export function isAutocastEnabled(deviceType: "cpu" | "cuda" = "cpu"): boolean {
  return native.isAutocastEnabled(deviceType);
}

/** Clears (setToNone, the default) or zeroes the gradients of the given tensors. */
export function zeroGrad(tensors: readonly Tensor[], setToNone = true): void {
  native.zeroGrads(handles(tensors), setToNone);
}

/**
 * Scales gradients in place so that their global norm is at most `maxNorm`; returns the norm
 * before clipping (PyTorch's `clip_grad_norm_`).
 */
export function clipGradNorm(tensors: readonly Tensor[], maxNorm: number, normType = 2): number {
  if (!(maxNorm > 0)) throw invalidArgument("range", "maxNorm", "a positive number", maxNorm);
  return native.clipGradNorm(handles(tensors), maxNorm, normType);
}

// --- optimizers ----------------------------------------------------------------------------------

export interface ParamGroup {
  params: readonly Tensor[];
  lr: number;
  weightDecay?: number;
}

export interface AdamWOptions {
  betas?: [number, number];
  eps?: number;
  amsgrad?: boolean;
}

export interface SGDOptions {
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
}

/** libtorch's own optimizers; the parameters are updated in place, in float32. */
export class Optimizer {
  readonly kind: "adamw" | "sgd";
  readonly #native;
  readonly #params: Tensor[];

  constructor(
    kind: "adamw" | "sgd",
    groups: readonly ParamGroup[],
    options: AdamWOptions & SGDOptions = {},
  ) {
    if (groups.length === 0)
      throw invalidArgument("range", "groups", "at least one parameter group", groups);
    this.kind = kind;
    this.#params = groups.flatMap((g) => [...g.params]);
    for (const [i, g] of groups.entries()) {
      if (!(g.lr >= 0))
        throw invalidArgument("range", `groups[${i}].lr`, "a non-negative number", g.lr);
    }
    this.#native = new native.Optimizer(
      kind,
      groups.map((g) => ({
        params: handles(g.params),
        lr: g.lr,
        weightDecay: g.weightDecay ?? (kind === "adamw" ? 0.01 : 0),
      })),
      { ...options },
    );
  }

  get params(): readonly Tensor[] {
    return this.#params;
  }

  step(): void {
    this.#native.step();
  }

  zeroGrad(setToNone = true): void {
    this.#native.zeroGrad(setToNone);
  }

  /** Sets the learning rate of one group, or of all groups when `group` is omitted. */
  setLr(lr: number, group: number | null = null): void {
    this.#native.setLr(lr, group);
  }

  getLr(group = 0): number {
    return this.#native.getLr(group);
  }

  /** Serialises the optimizer state (moments, step counts) in libtorch's archive format. */
  stateDict(): Buffer {
    return this.#native.stateDict();
  }

  /** Restores a state from `stateDict()` of an optimizer over the same parameter groups. */
  loadStateDict(state: Buffer): void {
    this.#native.loadStateDict(state);
  }
}

export function adamw(groups: readonly ParamGroup[], options: AdamWOptions = {}): Optimizer {
  return new Optimizer("adamw", groups, options);
}

export function sgd(groups: readonly ParamGroup[], options: SGDOptions = {}): Optimizer {
  return new Optimizer("sgd", groups, options);
}

// --- runtime -------------------------------------------------------------------------------------

/** Sets the number of intra-op threads libtorch uses. */
export function setNumThreads(threads: number): void {
  if (!Number.isInteger(threads) || threads < 1) {
    throw invalidArgument("range", "threads", "an integer >= 1", threads);
  }
  native.setNumThreads(threads);
}

export function getNumThreads(): number {
  return native.getNumThreads();
}

/** Seeds libtorch's default generator (randn, rand, dropout, multinomial without a generator). */
export function manualSeed(seed: number): void {
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw invalidArgument("range", "seed", "a non-negative safe integer", seed);
  }
  native.manualSeed(seed);
}

/** State of libtorch's default CPU generator, for checkpoints. */
export function getRngState(): Tensor {
  return new Tensor(native.generatorState(null));
}

export function setRngState(state: Tensor): void {
  native.setGeneratorState(null, state.handle);
}

/** Number of native tensor handles alive now (for leak checks). */
export function liveTensors(): number {
  return native.liveTensors();
}

export function cudaIsAvailable(): boolean {
  return native.cudaDeviceCount() > 0;
}

export function cudaDeviceCount(): number {
  return native.cudaDeviceCount();
}

export function libtorchVersion(): string {
  return native.versions().libtorch;
}

/**
 * Returns the glibc malloc thresholds cdpo set when the addon loaded (see `configureMalloc` in
 * `src/tensor/native.ts`), or null when it left malloc alone: another C library, or the user set
 * `MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_` or a `GLIBC_TUNABLES` malloc threshold.
 */
export function mallocThresholds(): MallocThresholds | null {
  return mallocSettings === null ? null : { ...mallocSettings };
}

/** libtorch's build and threading report (`at::get_parallel_info`). */
export function parallelInfo(): string {
  return native.versions().parallel;
}

/** Picks the device to run on: `"cuda"` when requested and available, else `"cpu"`. */
export function resolveDevice(requested: "auto" | Device = "auto"): Device {
  if (requested === "auto") return cudaIsAvailable() ? "cuda" : "cpu";
  if (requested.startsWith("cuda") && !cudaIsAvailable()) {
    throw new CdpoError(
      "NOT_FOUND",
      `device ${requested} was requested, but this libtorch build has no CUDA device (libtorch ${libtorchVersion()})`,
    );
  }
  return requested;
}
