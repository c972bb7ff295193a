"""Where an evaluation runs: the device, batches moved onto it, and timing that waits for it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import torch
import torch.nn as nn

__all__ = ["predict", "resolve_device", "timed", "to_device"]

T = TypeVar("T")


def resolve_device(model: nn.Module, device: str | torch.device | None) -> torch.device:
    """``device`` when given; else CUDA when there is one; else the model's own device."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``t`` on ``device``; image batches in channels_last on CUDA (faster convolutions)."""
    t = t.to(device, non_blocking=True)
    if device.type == "cuda" and t.dim() == 4:
        t = t.contiguous(memory_format=torch.channels_last)
    return t


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
    """The predicted class of every image in ``x`` (N, ...), batch by batch, on the CPU."""
    preds = [model(to_device(x[i : i + batch_size], device)).argmax(1).cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long)


def timed(device: torch.device, work: Callable[[], T]) -> tuple[T, float]:
    """``work()`` and its wall time in seconds; on CUDA the queued kernels are waited for."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    out = work()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return out, time.perf_counter() - t0
