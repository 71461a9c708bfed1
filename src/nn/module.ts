/**
 * The `Module` base class: a tree of named parameters and submodules, as in PyTorch.
 *
 * Parameter names join the attribute path with dots, so a Llama's query projection is
 * `model.layers.0.self_attn.q_proj.weight`, exactly the Hugging Face checkpoint name. Parameters are
 * kept out of every `tidy` scope (`keep`) and live until `dispose()`.
 */
import { CdpoError } from "../errors.js";
import type { Device, DType, Generator, Tensor } from "../tensor/index.js";
import * as torch from "../tensor/index.js";

/**
 * Parameter initialisation settings.
 *
 * With a generator, weights are drawn as Hugging Face's `_init_weights` does: normal(0, std) for
 * linear and embedding weights, zeros for biases, ones for norm weights. Without one (`generator:
 * null`), parameters are left uninitialised (`torch.empty`), for modules whose weights are
 * loaded from a checkpoint right after.
 */
export interface ParameterInit {
  generator: Generator | null;
  /** Standard deviation of normal weights (the config's `initializer_range`). */
  std: number;
  dtype: DType;
  device: Device;
}

/** The default: float32 on the CPU, std 0.02, no generator (uninitialised memory). */
export function defaultInit(overrides: Partial<ParameterInit> = {}): ParameterInit {
  return { generator: null, std: 0.02, dtype: "float32", device: "cpu", ...overrides };
}

/** Allocates a parameter of `shape` filled by `fill` ("normal" draws from N(0, std)). */
export function createParameter(
  shape: readonly number[],
  fill: "normal" | "zeros" | "ones",
  init: ParameterInit,
  std: number = init.std,
): Tensor {
  let value: Tensor;
  if (init.generator === null) {
    value = torch.empty(shape, { dtype: init.dtype, device: init.device });
  } else if (fill === "zeros") {
    value = torch.zeros(shape, { dtype: init.dtype, device: init.device });
  } else if (fill === "ones") {
    value = torch.ones(shape, { dtype: init.dtype, device: init.device });
  } else {
    // Drawn in float32 on the CPU so that a seed gives the same weights for every dtype and device.
    value = torch.tidy(() => {
      const drawn = torch.randn(shape, { generator: init.generator! }).mul_(std);
      return init.dtype === "float32" && init.device === "cpu"
        ? drawn
        : drawn.to({ dtype: init.dtype, device: init.device });
    });
  }
  return torch.keep(value.requiresGrad_(true));
}

export abstract class Module {
  /** Training mode (dropout active). Set through `train()` / `eval()`. */
  training = true;
  readonly #parameters = new Map<string, Tensor>();
  readonly #children = new Map<string, Module>();

  /** Registers `tensor` as the parameter `name` of this module and keeps it out of scopes. */
  protected registerParameter(name: string, tensor: Tensor): Tensor {
    if (name.includes(".")) throw new RangeError(`Parameter name ${name} must not contain a dot`);
    this.#parameters.set(name, torch.keep(tensor));
    return tensor;
  }

  /** Registers a submodule under `name` (its parameters get the prefix `name.`). */
  protected registerModule<M extends Module>(name: string, module: M): M {
    this.#children.set(name, module);
    return module;
  }

  /** Returns the direct submodules, in registration order. */
  children(): [string, Module][] {
    return [...this.#children];
  }

  /**
   * Lists every parameter with its dotted name, depth first in registration order. A tensor reachable
   * under two names (tied weights) is listed once, under the first name.
   */
  namedParameters(prefix = ""): [string, Tensor][] {
    const result: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    const visit = (module: Module, path: string) => {
      for (const [name, tensor] of module.#parameters) {
        if (seen.has(tensor)) continue;
        seen.add(tensor);
        result.push([path + name, tensor]);
      }
      for (const [name, child] of module.#children) visit(child, `${path}${name}.`);
    };
    visit(this, prefix === "" ? "" : `${prefix}.`);
    return result;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, tensor]) => tensor);
  }

  /** Returns the parameters as a name → tensor map (the tensors themselves, not copies). */
  stateDict(): Map<string, Tensor> {
    return new Map(this.namedParameters());
  }

  /**
   * Copies tensors into the parameters of the same names, converting dtype and device. Shapes
   * must match. With `strict` (the default), a parameter missing from `tensors` or a tensor
   * without a parameter is an error; otherwise both are skipped. Returns the names copied.
   */
  loadStateDict(
    tensors: ReadonlyMap<string, Tensor>,
    options: { strict?: boolean } = {},
  ): string[] {
    const strict = options.strict ?? true;
    const own = this.stateDict();
    if (strict) {
      const missing = [...own.keys()].filter((name) => !tensors.has(name));
      const unexpected = [...tensors.keys()].filter((name) => !own.has(name));
      if (missing.length > 0 || unexpected.length > 0) {
        throw new CdpoError(
          "MODEL",
          `${this.constructor.name}.loadStateDict: missing ${JSON.stringify(missing)}, unexpected ${JSON.stringify(unexpected)}`,
        );
      }
    }
    const copied: string[] = [];
    for (const [name, parameter] of own) {
      const source = tensors.get(name);
      if (source === undefined) continue;
      const expected = parameter.shape;
      const actual = source.shape;
      if (expected.length !== actual.length || expected.some((size, i) => size !== actual[i])) {
        throw new CdpoError(
          "MODEL",
          `${this.constructor.name}.loadStateDict: ${name} has shape [${actual.join(", ")}] but the parameter is [${expected.join(", ")}]`,
        );
      }
      torch.noGrad(() => parameter.copy_(source));
      copied.push(name);
    }
    return copied;
  }

  /** Looks up a parameter by its dotted name; throws a CdpoError naming it when absent. */
  getParameter(name: string): Tensor {
    const found = this.stateDict().get(name);
    if (found === undefined) {
      throw new CdpoError("MODEL", `${this.constructor.name} has no parameter named ${name}`);
    }
    return found;
  }

  /** Returns the total number of parameter elements. */
  numParameters(): number {
    let total = 0;
    for (const tensor of this.parameters()) total += tensor.numel;
    return total;
  }

  /** Sets training mode on this module and every submodule. */
  train(mode = true): this {
    this.training = mode;
    for (const child of this.#children.values()) child.train(mode);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Turns gradient recording on or off for every parameter (freezing a reference model). */
  requiresGrad_(flag = true): this {
    for (const tensor of this.parameters()) tensor.requiresGrad_(flag);
    return this;
  }

  /** Frees every parameter; the module is unusable afterwards. */
  dispose(): void {
    for (const tensor of this.parameters()) tensor.dispose();
  }
}

/** An indexed list of modules; the children are named `0`, `1`, ... as `nn.ModuleList`. */
export class ModuleList<M extends Module> extends Module {
  readonly items: readonly M[];

  constructor(items: M[]) {
    super();
    this.items = items;
    for (const [i, item] of items.entries()) this.registerModule(String(i), item);
  }

  get length(): number {
    return this.items.length;
  }
}
