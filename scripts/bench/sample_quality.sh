#!/usr/bin/env bash
# The sample-quality table of the README: samples of a trained diffusion run with several samplers,
# each scored by a trained classifier (classifier-FID, class entropy, and for class-conditional
# runs the fraction classified as the class asked for), with seconds per image.
# Usage: [THREADS=n] scripts/bench/sample_quality.sh DIFFUSION_RUN CLASSIFIER_RUN [COUNT_PER_CLASS]
set -euo pipefail
cd "$(dirname "$0")/../.."
run=${1:?usage: scripts/bench/sample_quality.sh DIFFUSION_RUN CLASSIFIER_RUN [COUNT]}
classifier=${2:?usage: scripts/bench/sample_quality.sh DIFFUSION_RUN CLASSIFIER_RUN [COUNT]}
count=${3:-50}
binary=.build/release/workbench
out=$(mktemp -d)
printf '%-26s %8s %14s %16s %12s %10s\n' sampler steps "s per image" "classifier-FID" "as asked" entropy
for spec in "ddim:50" "dpmpp_2m:20" "ddim:20"; do
    sampler=${spec%%:*}; steps=${spec#*:}
    folder="$out/$sampler-$steps"
    start=$(date +%s.%N)
    "$binary" sample --run "$run" --classes all --count "$count" --sampler "$sampler" --steps "$steps" --seed 1 --out "$folder" --set threads="${THREADS:-0}" > /dev/null 2>&1
    end=$(date +%s.%N)
    images=$(ls "$folder"/sample_*.png | wc -l)
    "$binary" eval-samples --classifier "$classifier" "$folder" --json > "$folder/report.json"
    python3 - "$folder/report.json" "$sampler" "$steps" "$start" "$end" "$images" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
seconds = (float(sys.argv[5]) - float(sys.argv[4])) / int(sys.argv[6])
asked = r.get("conditional_accuracy")
print(f"{sys.argv[2]:<26} {sys.argv[3]:>8} {seconds:>14.3f} {r['classifier_fid']:>16.3f} {('%.4f' % asked) if asked is not None else '-':>12} {r['class_entropy_nats']:>10.3f}")
per = r.get("per_class_accuracy")
if per: print("  per class:", " ".join(f"{v:.2f}" for v in per))
PY
done
rm -rf "$out"
