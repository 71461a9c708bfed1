/**
 * `cdpo smoke`: trains a small MLP with the tensor engine and prints its loss falling.
 *
 * It exercises creation, autograd, AdamW, gradient clipping, autocast and tidy scopes in a few
 * seconds, so it doubles as an installation check.
 */
import type { Command } from "commander";
import { invalidArgument } from "../../errors.js";
import * as torch from "../../tensor/index.js";
import { resolvePrecision } from "../../train/config.js";
import { type PrecisionChoice, precisionOption } from "../options.js";

export interface SmokeOptions {
  steps: number;
  hidden: number;
  lr: number;
  seed: number;
  precision: "fp32" | "bf16";
  log?: (line: string) => void;
}

/** Fits y = sin(3x)·cos(2x) on [-1, 1] with a 2-layer MLP; returns the losses at each log step. */
export function runSmoke(options: SmokeOptions): { step: number; loss: number }[] {
  const log = options.log ?? console.log;
  torch.manualSeed(options.seed);
  const generator = new torch.Generator(options.seed);
  const init = (shape: number[], fanIn: number) =>
    torch
      .keep(torch.tidy(() => torch.randn(shape, { generator }).mul(1 / Math.sqrt(fanIn))))
      .requiresGrad_();
  const w1 = init([options.hidden, 1], 1);
  const b1 = torch.keep(torch.zeros([options.hidden], { requiresGrad: true }));
  const w2 = init([1, options.hidden], options.hidden);
  const b2 = torch.keep(torch.zeros([1], { requiresGrad: true }));
  const params = [w1, b1, w2, b2];
  const optimizer = torch.adamw([{ params, lr: options.lr, weightDecay: 0 }]);

  const x = torch.keep(torch.tidy(() => torch.rand([256, 1], { generator }).mul(2).sub(1)));
  const y = torch.keep(torch.tidy(() => x.mul(3).sin().mul(x.mul(2).cos())));
  const history: { step: number; loss: number }[] = [];
  const logEvery = Math.max(1, Math.floor(options.steps / 10));
  const started = performance.now();
  for (let step = 1; step <= options.steps; step++) {
    const loss = torch.tidy(() => {
      const forward = () => {
        const h = torch.linear(x, w1, b1).tanh(); // [256, hidden]
        const prediction = torch.linear(h, w2, b2); // [256, 1]
        return prediction.float().sub(y).square().mean();
      };
      const value = options.precision === "bf16" ? torch.autocast(forward) : forward();
      optimizer.zeroGrad();
      value.backward();
      torch.clipGradNorm(params, 1.0);
      optimizer.step();
      return value.item();
    });
    if (step === 1 || step % logEvery === 0 || step === options.steps) {
      history.push({ step, loss });
      const ms = (performance.now() - started) / step;
      log(`step ${String(step).padStart(5)}  loss ${loss.toFixed(4)}  ${ms.toFixed(2)} ms/step`);
    }
  }
  torch.dispose([...params, x, y]);
  return history;
}

function positiveInt(name: string) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < 1) {
      throw invalidArgument("range", name, "a positive integer", value);
    }
    return parsed;
  };
}

export function register(program: Command): void {
  program
    .command("smoke")
    .description("Train a small MLP with the tensor engine and print its loss falling.")
    .option("--steps <n>", "optimizer steps", positiveInt("--steps"), 500)
    .option("--hidden <n>", "hidden units", positiveInt("--hidden"), 64)
    .option("--lr <x>", "AdamW learning rate", Number, 0.01)
    .option("--seed <n>", "random seed", Number, 0)
    .addOption(precisionOption("fp32"))
    .action((opts: Omit<SmokeOptions, "precision"> & { precision?: PrecisionChoice }) => {
      const precision = resolvePrecision(opts.precision ?? "fp32");
      console.log(
        `cdpo smoke: libtorch ${torch.libtorchVersion()}, ${torch.getNumThreads()} threads`,
      );
      const history = runSmoke({ ...opts, precision });
      const first = history[0]?.loss ?? Number.NaN;
      const last = history[history.length - 1]?.loss ?? Number.NaN;
      console.log(`loss fell from ${first.toFixed(4)} to ${last.toFixed(4)}`);
    });
}
