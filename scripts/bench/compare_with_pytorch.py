#!/usr/bin/env python3
"""The README's performance tables in one command: `workbench bench` and the PyTorch references
(pytorch_reference.py, the seed's own model, on the two benchmark shapes; pytorch_ddpm_reference.py,
the noise predictor of Experiments/ddpm-mnist.yaml), alternating for a few rounds so that both see
the same machine load (with --precision both, each round runs both precisions of a model), and keeping each figure's best round (other jobs on a shared machine only
ever slow a run down). Prints Markdown tables and the raw JSON.

With --precision bf16 (or both), the workbench runs with train.precision: bf16 and PyTorch under
torch.autocast("cpu", dtype=torch.bfloat16); on a CPU without AVX512_BF16 the bf16 rows say so.
Each table names the CPU and the instruction paths both sides used.

Usage: python3 scripts/bench/compare_with_pytorch.py [--rounds 3] [--steps 3] [--precision float32|bf16|both] [--threads N]
Needs a release build (scripts/setup.sh) and PyTorch's CPU build. Development aid only."""
import argparse
import json
import platform
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


def cpu_model():
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def workbench_runs_bf16(workbench):
    """Whether this machine can run the workbench's bf16 products (AVX512_BF16)."""
    probe = subprocess.run([workbench, "bench", SHAPES[0][0], "--json", "--steps", "1", "--warmup", "0", "--sampling-images", "0",
                            "--set", "train.precision=bf16", "--set", "data.image_size=32"], cwd=ROOT, capture_output=True, text=True)
    return probe.returncode == 0, probe.stderr.strip()


def measure(workbench, args, precisions, raw):
    """Every model at every precision, both sides, inside each round (so that a round's float32 and
    bf16 figures see the same machine load, and their ratio means something): raw[key] = runs."""
    jobs = [(experiment, [sys.executable, "scripts/bench/pytorch_reference.py"] + arguments, "0")
            for experiment, arguments in SHAPES]
    jobs.append((DIFFUSION[0], [sys.executable, DIFFUSION[1]], "16"))
    for experiment, reference, sampling in jobs:
        for precision in precisions:
            raw[f"{experiment} {precision}"] = {"workbench": [], "pytorch": []}
        for round_index in range(args.rounds):
            for precision in precisions:
                print(f"{experiment} ({precision}): round {round_index + 1}/{args.rounds}", file=sys.stderr)
                our_flags = ["--set", f"train.precision={precision}"]
                their_flags = ["--precision", precision]
                if args.threads:
                    our_flags += ["--set", f"threads={args.threads}"]
                    their_flags += ["--threads", str(args.threads)]
                runs = raw[f"{experiment} {precision}"]
                runs["workbench"].append(run_json([workbench, "bench", experiment, "--json", "--steps", str(args.steps),
                                                   "--sampling-images", sampling] + our_flags))
                runs["pytorch"].append(run_json(reference + ["--steps", str(args.steps)]
                                                + (["--sampling-images", sampling] if sampling != "0" else []) + their_flags))


def table_rows(precision, raw, rows):
    """The Markdown rows of one precision from the measured runs."""
    for experiment, _ in SHAPES:
        ours, theirs = raw[f"{experiment} {precision}"]["workbench"], raw[f"{experiment} {precision}"]["pytorch"]
        name = f"{Path(experiment).stem} {precision}"
        if experiment == SHAPES[0][0]:
            rows.append(f"| {precision} instruction paths | {ours[0].get('matrix_products', ours[0].get('gemm_backend'))} "
                        f"| {theirs[0].get('paths', '')} | |")
        for key in ["train_ms_per_image", "infer_ms_per_image", "peak_rss_mb"]:
            a, b = best(ours, key), best(theirs, key)
            rows.append(f"| {name} {key} | {a:.1f} | {b:.1f} | {a / b:.2f}× |")
        conv, sgemm, gemm = best(ours, "conv_gflops"), best(ours, "sgemm_gflops"), best(ours, "gemm_gflops")
        rows.append(f"| {name} conv GFLOP/s (÷ raw OpenBLAS sgemm {sgemm:.0f}; ÷ workbench GEMM {gemm:.0f}) "
                    f"| {conv:.0f} ({conv / sgemm:.2f}; {conv / gemm:.2f}) | | |")
    ours, theirs = raw[f"{DIFFUSION[0]} {precision}"]["workbench"], raw[f"{DIFFUSION[0]} {precision}"]["pytorch"]
    for key in ["train_ms_per_image", "peak_rss_mb", "sample_ddpm1000_images_per_second", "sample_ddim50_images_per_second"]:
        a, b = best(ours, key), best(theirs, key)
        rows.append(f"| ddpm-mnist {precision} {key} | {a:.2f} | {b:.2f} | {a / b:.2f}× |")


def precision_ratio_rows(raw, rows):
    """float32 time ÷ bf16 time per training step, for each side, from the same rounds."""
    for experiment in [shape for shape, _ in SHAPES] + [DIFFUSION[0]]:
        float32, bf16 = raw[f"{experiment} float32"], raw[f"{experiment} bf16"]
        ours = best(float32["workbench"], "train_ms_per_image") / best(bf16["workbench"], "train_ms_per_image")
        theirs = best(float32["pytorch"], "train_ms_per_image") / best(bf16["pytorch"], "train_ms_per_image")
        rows.append(f"| {Path(experiment).stem} training step, float32 time ÷ bf16 time | {ours:.2f}× | {theirs:.2f}× | |")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--precision", choices=["float32", "bf16", "both"], default="float32")
    parser.add_argument("--threads", type=int, default=0, help="threads for both sides (default: the experiments' setting, 2 for PyTorch)")
    args = parser.parse_args()
    workbench = str(ROOT / ".build/release/workbench")
    rows, raw = [], {}
    precisions = ["float32", "bf16"] if args.precision == "both" else [args.precision]
    if "bf16" in precisions:
        runs, reason = workbench_runs_bf16(workbench)
        if not runs:
            precisions.remove("bf16")
            rows.append(f"| bf16 | not run: {reason.splitlines()[-1] if reason else 'unavailable'} | | |")
    measure(workbench, args, precisions, raw)
    for precision in precisions:
        table_rows(precision, raw, rows)
    if precisions == ["float32", "bf16"]:
        precision_ratio_rows(raw, rows)
    print(f"CPU: {cpu_model()}, {len(__import__('os').sched_getaffinity(0))} cores available"
          f"{f', {args.threads} thread(s) each' if args.threads else ''}\n")
    print("| figure | workbench | PyTorch | ratio |\n|---|---|---|---|")
    print("\n".join(rows))
    print(json.dumps(raw, indent=1))


if __name__ == "__main__":
    main()
