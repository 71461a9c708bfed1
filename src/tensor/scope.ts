/**
 * Deterministic memory release for tensors.
 *
 * Every tensor created while a scope is open belongs to the innermost scope. When `tidy(fn)`
 * returns, it disposes every tensor of its scope that is not part of the returned value, and hands
 * the returned tensors to the enclosing scope. `keep(t)` takes a tensor out of all scopes, so only
 * an explicit `dispose()` frees it (model parameters, optimizer state, caches). The native
 * finalizer frees what was never disposed, but only when the garbage collector runs: a training
 * loop relies on scopes, not on the collector. Only tensors outside every scope are registered
 * for that backstop (see `Tensor.adopt`).
 */
import type { Tensor } from "./tensor.js";

const stack: Set<Tensor>[] = [];

/** Adds a newly created tensor to the innermost open scope; returns false when none is open. */
export function track(tensor: Tensor): boolean {
  const top = stack[stack.length - 1];
  if (top === undefined) return false;
  top.add(tensor);
  return true;
}

/** Removes a tensor from every open scope, so that scopes never dispose it. */
export function keep<T extends Tensor>(tensor: T): T {
  for (const scope of stack) scope.delete(tensor);
  tensor.adopt();
  return tensor;
}

/** A value that may contain tensors: a tensor, an array, a plain object, or nesting of these. */
export type TensorContainer =
  | Tensor
  | null
  | undefined
  | number
  | string
  | boolean
  | bigint
  | TensorContainer[]
  | { [key: string]: TensorContainer };

function collect(
  value: unknown,
  into: Set<Tensor>,
  seen: Set<unknown>,
  TensorClass: unknown,
): void {
  if (value === null || typeof value !== "object" || seen.has(value)) return;
  seen.add(value);
  if (value instanceof (TensorClass as new () => Tensor)) {
    into.add(value as Tensor);
    return;
  }
  if (Array.isArray(value)) {
    for (const item of value) collect(item, into, seen, TensorClass);
    return;
  }
  if (value instanceof Map) {
    for (const item of value.values()) collect(item, into, seen, TensorClass);
    return;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null) {
    for (const item of Object.values(value)) collect(item, into, seen, TensorClass);
  }
}

let tensorClass: unknown = null;

/** Called once by tensor.ts so this module can recognise tensors without an import cycle. */
export function registerTensorClass(cls: unknown): void {
  tensorClass = cls;
}

/**
 * Runs `fn` in a new scope and disposes every tensor it created that is not in its result.
 *
 * The result may be a tensor or any array/object nesting of tensors. `fn` must be synchronous: a
 * promise result is rejected with a TypeError, because the scope would close before it settles.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  stack.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (error) {
    stack.pop();
    for (const tensor of scope) tensor.dispose();
    throw error;
  }
  stack.pop();
  if (result instanceof Promise) {
    for (const tensor of scope) tensor.dispose();
    throw new TypeError("tidy(fn): fn returned a Promise; scopes only wrap synchronous code");
  }
  const returned = new Set<Tensor>();
  collect(result, returned, new Set(), tensorClass);
  const parent = stack[stack.length - 1];
  for (const tensor of scope) {
    if (returned.has(tensor)) {
      if (parent !== undefined) parent.add(tensor);
      else tensor.adopt();
    } else {
      tensor.dispose();
    }
  }
  return result;
}

/** Disposes every tensor found in a value (a tensor, or arrays and objects of them). */
export function dispose(value: unknown): void {
  const found = new Set<Tensor>();
  collect(value, found, new Set(), tensorClass);
  for (const tensor of found) tensor.dispose();
}

/** Number of open scopes; for tests. */
export function scopeDepth(): number {
  return stack.length;
}
