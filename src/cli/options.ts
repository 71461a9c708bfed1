/**
 * Options that several commands share, so that each reads and parses the same everywhere.
 *
 * Help text convention for every command: option descriptions start in lowercase, and a default
 * shows as "(default: X)" at the end, written by hand when the value comes from a config schema
 * and through commander's `.default(value, "X")` otherwise.
 */
import { InvalidArgumentError, Option } from "commander";
import * as torch from "../tensor/index.js";
import { defaultThreads } from "../train/config.js";

/** Values of `--precision`, the same in every command that has the option. */
export const PRECISIONS = ["auto", "fp32", "bf16"] as const;
export type PrecisionChoice = (typeof PRECISIONS)[number];

/** Returns a commander parser that accepts integers >= `min` and names `flag` otherwise. */
export function integerAtLeast(flag: string, min: number): (value: string) => number {
  return (value: string): number => {
    const parsed = Number(value);
    if (value.trim() === "" || !Number.isInteger(parsed) || parsed < min) {
      throw new InvalidArgumentError(
        `Expected an integer >= ${min} for ${flag} but received "${value}".`,
      );
    }
    return parsed;
  };
}

/** Returns a commander parser that accepts finite numbers and names `flag` otherwise. */
export function finiteNumber(flag: string): (value: string) => number {
  return (value: string): number => {
    const parsed = Number(value);
    if (value.trim() === "" || !Number.isFinite(parsed)) {
      throw new InvalidArgumentError(`Expected a number for ${flag} but received "${value}".`);
    }
    return parsed;
  };
}

/** `--threads <n>`: libtorch's intra-op threads, an integer >= 1 (parsed to a number). */
export function threadsOption(): Option {
  return new Option("--threads <n>", "libtorch threads (default: all cores)").argParser(
    integerAtLeast("--threads", 1),
  );
}

/** Sets libtorch's thread count to `threads`, or to all cores when it is undefined. */
export function applyThreads(threads: number | undefined): void {
  torch.setNumThreads(threads ?? defaultThreads());
}

/**
 * `--precision <mode>` with {@link PRECISIONS} as choices. `shownDefault` only goes into the help
 * text: the caller applies it, because training commands must let a config file set the value.
 */
export function precisionOption(shownDefault: PrecisionChoice): Option {
  return new Option(
    "--precision <mode>",
    "fp32, or bf16 autocast over float32 weights; auto picks bf16 when the CPU has native bf16 " +
      `instructions (default: ${shownDefault})`,
  ).choices(PRECISIONS);
}
