#!/usr/bin/env bash
# Sets up cdpo on a fresh Debian or Ubuntu machine with Node 20, then builds it.
#
#   bash scripts/setup.sh          system packages for building and running, npm packages, build
#   bash scripts/setup.sh --test   the same plus what the tests need (Chromium for the report test)
#   bash scripts/setup.sh --bench  the same plus PyTorch, the reference side of `npm run bench`
#
# System packages (installed with apt when running as root, checked otherwise):
#   cmake, g++          build the native addon
#   libtorch-dev        libtorch 1.13 with its CMake config (skipped when LIBTORCH points at a
#                       libtorch distribution, or a Python torch install provides one)
#   libopenblas0-openmp an optimised BLAS; without it Debian's libtorch runs float32 matmuls on the
#                       reference BLAS, several times slower
#   chromium            headless browser for the report test (--test only)
#   python3-torch       PyTorch 1.13 for the benchmarks' reference side (--bench only)
set -euo pipefail
cd "$(dirname "$0")/.."

with_tests=0
with_bench=0
for arg in "$@"; do
  case "$arg" in
    --test) with_tests=1 ;;
    --bench) with_bench=1 ;;
    *) echo "setup: unknown argument $arg (expected --test or --bench)" >&2; exit 2 ;;
  esac
done

say() { echo "cdpo setup: $*" >&2; }

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  say "Node.js 20 or later is required (found $(node --version 2>/dev/null || echo none))"
  exit 1
fi

packages=(cmake g++ libopenblas0-openmp)
if [ -z "${LIBTORCH:-}" ]; then packages+=(libtorch-dev); fi
if [ "$with_tests" = 1 ]; then packages+=(chromium); fi
if [ "$with_bench" = 1 ]; then packages+=(python3-torch); fi

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q "${missing[@]}"
  else
    say "missing system packages: ${missing[*]}"
    say "install them with: sudo apt-get install ${missing[*]}"
    say "(libtorch-dev can be replaced by LIBTORCH=/path/to/libtorch; see README)"
    exit 1
  fi
fi

if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund
else
  npm install --no-audit --no-fund
fi
npm run build
say "done: run \`node bin/cdpo.js --help\`"
