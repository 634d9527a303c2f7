#!/usr/bin/env python3
"""Training parity with PyTorch, not only step parity: trains the seed's U-Net in PyTorch and in the
workbench at identical settings (one sigmoid channel per class, BCE with void excluded, Adam,
`keep_same_size` with the label padded as background, no augmentation) on a VOC-format folder for
the same number of steps and seeds, then evaluates both on the validation split at each label's
original size with void ignored, and prints foreground IoU, mIoU and the mean training loss of the
first and last 100 steps per seed, with each side's mean and seed-to-seed spread.

Usage: python3 scripts/bench/training_parity.py [--data data/synthetic-voc] [--steps 500] [--seeds 0,1,2]
       [--size 128] [--base 16] [--batch 8] [--lr 1e-3] [--threads 2]
Needs a release build (scripts/setup.sh), PyTorch's CPU build, numpy and Pillow. Development aid only."""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pytorch_reference import UNet  # noqa: E402  (the seed's model)

ROOT = Path(__file__).resolve().parents[2]


def keep_same_size(image, size, resample, fill):
    """The seed's keep_same_size: paste at the top-left of a square of side max(w, h), then resize."""
    side = max(image.size)
    square = Image.new(image.mode, (side, side), fill)
    square.paste(image, (0, 0))
    return square.resize((size, size), resample)


def read_split(root, name):
    return (root / "ImageSets/Segmentation" / f"{name}.txt").read_text().split()


def load(root, ids, size):
    images, labels = [], []
    for i in ids:
        image = Image.open(root / "JPEGImages" / f"{i}.jpg").convert("RGB")
        label = Image.open(root / "SegmentationClass" / f"{i}.png")
        images.append(np.asarray(keep_same_size(image, size, Image.BICUBIC, (0, 0, 0)), dtype=np.float32).transpose(2, 0, 1) / 255)
        labels.append(np.asarray(keep_same_size(label, size, Image.NEAREST, 0), dtype=np.int64))
    return torch.from_numpy(np.stack(images)), torch.from_numpy(np.stack(labels))


def confusion_from(predicted, truth, classes):
    valid = truth != 255
    index = truth[valid].astype(np.int64) * classes + predicted[valid].astype(np.int64)
    return np.bincount(index, minlength=classes * classes).reshape(classes, classes)


def scores(confusion):
    """mIoU over the classes present or predicted, and the IoU of foreground (any class but 0) against background."""
    tp = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - tp
    miou = float(np.mean(tp[union > 0] / union[union > 0]))
    fg_tp = confusion[1:, 1:].sum()
    fg_union = fg_tp + confusion[0, 1:].sum() + confusion[1:, 0].sum()
    return miou, float(fg_tp / fg_union)


def pytorch_run(args, seed, train, val_ids):
    torch.manual_seed(seed)
    torch.set_num_threads(args.threads)
    model = UNet(args.base, out_channels=args.classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    images, labels = train
    losses, step, epoch = [], 0, 0
    while step < args.steps:
        order = torch.randperm(len(images))
        for start in range(0, len(order), args.batch):
            if step == args.steps:
                break
            batch = order[start:start + args.batch]
            x, y = images[batch], labels[batch]
            model.train()
            optimizer.zero_grad()
            logits = model.logits(x)
            valid = (y != 255).unsqueeze(1).expand_as(logits).float()
            target = F.one_hot(y.clamp(max=args.classes - 1), args.classes).permute(0, 3, 1, 2).float()
            loss = (F.binary_cross_entropy_with_logits(logits, target, reduction="none") * valid).sum() / valid.sum()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            step += 1
        epoch += 1
    model.eval()
    confusion = np.zeros((args.classes, args.classes), dtype=np.int64)
    root = Path(args.data)
    with torch.no_grad():
        for i in val_ids:
            image = Image.open(root / "JPEGImages" / f"{i}.jpg").convert("RGB")
            truth = np.asarray(Image.open(root / "SegmentationClass" / f"{i}.png"))
            x = torch.from_numpy(np.asarray(keep_same_size(image, args.size, Image.BICUBIC, (0, 0, 0)), dtype=np.float32)
                                 .transpose(2, 0, 1)[None] / 255)
            classes = model(x)[0].argmax(0).numpy().astype(np.uint8)
            side = max(image.size)
            restored = np.asarray(Image.fromarray(classes).resize((side, side), Image.NEAREST))[:image.size[1], :image.size[0]]
            confusion += confusion_from(restored, truth, args.classes)
    return confusion, float(np.mean(losses[-100:])), float(np.mean(losses[:100]))


def workbench_run(args, seed, folder):
    experiment = folder / "parity.yaml"
    experiment.write_text(f"""name: parity
task: segmentation
seed: {seed}
threads: {args.threads}
data:
  root: {Path(args.data).resolve()}
  image_size: {args.size}
  train_split: train
  val_split: val
  label_padding: background
model:
  base_channels: {args.base}
  dropout: 0.3
segmentation:
  target: onehot
  classes: {args.classes}
  loss: [{{type: bce}}]
train:
  optimizer: adam
  lr: {args.lr}
  batch_size: {args.batch}
  max_steps: {args.steps}
  eval_every_epochs: null
  checkpoint_every_epochs: null
  log_every_steps: 25
eval:
  split: val
  batch_size: 8
""")
    run = folder / f"run-{seed}"
    workbench = str(ROOT / ".build/release/workbench")
    subprocess.run([workbench, "train", str(experiment), "--quiet", "--run-dir", str(run)], cwd=ROOT, check=True)
    report = json.loads(subprocess.run([workbench, "eval", str(experiment), "--checkpoint", str(run / "checkpoints/model-final.safetensors"),
                                        "--json"], cwd=ROOT, check=True, capture_output=True, text=True).stdout)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    last = [r["loss"] for r in records if r.get("kind") == "train" and r["step"] > args.steps - 100]
    first = [r["loss"] for r in records if r.get("kind") == "train" and r["step"] <= 100]
    return np.array(report["confusion_matrix"], dtype=np.int64), float(np.mean(last)), float(np.mean(first))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="data/synthetic-voc")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--base", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--classes", type=int, default=21)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    root = Path(args.data)
    train = load(root, read_split(root, "train"), args.size)
    val_ids = read_split(root, "val")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for seed in [int(s) for s in args.seeds.split(",")]:
            for side, run in [("PyTorch " + torch.__version__, lambda: pytorch_run(args, seed, train, val_ids)),
                              ("workbench", lambda: workbench_run(args, seed, Path(folder)))]:
                start = time.time()
                confusion, loss, first = run()
                miou, foreground = scores(confusion)
                rows.append({"side": side, "seed": seed, "foreground_iou": foreground, "miou": miou,
                             "loss_first_100": first, "loss_last_100": loss, "seconds": time.time() - start})
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print("| side | seed | foreground IoU | mIoU | mean training loss, steps 1–100 | last 100 steps |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['side']} | {row['seed']} | {row['foreground_iou']:.4f} | {row['miou']:.4f} | {row['loss_first_100']:.4f} "
              f"| {row['loss_last_100']:.4f} |")
    for side in sorted({row["side"] for row in rows}):
        mine = [row for row in rows if row["side"] == side]
        for key in ["foreground_iou", "miou"]:
            values = [row[key] for row in mine]
            print(f"{side} {key}: mean {np.mean(values):.4f}, range {min(values):.4f}…{max(values):.4f}")


if __name__ == "__main__":
    main()
