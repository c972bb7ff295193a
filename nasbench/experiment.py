"""An experiment's folder and the names of what evaluations and searches write in it::

experiments/<name>/benchmark.db                  the search's benchmark store
experiments/<name>/evaluations/<label>/          one evaluation bundle per model
experiments/<name>/evaluations/transfer.json     the transferability matrix
"""

from __future__ import annotations

import re
from pathlib import Path

from nasbench.errors import UserError

__all__ = ["BENCHMARK_FILE", "EVALUATIONS_DIR", "TRANSFER_FILE", "experiment_path"]

EVALUATIONS_DIR = "evaluations"
TRANSFER_FILE = "transfer.json"
BENCHMARK_FILE = "benchmark.db"


def experiment_path(name: str, root: str | Path = "experiments") -> Path:
    """``<root>/<name>``; the name must be a plain folder name."""
    if not name or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise UserError(f"experiment name {name!r} must be a plain folder name (letters, digits, '.', '_', '-')")
    return Path(root) / name
