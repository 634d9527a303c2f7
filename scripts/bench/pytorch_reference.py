#!/usr/bin/env python3
"""The PyTorch side of the README's performance table: the seed U-Net (exactly the seed's code,
BCE + Adam) trained and run for inference on the CPU with random inputs, reporting the same
figures as `workbench bench`. Development aid only; the workbench never needs Python.

Usage: python3 scripts/bench/pytorch_reference.py --size 128 --base 32 --batch 4 [--threads 2] [--steps 5]
Needs PyTorch's CPU build (pip install the wheel in pip's find-links folder)."""
import argparse
import json
import resource
import time

import torch
from torch import nn
from torch.nn import functional as F


class ConvBlock(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.layer = nn.Sequential(
            nn.Conv2d(i, o, 3, 1, 1, padding_mode='reflect', bias=False), nn.BatchNorm2d(o), nn.Dropout(0.3), nn.LeakyReLU(),
            nn.Conv2d(o, o, 3, 1, 1, padding_mode='reflect', bias=False), nn.BatchNorm2d(o), nn.Dropout(0.3), nn.LeakyReLU())

    def forward(self, x):
        return self.layer(x)


class DownSample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.Sequential(nn.Conv2d(c, c, 3, 2, 1, padding_mode='reflect', bias=False), nn.BatchNorm2d(c), nn.LeakyReLU())

    def forward(self, x):
        return self.layer(x)


class UpSample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.Conv2d(c, c // 2, 1, 1)

    def forward(self, x, feature_map):
        return torch.cat((self.layer(F.interpolate(x, scale_factor=2, mode='nearest')), feature_map), dim=1)


class UNet(nn.Module):
    def __init__(self, b, out_channels=3):
        super().__init__()
        self.c1, self.d1, self.c2, self.d2 = ConvBlock(3, b), DownSample(b), ConvBlock(b, 2 * b), DownSample(2 * b)
        self.c3, self.d3, self.c4, self.d4 = ConvBlock(2 * b, 4 * b), DownSample(4 * b), ConvBlock(4 * b, 8 * b), DownSample(8 * b)
        self.c5 = ConvBlock(8 * b, 16 * b)
        self.u1, self.c6, self.u2, self.c7 = UpSample(16 * b), ConvBlock(16 * b, 8 * b), UpSample(8 * b), ConvBlock(8 * b, 4 * b)
        self.u3, self.c8, self.u4, self.c9 = UpSample(4 * b), ConvBlock(4 * b, 2 * b), UpSample(2 * b), ConvBlock(2 * b, b)
        self.out = nn.Conv2d(b, out_channels, 3, 1, 1)

    def logits(self, x):
        r1 = self.c1(x)
        r2 = self.c2(self.d1(r1))
        r3 = self.c3(self.d2(r2))
        r4 = self.c4(self.d3(r3))
        r5 = self.c5(self.d4(r4))
        o1 = self.c6(self.u1(r5, r4))
        o2 = self.c7(self.u2(o1, r3))
        o3 = self.c8(self.u3(o2, r2))
        o4 = self.c9(self.u4(o3, r1))
        return self.out(o4)

    def forward(self, x):
        return torch.sigmoid(self.logits(x))


def instruction_paths(precision):
    """Which kernels PyTorch's convolutions and matrix products use here."""
    capability = torch.backends.cpu.get_cpu_capability()
    onednn = torch.backends.mkldnn.is_available()
    text = f"ATen CPU capability {capability}; convolutions: {'oneDNN' if onednn else 'ATen im2col + BLAS'}"
    if precision == "bf16":
        bf16 = torch.ops.mkldnn._is_mkldnn_bf16_supported()
        amx = getattr(torch._C._cpu, "_is_amx_tile_supported", lambda: False)()
        text += f"; bf16 autocast on oneDNN ({'native bf16' if bf16 else 'emulated'}{', AMX tiles' if amx else ''})"
    return text


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--base", type=int, default=32)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", choices=["float32", "bf16"], default="float32",
                        help="bf16: forward passes and losses under torch.autocast('cpu', dtype=torch.bfloat16), as PyTorch users run mixed precision")
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = UNet(args.base)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    criterion = nn.BCELoss()
    x = torch.rand(args.batch, 3, args.size, args.size)
    y = (torch.rand(args.batch, 3, args.size, args.size) < 0.3).float()

    autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16")

    def step():
        model.train()
        optimizer.zero_grad()
        with autocast():
            # BCELoss is not autocast-safe: it runs on float32 probabilities, as autocast requires.
            loss = criterion(model(x).float(), y)
        loss.backward()
        optimizer.step()

    step()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    train = sorted(times)[len(times) // 2]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    model.eval()
    with torch.no_grad(), autocast():
        model(x)
        times = []
        for _ in range(max(args.steps, 3)):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    infer = sorted(times)[len(times) // 2]
    print(json.dumps({"torch": torch.__version__, "threads": args.threads, "precision": args.precision, "paths": instruction_paths(args.precision), "size": args.size, "base": args.base, "batch": args.batch,
                      "train_ms_per_step": train * 1000, "train_ms_per_image": train * 1000 / args.batch,
                      "infer_ms_per_image": infer * 1000 / args.batch, "peak_rss_mb": peak}, indent=1))


if __name__ == "__main__":
    main()
