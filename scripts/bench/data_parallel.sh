#!/usr/bin/env bash
# Training throughput of one experiment three ways on this machine, release build, one after the
# other: 1 process × 2 threads, 2 MPI ranks × 1 thread, 1 process × 1 thread; with the time the
# ranks spend exchanging partial sums. Usage: scripts/bench/data_parallel.sh EXPERIMENT [STEPS]
set -euo pipefail
cd "$(dirname "$0")/../.."
experiment=${1:?usage: scripts/bench/data_parallel.sh EXPERIMENT [STEPS]}
steps=${2:-5}
binary=.build/release/workbench
swift build -c release --product workbench 2>&1 | grep -Ev '^\[[0-9]+/[0-9]+\]' | grep -v "^Building\|^Build of" || true
field() { python3 -c "import json,sys; d=json.load(open('$1')); print(d.get('$2', float('nan')))"; }
tmp=$(mktemp -d)
"$binary" bench "$experiment" --steps "$steps" --sampling-images 0 --json --set threads=2 > "$tmp/p2.json"
mpirun --allow-run-as-root --oversubscribe -np 2 "$binary" bench "$experiment" --steps "$steps" --json --set threads=1 > "$tmp/r2.json"
"$binary" bench "$experiment" --steps "$steps" --sampling-images 0 --json --set threads=1 > "$tmp/p1.json"
echo "experiment: $experiment ($(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores)"
printf '%-28s %12s %14s %16s %14s\n' "configuration" "images/s" "ms per step" "exchange ms/step" "exchanged MB"
for run in "p2:1 process x 2 threads" "r2:2 ranks x 1 thread" "p1:1 process x 1 thread"; do
    key=${run%%:*}; label=${run#*:}
    printf '%-28s %12.2f %14.1f %16s %14s\n' "$label" "$(field "$tmp/$key.json" train_images_per_second)" \
        "$(field "$tmp/$key.json" train_ms_per_step)" "$(field "$tmp/$key.json" exchange_ms_per_step)" "$(field "$tmp/$key.json" exchanged_mb_per_step)"
done
python3 - "$tmp/r2.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"exchange share of the 2-rank step: {100 * d.get('exchange_share_of_step', float('nan')):.1f} %")
PY
rm -rf "$tmp"
