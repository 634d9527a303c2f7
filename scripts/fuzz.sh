#!/usr/bin/env bash
# Runs a libFuzzer target for SECONDS: scripts/fuzz.sh TARGET SECONDS [libFuzzer options…]
# TARGET: png, jpeg, safetensors, experiment, mnist, or all (each for SECONDS, as many at a time as there are cores).
# Builds the fuzz package (Fuzz/, debug build with AddressSanitizer and libFuzzer's coverage) on
# first use; starts from the seed corpus in Fuzz/Corpus/<target> (new inputs go to a temporary
# folder, not into the repository). A crash, a trap or a leak fails the command and leaves the
# input in Fuzz/crashes/.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/fuzz.sh png|jpeg|safetensors|experiment|mnist|all SECONDS [libFuzzer options]}
seconds=${2:?usage: scripts/fuzz.sh TARGET SECONDS}
shift 2

quiet() { grep -Ev '^\[[0-9]+/[0-9]+\]|Cannot export local symbol' || true; }
(cd Fuzz && swift build -c debug -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library \
    -Xcc -fsanitize=fuzzer-no-link,address 2>&1 | quiet)

run() {
    local name=$1 binary
    shift
    case $name in
        png) binary=FuzzPNG ;; jpeg) binary=FuzzJPEG ;; safetensors) binary=FuzzSafeTensors ;;
        experiment) binary=FuzzExperiment ;; mnist) binary=FuzzMNIST ;;
        *) echo "fuzz.sh: unknown target '$name' (png, jpeg, safetensors, experiment, mnist, all)" >&2; exit 2 ;;
    esac
    local work
    work=$(mktemp -d)
    mkdir -p Fuzz/crashes
    echo "fuzzing $name for ${seconds}s"
    # -rss_limit_mb: the decoders refuse what cannot fit long before this; -timeout: a hang is a bug too.
    local status=0
    Fuzz/.build/debug/$binary -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=3072 -timeout=20 \
        -artifact_prefix=Fuzz/crashes/$name- "$@" "$work" "Fuzz/Corpus/$name" > "$work.log" 2>&1 || status=$?
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|Done)|ERROR|SUMMARY|Test unit written|INITED|DONE.*cov:' "$work.log" || true
    if [ "$status" -ne 0 ]; then tail -40 "$work.log" >&2; fi
    rm -rf "$work" "$work.log"
    return "$status"
}

if [ "$target" = all ]; then
    # As many targets at a time as there are cores (each fuzzer is one process), reports in order.
    names=(png jpeg safetensors experiment mnist)
    slots=$(nproc 2>/dev/null || echo 1)
    reports=$(mktemp -d)
    pids=()
    for name in "${names[@]}"; do
        while [ "$(jobs -rp | wc -l)" -ge "$slots" ]; do sleep 0.2; done
        run "$name" "$@" > "$reports/$name" 2>&1 &
        pids+=($!)
    done
    status=0
    for i in "${!names[@]}"; do
        wait "${pids[$i]}" || status=1
        cat "$reports/${names[$i]}"
    done
    rm -rf "$reports"
    exit "$status"
else
    run "$target" "$@"
fi
