import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as torch from "../../src/tensor/index.js";

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-5): void {
  assert.equal(actual.length, expected.length, "length");
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i] as number;
    const e = expected[i] as number;
    assert.ok(Math.abs(a - e) <= tol * Math.max(1, Math.abs(e)), `element ${i}: ${a} vs ${e}`);
  }
}

const t = (data: number[], shape?: number[], dtype?: torch.DType) =>
  torch.tensor(data, shape, dtype ? { dtype } : {});

describe("creation", () => {
  test("tensor from number array", () => {
    const x = t([1, 2, 3, 4, 5, 6], [2, 3]);
    assert.deepEqual(x.shape, [2, 3]);
    assert.equal(x.dtype, "float32");
    assert.deepEqual(Array.from(x.toFloat32Array()), [1, 2, 3, 4, 5, 6]);
  });

  test("zeros ones full arange", () => {
    assert.deepEqual(Array.from(torch.zeros([2, 2]).toFloat32Array()), [0, 0, 0, 0]);
    assert.deepEqual(Array.from(torch.ones([3], { dtype: "int32" }).toInt32Array()), [1, 1, 1]);
    assert.deepEqual(Array.from(torch.full([2], 7.5).toFloat32Array()), [7.5, 7.5]);
    const range = torch.arange(2, 11, 3);
    assert.equal(range.dtype, "int64");
    assert.deepEqual(range.toArray(), [2, 5, 8]);
  });

  test("seeded random draws repeat", () => {
    const a = torch.randn([5], { generator: new torch.Generator(7) }).toArray();
    const b = torch.randn([5], { generator: new torch.Generator(7) }).toArray();
    const c = torch.randn([5], { generator: new torch.Generator(8) }).toArray();
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    const ints = torch.randint(3, 6, [1000], { generator: new torch.Generator(1) }).toArray();
    assert.ok(ints.every((v) => v >= 3 && v < 6));
    assert.deepEqual(new Set(ints), new Set([3, 4, 5]));
    const uniform = torch.rand([1000], { generator: new torch.Generator(2) }).toArray();
    assert.ok(uniform.every((v) => v >= 0 && v < 1));
  });

  test("generator state restores the stream", () => {
    const g = new torch.Generator(3);
    torch.randn([4], { generator: g });
    const state = g.getState();
    const first = torch.randn([4], { generator: g }).toArray();
    g.setState(state);
    const again = torch.randn([4], { generator: g }).toArray();
    assert.deepEqual(first, again);
  });

  test("bytes round trip for every dtype", () => {
    for (const dtype of ["float32", "float16", "bfloat16", "int64", "int32", "bool"] as const) {
      const x = t([1, 0, 1, 1], [2, 2], dtype);
      assert.equal(x.dtype, dtype);
      const back = torch.fromBytes(x.toBytes(), dtype, [2, 2]);
      assert.ok(back.equal(x), dtype);
    }
  });
});

describe("conversions", () => {
  test("dtype conversions keep values", () => {
    const x = t([1.5, -2.25, 3, 1024]);
    assert.deepEqual(Array.from(x.to("bfloat16").toFloat32Array()), [1.5, -2.25, 3, 1024]);
    assert.deepEqual(Array.from(x.to("float16").toFloat32Array()), [1.5, -2.25, 3, 1024]);
    assert.deepEqual(Array.from(x.to("int64").toInt32Array()), [1, -2, 3, 1024]);
    assert.deepEqual(Array.from(x.to("bool").toInt32Array()), [1, 1, 1, 1]);
    assert.equal(x.to({ dtype: "float64" }).dtype, "float64");
  });

  test("bfloat16 rounds to 8 mantissa bits", () => {
    const x = t([1 + 2 ** -10]);
    assert.equal(x.to("bfloat16").toFloat32Array()[0], 1);
  });

  test("device cpu and unknown device", () => {
    const x = t([1, 2]);
    assert.equal(x.device, "cpu");
    assert.equal(x.to({ device: "cpu" }).device, "cpu");
    assert.throws(() => x.to({ device: "tpu" }), /unknown device 'tpu'/);
  });

  test("cuda request without cuda", { skip: torch.cudaIsAvailable() }, () => {
    assert.throws(() => torch.resolveDevice("cuda"), /no CUDA device/);
    assert.equal(torch.resolveDevice("auto"), "cpu");
  });
});

describe("elementwise and matmul", () => {
  test("broadcasting arithmetic", () => {
    const a = t([1, 2, 3, 4, 5, 6], [2, 3]);
    const b = t([10, 20, 30], [3]);
    close(a.add(b).toFloat32Array(), [11, 22, 33, 14, 25, 36]);
    close(a.sub(1).toFloat32Array(), [0, 1, 2, 3, 4, 5]);
    close(a.mul(b).toFloat32Array(), [10, 40, 90, 40, 100, 180]);
    close(a.div(2).toFloat32Array(), [0.5, 1, 1.5, 2, 2.5, 3]);
    close(a.pow(2).toFloat32Array(), [1, 4, 9, 16, 25, 36]);
  });

  test("unary functions", () => {
    const x = t([-1, 0, 0.5, 2]);
    close(x.exp().toFloat32Array(), [Math.exp(-1), 1, Math.exp(0.5), Math.exp(2)]);
    close(x.tanh().toFloat32Array(), [-1, 0, 0.5, 2].map(Math.tanh));
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    close(x.sigmoid().toFloat32Array(), [-1, 0, 0.5, 2].map(sig));
    close(
      x.logsigmoid().toFloat32Array(),
      [-1, 0, 0.5, 2].map((v) => Math.log(sig(v))),
    );
    close(
      x.silu().toFloat32Array(),
      [-1, 0, 0.5, 2].map((v) => v * sig(v)),
    );
    const erf = (v: number) => {
      // Abramowitz-Stegun 7.1.26 is too coarse; use the series for |v| <= 2.
      let sum = 0;
      let term = v;
      for (let n = 0; n < 60; n++) {
        sum += term / (2 * n + 1);
        term *= (-v * v) / (n + 1);
      }
      return (2 / Math.sqrt(Math.PI)) * sum;
    };
    close(
      x.gelu().toFloat32Array(),
      [-1, 0, 0.5, 2].map((v) => 0.5 * v * (1 + erf(v / Math.SQRT2))),
    );
    const geluTanh = (v: number) =>
      0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
    close(x.gelu("tanh").toFloat32Array(), [-1, 0, 0.5, 2].map(geluTanh));
    const p = t([1, 4, 9]);
    close(p.sqrt().toFloat32Array(), [1, 2, 3]);
    close(p.rsqrt().toFloat32Array(), [1, 0.5, 1 / 3]);
    close(p.log().toFloat32Array(), [0, Math.log(4), Math.log(9)]);
  });

  test("matmul bmm linear", () => {
    const a = t([1, 2, 3, 4, 5, 6], [2, 3]);
    const b = t([1, 0, 0, 1, 1, 1], [3, 2]);
    close(a.matmul(b).toFloat32Array(), [4, 5, 10, 11]);
    const batch = torch.stack([a, a.mul(2)]);
    const out = batch.bmm(torch.stack([b, b]));
    assert.deepEqual(out.shape, [2, 2, 2]);
    close(out.toFloat32Array(), [4, 5, 10, 11, 8, 10, 20, 22]);
    const w = t([1, 1, 1, 0, 0, 1], [2, 3]);
    close(torch.linear(a, w, t([0.5, -1])).toFloat32Array(), [6.5, 2, 15.5, 5]);
  });

  // A single input row with more than 512 outputs takes a matrix-vector product in the addon
  // (UseMatrixVector in native/src/ops.cc): it must give the gemm's values, shapes and gradients.
  test("one-row linear matches batched linear", () => {
    const g = new torch.Generator(7);
    const weight = torch.randn([600, 64], { generator: g });
    const bias = torch.randn([600], { generator: g });
    const rows = torch.randn([3, 64], { generator: g });
    const batched = torch.linear(rows, weight, bias); // [3, 600]
    for (const shape of [[64], [1, 64], [1, 1, 64]]) {
      const row = rows.narrow(0, 1, 1).reshape(...shape);
      const out = torch.linear(row, weight, bias);
      assert.deepEqual(out.shape, [...shape.slice(0, -1), 600]);
      close(out.toFloat32Array(), batched.select(0, 1).toFloat32Array());
      close(
        torch.linear(row, weight).toFloat32Array(),
        batched.select(0, 1).sub(bias).toFloat32Array(),
      );
    }
    const f64 = (x: torch.Tensor) => x.to("float64");
    const double = torch.linear(f64(rows.narrow(0, 0, 1)), f64(weight), f64(bias));
    assert.equal(double.dtype, "float64");
    close(double.float().toFloat32Array(), batched.select(0, 0).toFloat32Array());
    // zero input features: the output is the bias alone, for every row
    const empty = torch.linear(torch.zeros([2, 0]), torch.zeros([3, 0]), t([1, 2, 3]));
    assert.deepEqual(empty.shape, [2, 3]);
    close(empty.toFloat32Array(), [1, 2, 3, 1, 2, 3]);
  });

  test("one-row linear gradients match gemm", () => {
    const g = new torch.Generator(8);
    const weight = torch.randn([520, 16], { generator: g }).requiresGrad_();
    const bias = torch.randn([520], { generator: g }).requiresGrad_();
    const x = torch.randn([2, 16], { generator: g });
    const upstream = torch.randn([520], { generator: g });
    // gemm: both rows, with the second row's output ignored
    torch.linear(x, weight, bias).select(0, 0).mul(upstream).sum().backward();
    const expected = [weight.grad!.toFloat32Array(), bias.grad!.toFloat32Array()];
    torch.zeroGrad([weight, bias]);
    torch
      .linear(x.narrow(0, 0, 1), weight, bias)
      .view(520)
      .mul(upstream)
      .sum()
      .backward();
    close(weight.grad!.toFloat32Array(), expected[0]!);
    close(bias.grad!.toFloat32Array(), expected[1]!);
  });

  test("one-row linear under autocast: bfloat16", () => {
    const weight = torch.randn([600, 4], { generator: new torch.Generator(9) });
    const out = torch.autocast(() => torch.linear(torch.ones([1, 4]), weight));
    assert.equal(out.dtype, "bfloat16");
  });
});

describe("reductions and softmax", () => {
  const x = t([1, 5, 3, 4, 2, 6], [2, 3]);

  test("sum mean max argmax var", () => {
    assert.equal(x.sum().item(), 21);
    close(x.sum(1).toFloat32Array(), [9, 12]);
    close(x.mean(0).toFloat32Array(), [2.5, 3.5, 4.5]);
    assert.deepEqual(x.sum(1, true).shape, [2, 1]);
    assert.equal(x.max().item(), 6);
    const [values, indices] = x.maxDim(1);
    close(values.toFloat32Array(), [5, 6]);
    assert.deepEqual(indices.toArray(), [1, 2]);
    assert.deepEqual(x.argmax(1).toArray(), [1, 2]);
    close(x.var(1).toFloat32Array(), [4, 4]);
    close(x.var(1, 0).toFloat32Array(), [8 / 3, 8 / 3]);
    close(x.amax(0).toFloat32Array(), [4, 5, 6]);
  });

  test("softmax logSoftmax crossEntropy", () => {
    const logits = t([1, 2, 3, 1, 1, 1], [2, 3]);
    const z = Math.exp(1) + Math.exp(2) + Math.exp(3);
    close(logits.softmax(1).toFloat32Array(), [
      Math.exp(1) / z,
      Math.exp(2) / z,
      Math.exp(3) / z,
      1 / 3,
      1 / 3,
      1 / 3,
    ]);
    close(logits.logSoftmax(1).toFloat32Array().slice(0, 1), [1 - Math.log(z)]);
    const target = t([2, 0], [2], "int64");
    const loss = torch.crossEntropy(logits, target);
    close([loss.item()], [(Math.log(z) - 3 + Math.log(3)) / 2]);
    const ignored = torch.crossEntropy(logits, t([2, -100], [2], "int64"));
    close([ignored.item()], [Math.log(z) - 3]);
  });
});

describe("indexing and shapes", () => {
  test("gather indexSelect embedding", () => {
    const x = t([1, 2, 3, 4, 5, 6], [2, 3]);
    close(x.gather(1, t([2, 0], [2, 1], "int64")).toFloat32Array(), [3, 4]);
    close(x.indexSelect(1, t([0, 2], [2], "int64")).toFloat32Array(), [1, 3, 4, 6]);
    const emb = torch.embedding(x, t([1, 0, 1], [3], "int64"));
    assert.deepEqual(emb.shape, [3, 3]);
    close(emb.toFloat32Array(), [4, 5, 6, 1, 2, 3, 4, 5, 6]);
  });

  test("cat stack split chunk", () => {
    const a = t([1, 2], [1, 2]);
    const b = t([3, 4], [1, 2]);
    close(torch.cat([a, b], 0).toFloat32Array(), [1, 2, 3, 4]);
    assert.deepEqual(torch.cat([a, b], 1).shape, [1, 4]);
    assert.deepEqual(torch.stack([a, b], 0).shape, [2, 1, 2]);
    const parts = t([1, 2, 3, 4, 5]).split(2);
    assert.deepEqual(
      parts.map((p) => p.shape[0]),
      [2, 2, 1],
    );
    const sized = t([1, 2, 3, 4, 5]).split([1, 4]);
    close(sized[1]!.toFloat32Array(), [2, 3, 4, 5]);
    assert.equal(t([1, 2, 3, 4]).chunk(2).length, 2);
  });

  test("view reshape transpose permute expand narrow slice", () => {
    const x = torch.arange(24, undefined, 1, { dtype: "float32" }).view(2, 3, 4);
    assert.deepEqual(x.transpose(0, 2).shape, [4, 3, 2]);
    assert.deepEqual(x.permute(2, 0, 1).shape, [4, 2, 3]);
    assert.deepEqual(x.reshape(6, -1).shape, [6, 4]);
    close(x.narrow(2, 1, 2).reshape(-1).toFloat32Array().slice(0, 4), [1, 2, 5, 6]);
    close(x.slice(2, -1).reshape(-1).toFloat32Array(), [3, 7, 11, 15, 19, 23]);
    close(x.slice(1, 0, null, 2).select(0, 0).select(1, 0).toFloat32Array(), [0, 8]);
    assert.deepEqual(t([1, 2]).view(2, 1).expand(2, 3).shape, [2, 3]);
    assert.deepEqual(t([1, 2]).unsqueeze(0).squeeze().shape, [2]);
    assert.deepEqual(x.flatten(1).shape, [2, 12]);
  });

  test("where maskedFill comparisons triu tril cumsum", () => {
    const x = t([1, -2, 3, -4]);
    close(torch.where(x.gt(0), x, 0).toFloat32Array(), [1, 0, 3, 0]);
    close(x.maskedFill(x.lt(0), -1).toFloat32Array(), [1, -1, 3, -1]);
    assert.deepEqual(x.eq(3).toArray(), [0, 0, 1, 0]);
    const square = torch.ones([3, 3]);
    close(square.triu().toFloat32Array(), [1, 1, 1, 0, 1, 1, 0, 0, 1]);
    close(square.tril(-1).toFloat32Array(), [0, 0, 0, 1, 0, 0, 1, 1, 0]);
    close(t([1, 2, 3]).cumsum(0).toFloat32Array(), [1, 3, 6]);
  });

  test("topk sort multinomial", () => {
    const x = t([0.1, 0.7, 0.2]);
    const [values, indices] = x.topk(2);
    close(values.toFloat32Array(), [0.7, 0.2]);
    assert.deepEqual(indices.toArray(), [1, 2]);
    const [sorted, order] = x.sort(0, true);
    close(sorted.toFloat32Array(), [0.7, 0.2, 0.1]);
    assert.deepEqual(order.toArray(), [1, 2, 0]);
    const draws = torch.multinomial(t([0, 1, 0]), 5, true, new torch.Generator(0));
    assert.deepEqual(draws.toArray(), [1, 1, 1, 1, 1]);
    const many = torch.multinomial(t([0.25, 0.75]), 4000, true, new torch.Generator(1)).toArray();
    const share = many.filter((v) => v === 1).length / many.length;
    assert.ok(Math.abs(share - 0.75) < 0.03, `share ${share}`);
  });

  test("attention fallback matches explicit softmax", () => {
    const g = new torch.Generator(5);
    const q = torch.randn([1, 2, 3, 4], { generator: g });
    const k = torch.randn([1, 2, 3, 4], { generator: g });
    const v = torch.randn([1, 2, 3, 4], { generator: g });
    const out = torch.scaledDotProductAttention(q, k, v, null, true);
    // Row 0 attends only to key 0, so its output is v[..., 0, :].
    close(out.select(2, 0).toFloat32Array(), v.select(2, 0).toFloat32Array());
    const scores = q.matmul(k.transpose(-2, -1)).mul(0.5);
    const mask = torch.ones([3, 3], { dtype: "bool" }).tril();
    const expected = scores.maskedFill(mask.logicalNot(), -Infinity).softmax(-1).matmul(v);
    close(out.toFloat32Array(), expected.toFloat32Array());
  });
});

describe("in-place initialisation", () => {
  test("normal_ and uniform_ are seeded", () => {
    const a = torch.zeros([2000]).normal_(1, 2, new torch.Generator(4));
    const b = torch.zeros([2000]).normal_(1, 2, new torch.Generator(4));
    assert.ok(a.equal(b));
    assert.ok(Math.abs(a.mean().item() - 1) < 0.15, `mean ${a.mean().item()}`);
    assert.ok(Math.abs(a.std().item() - 2) < 0.15, `std ${a.std().item()}`);
    const u = torch.zeros([2000]).uniform_(-1, 3, new torch.Generator(5)).toArray();
    assert.ok(u.every((v) => v >= -1 && v < 3));
  });

  test("inference mode flag", () => {
    assert.equal(torch.isInferenceMode(), false);
    assert.equal(
      torch.inferenceMode(() => torch.isInferenceMode()),
      true,
    );
  });
});
