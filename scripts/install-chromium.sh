#!/usr/bin/env bash
# Installs Debian's `chromium` package, which the HTML report tests drive with playwright-core.
#
# Does nothing when /usr/bin/chromium already exists. Installing needs root and apt-get, so the
# script exits with status 1 and says what to do when either is missing. Set
# CDPO_SKIP_APT_UPDATE=1 to skip `apt-get update` when the package lists are known to be fresh.
set -euo pipefail

chromium_path=/usr/bin/chromium

if [[ -x "$chromium_path" ]]; then
  version=$("$chromium_path" --version 2>/dev/null || echo 'version unknown')
  echo "install-chromium: $chromium_path is present: $version"
  exit 0
fi

if [[ "$(id -u)" -ne 0 ]]; then
  echo "install-chromium: $chromium_path is missing and installing it needs root." >&2
  echo "  Run as root: apt-get update && apt-get install -y --no-install-recommends chromium" >&2
  exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium: $chromium_path is missing and apt-get was not found." >&2
  echo "  Install a Chromium build by other means and link it to $chromium_path." >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
if [[ "${CDPO_SKIP_APT_UPDATE:-0}" != "1" ]]; then
  apt-get update
fi
# --no-install-recommends keeps out the desktop extras; headless rendering needs only the
# browser and the fonts it depends on.
apt-get install -y --no-install-recommends chromium

if [[ ! -x "$chromium_path" ]]; then
  echo "install-chromium: apt-get finished but $chromium_path is still missing." >&2
  exit 1
fi
version=$("$chromium_path" --version 2>/dev/null || echo "$chromium_path")
echo "install-chromium: installed $version"
