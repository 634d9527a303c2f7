#!/usr/bin/env bash
# The test command of the README (and of CI): installs missing system libraries, builds (a failed
# build fails this command), runs the unit and end-to-end tests, then the kernel and model tests
# again on the portable paths under several OpenBLAS kernel families.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --deps-only

# Drops the package manager's progress lines; never fails on its own, so the pipeline's status is
# the command's (pipefail).
quiet() { grep -Ev '^(Test Case .* (started|passed)|\[[0-9]+/[0-9]+\])' || true; }

swift build --build-tests 2>&1 | quiet
swift test --skip-build 2>&1 | quiet
# The portable paths of the kernels, tested on every machine: what a CPU without AVX-512 runs
# (the workbench's AVX2 GEMM, AVX2 activations and Philox masks), then OpenBLAS's GEMM under
# several of its kernel families (Prescott on the Intel machines of this kind, where
# OPENBLAS_CORETYPE is unset; Haswell where it is pinned), each summing in its own order, the
# Prescott pass also without AVX2 kernels (libm exp, scalar Philox), as on a CPU without AVX2.
# (SkylakeX's kernels use AVX-512: that family only where the CPU has it, or OpenBLAS traps.)
models='TensorTests|AutogradTests|NNTests|DiffusionTests'
# Tests of the kernels on emulated AVX-512/AMX instructions compute the same on every path; the
# first pass ran them.
emulated='testEmulated(Float32Products|ForwardMatchesTheDefinition|WeightGradientMatchesTheDefinition|KernelsReadColumnsToTheWrittenOutBytes)|testBF16ProductOfRoundedOperands|testStreamedCEqualsCachedStores'
echo "portable kernel paths: the workbench's AVX2 GEMM"
WORKBENCH_AVX512=0 swift test --skip-build --filter "$models" --skip "$emulated" 2>&1 | quiet
cores="Prescott Haswell"
if grep -qw avx512f /proc/cpuinfo; then cores="$cores SkylakeX"; fi
for core in $cores; do
    avx2=1
    if [ "$core" = Prescott ]; then avx2=0; fi
    echo "portable kernel paths: OpenBLAS's GEMM, core type $core, AVX2 kernels $avx2"
    OPENBLAS_CORETYPE=$core WORKBENCH_AVX512=0 WORKBENCH_GEMM=openblas WORKBENCH_AVX2=$avx2 \
        swift test --skip-build --filter "$models" --skip "$emulated" 2>&1 | quiet
done
# TensorBoard reads the run folders' event files (its own EventAccumulator, from PyPI).
scripts/compat/tensorboard.sh
# Fuzzing smoke runs: each parser (PNG, JPEG, safetensors, experiment files, MNIST IDX) for 20 s
# under libFuzzer and AddressSanitizer, from the seed corpus in Fuzz/Corpus, one per core at a time.
scripts/fuzz.sh all 20
