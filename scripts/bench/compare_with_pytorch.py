#!/usr/bin/env python3
"""The README's performance tables in one command: `workbench bench` and the PyTorch references
(pytorch_reference.py, the seed's own model, on the two benchmark shapes; pytorch_ddpm_reference.py,
the noise predictor of Experiments/ddpm-mnist.yaml), alternating for a few rounds so that both see
the same machine load, and keeping each figure's best round (other jobs on a shared machine only
ever slow a run down). Prints Markdown tables and the raw JSON.

Usage: python3 scripts/bench/compare_with_pytorch.py [--rounds 3] [--steps 3]
Needs a release build (scripts/setup.sh) and PyTorch's CPU build. Development aid only."""
import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHAPES = [  # experiment file, PyTorch arguments
    ("Experiments/bench/seed-128.yaml", ["--size", "128", "--base", "32", "--batch", "4"]),
    ("Experiments/bench/seed-256.yaml", ["--size", "256", "--base", "64", "--batch", "2"]),
]
DIFFUSION = ("Experiments/ddpm-mnist.yaml", "scripts/bench/pytorch_ddpm_reference.py")
LOWER_IS_BETTER = ["train_ms_per_image", "infer_ms_per_image", "peak_rss_mb"]
HIGHER_IS_BETTER = ["conv_gflops", "sgemm_gflops", "sgemm_gflops_1_thread", "gemm_gflops",
                    "sample_ddpm1000_images_per_second", "sample_ddim50_images_per_second"]


def run_json(command):
    result = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True)
    return json.loads(result.stdout)


def best(runs, key):
    values = [run[key] for run in runs if key in run]
    if not values:
        return None
    return min(values) if key in LOWER_IS_BETTER else max(values)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    workbench = str(ROOT / ".build/release/workbench")
    rows, raw = [], {}
    for experiment, torch_arguments in SHAPES:
        ours, theirs = [], []
        for round_index in range(args.rounds):
            print(f"{experiment}: round {round_index + 1}/{args.rounds}", file=sys.stderr)
            ours.append(run_json([workbench, "bench", experiment, "--json", "--steps", str(args.steps), "--sampling-images", "0"]))
            theirs.append(run_json([sys.executable, "scripts/bench/pytorch_reference.py", "--steps", str(args.steps)] + torch_arguments))
        raw[experiment] = {"workbench": ours, "pytorch": theirs}
        name = Path(experiment).stem
        for key in ["train_ms_per_image", "infer_ms_per_image", "peak_rss_mb"]:
            a, b = best(ours, key), best(theirs, key)
            rows.append(f"| {name} {key} | {a:.1f} | {b:.1f} | {a / b:.2f}× |")
        conv, sgemm, gemm = best(ours, "conv_gflops"), best(ours, "sgemm_gflops"), best(ours, "gemm_gflops")
        rows.append(f"| {name} conv GFLOP/s (÷ raw OpenBLAS sgemm {sgemm:.0f}; ÷ workbench GEMM {gemm:.0f}) "
                    f"| {conv:.0f} ({conv / sgemm:.2f}; {conv / gemm:.2f}) | | |")
    experiment, script = DIFFUSION
    ours, theirs = [], []
    for round_index in range(args.rounds):
        print(f"{experiment}: round {round_index + 1}/{args.rounds}", file=sys.stderr)
        ours.append(run_json([workbench, "bench", experiment, "--json", "--steps", str(args.steps), "--sampling-images", "16"]))
        theirs.append(run_json([sys.executable, script, "--steps", str(args.steps), "--sampling-images", "16"]))
    raw[experiment] = {"workbench": ours, "pytorch": theirs}
    for key in ["train_ms_per_image", "peak_rss_mb", "sample_ddpm1000_images_per_second", "sample_ddim50_images_per_second"]:
        a, b = best(ours, key), best(theirs, key)
        rows.append(f"| ddpm-mnist {key} | {a:.2f} | {b:.2f} | {a / b:.2f}× |")
    print("| figure | workbench | PyTorch | ratio |\n|---|---|---|---|")
    print("\n".join(rows))
    print(json.dumps(raw, indent=1))


if __name__ == "__main__":
    main()
