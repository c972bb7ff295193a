"""NAS-Bench-201's cell space (Dong & Yang, "NAS-Bench-201: Extending the Scope of
Reproducible Neural Architecture Search", ICLR 2020).

A cell is a DAG of 4 nodes; each of its 6 edges ``j -> i`` (``j < i``) carries one of
5 operations, so there are ``5**6 = 15,625`` cells. Node 0 is the cell's input, node
``i`` sums its incoming edges, node 3 is the output. The cell sits in a fixed skeleton:
a 3x3 stem, three stages of ``N`` cells (``C``, ``2C``, ``4C`` channels) joined by
ResNet basic blocks of stride 2, then BN-ReLU, global average pooling and a linear
classifier. The benchmark uses ``N = 5, C = 16``; ``cells_per_stage=1`` gives the small
skeleton that trains in about a second on 8x8 digits.

Arch strings are the benchmark's own, e.g.
``|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|``
(one ``|op~source|`` group per node, nodes separated by ``+``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from search_spaces.arch import MAX_FILTERS, MAX_LAYERS, InvalidArchitecture, _int, check_input_shape

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
"""The five operations, in NAS-Bench-201's order."""

EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
"""The six edges ``(to, from)`` in the order the arch string lists them."""

NUM_NODES = 4


@dataclass(frozen=True)
class CellArch:
    """One NAS-Bench-201 cell (``ops`` on :data:`EDGES`, in order) and its skeleton size."""

    ops: tuple[str, ...]
    cells_per_stage: int = 5
    channels: int = 16

    kind = "cell"

    def __post_init__(self) -> None:
        ops = tuple(self.ops)
        object.__setattr__(self, "ops", ops)
        if len(ops) != len(EDGES):
            raise InvalidArchitecture(f"a NAS-Bench-201 cell has {len(EDGES)} edges, got {len(ops)} operations")
        for op in ops:
            if op not in OPS:
                raise InvalidArchitecture(f"unknown cell operation {op!r}; expected one of {', '.join(OPS)}")
        _int(self.cells_per_stage, "cells_per_stage", 1, MAX_LAYERS)
        _int(self.channels, "channels", 1, MAX_FILTERS)

    # ---- the benchmark's string form

    def to_string(self) -> str:
        nodes = []
        for node in range(1, NUM_NODES):
            groups = [f"{op}~{src}" for (to, src), op in zip(EDGES, self.ops) if to == node]
            nodes.append("|" + "|".join(groups) + "|")
        return "+".join(nodes)

    @classmethod
    def from_string(cls, text: str, cells_per_stage: int = 5, channels: int = 16) -> CellArch:
        """Parse an arch string; the inverse of :meth:`to_string`."""
        nodes = text.strip().split("+")
        if len(nodes) != NUM_NODES - 1:
            raise InvalidArchitecture(f"a NAS-Bench-201 arch string has {NUM_NODES - 1} '+'-separated "
                                      f"nodes, got {len(nodes)} in {text!r}")
        ops = {}
        for node, part in enumerate(nodes, start=1):
            if not (part.startswith("|") and part.endswith("|")):
                raise InvalidArchitecture(f"node {node} of {text!r} must look like '|op~0|op~1|'")
            groups = [g for g in part[1:-1].split("|")]
            if len(groups) != node:
                raise InvalidArchitecture(f"node {node} of {text!r} needs {node} inputs, got {len(groups)}")
            for group in groups:
                op, sep, src = group.partition("~")
                if not sep or not src.isdigit() or int(src) >= node:
                    raise InvalidArchitecture(f"bad edge {group!r} in node {node} of {text!r}; "
                                              f"expected 'op~k' with k < {node}")
                if (node, int(src)) in ops:
                    raise InvalidArchitecture(f"node {node} of {text!r} lists input {src} twice")
                ops[(node, int(src))] = op
        return cls(tuple(ops[edge] for edge in EDGES), cells_per_stage=cells_per_stage, channels=channels)

    def __str__(self) -> str:
        return self.to_string()

    # ---- canonical form

    def unique_str(self) -> str:
        """NAS-Bench-201's isomorphism-invariant form (``to_unique_str(consider_zero=True)``).

        Each node is written as the sorted ``+``-join of its inputs, where an input is
        ``#`` (zero: a ``none`` edge, or a source that is itself zero), the source's
        own form (``skip_connect``), or ``(source)@op``. Two cells that compute the same
        function up to these rules get the same string: 6,466 classes among 15,625.
        """
        forms = {0: "0"}
        for node in range(1, NUM_NODES):
            terms = []
            for (to, src), op in zip(EDGES, self.ops):
                if to != node:
                    continue
                if op == "none" or forms[src] == "#":
                    terms.append("#")
                elif op == "skip_connect":
                    terms.append(forms[src])
                else:
                    terms.append(f"({forms[src]})@{op}")
            forms[node] = "+".join(sorted(terms))
        return forms[NUM_NODES - 1]


def all_cells(cells_per_stage: int = 5, channels: int = 16) -> Iterator[CellArch]:
    """All 15,625 cells, in the benchmark's enumeration order (last edge fastest)."""
    for ops in itertools.product(OPS, repeat=len(EDGES)):
        yield CellArch(ops, cells_per_stage=cells_per_stage, channels=channels)


def validate_cell(arch: CellArch, input_shape) -> None:
    """Cells keep the map size and every reduction maps ``n`` to ``ceil(n / 2)``, so any
    positive input size runs; only the fields need checking."""
    if not isinstance(arch, CellArch):
        raise InvalidArchitecture(f"not a cell architecture: {type(arch).__name__}")
    check_input_shape(input_shape)
    arch.__post_init__()


# ------------------------------------------------------------------ modules


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


def make_op(name: str, channels: int) -> nn.Module:
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise InvalidArchitecture(f"unknown cell operation {name!r}")


class Cell(nn.Module):
    """One cell: node ``i`` is the sum of ``op(node j)`` over its incoming edges."""

    def __init__(self, ops: tuple[str, ...], channels: int) -> None:
        super().__init__()
        self.edges = EDGES
        self.ops = nn.ModuleList(make_op(op, channels) for op in ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for node in range(1, NUM_NODES):
            nodes.append(sum(op(nodes[src]) for (to, src), op in zip(self.edges, self.ops) if to == node))
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
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class CellNet(nn.Module):
    """NAS-Bench-201's skeleton around one cell (``TinyNetwork`` in the reference code)."""

    def __init__(self, arch: CellArch, input_shape: tuple[int, int, int], num_classes: int) -> None:
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
        return self.classifier(torch.flatten(self.pool(x), 1))
