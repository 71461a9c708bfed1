/**
 * Console output of a training run: a cli-progress bar (rate and time left) on a terminal, or one
 * plain line per logging step when stdout is not a TTY (logs, CI, child processes):
 *
 *   cdpo dpo step 20/200 loss 0.6812 431 ms/step 9,505 tokens/s
 */
import { Presets, SingleBar } from "cli-progress";

export interface ProgressLine {
  step: number;
  loss: number;
  msPerStep: number;
  tokensPerSecond: number;
  /** Extra values shown after the fixed ones, e.g. `{ "rewards/accuracies": 0.75 }`. */
  extra?: Record<string, number>;
}

export interface ProgressReporter {
  /** Called after every optimizer step. */
  tick(step: number): void;
  /** Called at every logging step with the averaged values. */
  log(line: ProgressLine): void;
  /** Prints a free-form message (evaluation results, checkpoint paths). */
  message(text: string): void;
  stop(): void;
}

const numberFormat = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

/** Formats a logging step as the plain line shown above. */
export function formatProgressLine(phase: string, total: number, line: ProgressLine): string {
  let text =
    `cdpo ${phase} step ${line.step}/${total} loss ${line.loss.toFixed(4)} ` +
    `${numberFormat.format(line.msPerStep)} ms/step ${numberFormat.format(line.tokensPerSecond)} tokens/s`;
  for (const [name, value] of Object.entries(line.extra ?? {})) {
    text += ` ${name} ${value.toFixed(4)}`;
  }
  return text;
}

/** A reporter that prints nothing (library calls, tests). */
export const silentProgress: ProgressReporter = {
  tick: () => {},
  log: () => {},
  message: () => {},
  stop: () => {},
};

/**
 * Creates the console reporter: a bar when `bar` is true (default: stdout is a TTY), lines
 * otherwise. `startStep` is where a resumed run picks up.
 */
export function consoleProgress(
  phase: string,
  totalSteps: number,
  startStep: number,
  bar: boolean = process.stdout.isTTY === true,
): ProgressReporter {
  if (!bar) {
    return {
      tick: () => {},
      log: (line) => process.stdout.write(`${formatProgressLine(phase, totalSteps, line)}\n`),
      message: (text) => process.stdout.write(`${text}\n`),
      stop: () => {},
    };
  }
  const progress = new SingleBar(
    {
      format:
        `cdpo ${phase} [{bar}] {value}/{total} | loss {loss} | {rate} steps/s | ` +
        "{tokens} tokens/s | ETA {eta_formatted}",
      stream: process.stdout,
      hideCursor: true,
      etaBuffer: 20,
    },
    Presets.shades_classic,
  );
  let started = false;
  const start = () => {
    if (started) return;
    progress.start(totalSteps, startStep, { loss: "-", rate: "-", tokens: "-" });
    started = true;
  };
  return {
    tick: (step) => {
      start();
      progress.update(step);
    },
    log: (line) => {
      start();
      progress.update(line.step, {
        loss: line.loss.toFixed(4),
        rate: (1000 / Math.max(line.msPerStep, 1e-9)).toFixed(2),
        tokens: numberFormat.format(line.tokensPerSecond),
      });
    },
    message: (text) => {
      if (started) progress.stop();
      process.stdout.write(`${text}\n`);
      if (started) {
        started = false;
      }
    },
    stop: () => {
      if (started) progress.stop();
      started = false;
    },
  };
}
