"""NAS-Bench-201's network around one cell (``TinyNetwork`` in the reference code).

The cell sits in a fixed skeleton: a 3x3 stem, three stages of ``N`` cells (``C``,
``2C``, ``4C`` channels) joined by ResNet basic blocks of stride 2, then BN-ReLU,
global average pooling and a linear classifier.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from search_spaces.cell.spec import EDGES, NUM_NODES, CellArch, validate_cell
from search_spaces.errors import InvalidArchitecture
from search_spaces.fields import Shape


class ReLUConvBN(nn.Sequential):
    """NAS-Bench-201's ``nor_conv``: ReLU, conv without bias, BatchNorm."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_channels),
        )


class Zero(nn.Module):
    """The ``none`` operation: an edge that carries nothing."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


_OPERATIONS: dict[str, Callable[[int], nn.Module]] = {
    "none": lambda channels: Zero(),
    "skip_connect": lambda channels: nn.Identity(),
    "nor_conv_1x1": lambda channels: ReLUConvBN(channels, channels, 1),
    "nor_conv_3x3": lambda channels: ReLUConvBN(channels, channels, 3),
    "avg_pool_3x3": lambda channels: nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
}


def make_op(name: str, channels: int) -> nn.Module:
    """A fresh module of the cell operation ``name`` on ``channels`` channels."""
    try:
        return _OPERATIONS[name](channels)
    except KeyError:
        raise InvalidArchitecture(f"unknown cell operation {name!r}") from None


class Cell(nn.Module):
    """One cell: node ``i`` is the sum of ``op(node j)`` over its incoming edges."""

    def __init__(self, ops: tuple[str, ...], channels: int) -> None:
        super().__init__()
        self.edges = EDGES
        self.ops = nn.ModuleList(make_op(op, channels) for op in ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for node in range(1, NUM_NODES):
            inputs = [op(nodes[src]) for (to, src), op in zip(self.edges, self.ops, strict=True) if to == node]
            total = inputs[0]
            for term in inputs[1:]:
                total = total + term
            nodes.append(total)
        return nodes[-1]


class ReductionBlock(nn.Module):
    """The skeleton's ResNet basic block between stages: stride 2, channels doubled.

    The shortcut is 2x2 average pooling then a 1x1 conv, as in NAS-Bench-201;
    ``ceil_mode`` makes it agree with the strided conv (``ceil(n / 2)``) on odd sizes
    such as MNIST's 7x7, where the benchmark (32x32 only) never went.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(in_channels, out_channels, 3, stride=2)
        self.conv_b = ReLUConvBN(out_channels, out_channels, 3)
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(2, stride=2, ceil_mode=True),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.shortcut(x) + self.conv_b(self.conv_a(x))
        return out


class CellNet(nn.Module):
    """NAS-Bench-201's skeleton around one cell (``TinyNetwork`` in the reference code)."""

    def __init__(self, arch: CellArch, input_shape: Shape, num_classes: int) -> None:
        super().__init__()
        self.arch = arch
        c = arch.channels
        self.stem = nn.Sequential(nn.Conv2d(input_shape[0], c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        blocks: list[nn.Module] = []
        for stage, width in enumerate((c, 2 * c, 4 * c)):
            if stage:
                blocks.append(ReductionBlock(width // 2, width))
            blocks += [Cell(arch.ops, width) for _ in range(arch.cells_per_stage)]
        self.cells = nn.Sequential(*blocks)
        self.lastact = nn.Sequential(nn.BatchNorm2d(4 * c), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4 * c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lastact(self.cells(self.stem(x)))
        out: torch.Tensor = self.classifier(torch.flatten(self.pool(x), 1))
        return out


def build_cell(arch: CellArch, input_shape: Shape, num_classes: int) -> nn.Module:
    """:class:`CellNet` of ``arch``, validated first."""
    validate_cell(arch, input_shape)
    return CellNet(arch, input_shape, num_classes)
