import assert from "node:assert/strict";
import { test } from "node:test";
import type { Tensor } from "../../src/tensor/index.js";
import * as torch from "../../src/tensor/index.js";

/**
 * Compares each op's autograd gradient with central finite differences in float64.
 *
 * The scalar checked is sum(f(x) * w) with a fixed random w, so every output element contributes.
 */
interface Case {
  name: string;
  shapes: number[][];
  fn: (...inputs: Tensor[]) => Tensor;
  /** Keeps inputs away from kinks and poles (abs at 0, log and sqrt at <= 0). */
  positive?: boolean;
}

const long = (values: number[], shape?: number[]) =>
  torch.tensor(values, shape, { dtype: "int64" });

const cases: Case[] = [
  { name: "add", shapes: [[2, 3], [3]], fn: (a, b) => a.add(b!) },
  {
    name: "sub",
    shapes: [
      [2, 3],
      [2, 1],
    ],
    fn: (a, b) => a.sub(b!),
  },
  {
    name: "mul",
    shapes: [
      [2, 3],
      [2, 3],
    ],
    fn: (a, b) => a.mul(b!),
  },
  {
    name: "div",
    shapes: [
      [2, 3],
      [2, 3],
    ],
    fn: (a, b) => a.div(b!),
    positive: true,
  },
  { name: "pow", shapes: [[4]], fn: (a) => a.pow(3) },
  { name: "sqrt", shapes: [[4]], fn: (a) => a.sqrt(), positive: true },
  { name: "rsqrt", shapes: [[4]], fn: (a) => a.rsqrt(), positive: true },
  { name: "exp", shapes: [[4]], fn: (a) => a.exp() },
  { name: "log", shapes: [[4]], fn: (a) => a.log(), positive: true },
  { name: "tanh", shapes: [[4]], fn: (a) => a.tanh() },
  { name: "sigmoid", shapes: [[4]], fn: (a) => a.sigmoid() },
  { name: "logsigmoid", shapes: [[4]], fn: (a) => a.logsigmoid() },
  { name: "silu", shapes: [[4]], fn: (a) => a.silu() },
  { name: "gelu", shapes: [[4]], fn: (a) => a.gelu() },
  { name: "gelu tanh", shapes: [[4]], fn: (a) => a.gelu("tanh") },
  { name: "softmax", shapes: [[2, 4]], fn: (a) => a.softmax(-1) },
  { name: "logSoftmax", shapes: [[2, 4]], fn: (a) => a.logSoftmax(-1) },
  {
    name: "crossEntropy",
    shapes: [[3, 5]],
    fn: (a) => torch.crossEntropy(a, long([1, 4, 0]), { labelSmoothing: 0.1 }),
  },
  {
    name: "matmul",
    shapes: [
      [2, 3],
      [3, 4],
    ],
    fn: (a, b) => a.matmul(b!),
  },
  {
    name: "bmm",
    shapes: [
      [2, 2, 3],
      [2, 3, 2],
    ],
    fn: (a, b) => a.bmm(b!),
  },
  { name: "linear", shapes: [[2, 3], [4, 3], [4]], fn: (a, w, b) => torch.linear(a, w!, b!) },
  { name: "sum dim", shapes: [[2, 3]], fn: (a) => a.sum(1) },
  { name: "mean", shapes: [[2, 3]], fn: (a) => a.mean(0, true) },
  { name: "max dim", shapes: [[2, 3]], fn: (a) => a.maxDim(1)[0] },
  { name: "var", shapes: [[2, 5]], fn: (a) => a.var(1) },
  { name: "logsumexp", shapes: [[2, 5]], fn: (a) => a.logsumexp(1) },
  { name: "gather", shapes: [[2, 4]], fn: (a) => a.gather(1, long([3, 0, 1, 1], [2, 2])) },
  { name: "indexSelect", shapes: [[4, 3]], fn: (a) => a.indexSelect(0, long([2, 2, 0])) },
  { name: "embedding", shapes: [[5, 3]], fn: (w) => torch.embedding(w, long([4, 1, 4])) },
  {
    name: "cat",
    shapes: [
      [2, 2],
      [2, 3],
    ],
    fn: (a, b) => torch.cat([a, b!], 1),
  },
  {
    name: "stack",
    shapes: [
      [2, 2],
      [2, 2],
    ],
    fn: (a, b) => torch.stack([a, b!], 0),
  },
  { name: "split", shapes: [[5, 2]], fn: (a) => a.split([2, 3], 0)[1]!.mul(2) },
  { name: "chunk", shapes: [[4, 2]], fn: (a) => a.chunk(2, 0)[0]!.exp() },
  { name: "view transpose", shapes: [[2, 6]], fn: (a) => a.view(3, 4).transpose(0, 1) },
  { name: "permute", shapes: [[2, 3, 4]], fn: (a) => a.permute(2, 0, 1) },
  { name: "expand", shapes: [[3, 1]], fn: (a) => a.expand(3, 4) },
  { name: "narrow", shapes: [[5, 3]], fn: (a) => a.narrow(0, 1, 3) },
  { name: "slice", shapes: [[6, 2]], fn: (a) => a.slice(0, 1, null, 2) },
  {
    name: "where",
    shapes: [[4], [4]],
    fn: (a, b) => torch.where(long([1, 0, 1, 0]).to("bool"), a, b!),
  },
  { name: "maskedFill", shapes: [[4]], fn: (a) => a.maskedFill(long([0, 1, 0, 1]).to("bool"), 0) },
  { name: "triu", shapes: [[3, 3]], fn: (a) => a.triu(0) },
  { name: "tril", shapes: [[3, 3]], fn: (a) => a.tril(-1) },
  { name: "cumsum", shapes: [[2, 4]], fn: (a) => a.cumsum(1) },
  { name: "topk values", shapes: [[2, 5]], fn: (a) => a.topk(2, 1)[0] },
  { name: "sort values", shapes: [[5]], fn: (a) => a.sort(0)[0] },
  {
    name: "layerNorm",
    shapes: [[2, 4], [4], [4]],
    fn: (a, w, b) => torch.layerNorm(a, [4], w!, b!, 1e-5),
  },
  {
    name: "attention",
    shapes: [
      [1, 2, 3, 4],
      [1, 2, 3, 4],
      [1, 2, 3, 4],
    ],
    fn: (q, k, v) => torch.scaledDotProductAttention(q, k!, v!, null, true),
  },
];

function randomInputs(shapes: number[][], seed: number, positive: boolean): Float64Array[] {
  const generator = new torch.Generator(seed);
  return shapes.map((shape) =>
    torch.tidy(() => {
      const x = torch.randn(shape, { dtype: "float64", generator });
      return (positive ? x.abs().add(0.5) : x).toFloat64Array();
    }),
  );
}

function evaluate(c: Case, data: Float64Array[], weight: Float64Array): number {
  return torch.tidy(() => {
    const inputs = data.map((d, i) => torch.tensor(d, c.shapes[i]!));
    const out = c.fn(...inputs);
    const w = torch.tensor(weight, out.shape);
    return out.mul(w).sum().item();
  });
}

for (const [index, c] of cases.entries()) {
  test(`gradient of ${c.name}`, () => {
    const before = torch.liveTensors();
    const data = randomInputs(c.shapes, 100 + index, c.positive ?? false);
    const outShape = torch.tidy(
      () => c.fn(...data.map((d, i) => torch.tensor(d, c.shapes[i]!))).shape,
    );
    const weight = torch.tidy(() =>
      torch
        .randn(outShape, { dtype: "float64", generator: new torch.Generator(7) })
        .toFloat64Array(),
    );

    const analytic = torch.tidy(() => {
      const inputs = data.map((d, i) => torch.tensor(d, c.shapes[i]!, { requiresGrad: true }));
      const out = c.fn(...inputs);
      out.mul(torch.tensor(weight, out.shape)).sum().backward();
      return inputs.map((x) => x.grad!.toFloat64Array());
    });

    const eps = 1e-6;
    for (let k = 0; k < data.length; k++) {
      const values = data[k]!;
      for (let i = 0; i < values.length; i++) {
        const original = values[i]!;
        values[i] = original + eps;
        const up = evaluate(c, data, weight);
        values[i] = original - eps;
        const down = evaluate(c, data, weight);
        values[i] = original;
        const numeric = (up - down) / (2 * eps);
        const got = analytic[k]![i]!;
        assert.ok(
          Math.abs(got - numeric) <= 1e-5 * Math.max(1, Math.abs(numeric)),
          `${c.name}: input ${k} element ${i}: autograd ${got} vs finite difference ${numeric}`,
        );
      }
    }
    assert.equal(torch.liveTensors(), before, "every intermediate was freed");
  });
}
