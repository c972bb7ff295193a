"""Inference latency of a module: a few untimed warm-up passes, then timed ones."""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from search_spaces import fields


@dataclass
class Latency:
    """Inference time of one batch (``torch.inference_mode``) on ``device``."""

    device: str
    batch_size: int
    repeats: int
    mean_ms: float
    std_ms: float
    min_ms: float

    @property
    def per_image_ms(self) -> float:
        """Mean time per image, in milliseconds."""
        return self.mean_ms / self.batch_size

    @property
    def images_per_s(self) -> float:
        """Throughput at this batch size."""
        return 1000.0 * self.batch_size / self.mean_ms

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values, the derived figures included."""
        return {**asdict(self), "per_image_ms": self.per_image_ms, "images_per_s": self.images_per_s}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"``: CUDA when available, else the CPU; anything else as torch reads it."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _no_sync() -> None:
    return None


def measure_latency(
    model: nn.Module,
    input_shape: Any,
    batch_size: int = 32,
    device: str | torch.device = "auto",
    warmup: int = 3,
    repeats: int = 10,
) -> Latency:
    """Time ``repeats`` forward passes of a random batch, after ``warmup`` untimed ones.

    Moves ``model`` to ``device`` (``"auto"``: CUDA when available) and leaves it in
    eval mode; CUDA work is synchronised before each clock read.
    """
    if batch_size < 1 or repeats < 1:
        raise ValueError("batch_size and repeats must be >= 1")
    where = resolve_device(device)
    model = model.to(where).eval()
    x = torch.rand(batch_size, *fields.input_shape(input_shape), device=where)
    sync = torch.cuda.synchronize if where.type == "cuda" else _no_sync
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        sync()
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            sync()
            times.append((time.perf_counter() - start) * 1000.0)
    return Latency(
        device=str(where),
        batch_size=batch_size,
        repeats=repeats,
        mean_ms=statistics.fmean(times),
        std_ms=statistics.stdev(times) if len(times) > 1 else 0.0,
        min_ms=min(times),
    )
