"""Training throughput: nasbench's in-memory trainer against a textbook DataLoader loop.

Both train the same model (LeNet-5, the small-input variant) on the same data
(`digits` by default) for the same number of epochs with the same batch size and
optimiser; the textbook loop is the one every tutorial shows: a Dataset that turns each
uint8 image into a tensor with per-sample torchvision transforms (ToTensor +
Normalize), a shuffling DataLoader, and a per-step `.item()` for logging.

    .venv/bin/python benchmarks/train_throughput.py [--epochs 5] [--batch-size 64] [--threads 1] [--device cuda]

Prints images per second for each and the ratio, measured side by side in one run. On
CUDA the textbook loop copies each batch to the GPU (pinned, non-blocking) and the
trainer runs with its CUDA defaults (bfloat16 autocast, channels_last).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import transforms

from nasbench.config import TrainConfig
from nasbench.data import load_dataset
from nasbench.models import build_from_spec, wrap_normalized
from nasbench.train import select_device, train_model


class TextbookDataset(torch.utils.data.Dataset):
    """uint8 images decoded to tensors one at a time, as torchvision's datasets do."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return self.transform(Image.fromarray(self.images[index], mode="L")), int(self.labels[index])


def textbook_training(model, dataset, epochs: int, batch_size: int, device: torch.device) -> float:
    images = (dataset.train.x[:, 0].numpy() * 255).round().astype(np.uint8)
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(dataset.mean, dataset.std)])
    loader = DataLoader(
        TextbookDataset(images, dataset.train.y.numpy(), transform),
        batch_size=batch_size,
        shuffle=True,
        pin_memory=device.type == "cuda",
    )
    model = model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=5e-4)
    started = time.perf_counter()
    for _ in range(epochs):
        model.train()
        running = 0.0
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            running += loss.item()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = select_device(args.device)

    dataset = load_dataset("digits")
    spec = {"kind": "classic", "name": "lenet5"}
    images = args.epochs * len(dataset.train)
    ours, theirs = [], []
    for repeat in range(args.repeats):  # interleaved, so machine noise hits both alike
        torch.manual_seed(repeat)
        model = build_from_spec(spec, dataset.input_shape, dataset.num_classes)
        theirs.append(textbook_training(model, dataset, args.epochs, args.batch_size, device))
        torch.manual_seed(repeat)
        model = wrap_normalized(build_from_spec(spec, dataset.input_shape, dataset.num_classes), dataset)
        cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, device=args.device)
        result = train_model(model, dataset, cfg, evaluate_test=False, seed=repeat)
        # the trainer also evaluates validation every epoch; the textbook loop does not: count it against us
        ours.append(result.train_seconds)
    best_ours, best_theirs = min(ours), min(theirs)
    print(f"textbook DataLoader loop: {images / best_theirs:10.0f} images/s  ({best_theirs:.2f} s)")
    print(f"nasbench trainer:         {images / best_ours:10.0f} images/s  ({best_ours:.2f} s, incl. validation)")
    print(
        f"speed-up: {best_theirs / best_ours:.1f}x  (LeNet-5, digits, {args.epochs} epochs, "
        f"batch {args.batch_size}, {device}, {args.threads} thread(s), best of {args.repeats})"
    )


if __name__ == "__main__":
    main()
