"""What the report shows, in which order, and in which colours."""

from __future__ import annotations

__all__ = ["NORM_SYMBOLS", "PALETTE", "SECTIONS", "STORE_COLOUR", "TEMPLATE"]

# Section ids, in the order they appear; the tests check every one is present.
SECTIONS = {
    "threat-model": "Threat model",
    "models": "Models",
    "curves": "Robust accuracy vs eps",
    "pareto": "Pareto front: clean accuracy, robust accuracy, size",
    "transfer": "Transferability",
    "corruptions": "Common corruptions",
    "examples": "Adversarial examples",
    "checks": "Sanity checks",
    "details": "Per-attack details",
    "reproducibility": "Reproducibility",
}
TEMPLATE = "report.html.j2"
# One colour per model, the same in every plot and table (matplotlib's tab10, then tab20).
PALETTE = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
]
STORE_COLOUR = "#b0b0b0"
NORM_SYMBOLS = {"Linf": "L∞"}
