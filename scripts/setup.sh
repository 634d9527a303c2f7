#!/usr/bin/env bash
# Installs the system libraries the workbench links (OpenBLAS, libpng, libjpeg) and Open MPI (for
# data-parallel training under mpirun; loaded at run time) when they are
# missing, then builds the release binary. Safe to run again: it does only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(libopenblas-dev libpng-dev libjpeg-dev libopenmpi-dev openmpi-bin)
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
  # Quiet when the binary is up to date; the compiler's output (and a failure) when it is not.
  log=$(mktemp)
  if ! swift build -c release --product workbench > "$log" 2>&1; then
    grep -Ev '^\[[0-9]+/[0-9]+\]' "$log" >&2 || true
    rm -f "$log"
    echo "setup: the release build failed" >&2
    exit 1
  fi
  if grep -q "Compiling" "$log"; then grep -Ev '^\[[0-9]+/[0-9]+\]' "$log" >&2 || true; fi
  rm -f "$log"
  test -x .build/release/workbench
fi
