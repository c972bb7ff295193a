"""NAS-Bench-201's search space: one operation per edge of the cell, sampled define-by-run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from search_spaces import fields
from search_spaces.cell.spec import EDGES, OPS, CellArch, validate_cell
from search_spaces.fields import Shape
from search_spaces.trial import Trial


@dataclass
class CellSpace:
    """NAS-Bench-201's space: one operation per edge of the cell, 5**6 = 15,625 cells.

    The choice of edge ``j -> i`` is the trial parameter ``edge_{j}_{i}``; ``ops``
    narrows the operations offered on every edge.
    """

    input_shape: Shape
    cells_per_stage: int = 5
    channels: int = 16
    ops: tuple[str, ...] = OPS

    name: ClassVar[str] = "cell"

    def __post_init__(self) -> None:
        self.input_shape = fields.input_shape(self.input_shape)
        self.ops = fields.choices("ops", self.ops, OPS)
        validate_cell(CellArch(("skip_connect",) * len(EDGES), self.cells_per_stage, self.channels), self.input_shape)

    def sample(self, trial: Trial) -> CellArch:
        """Ask ``trial`` for one operation per edge and return the cell."""
        ops = tuple(trial.suggest_categorical(f"edge_{src}_{to}", self.ops) for to, src in EDGES)
        return CellArch(ops, cells_per_stage=self.cells_per_stage, channels=self.channels)
