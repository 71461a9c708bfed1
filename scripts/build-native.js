#!/usr/bin/env node
// Finds libtorch and builds the native addon with cmake-js.
//
// Search order (the first hit wins):
//   1. LIBTORCH: a libtorch distribution folder (the one that holds share/cmake/Torch), as tch-rs
//      reads it. LIBTORCH_USE_PYTORCH=0 skips step 2.
//   2. The CMake prefix of the Python `torch` package that `python3` imports
//      (torch.utils.cmake_prefix_path), when that folder holds TorchConfig.cmake.
//   3. Debian and Ubuntu's libtorch-dev (/usr/lib/<triplet>/cmake/Torch).
// When none is found and this runs as root on Debian or Ubuntu, it installs libtorch-dev with apt;
// otherwise it stops with the commands that fix it.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const MIN_VERSION = [1, 13];
const log = (message) => console.error(`cdpo build: ${message}`);

function torchConfigIn(prefix) {
  for (const sub of ["share/cmake/Torch", "cmake/Torch", "Torch", ""]) {
    const folder = join(prefix, sub);
    if (existsSync(join(folder, "TorchConfig.cmake"))) return folder;
  }
  return null;
}

function fromEnv() {
  const dir = process.env.LIBTORCH;
  if (!dir) return null;
  const config = torchConfigIn(dir);
  if (!config) {
    throw new Error(
      `LIBTORCH is set to ${dir}, but no TorchConfig.cmake was found under it ` +
        "(expected share/cmake/Torch/TorchConfig.cmake). Point LIBTORCH at an unpacked libtorch " +
        "distribution, or unset it.",
    );
  }
  return { source: "LIBTORCH", config };
}

function fromPython() {
  if (process.env.LIBTORCH_USE_PYTORCH === "0") return null;
  for (const python of ["python3", "/usr/bin/python3"]) {
    const result = spawnSync(
      python,
      ["-c", "import torch, torch.utils; print(torch.utils.cmake_prefix_path)"],
      { encoding: "utf8" },
    );
    if (result.status !== 0) continue;
    const config = torchConfigIn(result.stdout.trim());
    if (config) return { source: `Python torch (${python})`, config };
  }
  return null;
}

function debianTriplet() {
  const result = spawnSync("dpkg-architecture", ["-qDEB_HOST_MULTIARCH"], { encoding: "utf8" });
  if (result.status === 0) return result.stdout.trim();
  return process.arch === "arm64" ? "aarch64-linux-gnu" : "x86_64-linux-gnu";
}

function fromSystem() {
  const config = torchConfigIn(`/usr/lib/${debianTriplet()}/cmake`);
  return config ? { source: "system libtorch-dev", config } : null;
}

function isDebianLike() {
  if (!existsSync("/etc/os-release")) return false;
  const text = readFileSync("/etc/os-release", "utf8");
  return /^(ID|ID_LIKE)=.*\b(debian|ubuntu)\b/m.test(text);
}

function installWithApt() {
  log("libtorch not found; installing Debian's libtorch-dev with apt-get (running as root)");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  execFileSync("apt-get", ["update", "-q"], { stdio: "inherit", env });
  execFileSync("apt-get", ["install", "-y", "-q", "libtorch-dev"], { stdio: "inherit", env });
}

function notFoundMessage() {
  return [
    "libtorch was not found. cdpo needs libtorch >= 1.13 with its CMake config. Fix it one of these ways:",
    "  1. Debian or Ubuntu: install the system package",
    "       sudo apt-get install libtorch-dev",
    "  2. Use an unpacked libtorch distribution (from the PyTorch site):",
    "       export LIBTORCH=/path/to/libtorch",
    "  3. Use the torch package of your Python (pip install torch), found through",
    "       python3 -c 'import torch; print(torch.utils.cmake_prefix_path)'",
    "Then run `npm run build:native` again.",
  ].join("\n");
}

function readVersion(config) {
  const file = join(config, "TorchConfigVersion.cmake");
  if (!existsSync(file)) return null;
  const match = readFileSync(file, "utf8").match(/PACKAGE_VERSION "([0-9.]+)"/);
  return match ? match[1] : null;
}

function findLibtorch() {
  const found = fromEnv() ?? fromPython() ?? fromSystem();
  if (found) return found;
  if (process.getuid?.() === 0 && isDebianLike()) {
    installWithApt();
    const installed = fromSystem();
    if (installed) return installed;
  }
  throw new Error(notFoundMessage());
}

function checkVersion(found) {
  const version = readVersion(found.config);
  if (!version) return "unknown";
  const [major, minor] = version.split(".").map(Number);
  if (major < MIN_VERSION[0] || (major === MIN_VERSION[0] && minor < MIN_VERSION[1])) {
    throw new Error(
      `libtorch ${version} found through ${found.source} at ${found.config}, but cdpo needs ` +
        `${MIN_VERSION.join(".")} or later. Set LIBTORCH to a newer distribution.`,
    );
  }
  return version;
}

try {
  const found = findLibtorch();
  const version = checkVersion(found);
  log(`using libtorch ${version} from ${found.source} (${found.config})`);
  const prefix = dirname(found.config);
  const cmakeJs = join(root, "node_modules", "cmake-js", "bin", "cmake-js");
  const args = [cmakeJs, "compile", "--directory", "native", `--CDCMAKE_PREFIX_PATH=${prefix}`];
  if (process.env.CDPO_NATIVE_DEBUG === "1") args.push("--debug");
  const jobs =
    process.env.CMAKE_BUILD_PARALLEL_LEVEL ??
    String(Math.max(1, (await import("node:os")).availableParallelism()));
  const result = spawnSync(process.execPath, args, {
    cwd: root,
    stdio: "inherit",
    env: { ...process.env, CMAKE_BUILD_PARALLEL_LEVEL: jobs },
  });
  if (result.status !== 0) {
    log("the native build failed; the compiler output above names the cause");
    process.exit(result.status ?? 1);
  }
} catch (error) {
  log(error instanceof Error ? error.message : String(error));
  process.exit(1);
}
