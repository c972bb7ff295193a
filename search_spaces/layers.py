"""Small building blocks shared by the macro builder, the cell space and classic models."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": lambda: nn.ReLU(inplace=True),
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "elu": lambda: nn.ELU(inplace=True),
    "leaky_relu": lambda: nn.LeakyReLU(0.01, inplace=True),
    "silu": lambda: nn.SiLU(inplace=True),
    "identity": nn.Identity,
}


def activation(name: str) -> nn.Module:
    """A fresh activation module by name (see ``search_spaces.arch.ACTIVATIONS``)."""
    try:
        return _ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; expected one of {', '.join(_ACTIVATIONS)}") from None


class Normalize(nn.Module):
    """Per-channel ``(x - mean) / std``, so that a model takes images in [0, 1].

    Kept as the first module of a model (rather than in the data pipeline) so that
    attacks perturb pixels in [0, 1] and their epsilons mean what they say.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        if len(mean) != len(std):
            raise ValueError(f"mean has {len(mean)} channels but std has {len(std)}")
        if any(s <= 0 for s in std):
            raise ValueError(f"std must be positive, got {tuple(std)}")
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()}"


class Resize(nn.Module):
    """Adaptive average pooling to a fixed ``(height, width)``: parameter-free resizing
    of a skip input onto the feature map it joins."""

    def __init__(self, size: tuple[int, int]) -> None:
        super().__init__()
        self.size = (int(size[0]), int(size[1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(x, self.size)

    def extra_repr(self) -> str:
        return f"size={self.size}"


class ZeroPadShortcut(nn.Module):
    """He et al. 2016, option A: subsample by ``stride`` and zero-pad the extra channels.

    Parameter-free, which is what keeps the CIFAR ResNet-20 at 0.27M parameters.
    """

    def __init__(self, stride: tuple[int, int], extra_channels: int) -> None:
        super().__init__()
        self.stride = tuple(stride)
        self.extra_channels = extra_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != (1, 1):
            # a 1x1 average pool is x[:, :, ::sh, ::sw], written as an op profilers understand
            x = F.avg_pool2d(x, kernel_size=1, stride=self.stride)
        if self.extra_channels:
            x = F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))
        return x


class ConvBNAct(nn.Sequential):
    """Conv2d without bias, BatchNorm2d, activation: the conv unit of GoogLeNet and friends."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        act: str = "relu",
        bn_eps: float = 1e-5,
    ) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(out_channels, eps=bn_eps),
            activation(act),
        )
