"""How the report compares and writes numbers beyond :mod:`nasbench.formatting`: radii read
from JSON (where an unbounded one is ``"inf"``) and counts of parameters and MACs."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["MISSING", "count_text", "finite_or_inf", "same_eps"]

# What stands for a number not measured: an en dash, as typeset tables have it (the
# console's plain "-" keeps its columns aligned).
MISSING = "–"


def count_text(value: int | None) -> str:
    """``21386`` -> ``"21.4k"``, ``2520000`` -> ``"2.52M"``; an en dash where unknown."""
    if value is None:
        return MISSING
    for limit, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= limit:
            return f"{value / limit:.3g}{unit}"
    return str(value)


def same_eps(a: float, b: float) -> bool:
    """Two radii that are one: JSON round trips and sums differ in the last digits."""
    return abs(float(a) - float(b)) <= 1e-9


def finite_or_inf(value: Any) -> float:
    """A radius as a float, ``math.inf`` for an unbounded attack's ``"inf"``."""
    return math.inf if value in ("inf", float("inf")) else float(value)
