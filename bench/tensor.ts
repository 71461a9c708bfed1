/**
 * Engine benchmarks: matmul throughput, a Llama-style decoder block forward and backward in
 * float32 and under bfloat16 autocast, `linear` on one input row (batch-1 decoding) for three
 * weight shapes, and the per-call overhead of a small op. The PyTorch side
 * (bench/py/tensor.py) runs the same work with the same shapes, seeds and thread count.
 */

import type { Tensor } from "../src/tensor/index.js";
import * as torch from "../src/tensor/index.js";
import { report, runPytorch, timeIt } from "./common.js";

export const BLOCK = {
  batch: 2,
  seq: 256,
  dim: 512,
  heads: 8,
  hidden: 1376,
  eps: 1e-5,
  theta: 10000,
};

interface PytorchResults {
  "matmul-1024": number;
  "matmul-1024-bf16": number;
  "block-fwd-bwd": number;
  "block-fwd-bwd-bf16": number;
  "small-op-overhead": number;
  "linear-row": Record<string, number>;
}

/** Weight shapes [out, in] for `linear-row`: attention, MLP and a vocabulary head of bench/models.ts. */
export const ROW_SHAPES: [number, number][] = [
  [512, 512],
  [1408, 512],
  [8192, 512],
];

/** `linear(x [1, 1, in], weight [out, in])` throughput in GFLOP/s. */
function linearRowGflops(out: number, inFeatures: number): number {
  const g = new torch.Generator(3);
  const weight = torch.randn([out, inFeatures], { generator: g });
  const x = torch.randn([1, 1, inFeatures], { generator: g });
  const seconds = torch.inferenceMode(() =>
    timeIt(() => torch.tidy(() => void torch.linear(x, weight)), { warmup: 5, minSeconds: 1 }),
  );
  torch.dispose([weight, x]);
  return (2 * out * inFeatures) / seconds / 1e9;
}

function matmulGflops(dtype: "float32" | "bfloat16"): number {
  const n = 1024;
  const g = new torch.Generator(0);
  const a = torch.randn([n, n], { generator: g, dtype });
  const b = torch.randn([n, n], { generator: g, dtype });
  const seconds = timeIt(() => torch.tidy(() => void a.matmul(b)), { warmup: 3, minSeconds: 1.5 });
  torch.dispose([a, b]);
  return (2 * n ** 3) / seconds / 1e9;
}

function rmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor {
  const variance = x.float().square().mean(-1, true); // [B, T, 1]
  return x.mul(variance.add(eps).rsqrt()).mul(weight); // [B, T, C]
}

function rotate(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
  const half = x.size(-1) / 2;
  const x1 = x.narrow(-1, 0, half);
  const x2 = x.narrow(-1, half, half);
  const rotated = torch.cat([x2.neg(), x1], -1); // [B, H, T, D]
  return x.mul(cos).add(rotated.mul(sin));
}

/** A Llama decoder block's parameters (attention + SwiGLU), initialised from a fixed seed. */
export function makeBlock() {
  const { dim, hidden } = BLOCK;
  const g = new torch.Generator(1);
  const p = (shape: number[]) => torch.randn(shape, { generator: g }).mul(0.02).requiresGrad_();
  return {
    norm1: torch.ones([dim], { requiresGrad: true }),
    wq: p([dim, dim]),
    wk: p([dim, dim]),
    wv: p([dim, dim]),
    wo: p([dim, dim]),
    norm2: torch.ones([dim], { requiresGrad: true }),
    gate: p([hidden, dim]),
    up: p([hidden, dim]),
    down: p([dim, hidden]),
  };
}

export function blockForward(
  params: ReturnType<typeof makeBlock>,
  x: Tensor,
  cos: Tensor,
  sin: Tensor,
): Tensor {
  const { batch: B, seq: T, dim: C, heads: H, eps } = BLOCK;
  const D = C / H;
  const h = rmsNorm(x, params.norm1, eps); // [B, T, C]
  const q = torch.linear(h, params.wq).view(B, T, H, D).transpose(1, 2); // [B, H, T, D]
  const k = torch.linear(h, params.wk).view(B, T, H, D).transpose(1, 2); // [B, H, T, D]
  const v = torch.linear(h, params.wv).view(B, T, H, D).transpose(1, 2); // [B, H, T, D]
  const attn = torch.scaledDotProductAttention(
    rotate(q, cos, sin),
    rotate(k, cos, sin),
    v,
    null,
    true,
  );
  const merged = attn.transpose(1, 2).reshape(B, T, C); // [B, T, C]
  const x1 = x.add(torch.linear(merged, params.wo)); // [B, T, C]
  const h2 = rmsNorm(x1, params.norm2, eps);
  const mlp = torch.linear(
    torch.linear(h2, params.gate).silu().mul(torch.linear(h2, params.up)),
    params.down,
  );
  return x1.add(mlp); // [B, T, C]
}

function rotaryTables(): [Tensor, Tensor] {
  const { seq: T, dim, heads, theta } = BLOCK;
  const D = dim / heads;
  return torch.tidy(() => {
    const inv = torch.arange(0, D, 2, { dtype: "float32" }).div(D).mul(-Math.log(theta)).exp(); // [D/2]
    const freqs = torch
      .arange(T, undefined, 1, { dtype: "float32" })
      .unsqueeze(1)
      .mul(inv.unsqueeze(0)); // [T, D/2]
    const emb = torch.cat([freqs, freqs], -1); // [T, D]
    return [emb.cos(), emb.sin()] as [Tensor, Tensor];
  });
}

function blockTokensPerSecond(bf16: boolean): number {
  const params = makeBlock();
  const list = Object.values(params);
  const [cos, sin] = rotaryTables();
  const x = torch.randn([BLOCK.batch, BLOCK.seq, BLOCK.dim], { generator: new torch.Generator(2) });
  const step = () =>
    torch.tidy(() => {
      const forward = () => blockForward(params, x, cos, sin).float().square().mean();
      const loss = bf16 ? torch.autocast(forward) : forward();
      loss.backward();
      torch.zeroGrad(list);
    });
  const seconds = timeIt(step, { warmup: 2, minSeconds: 3 });
  torch.dispose([...list, cos, sin, x]);
  return (BLOCK.batch * BLOCK.seq) / seconds;
}

function smallOpMicroseconds(): number {
  const a = torch.ones([16]);
  const b = torch.ones([16]);
  const calls = 20000;
  const seconds = timeIt(
    () =>
      torch.tidy(() => {
        for (let i = 0; i < calls; i++) a.add(b).dispose();
      }),
    { warmup: 1, minSeconds: 1 },
  );
  torch.dispose([a, b]);
  return (seconds / calls) * 1e6;
}

export async function run(): Promise<void> {
  const reference = runPytorch<PytorchResults>("tensor.py", {
    block: BLOCK,
    rowShapes: ROW_SHAPES,
  });
  const ref = (key: Exclude<keyof PytorchResults, "linear-row">) =>
    reference ? reference[key] : null;
  report("matmul-1024", matmulGflops("float32"), ref("matmul-1024"), "GFLOP/s");
  report("matmul-1024-bf16", matmulGflops("bfloat16"), ref("matmul-1024-bf16"), "GFLOP/s");
  report("block-fwd-bwd", blockTokensPerSecond(false), ref("block-fwd-bwd"), "tokens/s");
  report("block-fwd-bwd-bf16", blockTokensPerSecond(true), ref("block-fwd-bwd-bf16"), "tokens/s");
  for (const [out, inFeatures] of ROW_SHAPES) {
    const name = `${out}x${inFeatures}`;
    const theirs = reference ? (reference["linear-row"][name] ?? null) : null;
    report(`linear-row-${name}`, linearRowGflops(out, inFeatures), theirs, "GFLOP/s");
  }
  report("small-op-overhead", smallOpMicroseconds(), ref("small-op-overhead"), "us/call", {
    target: "<5",
  });
}
