"""Corruption-evaluation throughput: batched corruptions against one image at a time.

Both sides apply the same 75 (corruption, severity) pairs of Hendrycks & Dietterich 2019
(``attacks.corruptions``, CIFAR-10-C constants) to the same images and classify the
corrupted images with the same small CNN; the batched side corrupts and classifies
``--batch-size`` images at once on the device (as ``nasbench attack --corruptions``
does), the plain loop corrupts each image alone, in a Python loop, as the reference code
(one PIL image at a time) and per-image libraries do, then classifies it.

    .venv/bin/python benchmarks/corruption_throughput.py [--n 128] [--size 32] [--channels 3] [--device cuda]

Images are scikit-learn's digits, upsampled to ``--size`` and tinted when ``--channels``
is 3 (CIFAR-like 32x32 colour by default). Prints images per second (images x 75 pairs /
seconds) for each side and their ratio, measured side by side in one run, plus the
slowest corruptions of the batched side.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from attacks.corruptions import CORRUPTIONS, SEVERITIES, corrupt, corruption_generator


def images(n: int, size: int, channels: int) -> torch.Tensor:
    from sklearn.datasets import load_digits

    x = torch.tensor(load_digits().images[:n], dtype=torch.float32).unsqueeze(1) / 16.0
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False).clamp(0, 1)
    if channels == 3:
        generator = torch.Generator().manual_seed(0)
        ink, paper = torch.rand(n, 3, 1, 1, generator=generator), 0.5 * torch.rand(n, 3, 1, 1, generator=generator)
        x = (x * ink + (1 - x) * paper).clamp(0, 1)
    return x


def small_cnn(channels: int, classes: int = 10) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(channels, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, classes),
    ).eval()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def batched(x: torch.Tensor, model: nn.Module, batch_size: int, device: torch.device) -> tuple[float, dict]:
    per_corruption: dict[str, float] = {}
    synchronize(device)
    started = time.perf_counter()
    with torch.no_grad():
        for name in CORRUPTIONS:
            t0 = time.perf_counter()
            generator = corruption_generator(0, name, device)
            for severity in SEVERITIES:
                for start in range(0, len(x), batch_size):
                    xb = x[start : start + batch_size].to(device, non_blocking=True)
                    model(corrupt(xb, name, severity, generator=generator)).argmax(1)
            synchronize(device)
            per_corruption[name] = time.perf_counter() - t0
    return time.perf_counter() - started, per_corruption


def one_at_a_time(x: torch.Tensor, model: nn.Module, device: torch.device) -> float:
    synchronize(device)
    started = time.perf_counter()
    with torch.no_grad():
        for name in CORRUPTIONS:
            generator = corruption_generator(0, name, device)
            for severity in SEVERITIES:
                for image in x:
                    corrupted = corrupt(image.to(device), name, severity, generator=generator)
                    model(corrupted.unsqueeze(0)).argmax(1)
    synchronize(device)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=128, help="images (default 128)")
    parser.add_argument("--size", type=int, default=32, help="image side (default 32)")
    parser.add_argument("--channels", type=int, default=3, choices=(1, 3))
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    x = images(args.n, args.size, args.channels)
    model = small_cnn(args.channels).to(device)
    pairs = len(CORRUPTIONS) * len(SEVERITIES)
    corrupt(x[:2].to(device), "jpeg_compression", 1)  # load libjpeg / nvJPEG once, outside the timing
    fast, per_corruption = batched(x, model, args.batch_size, device)
    slow = one_at_a_time(x, model, device)
    work = args.n * pairs
    print(
        f"{args.n} images {args.channels}x{args.size}x{args.size}, {pairs} corruption/severity pairs, "
        f"device {device}, {args.threads} CPU thread(s)"
    )
    print(f"batched:        {work / fast:10.0f} images/s ({fast:.2f} s)")
    print(f"one at a time:  {work / slow:10.0f} images/s ({slow:.2f} s)")
    print(f"ratio:          {slow / fast:10.1f}x")
    slowest = sorted(per_corruption.items(), key=lambda item: -item[1])[:5]
    print("slowest batched: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in slowest))


if __name__ == "__main__":
    main()
