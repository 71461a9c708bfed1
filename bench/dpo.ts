/**
 * One DPO optimizer step on a 27.4M-parameter Llama (hidden 512, 8 layers, vocabulary 4,096,
 * tied head; 8 pairs of 256-token sequences: a 128-token prompt and a 128-token response each),
 * against the same step in eager PyTorch (bench/py/dpo.py).
 *
 * cdpo's step is the trainer's own micro-batch path: the "prefix" layout (each layer computes a
 * pair's prompt once and both responses attend to its keys and values), the LM head on response
 * positions only, the sigmoid DPO loss against cached reference log-probabilities, backward and
 * AdamW. PyTorch runs TRL's layout: chosen and rejected rows concatenated, logits everywhere.
 *
 * The two sides alternate step by step (PyTorch runs as a child process taking one command per
 * line), and each reports its fastest step. On a machine shared with other work, that keeps both
 * sides under the same load and keeps the least disturbed time of each.
 *
 * MFU is each side's executed FLOPs (see stepFlops) per second over the matmul peak measured for
 * the same dtype in the same process. cdpo's layout executes fewer FLOPs per step (0.72 of
 * TRL's layout here), so its pairs/s ratio can exceed its MFU ratio.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { createInterface, type Interface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { TokenizedPair } from "../src/data/tokenize.js";
import * as torch from "../src/tensor/index.js";
import { responseLogps } from "../src/train/forward.js";
import { pairLayout } from "../src/train/layout.js";
import { dpoLoss } from "../src/train/losses.js";
import { initModel, llamaConfig } from "../src/train/models.js";
import { createAdamW } from "../src/train/optim.js";
import { pythonWithTorch, report, timeIt } from "./common.js";

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

/** Timed rounds per precision after one warmup round (each round: one step per side). */
const ROUNDS = 5;

/**
 * FLOPs of one step as executed (forward + backward = 3 × forward): matmuls of the layers over
 * every token run, the LM head over the positions it runs on, and q·kᵀ and p·v over every score
 * computed, masked ones included.
 */
export function stepFlops(layout: "trl" | "prefix"): number {
  const { hidden: C, layers: L, intermediate: F, vocab: V } = DPO_BENCH.model;
  const { pairs: B, prompt: P, response: R } = DPO_BENCH;
  const perToken = 2 * L * (4 * C * C + 3 * C * F);
  let forward: number;
  if (layout === "trl") {
    const tokens = 2 * B * (P + R);
    forward = perToken * tokens + 2 * V * C * tokens + L * 4 * C * 2 * B * (P + R) ** 2;
  } else {
    const tokens = B * P + 2 * B * R;
    const scores = B * P * P + 2 * B * R * (P + R);
    forward = perToken * tokens + 2 * V * C * 2 * B * R + L * 4 * C * scores;
  }
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

/** Builds cdpo's model and optimizer; returns one training step and a cleanup function. */
function cdpoStep(bf16: boolean): { step: () => void; dispose: () => void } {
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
  const dispose = () => {
    torch.dispose([refChosen, refRejected]);
    model.dispose();
  };
  return { step, dispose };
}

/** The PyTorch step in a child process that runs one command per line (bench/py/dpo.py). */
class PytorchServer {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #lines: Interface;
  readonly #pending: ((line: string) => void)[] = [];
  #stderr = "";

  constructor(python: string, precision: "fp32" | "bf16") {
    const here = dirname(fileURLToPath(import.meta.url));
    // Compiled runs live in dist/bench; the Python script stays in the source tree.
    const sourceDir = here.includes(join("dist", "bench")) ? join(here, "..", "..", "bench") : here;
    const threads = torch.getNumThreads();
    const payload = JSON.stringify({ ...DPO_BENCH, threads, precision, serve: true });
    this.#child = spawn(python, [join(sourceDir, "py", "dpo.py"), payload], {
      env: { ...process.env, OMP_NUM_THREADS: String(threads) },
    });
    this.#child.stderr.on("data", (chunk) => (this.#stderr += chunk));
    this.#lines = createInterface({ input: this.#child.stdout });
    this.#lines.on("line", (line) => this.#pending.shift()?.(line));
    this.#child.on("close", (code) => {
      for (const reject of this.#pending.splice(0)) reject(`{"error": "exited with ${code}"}`);
    });
  }

  /** Sends a command (or nothing, to read the startup line) and parses the JSON answer. */
  async request<T>(command: string | null): Promise<T> {
    const answer = new Promise<string>((resolve) => this.#pending.push(resolve));
    if (command !== null) this.#child.stdin.write(`${command}\n`);
    const parsed = JSON.parse(await answer) as T & { error?: string };
    if (parsed.error !== undefined) {
      throw new Error(`PyTorch reference dpo.py failed (${parsed.error}):\n${this.#stderr}`);
    }
    return parsed;
  }

  close(): void {
    this.#child.stdin.end("quit\n");
  }
}

export async function run(): Promise<void> {
  const mfu = (flops: number, secondsPerStep: number, peakGflops: number) =>
    `${((100 * flops) / secondsPerStep / 1e9 / peakGflops).toFixed(1)}%`;
  const python = pythonWithTorch();
  for (const [name, precision] of [
    ["dpo-step", "fp32"],
    ["dpo-step-bf16", "bf16"],
  ] as const) {
    const ours = cdpoStep(precision === "bf16");
    const server = python === null ? null : new PytorchServer(python, precision);
    try {
      await server?.request<{ ready: boolean }>(null);
      let oursBest = Number.POSITIVE_INFINITY;
      let theirsBest = Number.POSITIVE_INFINITY;
      for (let round = 0; round <= ROUNDS; round++) {
        const t0 = performance.now();
        ours.step();
        const seconds = (performance.now() - t0) / 1000;
        const theirs =
          server === null ? null : (await server.request<{ seconds: number }>("step")).seconds;
        if (round === 0) continue; // warmup
        oursBest = Math.min(oursBest, seconds);
        if (theirs !== null) theirsBest = Math.min(theirsBest, theirs);
      }
      const peak = matmulPeak(precision === "bf16" ? "bfloat16" : "float32");
      const extra: Record<string, string | number> = {
        mfu: mfu(stepFlops("prefix"), oursBest, peak),
      };
      let pytorchRate: number | null = null;
      if (server !== null) {
        const pytorchPeak = (await server.request<{ gflops: number }>("peak")).gflops;
        extra.pytorch_mfu = mfu(stepFlops("trl"), theirsBest, pytorchPeak);
        pytorchRate = DPO_BENCH.pairs / theirsBest;
      }
      extra.peak_gflops = peak;
      report(name, DPO_BENCH.pairs / oursBest, pytorchRate, "pairs/s", extra);
    } finally {
      server?.close();
      ours.dispose();
    }
  }
}
