"""The NAS-Bench-201 cell spec (Dong & Yang, "NAS-Bench-201: Extending the Scope of
Reproducible Neural Architecture Search", ICLR 2020).

A cell is a DAG of 4 nodes; each of its 6 edges ``j -> i`` (``j < i``) carries one of
5 operations, so there are ``5**6 = 15,625`` cells. Node 0 is the cell's input, node
``i`` sums its incoming edges, node 3 is the output. The benchmark uses ``N = 5`` cells
per stage and ``C = 16`` channels; ``cells_per_stage=1`` gives the small skeleton that
trains in about a second on 8x8 digits.

Arch strings are the benchmark's own, e.g.
``|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|``
(one ``|op~source|`` group per node, nodes separated by ``+``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from search_spaces import fields
from search_spaces.errors import InvalidArchitecture
from search_spaces.fields import MAX_FILTERS, MAX_LAYERS

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

    kind: ClassVar[str] = "cell"

    def __post_init__(self) -> None:
        ops = tuple(self.ops)
        object.__setattr__(self, "ops", ops)
        if len(ops) != len(EDGES):
            raise InvalidArchitecture(f"a NAS-Bench-201 cell has {len(EDGES)} edges, got {len(ops)} operations")
        for op in ops:
            if op not in OPS:
                raise InvalidArchitecture(f"unknown cell operation {op!r}; expected one of {', '.join(OPS)}")
        fields.integer(self.cells_per_stage, "cells_per_stage", 1, MAX_LAYERS)
        fields.integer(self.channels, "channels", 1, MAX_FILTERS)

    # ---- the benchmark's string form

    def to_string(self) -> str:
        """The arch string, e.g. ``|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...|``."""
        nodes = []
        for node in range(1, NUM_NODES):
            groups = [f"{op}~{src}" for (to, src), op in zip(EDGES, self.ops, strict=True) if to == node]
            nodes.append("|" + "|".join(groups) + "|")
        return "+".join(nodes)

    @classmethod
    def from_string(cls, text: str, cells_per_stage: int = 5, channels: int = 16) -> CellArch:
        """Parse an arch string; the inverse of :meth:`to_string`."""
        nodes = text.strip().split("+")
        if len(nodes) != NUM_NODES - 1:
            raise InvalidArchitecture(
                f"a NAS-Bench-201 arch string has {NUM_NODES - 1} '+'-separated nodes, got {len(nodes)} in {text!r}"
            )
        ops: dict[tuple[int, int], str] = {}
        for node, part in enumerate(nodes, start=1):
            ops.update(_parse_node(text, node, part, ops))
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
            for (to, src), op in zip(EDGES, self.ops, strict=True):
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


def _parse_node(text: str, node: int, part: str, seen: dict[tuple[int, int], str]) -> dict[tuple[int, int], str]:
    """The ``(node, source) -> op`` edges of one ``|op~k|...|`` group of an arch string."""
    if not (part.startswith("|") and part.endswith("|")):
        raise InvalidArchitecture(f"node {node} of {text!r} must look like '|op~0|op~1|'")
    groups = part[1:-1].split("|")
    if len(groups) != node:
        raise InvalidArchitecture(f"node {node} of {text!r} needs {node} inputs, got {len(groups)}")
    edges: dict[tuple[int, int], str] = {}
    for group in groups:
        op, sep, src = group.partition("~")
        if not sep or not src.isdigit() or int(src) >= node:
            raise InvalidArchitecture(f"bad edge {group!r} in node {node} of {text!r}; expected 'op~k' with k < {node}")
        if (node, int(src)) in seen or (node, int(src)) in edges:
            raise InvalidArchitecture(f"node {node} of {text!r} lists input {src} twice")
        edges[(node, int(src))] = op
    return edges


def all_cells(cells_per_stage: int = 5, channels: int = 16) -> Iterator[CellArch]:
    """All 15,625 cells, in the benchmark's enumeration order (last edge fastest)."""
    for ops in itertools.product(OPS, repeat=len(EDGES)):
        yield CellArch(ops, cells_per_stage=cells_per_stage, channels=channels)


def validate_cell(arch: CellArch, input_shape: Any) -> None:
    """Cells keep the map size and every reduction maps ``n`` to ``ceil(n / 2)``, so any
    positive input size runs; only the fields need checking."""
    if not isinstance(arch, CellArch):
        raise InvalidArchitecture(f"not a cell architecture: {type(arch).__name__}")
    fields.input_shape(input_shape)
    arch.__post_init__()


# ------------------------------------------------------------- the kind's parts

_CELL_FIELDS = {"kind", "version", "cell", "cells_per_stage", "channels"}


def cell_to_dict(arch: CellArch) -> dict[str, Any]:
    """The fields of ``arch`` as plain JSON values (the registry adds kind and version)."""
    return {"cell": arch.to_string(), "cells_per_stage": arch.cells_per_stage, "channels": arch.channels}


def cell_from_dict(data: dict[str, Any]) -> CellArch:
    """Inverse of :func:`cell_to_dict`; raises :class:`InvalidArchitecture` on malformed input."""
    data = fields.check_keys(data, _CELL_FIELDS, "cell architecture")
    if not isinstance(data.get("cell"), str):
        raise InvalidArchitecture(
            "cell architecture needs 'cell': a NAS-Bench-201 string "
            "such as '|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...|'"
        )
    return CellArch.from_string(
        data["cell"],
        cells_per_stage=data.get("cells_per_stage", 5),  # CellArch checks them
        channels=data.get("channels", 16),
    )


def cell_canonical_form(arch: CellArch) -> dict[str, Any]:
    """NAS-Bench-201's ``to_unique_str(consider_zero=True)`` plus the skeleton size."""
    return {"cell": arch.unique_str(), "cells_per_stage": arch.cells_per_stage, "channels": arch.channels}


def cell_display_name(arch: CellArch) -> str:
    """``cell`` and the arch string."""
    return f"cell {arch.to_string()}"
