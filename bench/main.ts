/**
 * `npm run bench -- [group...]`: runs benchmark groups side by side with PyTorch.
 *
 * Groups: tensor (the engine), models (generation and forward/backward), dpo (one DPO step).
 * With no group it runs them all. `--threads N` sets the thread count for both sides (default:
 * all cores).
 */
import { availableParallelism } from "node:os";
import * as torch from "../src/tensor/index.js";
import { pythonWithTorch } from "./common.js";

const GROUPS: Record<string, () => Promise<{ run: () => Promise<void> }>> = {
  tensor: () => import("./tensor.js"),
  models: () => import("./models.js"),
  dpo: () => import("./dpo.js"),
};

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  let threads = availableParallelism();
  const names: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--threads") threads = Number(args[++i]);
    else names.push(args[i]!);
  }
  const unknown = names.filter((n) => !(n in GROUPS));
  if (unknown.length > 0) {
    console.error(
      `bench: unknown group ${unknown.join(", ")}; choose from ${Object.keys(GROUPS).join(", ")}`,
    );
    process.exit(2);
  }
  torch.setNumThreads(threads);
  const python = pythonWithTorch();
  console.log(
    `# cdpo bench: libtorch ${torch.libtorchVersion()}, ${threads} threads, ` +
      `PyTorch reference: ${python ?? "not installed (pytorch=n/a)"}`,
  );
  for (const name of names.length > 0 ? names : Object.keys(GROUPS)) {
    const group = await GROUPS[name]!();
    await group.run();
  }
}

await main();
