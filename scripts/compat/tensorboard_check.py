#!/usr/bin/env python3
"""Reads a run folder's TensorBoard log with TensorBoard's own reader (EventAccumulator) and checks
it against the run: every scalar equals metrics.jsonl's value at the same step (as float32), every
image decodes to the PNG the run wrote, the HParams session summaries are present, and no step of a
series appears twice (a resumed run continues one curve).

Usage: python3 scripts/compat/tensorboard_check.py RUN_DIR   (exit status 1 on any mismatch)"""
import json
import struct
import sys
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def main():
    run = Path(sys.argv[1])
    accumulator = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    accumulator.Reload()
    problems = []
    expected = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        for name, value in record.items():
            if name in ("kind", "step", "epoch") or isinstance(value, str):
                continue
            expected[(f"{record['kind']}/{name}", record["step"])] = value
    tags = accumulator.Tags()
    seen = set()
    for tag in tags["scalars"]:
        steps = [event.step for event in accumulator.Scalars(tag)]
        if len(steps) != len(set(steps)):
            problems.append(f"{tag}: duplicated steps {sorted(s for s in set(steps) if steps.count(s) > 1)}")
        for event in accumulator.Scalars(tag):
            key = (tag, event.step)
            if tag == "train/images_per_second":
                continue
            if key not in expected:
                problems.append(f"{tag} step {event.step}: not in metrics.jsonl")
                continue
            want = struct.unpack("f", struct.pack("f", expected[key]))[0]
            if event.value != want:
                problems.append(f"{tag} step {event.step}: {event.value} vs metrics.jsonl {expected[key]}")
            seen.add(key)
    missing = sorted(set(expected) - seen)
    if missing:
        problems.append(f"metrics.jsonl values missing from TensorBoard: {missing[:5]}")
    images = 0
    for tag in tags["images"]:
        series = tag.split("/", 1)[1]
        folder = run / ("outputs" if tag.startswith("outputs/") else "plots")
        steps = [event.step for event in accumulator.Images(tag)]
        if len(steps) != len(set(steps)):
            problems.append(f"{tag}: duplicated steps")
        for event in accumulator.Images(tag):
            png = folder / f"{series}-step{event.step:07d}.png"
            if not png.exists() or png.read_bytes() != event.encoded_image_string:
                problems.append(f"{tag} step {event.step}: does not match {png}")
            images += 1
    plugins = accumulator.PluginTagToContent("hparams")
    for needed in ("_hparams_/session_start_info", "_hparams_/session_end_info"):
        if needed not in plugins:
            problems.append(f"HParams summary {needed} missing")
    if images == 0:
        problems.append("no images")
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print(f"TensorBoard log of {run}: {len(seen)} scalars equal metrics.jsonl, {images} images equal the run's PNGs, "
          f"HParams present ({len(plugins)} summaries), no duplicated steps")


if __name__ == "__main__":
    main()
