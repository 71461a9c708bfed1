/**
 * The Tensor class: a typed handle on one libtorch tensor, with PyTorch's method names.
 *
 * Every method that produces a tensor returns a new `Tensor` that belongs to the innermost open
 * `tidy` scope (see scope.ts). Methods ending in `_` modify the tensor in place and return it.
 * libtorch errors arrive as `CdpoError` with code "TORCH" and the op's name in the message.
 */
import { CdpoError, invalidArgument } from "../errors.js";
import {
  type GeneratorHandle,
  type Handle,
  native,
  op,
  type Scalar,
  type Unary,
} from "./native.js";
import { registerTensorClass, track } from "./scope.js";

export type DType =
  | "float32"
  | "float16"
  | "bfloat16"
  | "float64"
  | "int64"
  | "int32"
  | "int16"
  | "int8"
  | "uint8"
  | "bool";

export const DTYPES: readonly DType[] = [
  "float32",
  "float16",
  "bfloat16",
  "float64",
  "int64",
  "int32",
  "int16",
  "int8",
  "uint8",
  "bool",
];

/** `"cpu"`, `"cuda"` or `"cuda:N"`. */
export type Device = string;

/** A tensor or a number where an op accepts either (a number broadcasts as a scalar). */
export type TensorOrScalar = Tensor | Scalar;

const unary = (name: string) => op<Unary>(name);

// Looked up once: a property read on the addon object per call is measurable on tiny ops.
const N = {
  neg: unary("neg"),
  abs: unary("abs"),
  exp: unary("exp"),
  log: unary("log"),
  log1p: unary("log1p"),
  sqrt: unary("sqrt"),
  rsqrt: unary("rsqrt"),
  square: unary("square"),
  reciprocal: unary("reciprocal"),
  tanh: unary("tanh"),
  sigmoid: unary("sigmoid"),
  logsigmoid: unary("logsigmoid"),
  silu: unary("silu"),
  relu: unary("relu"),
  sin: unary("sin"),
  cos: unary("cos"),
  erf: unary("erf"),
  sign: unary("sign"),
  floor: unary("floor"),
  ceil: unary("ceil"),
  round: unary("round"),
  logicalNot: unary("logicalNot"),
  isnan: unary("isnan"),
  isfinite: unary("isfinite"),
  detach: unary("detach"),
  nonzero: unary("nonzero"),
  add: op<(a: Handle, b: Handle) => Handle>("add"),
  addScalar: op<(a: Handle, b: Scalar) => Handle>("addScalar"),
  sub: op<(a: Handle, b: Handle) => Handle>("sub"),
  subScalar: op<(a: Handle, b: Scalar) => Handle>("subScalar"),
  mul: op<(a: Handle, b: Handle) => Handle>("mul"),
  mulScalar: op<(a: Handle, b: Scalar) => Handle>("mulScalar"),
  div: op<(a: Handle, b: Handle) => Handle>("div"),
  divScalar: op<(a: Handle, b: Scalar) => Handle>("divScalar"),
  pow: op<(a: Handle, b: Handle) => Handle>("pow"),
  powScalar: op<(a: Handle, b: Scalar) => Handle>("powScalar"),
  remainder: op<(a: Handle, b: Handle) => Handle>("remainder"),
  remainderScalar: op<(a: Handle, b: Scalar) => Handle>("remainderScalar"),
  eq: op<(a: Handle, b: Handle) => Handle>("eq"),
  eqScalar: op<(a: Handle, b: Scalar) => Handle>("eqScalar"),
  ne: op<(a: Handle, b: Handle) => Handle>("ne"),
  neScalar: op<(a: Handle, b: Scalar) => Handle>("neScalar"),
  lt: op<(a: Handle, b: Handle) => Handle>("lt"),
  ltScalar: op<(a: Handle, b: Scalar) => Handle>("ltScalar"),
  le: op<(a: Handle, b: Handle) => Handle>("le"),
  leScalar: op<(a: Handle, b: Scalar) => Handle>("leScalar"),
  gt: op<(a: Handle, b: Handle) => Handle>("gt"),
  gtScalar: op<(a: Handle, b: Scalar) => Handle>("gtScalar"),
  ge: op<(a: Handle, b: Handle) => Handle>("ge"),
  geScalar: op<(a: Handle, b: Scalar) => Handle>("geScalar"),
  maximum: op<(a: Handle, b: Handle) => Handle>("maximum"),
  minimum: op<(a: Handle, b: Handle) => Handle>("minimum"),
  logicalAnd: op<(a: Handle, b: Handle) => Handle>("logicalAnd"),
  logicalOr: op<(a: Handle, b: Handle) => Handle>("logicalOr"),
  matmul: op<(a: Handle, b: Handle) => Handle>("matmul"),
  mm: op<(a: Handle, b: Handle) => Handle>("mm"),
  bmm: op<(a: Handle, b: Handle) => Handle>("bmm"),
  gelu: op<(a: Handle, approximate: string) => Handle>("gelu"),
  clamp: op<(a: Handle, min: number | null, max: number | null) => Handle>("clamp"),
  sum: op<(a: Handle, dims: number[] | null, keepdim: boolean, dtype: string | null) => Handle>(
    "sum",
  ),
  mean: op<(a: Handle, dims: number[] | null, keepdim: boolean) => Handle>("mean"),
  amax: op<(a: Handle, dims: number[] | null, keepdim: boolean) => Handle>("amax"),
  amin: op<(a: Handle, dims: number[] | null, keepdim: boolean) => Handle>("amin"),
  logsumexp: op<(a: Handle, dims: number[] | null, keepdim: boolean) => Handle>("logsumexp"),
  var: op<(a: Handle, dims: number[] | null, correction: number, keepdim: boolean) => Handle>(
    "var",
  ),
  std: op<(a: Handle, dims: number[] | null, correction: number, keepdim: boolean) => Handle>(
    "std",
  ),
  max: op<(a: Handle, dim?: number | null, keepdim?: boolean) => Handle | [Handle, Handle]>("max"),
  min: op<(a: Handle, dim?: number | null, keepdim?: boolean) => Handle | [Handle, Handle]>("min"),
  argmax: op<(a: Handle, dim: number | null, keepdim: boolean) => Handle>("argmax"),
  argmin: op<(a: Handle, dim: number | null, keepdim: boolean) => Handle>("argmin"),
  norm: op<(a: Handle, p: number, dims: number[] | null, keepdim: boolean) => Handle>("norm"),
  softmax: op<(a: Handle, dim: number, dtype: string | null) => Handle>("softmax"),
  logSoftmax: op<(a: Handle, dim: number, dtype: string | null) => Handle>("logSoftmax"),
  gather: op<(a: Handle, dim: number, index: Handle) => Handle>("gather"),
  indexSelect: op<(a: Handle, dim: number, index: Handle) => Handle>("indexSelect"),
  scatter: op<(a: Handle, dim: number, index: Handle, src: Handle) => Handle>("scatter"),
  scatterScalar:
    op<(a: Handle, dim: number, index: Handle, value: Scalar) => Handle>("scatterScalar"),
  scatterAdd: op<(a: Handle, dim: number, index: Handle, src: Handle) => Handle>("scatterAdd"),
  index: op<(a: Handle, indices: (Handle | null)[]) => Handle>("index"),
  view: op<(a: Handle, shape: number[]) => Handle>("view"),
  reshape: op<(a: Handle, shape: number[]) => Handle>("reshape"),
  transpose: op<(a: Handle, d0: number, d1: number) => Handle>("transpose"),
  permute: op<(a: Handle, dims: number[]) => Handle>("permute"),
  expand: op<(a: Handle, shape: number[]) => Handle>("expand"),
  narrow: op<(a: Handle, dim: number, start: number, length: number) => Handle>("narrow"),
  select: op<(a: Handle, dim: number, index: number) => Handle>("select"),
  unsqueeze: op<(a: Handle, dim: number) => Handle>("unsqueeze"),
  squeeze: op<(a: Handle, dim: number | null) => Handle>("squeeze"),
  flatten: op<(a: Handle, start: number, end: number) => Handle>("flatten"),
  repeat: op<(a: Handle, repeats: number[]) => Handle>("repeat"),
  repeatInterleave: op<(a: Handle, repeats: number, dim: number) => Handle>("repeatInterleave"),
  flip: op<(a: Handle, dims: number[]) => Handle>("flip"),
  triu: op<(a: Handle, diagonal: number) => Handle>("triu"),
  tril: op<(a: Handle, diagonal: number) => Handle>("tril"),
  cumsum: op<(a: Handle, dim: number, dtype: string | null) => Handle>("cumsum"),
  pad: op<(a: Handle, pad: number[], value: number) => Handle>("pad"),
  slice:
    op<(a: Handle, dim: number, start: number | null, end: number | null, step: number) => Handle>(
      "slice",
    ),
  split: op<(a: Handle, size: number | number[], dim: number) => Handle[]>("split"),
  chunk: op<(a: Handle, chunks: number, dim: number) => Handle[]>("chunk"),
  maskedFill: op<(a: Handle, mask: Handle, value: Handle) => Handle>("maskedFill"),
  maskedFillScalar: op<(a: Handle, mask: Handle, value: Scalar) => Handle>("maskedFillScalar"),
  topk: op<
    (a: Handle, k: number, dim: number, largest: boolean, sorted: boolean) => [Handle, Handle]
  >("topk"),
  sort: op<(a: Handle, dim: number, descending: boolean, stable: boolean) => [Handle, Handle]>(
    "sort",
  ),
  copy_: op<(a: Handle, src: Handle) => Handle>("copy_"),
  fill_: op<(a: Handle, value: Scalar) => Handle>("fill_"),
  zero_: op<(a: Handle) => Handle>("zero_"),
  add_: op<(a: Handle, other: Handle, alpha: number) => Handle>("add_"),
  addScalar_: op<(a: Handle, other: Scalar, alpha: number) => Handle>("addScalar_"),
  mul_: op<(a: Handle, other: Handle) => Handle>("mul_"),
  mulScalar_: op<(a: Handle, other: Scalar) => Handle>("mulScalar_"),
  normal_:
    op<(a: Handle, mean: number, std: number, gen: GeneratorHandle | null) => Handle>("normal_"),
  uniform_:
    op<(a: Handle, from: number, to: number, gen: GeneratorHandle | null) => Handle>("uniform_"),
  equal: op<(a: Handle, b: Handle) => boolean>("equal"),
  sameStorage: op<(a: Handle, b: Handle) => boolean>("sameStorage"),
};

/** Normalises a `dim` argument (number, list or undefined) to the native list form. */
function dimsOf(dim: number | number[] | undefined | null): number[] | null {
  if (dim === undefined || dim === null) return null;
  return Array.isArray(dim) ? dim : [dim];
}

/**
 * Frees the handles of tensors that the garbage collector found unreachable before anyone called
 * dispose(). Only tensors that outlive every scope are registered here: a tensor inside a scope
 * is freed by the scope, so the hot path of a training step registers nothing.
 */
const backstop = new FinalizationRegistry<Handle>((handle) => {
  try {
    native.dispose(handle);
  } catch {
    // The handle was freed some other way; nothing is left to release.
  }
});

export class Tensor {
  #handle: Handle | null;
  #registered = false;

  /** Wraps a native handle. Library code only: use the creation functions in index.ts. */
  constructor(handle: Handle) {
    this.#handle = handle;
    if (!track(this)) this.adopt();
  }

  /**
   * Puts the tensor under the garbage collector's backstop; scope.ts calls it when a tensor leaves
   * the last scope (returned by the outermost tidy, or kept).
   */
  adopt(): void {
    if (this.#registered || this.#handle === null) return;
    backstop.register(this, this.#handle, this);
    this.#registered = true;
  }

  /** The native handle; throws after dispose(). */
  get handle(): Handle {
    if (this.#handle === null) {
      throw new CdpoError(
        "DISPOSED",
        "Tensor was used after dispose(); keep() it or return it from tidy()",
      );
    }
    return this.#handle;
  }

  get isDisposed(): boolean {
    return this.#handle === null;
  }

  /** Frees the tensor's memory now. Safe to call twice. */
  dispose(): void {
    if (this.#handle === null) return;
    native.dispose(this.#handle);
    this.#handle = null;
    if (this.#registered) {
      backstop.unregister(this);
      this.#registered = false;
    }
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Applies a binary op, choosing its scalar variant when `other` is a number. */
  #binary(
    tensorOp: (a: Handle, b: Handle) => Handle,
    scalarOp: (a: Handle, b: Scalar) => Handle,
    other: TensorOrScalar,
  ): Tensor {
    return new Tensor(
      other instanceof Tensor ? tensorOp(this.handle, other.handle) : scalarOp(this.handle, other),
    );
  }

  // --- properties -------------------------------------------------------------------------

  get shape(): number[] {
    return native.shape(this.handle);
  }

  get dtype(): DType {
    return native.dtype(this.handle) as DType;
  }

  get device(): Device {
    return native.device(this.handle);
  }

  get ndim(): number {
    return native.shape(this.handle).length;
  }

  get numel(): number {
    return native.shape(this.handle).reduce((a, b) => a * b, 1);
  }

  /** Size of one dimension; negative indices count from the end. */
  size(dim: number): number {
    const shape = this.shape;
    const index = dim < 0 ? shape.length + dim : dim;
    const size = shape[index];
    if (size === undefined) {
      throw invalidArgument("range", "dim", `an index in [-${shape.length}, ${shape.length})`, dim);
    }
    return size;
  }

  toString(): string {
    if (this.#handle === null) return "Tensor(disposed)";
    return `Tensor(shape=[${this.shape.join(", ")}], dtype=${this.dtype}, device=${this.device})`;
  }

  // --- data out ---------------------------------------------------------------------------

  /** Copies the elements into a Float32Array (converting from any dtype). */
  toFloat32Array(): Float32Array {
    const source = this.dtype === "float32" ? this.handle : native.to(this.handle, "float32", null);
    try {
      const bytes = native.toBytes(source);
      return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4).slice();
    } finally {
      if (source !== this.handle) native.dispose(source);
    }
  }

  /** Copies the elements into a Float64Array (converting from any dtype). */
  toFloat64Array(): Float64Array {
    const source = this.dtype === "float64" ? this.handle : native.to(this.handle, "float64", null);
    try {
      const bytes = native.toBytes(source);
      return new Float64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8).slice();
    } finally {
      if (source !== this.handle) native.dispose(source);
    }
  }

  /** Copies the elements into an Int32Array (integer and bool dtypes convert; floats truncate). */
  toInt32Array(): Int32Array {
    const source = this.dtype === "int32" ? this.handle : native.to(this.handle, "int32", null);
    try {
      const bytes = native.toBytes(source);
      return new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4).slice();
    } finally {
      if (source !== this.handle) native.dispose(source);
    }
  }

  /** Raw element bytes in this tensor's dtype, contiguous, little-endian. */
  toBytes(): Buffer {
    return native.toBytes(this.handle);
  }

  /** Copies the elements into a flat number array (float64 precision). */
  toArray(): number[] {
    return Array.from(this.toFloat64Array());
  }

  /** Returns the value of a one-element tensor. */
  item(): number {
    const value = native.item(this.handle);
    return typeof value === "boolean" ? Number(value) : value;
  }

  // --- conversion -------------------------------------------------------------------------

  /** Converts dtype and/or device; returns a new tensor even when nothing changes. */
  to(target: DType | { dtype?: DType; device?: Device }): Tensor {
    if (typeof target === "string") {
      if (!DTYPES.includes(target)) {
        throw invalidArgument("type", "dtype", `one of ${DTYPES.join(", ")}`, target);
      }
      return new Tensor(native.to(this.handle, target, null));
    }
    return new Tensor(native.to(this.handle, target.dtype ?? null, target.device ?? null));
  }

  float(): Tensor {
    return this.to("float32");
  }

  long(): Tensor {
    return this.to("int64");
  }

  contiguous(): Tensor {
    return new Tensor(native.contiguous(this.handle));
  }

  clone(): Tensor {
    return new Tensor(native.clone(this.handle));
  }

  detach(): Tensor {
    return new Tensor(N.detach(this.handle));
  }

  // --- elementwise ------------------------------------------------------------------------

  neg(): Tensor {
    return new Tensor(N.neg(this.handle));
  }
  abs(): Tensor {
    return new Tensor(N.abs(this.handle));
  }
  exp(): Tensor {
    return new Tensor(N.exp(this.handle));
  }
  log(): Tensor {
    return new Tensor(N.log(this.handle));
  }
  log1p(): Tensor {
    return new Tensor(N.log1p(this.handle));
  }
  sqrt(): Tensor {
    return new Tensor(N.sqrt(this.handle));
  }
  rsqrt(): Tensor {
    return new Tensor(N.rsqrt(this.handle));
  }
  square(): Tensor {
    return new Tensor(N.square(this.handle));
  }
  reciprocal(): Tensor {
    return new Tensor(N.reciprocal(this.handle));
  }
  tanh(): Tensor {
    return new Tensor(N.tanh(this.handle));
  }
  sigmoid(): Tensor {
    return new Tensor(N.sigmoid(this.handle));
  }
  logsigmoid(): Tensor {
    return new Tensor(N.logsigmoid(this.handle));
  }
  silu(): Tensor {
    return new Tensor(N.silu(this.handle));
  }
  relu(): Tensor {
    return new Tensor(N.relu(this.handle));
  }
  sin(): Tensor {
    return new Tensor(N.sin(this.handle));
  }
  cos(): Tensor {
    return new Tensor(N.cos(this.handle));
  }
  erf(): Tensor {
    return new Tensor(N.erf(this.handle));
  }
  sign(): Tensor {
    return new Tensor(N.sign(this.handle));
  }
  floor(): Tensor {
    return new Tensor(N.floor(this.handle));
  }
  ceil(): Tensor {
    return new Tensor(N.ceil(this.handle));
  }
  round(): Tensor {
    return new Tensor(N.round(this.handle));
  }
  logicalNot(): Tensor {
    return new Tensor(N.logicalNot(this.handle));
  }
  isnan(): Tensor {
    return new Tensor(N.isnan(this.handle));
  }
  isfinite(): Tensor {
    return new Tensor(N.isfinite(this.handle));
  }
  nonzero(): Tensor {
    return new Tensor(N.nonzero(this.handle));
  }

  /** GELU; `approximate: "tanh"` gives the GPT-2 form. */
  gelu(approximate: "none" | "tanh" = "none"): Tensor {
    return new Tensor(N.gelu(this.handle, approximate));
  }

  clamp(min: number | null, max: number | null = null): Tensor {
    return new Tensor(N.clamp(this.handle, min, max));
  }

  add(other: TensorOrScalar): Tensor {
    return this.#binary(N.add, N.addScalar, other);
  }
  sub(other: TensorOrScalar): Tensor {
    return this.#binary(N.sub, N.subScalar, other);
  }
  mul(other: TensorOrScalar): Tensor {
    return this.#binary(N.mul, N.mulScalar, other);
  }
  div(other: TensorOrScalar): Tensor {
    return this.#binary(N.div, N.divScalar, other);
  }
  pow(exponent: TensorOrScalar): Tensor {
    return this.#binary(N.pow, N.powScalar, exponent);
  }
  remainder(other: TensorOrScalar): Tensor {
    return this.#binary(N.remainder, N.remainderScalar, other);
  }
  eq(other: TensorOrScalar): Tensor {
    return this.#binary(N.eq, N.eqScalar, other);
  }
  ne(other: TensorOrScalar): Tensor {
    return this.#binary(N.ne, N.neScalar, other);
  }
  lt(other: TensorOrScalar): Tensor {
    return this.#binary(N.lt, N.ltScalar, other);
  }
  le(other: TensorOrScalar): Tensor {
    return this.#binary(N.le, N.leScalar, other);
  }
  gt(other: TensorOrScalar): Tensor {
    return this.#binary(N.gt, N.gtScalar, other);
  }
  ge(other: TensorOrScalar): Tensor {
    return this.#binary(N.ge, N.geScalar, other);
  }
  maximum(other: Tensor): Tensor {
    return new Tensor(N.maximum(this.handle, other.handle));
  }
  minimum(other: Tensor): Tensor {
    return new Tensor(N.minimum(this.handle, other.handle));
  }
  logicalAnd(other: Tensor): Tensor {
    return new Tensor(N.logicalAnd(this.handle, other.handle));
  }
  logicalOr(other: Tensor): Tensor {
    return new Tensor(N.logicalOr(this.handle, other.handle));
  }

  // --- linear algebra ---------------------------------------------------------------------

  matmul(other: Tensor): Tensor {
    return new Tensor(N.matmul(this.handle, other.handle));
  }
  mm(other: Tensor): Tensor {
    return new Tensor(N.mm(this.handle, other.handle));
  }
  bmm(other: Tensor): Tensor {
    return new Tensor(N.bmm(this.handle, other.handle));
  }

  // --- reductions -------------------------------------------------------------------------

  /** Sum over `dim` (all dims when omitted); `dtype` sets the accumulation and result type. */
  sum(dim?: number | number[] | null, keepdim = false, dtype: DType | null = null): Tensor {
    return new Tensor(N.sum(this.handle, dimsOf(dim), keepdim, dtype));
  }

  mean(dim?: number | number[] | null, keepdim = false): Tensor {
    return new Tensor(N.mean(this.handle, dimsOf(dim), keepdim));
  }

  amax(dim?: number | number[] | null, keepdim = false): Tensor {
    return new Tensor(N.amax(this.handle, dimsOf(dim), keepdim));
  }

  amin(dim?: number | number[] | null, keepdim = false): Tensor {
    return new Tensor(N.amin(this.handle, dimsOf(dim), keepdim));
  }

  logsumexp(dim: number | number[], keepdim = false): Tensor {
    return new Tensor(N.logsumexp(this.handle, dimsOf(dim), keepdim));
  }

  /** Variance with Bessel's correction by default (`correction = 1`), as PyTorch. */
  var(dim?: number | number[] | null, correction = 1, keepdim = false): Tensor {
    return new Tensor(N.var(this.handle, dimsOf(dim), correction, keepdim));
  }

  std(dim?: number | number[] | null, correction = 1, keepdim = false): Tensor {
    return new Tensor(N.std(this.handle, dimsOf(dim), correction, keepdim));
  }

  /** Maximum of all elements. */
  max(): Tensor {
    return new Tensor(N.max(this.handle) as Handle);
  }

  /** Maximum along `dim`: `[values, indices]`. */
  maxDim(dim: number, keepdim = false): [Tensor, Tensor] {
    const [values, indices] = N.max(this.handle, dim, keepdim) as [Handle, Handle];
    return [new Tensor(values), new Tensor(indices)];
  }

  min(): Tensor {
    return new Tensor(N.min(this.handle) as Handle);
  }

  minDim(dim: number, keepdim = false): [Tensor, Tensor] {
    const [values, indices] = N.min(this.handle, dim, keepdim) as [Handle, Handle];
    return [new Tensor(values), new Tensor(indices)];
  }

  argmax(dim: number | null = null, keepdim = false): Tensor {
    return new Tensor(N.argmax(this.handle, dim, keepdim));
  }

  argmin(dim: number | null = null, keepdim = false): Tensor {
    return new Tensor(N.argmin(this.handle, dim, keepdim));
  }

  norm(p = 2, dim?: number | number[] | null, keepdim = false): Tensor {
    return new Tensor(N.norm(this.handle, p, dimsOf(dim), keepdim));
  }

  softmax(dim: number, dtype: DType | null = null): Tensor {
    return new Tensor(N.softmax(this.handle, dim, dtype));
  }

  logSoftmax(dim: number, dtype: DType | null = null): Tensor {
    return new Tensor(N.logSoftmax(this.handle, dim, dtype));
  }

  cumsum(dim: number, dtype: DType | null = null): Tensor {
    return new Tensor(N.cumsum(this.handle, dim, dtype));
  }

  // --- indexing ---------------------------------------------------------------------------

  gather(dim: number, index: Tensor): Tensor {
    return new Tensor(N.gather(this.handle, dim, index.handle));
  }

  indexSelect(dim: number, index: Tensor): Tensor {
    return new Tensor(N.indexSelect(this.handle, dim, index.handle));
  }

  scatter(dim: number, index: Tensor, src: TensorOrScalar): Tensor {
    return new Tensor(
      src instanceof Tensor
        ? N.scatter(this.handle, dim, index.handle, src.handle)
        : N.scatterScalar(this.handle, dim, index.handle, src),
    );
  }

  scatterAdd(dim: number, index: Tensor, src: Tensor): Tensor {
    return new Tensor(N.scatterAdd(this.handle, dim, index.handle, src.handle));
  }

  /** Advanced indexing `t[i0, i1, ...]`, with `null` for a full slice of that dimension. */
  index(indices: (Tensor | null)[]): Tensor {
    return new Tensor(
      N.index(
        this.handle,
        indices.map((t) => (t === null ? null : t.handle)),
      ),
    );
  }

  maskedFill(mask: Tensor, value: TensorOrScalar): Tensor {
    return new Tensor(
      value instanceof Tensor
        ? N.maskedFill(this.handle, mask.handle, value.handle)
        : N.maskedFillScalar(this.handle, mask.handle, value),
    );
  }

  topk(k: number, dim = -1, largest = true, sorted = true): [Tensor, Tensor] {
    const [values, indices] = N.topk(this.handle, k, dim, largest, sorted);
    return [new Tensor(values), new Tensor(indices)];
  }

  sort(dim = -1, descending = false, stable = false): [Tensor, Tensor] {
    const [values, indices] = N.sort(this.handle, dim, descending, stable);
    return [new Tensor(values), new Tensor(indices)];
  }

  // --- shape ------------------------------------------------------------------------------

  view(...shape: number[]): Tensor {
    return new Tensor(N.view(this.handle, shape));
  }
  reshape(...shape: number[]): Tensor {
    return new Tensor(N.reshape(this.handle, shape));
  }
  transpose(dim0: number, dim1: number): Tensor {
    return new Tensor(N.transpose(this.handle, dim0, dim1));
  }
  permute(...dims: number[]): Tensor {
    return new Tensor(N.permute(this.handle, dims));
  }
  expand(...shape: number[]): Tensor {
    return new Tensor(N.expand(this.handle, shape));
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return new Tensor(N.narrow(this.handle, dim, start, length));
  }
  /** `t[..., start:end:step, ...]` along `dim`; `null` bounds mean the ends, negatives count back. */
  slice(dim: number, start: number | null = null, end: number | null = null, step = 1): Tensor {
    return new Tensor(N.slice(this.handle, dim, start, end, step));
  }
  /** `t[..., index, ...]` along `dim`, removing that dimension. */
  select(dim: number, index: number): Tensor {
    return new Tensor(N.select(this.handle, dim, index));
  }
  unsqueeze(dim: number): Tensor {
    return new Tensor(N.unsqueeze(this.handle, dim));
  }
  squeeze(dim: number | null = null): Tensor {
    return new Tensor(N.squeeze(this.handle, dim));
  }
  flatten(startDim = 0, endDim = -1): Tensor {
    return new Tensor(N.flatten(this.handle, startDim, endDim));
  }
  repeat(...repeats: number[]): Tensor {
    return new Tensor(N.repeat(this.handle, repeats));
  }
  repeatInterleave(repeats: number, dim: number): Tensor {
    return new Tensor(N.repeatInterleave(this.handle, repeats, dim));
  }
  flip(...dims: number[]): Tensor {
    return new Tensor(N.flip(this.handle, dims));
  }
  triu(diagonal = 0): Tensor {
    return new Tensor(N.triu(this.handle, diagonal));
  }
  tril(diagonal = 0): Tensor {
    return new Tensor(N.tril(this.handle, diagonal));
  }
  /** Constant padding; `pad` lists (before, after) pairs starting from the last dimension. */
  pad(pad: number[], value = 0): Tensor {
    return new Tensor(N.pad(this.handle, pad, value));
  }

  split(sizeOrSizes: number | number[], dim = 0): Tensor[] {
    return N.split(this.handle, sizeOrSizes, dim).map((h) => new Tensor(h));
  }

  chunk(chunks: number, dim = 0): Tensor[] {
    return N.chunk(this.handle, chunks, dim).map((h) => new Tensor(h));
  }

  // --- autograd ---------------------------------------------------------------------------

  get requiresGrad(): boolean {
    return native.requiresGrad(this.handle);
  }

  requiresGrad_(flag = true): this {
    native.requiresGrad_(this.handle, flag);
    return this;
  }

  get isLeaf(): boolean {
    return native.isLeaf(this.handle);
  }

  retainGrad(): void {
    native.retainGrad(this.handle);
  }

  /** The accumulated gradient as a new handle (caller owns it), or null. */
  get grad(): Tensor | null {
    const handle = native.grad(this.handle);
    return handle === null ? null : new Tensor(handle);
  }

  set grad(value: Tensor | null) {
    native.setGrad(this.handle, value === null ? null : value.handle);
  }

  /** Backpropagates from this tensor; a non-scalar needs `gradient`. */
  backward(gradient: Tensor | null = null, retainGraph = false): void {
    native.backward(this.handle, gradient === null ? null : gradient.handle, retainGraph);
  }

  // --- in place ---------------------------------------------------------------------------

  copy_(src: Tensor): this {
    N.copy_(this.handle, src.handle);
    return this;
  }
  fill_(value: Scalar): this {
    N.fill_(this.handle, value);
    return this;
  }
  zero_(): this {
    N.zero_(this.handle);
    return this;
  }
  /** `this += alpha * other` */
  add_(other: TensorOrScalar, alpha = 1): this {
    if (other instanceof Tensor) N.add_(this.handle, other.handle, alpha);
    else N.addScalar_(this.handle, other, alpha);
    return this;
  }
  mul_(other: TensorOrScalar): this {
    if (other instanceof Tensor) N.mul_(this.handle, other.handle);
    else N.mulScalar_(this.handle, other);
    return this;
  }

  /** Fills with draws from N(mean, std²); `generator` is a handle from `torch.Generator`. */
  normal_(mean = 0, std = 1, generator: { handle: GeneratorHandle } | null = null): this {
    N.normal_(this.handle, mean, std, generator?.handle ?? null);
    return this;
  }

  /** Fills with draws from U[from, to). */
  uniform_(from = 0, to = 1, generator: { handle: GeneratorHandle } | null = null): this {
    N.uniform_(this.handle, from, to, generator?.handle ?? null);
    return this;
  }

  /** Returns whether the two tensors have the same shape and elements. */
  equal(other: Tensor): boolean {
    return N.equal(this.handle, other.handle);
  }

  /** Returns whether the two tensors share storage (one is a view of the other, or both of a third). */
  sharesStorageWith(other: Tensor): boolean {
    return N.sameStorage(this.handle, other.handle);
  }
}

registerTensorClass(Tensor);
