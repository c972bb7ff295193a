"""How numbers read, the same in the console, the report and MLflow: percentages and radii."""

from __future__ import annotations

__all__ = ["eps_text", "pct"]


def pct(value: float | None, missing: str = "-") -> str:
    """A rate in [0, 1] as a percentage with one decimal (``0.934`` -> ``"93.4%"``).

    ``missing`` stands for a rate that was not measured: ``"-"`` in the console, where
    plain ASCII keeps columns aligned, an en dash in the report's typeset tables.
    """
    return missing if value is None else f"{100 * value:.1f}%"


def eps_text(value: float | str) -> str:
    """A radius as people write it: ``0.1``, ``8/255`` (not ``0.0313725``), ``unbounded``."""
    if value in ("inf", float("inf")):
        return "unbounded"
    value = float(value)
    short = f"{value:g}"
    numerator = value * 255
    if len(short) > 5 and abs(numerator - round(numerator)) < 1e-6:
        return f"{round(numerator)}/255"
    return short
