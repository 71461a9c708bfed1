/**
 * One DPO optimizer step on a 27.4M-parameter Llama (hidden 512, 8 layers, 8 pairs of 256-token
 * sequences: a 128-token prompt and a 128-token response each), against the same step in eager
 * PyTorch (bench/py/dpo.py).
 *
 * cdpo's step is the trainer's own micro-batch path: the "prefix" layout (each layer computes a
 * pair's prompt once and both responses attend to its keys and values), the LM head on response
 * positions only, the sigmoid DPO loss against cached reference log-probabilities, backward and
 * AdamW. PyTorch runs TRL's layout: chosen and rejected rows concatenated, logits everywhere.
 *
 * MFU counts the model FLOPs of the step as TRL's layout needs them (6 · parameters · 4,096
 * tokens plus attention), for both sides, against the matmul peak measured for the same dtype.
 */
import type { TokenizedPair } from "../src/data/tokenize.js";
import * as torch from "../src/tensor/index.js";
import { responseLogps } from "../src/train/forward.js";
import { pairLayout } from "../src/train/layout.js";
import { dpoLoss } from "../src/train/losses.js";
import { initModel, llamaConfig } from "../src/train/models.js";
import { createAdamW } from "../src/train/optim.js";
import { report, runPytorch, timeIt } from "./common.js";

export const DPO_BENCH = {
  model: {
    hidden: 512,
    layers: 8,
    heads: 8,
    intermediate: 1376,
    vocab: 4096,
    eps: 1e-6,
    theta: 10000,
  },
  pairs: 8,
  prompt: 128,
  response: 128,
};

interface PytorchDpo {
  pairs_per_second: number;
  seconds_per_step: number;
  peak_gflops: number;
}

/**
 * Seconds of the fastest of at least `minRuns` calls after one warmup call. Both sides use the
 * minimum, the time least disturbed by other processes on a shared machine.
 */
function fastest(fn: () => void, minRuns = 3, minSeconds = 3): number {
  fn();
  let best = Number.POSITIVE_INFINITY;
  const start = performance.now();
  for (let runs = 0; runs < minRuns || performance.now() - start < minSeconds * 1000; runs++) {
    const t0 = performance.now();
    fn();
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return best;
}

/** Model FLOPs of one step in TRL's layout: forward + backward = 3 × forward. */
export function stepFlops(): number {
  const { hidden: C, layers: L, intermediate: F, vocab: V } = DPO_BENCH.model;
  const rows = 2 * DPO_BENCH.pairs;
  const T = DPO_BENCH.prompt + DPO_BENCH.response;
  const matmulParams = L * (4 * C * C + 3 * C * F) + V * C; // the tied head counts once
  const forward = 2 * matmulParams * rows * T + L * 4 * rows * T * T * C; // + q·kᵀ and p·v
  return 3 * forward;
}

function matmulPeak(dtype: "float32" | "bfloat16"): number {
  const n = 1024;
  const g = new torch.Generator(0);
  const a = torch.randn([n, n], { generator: g, dtype });
  const b = torch.randn([n, n], { generator: g, dtype });
  const seconds = timeIt(() => torch.tidy(() => void a.matmul(b)), { warmup: 3, minSeconds: 1.5 });
  torch.dispose([a, b]);
  return (2 * n ** 3) / seconds / 1e9;
}

function benchPairs(): TokenizedPair[] {
  const { pairs, prompt, response } = DPO_BENCH;
  const g = new torch.Generator(1);
  const draw = (n: number) =>
    torch.tidy(() => torch.randint(0, DPO_BENCH.model.vocab, [n], { generator: g }).toInt32Array());
  return Array.from({ length: pairs }, (_, i) => ({
    id: `bench-${i}`,
    promptIds: draw(prompt),
    responseIds: [draw(response), draw(response)] as [Int32Array, Int32Array],
    truncated: false,
    pair: { id: `bench-${i}`, prompt: "", responses: ["", ""], meta: {} },
  }));
}

/** Seconds per DPO step of cdpo's trainer path. */
function cdpoStepSeconds(bf16: boolean): number {
  const { model: m } = DPO_BENCH;
  const config = llamaConfig({
    hidden: m.hidden,
    layers: m.layers,
    heads: m.heads,
    kvHeads: m.heads,
    intermediate: m.intermediate,
    vocab: m.vocab,
    maxPositions: 1024,
  });
  const model = initModel(config, "causal-lm", 0);
  const optimizer = createAdamW(model.namedParameters(), {
    lr: 1e-5,
    weightDecay: 0.01,
    adamBeta1: 0.9,
    adamBeta2: 0.999,
    adamEps: 1e-8,
  });
  const pairs = benchPairs();
  const refChosen = torch.keep(torch.full([pairs.length], -300));
  const refRejected = torch.keep(torch.full([pairs.length], -300));

  const step = () => {
    optimizer.zeroGrad();
    torch.tidy(() => {
      const forward = () => {
        const { layout } = pairLayout(pairs, () => 0, 0, "prefix");
        const { logps } = responseLogps(model, layout);
        const b = pairs.length;
        return dpoLoss({
          policyChosen: logps.narrow(0, 0, b),
          policyRejected: logps.narrow(0, b, b),
          refChosen,
          refRejected,
          beta: 0.1,
        }).loss;
      };
      const loss = bf16 ? torch.autocast(forward, { dtype: "bfloat16" }) : forward();
      loss.backward();
    });
    optimizer.step();
  };
  const seconds = fastest(step);
  torch.dispose([refChosen, refRejected]);
  model.dispose();
  return seconds;
}

export async function run(): Promise<void> {
  const flops = stepFlops();
  const mfu = (secondsPerStep: number, peakGflops: number) =>
    `${((100 * flops) / secondsPerStep / 1e9 / peakGflops).toFixed(1)}%`;
  for (const [name, precision] of [
    ["dpo-step", "fp32"],
    ["dpo-step-bf16", "bf16"],
  ] as const) {
    // PyTorch first, then cdpo, per precision, so that both run under similar machine load.
    const reference = runPytorch<PytorchDpo>("dpo.py", { ...DPO_BENCH, precision });
    const seconds = cdpoStepSeconds(precision === "bf16");
    const peak = matmulPeak(precision === "bf16" ? "bfloat16" : "float32");
    const extra: Record<string, string | number> = { mfu: mfu(seconds, peak) };
    if (reference !== null) {
      extra.pytorch_mfu = mfu(reference.seconds_per_step, reference.peak_gflops);
    }
    extra.peak_gflops = peak;
    report(name, DPO_BENCH.pairs / seconds, reference?.pairs_per_second ?? null, "pairs/s", extra);
  }
}
