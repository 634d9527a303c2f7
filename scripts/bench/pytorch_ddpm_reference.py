#!/usr/bin/env python3
"""The PyTorch side of the README's diffusion figures: the workbench's noise predictor for
Experiments/ddpm-mnist.yaml (the seed U-Net layout with the time embedding added after each
GroupNorm, dropout, SiLU, residual 1x1 skips, single-head attention at 8x8) written in PyTorch,
timed like `workbench bench Experiments/ddpm-mnist.yaml`: a training step (MSE on ε, Adam) on
generated x_t, and DDPM-1000 / DDIM-50 sampling of a batch in eval mode without gradients.
Development aid only; the workbench never needs Python.

Usage: python3 scripts/bench/pytorch_ddpm_reference.py [--threads 2] [--steps 3] [--sampling-images 16]"""
import argparse
import json
import math
import resource
import time

import torch
from torch import nn
from torch.nn import functional as F

BASE, MULTIPLIERS, GROUPS, DROPOUT, ATTENTION, SIZE, BATCH, T = 32, [1, 2, 2, 2], 8, 0.1, [8], 32, 64, 1000


class TimeBlock(nn.Module):
    def __init__(self, i, o, time):
        super().__init__()
        self.conv1 = nn.Conv2d(i, o, 3, 1, 1, padding_mode='reflect', bias=False)
        self.norm1 = nn.GroupNorm(GROUPS, o)
        self.time_proj = nn.Linear(time, o)
        self.conv2 = nn.Conv2d(o, o, 3, 1, 1, padding_mode='reflect', bias=False)
        self.norm2 = nn.GroupNorm(GROUPS, o)
        self.dropout1, self.dropout2 = nn.Dropout(DROPOUT), nn.Dropout(DROPOUT)
        self.skip = nn.Conv2d(i, o, 1) if i != o else None

    def forward(self, x, emb):
        h = self.norm1(self.conv1(x)) + self.time_proj(emb)[:, :, None, None]
        h = F.silu(self.dropout1(h))
        h = F.silu(self.dropout2(self.norm2(self.conv2(h))))
        return h + (self.skip(x) if self.skip is not None else x)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm, self.qkv, self.proj = nn.GroupNorm(GROUPS, c), nn.Conv2d(c, 3 * c, 1), nn.Conv2d(c, c, 1)

    def forward(self, x):
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, c, h * w).unbind(1)
        weights = torch.softmax(torch.bmm(q.transpose(1, 2), k) / math.sqrt(c), dim=-1)
        return x + self.proj(torch.bmm(v, weights.transpose(1, 2)).reshape(n, c, h, w))


class Down(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv, self.norm = nn.Conv2d(c, c, 3, 2, 1, padding_mode='reflect', bias=False), nn.BatchNorm2d(c)

    def forward(self, x):
        return F.leaky_relu(self.norm(self.conv(x)))


class Up(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.Conv2d(c, c // 2, 1)

    def forward(self, x, skip):
        return torch.cat((self.layer(F.interpolate(x, scale_factor=2, mode='nearest')), skip), dim=1)


class NoisePredictor(nn.Module):
    def __init__(self):
        super().__init__()
        channels, time = [m * BASE for m in MULTIPLIERS], 4 * BASE
        self.time_mlp = nn.Sequential(nn.Linear(BASE, time), nn.SiLU(), nn.Linear(time, time))
        self.encoder, self.down, self.up, self.decoder = nn.ModuleList(), nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        self.attention = nn.ModuleDict()
        previous = 1
        for level, width in enumerate(channels):
            self.encoder.append(TimeBlock(previous, width, time))
            if SIZE >> level in ATTENTION:
                self.attention[f"enc{level}"] = Attention(width)
            if level < len(channels) - 1:
                self.down.append(Down(width))
            previous = width
        for level in range(len(channels) - 2, -1, -1):
            self.up.append(Up(previous))
            self.decoder.append(TimeBlock(previous // 2 + channels[level], channels[level], time))
            if SIZE >> level in ATTENTION:
                self.attention[f"dec{level}"] = Attention(channels[level])
            previous = channels[level]
        self.out = nn.Conv2d(channels[0], 1, 3, 1, 1)

    def embed(self, t):
        half = BASE // 2
        frequencies = torch.exp(-math.log(10000.0) / (half - 1) * torch.arange(half, dtype=torch.float64))
        angles = t.double()[:, None] * frequencies[None]
        return torch.cat((angles.sin(), angles.cos()), dim=1).float()

    def attend(self, name, x):
        return self.attention[name](x) if name in self.attention else x

    def forward(self, x, t):
        emb = F.silu(self.time_mlp(self.embed(t)))
        skips, h = [], x
        for level, block in enumerate(self.encoder):
            if level > 0:
                h = self.down[level - 1](h)
            h = self.attend(f"enc{level}", block(h, emb))
            skips.append(h)
        for index, block in enumerate(self.decoder):
            level = len(self.encoder) - 2 - index
            h = self.attend(f"dec{level}", block(self.up[index](h, skips[level]), emb))
        return self.out(h)


def sample(model, alphas_cumprod, betas, timesteps, count):
    """Ancestral DDPM (fixedlarge variance) over `timesteps`, or DDIM (η = 0) when it is a subsequence."""
    x = torch.randn(count, 1, SIZE, SIZE)
    with torch.no_grad():
        for index in range(len(timesteps) - 1, -1, -1):
            t = timesteps[index]
            eps = model(x, torch.full((count,), t, dtype=torch.long))
            a_t = alphas_cumprod[t]
            a_prev = alphas_cumprod[timesteps[index - 1]] if index > 0 else torch.tensor(1.0, dtype=torch.float64)
            x0 = ((x - (1 - a_t).sqrt() * eps) / a_t.sqrt()).clamp(-1, 1)
            if len(timesteps) == T:
                mean = (a_prev.sqrt() * betas[t] * x0 + (1 - betas[t]).sqrt() * (1 - a_prev) * x) / (1 - a_t)
                x = mean + (betas[t].sqrt() * torch.randn_like(x) if index > 0 else 0)
            else:
                x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
            x = x.float()
    return x


def main():
    from pytorch_reference import instruction_paths  # same folder

    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", choices=["float32", "bf16"], default="float32",
                        help="bf16: forward passes and losses under torch.autocast('cpu', dtype=torch.bfloat16), as PyTorch users run mixed precision")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--sampling-images", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = NoisePredictor()
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4)
    betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float64)
    alphas_cumprod = torch.cumprod(1 - betas, dim=0)
    x0 = torch.rand(BATCH, 1, SIZE, SIZE) * 2 - 1
    noise = torch.randn_like(x0)
    t = torch.randint(0, T, (BATCH,))
    a = alphas_cumprod[t].float()[:, None, None, None]
    xt = a.sqrt() * x0 + (1 - a).sqrt() * noise

    autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16")

    def train_step():
        model.train()
        optimizer.zero_grad()
        with autocast():
            loss = F.mse_loss(model(xt, t).float(), noise)
        loss.backward()
        optimizer.step()

    train_step()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        train_step()
        times.append(time.perf_counter() - start)
    step = sorted(times)[len(times) // 2]
    model.eval()
    result = {"torch": torch.__version__, "threads": args.threads, "precision": args.precision,
              "paths": instruction_paths(args.precision), "batch": BATCH, "image_size": SIZE,
              "parameters": sum(p.numel() for p in model.parameters()),
              "train_ms_per_step": step * 1000, "train_ms_per_image": step * 1000 / BATCH,
              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if args.sampling_images > 0:
        for name, timesteps in [("ddpm1000", list(range(T))), ("ddim50", [round(i * (T - 1) / 49) for i in range(50)])]:
            start = time.perf_counter()
            with autocast():
                sample(model, alphas_cumprod, betas, timesteps, args.sampling_images)
            result[f"sample_{name}_images_per_second"] = args.sampling_images / (time.perf_counter() - start)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
