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
# The portable paths of the kernels (what a CPU without AVX-512 runs: OpenBLAS GEMMs, AVX2
# activations and Philox; and, with WORKBENCH_AVX2=0, what a CPU without AVX2 runs: libm exp,
# scalar Philox), tested on every machine. OpenBLAS picks its kernels by CPU (Prescott on the
# Intel machines of this kind, where OPENBLAS_CORETYPE is unset; Haswell where it is pinned), and
# each sums in its own order, so the tests run under each family.
for core in Prescott Haswell SkylakeX; do
    avx2=1
    if [ "$core" = Prescott ]; then avx2=0; fi
    echo "portable kernel paths, OpenBLAS core type $core, AVX2 kernels $avx2"
    OPENBLAS_CORETYPE=$core WORKBENCH_AVX512=0 WORKBENCH_AVX2=$avx2 swift test --skip-build \
        --filter 'TensorTests|AutogradTests|NNTests|DiffusionTests' 2>&1 | quiet
done
# The workbench's own AVX2 GEMM (WORKBENCH_GEMM=avx2: not the default, see BLAS.backend) under the models.
echo "portable kernel paths, the workbench's AVX2 GEMM"
WORKBENCH_AVX512=0 WORKBENCH_GEMM=avx2 swift test --skip-build \
    --filter 'TensorTests|AutogradTests|NNTests|DiffusionTests' 2>&1 | quiet
# TensorBoard reads the run folders' event files (its own EventAccumulator, from PyPI).
scripts/compat/tensorboard.sh
# Fuzzing smoke runs: each parser (PNG, JPEG, safetensors, experiment files, MNIST IDX) for 20 s
# under libFuzzer and AddressSanitizer, from the seed corpus in Fuzz/Corpus.
scripts/fuzz.sh all 20
