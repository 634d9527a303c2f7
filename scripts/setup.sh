#!/usr/bin/env bash
# Installs the system libraries the workbench links (OpenBLAS, libpng, libjpeg) when they are
# missing, then builds the release binary. Safe to run again: it does only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(libopenblas-dev libpng-dev libjpeg-dev)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ "${1:-}" != "--deps-only" ]; then
  swift build -c release --product workbench 2>&1 | grep -Ev '^\[[0-9]+/[0-9]+\]' || true
  test -x .build/release/workbench
fi
