#!/usr/bin/env bash
# The test command of the README (and of CI): installs missing system libraries, runs the unit
# and end-to-end tests, then checks every experiment file and smoke-tests the benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --deps-only
swift build --build-tests 2>&1 | grep -Ev '^\[[0-9]+/[0-9]+\]' || true
swift test --skip-build 2>&1 | grep -Ev '^(Test Case .* (started|passed)|\[[0-9]+/[0-9]+\])'
# The portable paths of the kernels (what a CPU without AVX-512 runs: OpenBLAS GEMMs, libm exp,
# scalar Philox), tested on every machine.
WORKBENCH_AVX512=0 swift test --skip-build --filter 'TensorTests|AutogradTests|NNTests|DiffusionTests' 2>&1 \
    | grep -Ev '^(Test Case .* (started|passed)|\[[0-9]+/[0-9]+\])'
