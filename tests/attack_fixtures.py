"""Helpers of the attack tests: digits as tensors and a small CNN trained in seconds.

The data and the trained model are built once per test session and cached; the
fixtures over them (``held_out_digits``, ``trained_cnn``, ``one_thread``) are in
``conftest.py``.
"""

from __future__ import annotations

import contextlib
import functools

import torch
import torch.nn as nn
import torch.nn.functional as F


class SmallCNN(nn.Module):
    """Two 3x3 convolutions and a linear head for 8x8 greyscale digits; normalises inside."""

    def __init__(self, n_classes: int = 10, width: int = 16):
        super().__init__()
        self.register_buffer("mean", torch.tensor(0.3))
        self.register_buffer("std", torch.tensor(0.4))
        self.conv1 = nn.Conv2d(1, width, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.head = nn.Linear(2 * width * 4 * 4, n_classes)

    def forward(self, x):
        x = (x - self.mean) / self.std
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.head(x.flatten(1))


@contextlib.contextmanager
def single_thread():
    """Run torch on one thread: on a small shared machine, tiny models run several times
    faster than with threads fighting over the cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@functools.cache
def load_digits_tensors():
    """scikit-learn's UCI digits as ((x_train, y_train), (x_test, y_test)), x in [0, 1], shape (N, 1, 8, 8)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(data.target, dtype=torch.long)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = x[perm], y[perm]
    return (x[:1400], y[:1400]), (x[1400:], y[1400:])


def train_cnn(
    epochs: int = 6, adversarial: str | None = None, eps: float = 0.0, seed: int = 0, steps: int | None = None
) -> SmallCNN:
    """Train SmallCNN on digits; with ``adversarial`` every batch is replaced by its adversarial version."""
    (x, y), _ = load_digits_tensors()
    with single_thread():
        return _train(x, y, epochs, adversarial, eps, seed, steps)


def _train(x, y, epochs, adversarial, eps, seed, steps) -> SmallCNN:
    from attacks import adversarial_batch

    torch.manual_seed(seed)
    model = SmallCNN()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(x)).split(64):
            xb, yb = x[idx], y[idx]
            if adversarial:
                xb = adversarial_batch(model, xb, yb, adversarial, eps=eps, steps=steps)
            loss = F.cross_entropy(model(xb), yb)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return model.eval()


@functools.cache
def cached_cnn(seed: int = 0) -> SmallCNN:
    return train_cnn(seed=seed)
