import assert from "node:assert/strict";
import { test } from "node:test";

import {
  Conv1D,
  Dropout,
  defaultInit,
  Embedding,
  LayerNorm,
  Linear,
  Module,
  ModuleList,
  RMSNorm,
} from "../../src/nn/index.js";
import * as torch from "../../src/tensor/index.js";

function seeded(seed = 0) {
  return defaultInit({ generator: new torch.Generator(seed), std: 0.02 });
}

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number): void {
  assert.equal(actual.length, expected.length, "length");
  for (let i = 0; i < expected.length; i++) {
    assert.ok(
      Math.abs(actual[i]! - expected[i]!) <= tolerance,
      `element ${i}: ${actual[i]} vs ${expected[i]} (tolerance ${tolerance})`,
    );
  }
}

class Block extends Module {
  readonly proj: Linear;
  readonly norm: RMSNorm;
  constructor() {
    super();
    this.proj = this.registerModule("proj", new Linear(4, 3, seeded(), { bias: true }));
    this.norm = this.registerModule("norm", new RMSNorm(3, 1e-6, seeded()));
  }
}

class Net extends Module {
  readonly layers: ModuleList<Block>;
  readonly drop: Dropout;
  constructor() {
    super();
    this.layers = this.registerModule("layers", new ModuleList([new Block(), new Block()]));
    this.drop = this.registerModule("drop", new Dropout(0.5));
  }
}

test("module parameter names are dotted paths", () => {
  const net = new Net();
  assert.deepEqual(
    net.namedParameters().map(([name]) => name),
    [
      "layers.0.proj.weight",
      "layers.0.proj.bias",
      "layers.0.norm.weight",
      "layers.1.proj.weight",
      "layers.1.proj.bias",
      "layers.1.norm.weight",
    ],
  );
  assert.equal(net.namedParameters("model")[0]![0], "model.layers.0.proj.weight");
  assert.equal(net.parameters().length, 6);
  assert.equal(net.numParameters(), 2 * (12 + 3 + 3));
  assert.deepEqual(net.getParameter("layers.1.proj.weight").shape, [3, 4]);
  assert.throws(
    () => net.getParameter("layers.2.proj.weight"),
    /no parameter named layers\.2\.proj\.weight/,
  );
  net.dispose();
});

test("module train and eval reach every submodule", () => {
  const net = new Net();
  assert.equal(net.drop.training, true);
  net.eval();
  assert.equal(net.training, false);
  assert.equal(net.drop.training, false);
  assert.equal(net.layers.items[1]!.proj.training, false);
  net.train();
  assert.equal(net.layers.items[1]!.norm.training, true);
  net.dispose();
});

test("module requiresGrad_ freezes parameters", () => {
  const net = new Net();
  assert.ok(net.parameters().every((p) => p.requiresGrad));
  net.requiresGrad_(false);
  assert.ok(net.parameters().every((p) => !p.requiresGrad));
  net.dispose();
});

test("parameters survive tidy scopes", () => {
  const before = torch.liveTensors();
  const layer = torch.tidy(() => new Linear(8, 4, seeded(), { bias: true }));
  assert.equal(torch.liveTensors(), before + 2);
  assert.ok(!layer.weight.isDisposed);
  layer.dispose();
  assert.equal(torch.liveTensors(), before);
});

test("initialisation is seeded and follows HF defaults", () => {
  const a = new Linear(256, 128, seeded(7), { bias: true });
  const b = new Linear(256, 128, seeded(7), { bias: true });
  const c = new Linear(256, 128, seeded(8), { bias: true });
  assert.ok(a.weight.equal(b.weight));
  assert.ok(!a.weight.equal(c.weight));
  const std = torch.tidy(() => a.weight.std().item());
  assert.ok(Math.abs(std - 0.02) < 0.001, `std ${std}`);
  const mean = torch.tidy(() => a.weight.mean().item());
  assert.ok(Math.abs(mean) < 0.001, `mean ${mean}`);
  assert.deepEqual([...a.bias!.toFloat32Array()], new Array(128).fill(0));
  const norm = new LayerNorm(5, 1e-5, seeded());
  assert.deepEqual([...norm.weight.toFloat32Array()], [1, 1, 1, 1, 1]);
  assert.deepEqual([...norm.bias!.toFloat32Array()], [0, 0, 0, 0, 0]);
  const rms = new RMSNorm(3, 1e-5, seeded());
  assert.deepEqual([...rms.weight.toFloat32Array()], [1, 1, 1]);
  const embedding = new Embedding(10, 4, seeded(), 2);
  assert.deepEqual(
    [...torch.tidy(() => embedding.weight.select(0, 2).toFloat32Array())],
    [0, 0, 0, 0],
  );
  assert.ok(torch.tidy(() => embedding.weight.select(0, 3).abs().sum().item()) > 0);
  for (const m of [a, b, c, norm, rms, embedding]) m.dispose();
});

test("initialisation without a generator leaves memory for loading", () => {
  const layer = new Linear(3, 2, defaultInit(), { bias: false });
  assert.deepEqual(layer.weight.shape, [2, 3]);
  assert.equal(layer.bias, null);
  assert.equal(layer.weight.dtype, "float32");
  layer.dispose();
  const half = new Linear(
    3,
    2,
    defaultInit({ generator: new torch.Generator(0), dtype: "bfloat16" }),
  );
  assert.equal(half.weight.dtype, "bfloat16");
  half.dispose();
});

test("linear computes x Wᵀ + b", () => {
  const layer = new Linear(2, 2, seeded(), { bias: true });
  torch.noGrad(() => {
    layer.weight.copy_(torch.tensor([1, 2, 3, 4], [2, 2]));
    layer.bias!.copy_(torch.tensor([0.5, -1]));
  });
  const y = torch.tidy(() => layer.forward(torch.tensor([1, 1, 2, 0], [2, 2])).toFloat32Array());
  // rows [1, 1] and [2, 0]: [1+2+0.5, 3+4-1] and [2+0.5, 6-1]
  assert.deepEqual([...y], [3.5, 6, 2.5, 5]);
  layer.dispose();
});

test("conv1d stores weights as [in, out]", () => {
  const layer = new Conv1D(2, 3, seeded());
  assert.deepEqual(layer.weight.shape, [2, 3]);
  torch.noGrad(() => {
    layer.weight.copy_(torch.tensor([1, 2, 3, 4, 5, 6], [2, 3]));
    layer.bias.copy_(torch.tensor([0, 0, 1]));
  });
  const y = torch.tidy(() => layer.forward(torch.tensor([1, 2], [1, 2])).toFloat32Array());
  // [1, 2] @ [[1, 2, 3], [4, 5, 6]] + [0, 0, 1]
  assert.deepEqual([...y], [9, 12, 16]);
  layer.dispose();
});

test("rmsnorm matches the formula", () => {
  const norm = new RMSNorm(4, 1e-6, seeded());
  torch.noGrad(() => norm.weight.copy_(torch.tensor([1, 2, 1, 0.5])));
  const x = [1, -2, 3, 4];
  const y = torch.tidy(() => norm.forward(torch.tensor(x, [1, 4])).toFloat32Array());
  const rms = Math.sqrt((1 + 4 + 9 + 16) / 4 + 1e-6);
  close(y, [1 / rms, (-2 * 2) / rms, 3 / rms, (4 * 0.5) / rms], 1e-6);
  norm.dispose();
});

test("rmsnorm computes in float32 for bfloat16 input", () => {
  const norm = new RMSNorm(
    4,
    1e-6,
    defaultInit({ generator: new torch.Generator(0), dtype: "bfloat16" }),
  );
  const y = torch.tidy(() => {
    const out = norm.forward(torch.tensor([1, -2, 3, 4], [1, 4], { dtype: "bfloat16" }));
    assert.equal(out.dtype, "bfloat16");
    return out.toFloat32Array();
  });
  const rms = Math.sqrt(30 / 4);
  close(y, [1 / rms, -2 / rms, 3 / rms, 4 / rms], 0.01);
  norm.dispose();
});

test("layernorm normalises the last dimension", () => {
  const norm = new LayerNorm(3, 1e-5, seeded());
  const y = torch.tidy(() => norm.forward(torch.tensor([1, 2, 3], [1, 3])).toFloat32Array());
  const sd = Math.sqrt(2 / 3 + 1e-5);
  close(y, [-1 / sd, 0, 1 / sd], 1e-5);
  norm.dispose();
});

test("dropout is identity in eval mode", () => {
  const drop = new Dropout(0.5);
  torch.tidy(() => {
    const x = torch.ones([1000]);
    drop.eval();
    assert.equal(drop.forward(x), x);
    drop.train();
    const y = drop.forward(x).toFloat32Array();
    const zeros = y.filter((v) => v === 0).length;
    assert.ok(zeros > 400 && zeros < 600, `zeros ${zeros}`);
    assert.ok(y.every((v) => v === 0 || v === 2));
  });
  assert.throws(
    () => new Dropout(1.5),
    /Expected a probability in \[0, 1\] for p but received 1\.5/,
  );
});

test("loadStateDict copies by name and checks shapes", () => {
  const source = new Net();
  const target = new Net();
  torch.noGrad(() => source.getParameter("layers.1.proj.bias").fill_(0.5));
  const halves = new Map(
    source.namedParameters().map(([name, tensor]) => [name, torch.keep(tensor.to("bfloat16"))]),
  );
  assert.equal(target.loadStateDict(halves).length, 6);
  assert.deepEqual(
    [...target.getParameter("layers.1.proj.bias").toFloat32Array()],
    [0.5, 0.5, 0.5],
  );
  assert.equal(target.getParameter("layers.1.proj.bias").dtype, "float32");

  const partial = new Map([["layers.0.norm.weight", halves.get("layers.0.norm.weight")!]]);
  assert.throws(() => target.loadStateDict(partial), /missing \["layers\.0\.proj\.weight"/);
  assert.deepEqual(target.loadStateDict(partial, { strict: false }), ["layers.0.norm.weight"]);
  const wrong = new Map([["layers.0.norm.weight", torch.keep(torch.ones([4]))]]);
  assert.throws(
    () => target.loadStateDict(wrong, { strict: false }),
    /layers\.0\.norm\.weight has shape \[4\] but the parameter is \[3\]/,
  );
  torch.dispose([...halves.values(), ...wrong.values()]);
  source.dispose();
  target.dispose();
});
