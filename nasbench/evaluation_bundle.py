"""Writing one model's evaluation bundle: its adversarial examples and their grid, and the
JSON files of an evaluation (written whole or not at all)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasbench.evaluation_record import EVALUATION_FILE, BundleFiles, GridShows

if TYPE_CHECKING:  # attacks loads torch
    from attacks import RobustnessReport

__all__ = ["BUNDLE_FILES", "GRID_EXAMPLES", "write_bundle_files", "write_json"]

EXAMPLES_FILE = "examples.safetensors"
GRID_FILE = "grid.png"
BUNDLE_FILES = (EVALUATION_FILE, EXAMPLES_FILE, GRID_FILE)
GRID_EXAMPLES = 8  # columns of an evaluation's example grid


def write_json(path: Path, data: Any) -> None:
    """``data`` as indented JSON, through a temporary sibling: a crash never leaves half a file."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(data, indent=2, sort_keys=False, default=str))
    os.replace(temporary, path)


def write_bundle_files(directory: Path, report: RobustnessReport, class_names: list[str] | None) -> BundleFiles:
    """Empty ``directory`` of an earlier bundle, then write the report's adversarial
    examples and their grid into it (none when no attack broke a point)."""
    from attacks import save_example_grid

    directory.mkdir(parents=True, exist_ok=True)
    for name in BUNDLE_FILES:  # a re-run replaces the whole bundle, never mixes two runs
        (directory / name).unlink(missing_ok=True)
    if not report.examples:
        return BundleFiles()
    report.save_examples(directory / EXAMPLES_FILE)
    # The engine keeps each example at the smallest sweep eps that broke it; the set of
    # the largest eps of the first norm holds them all.
    shown = max((e for e in report.examples if e.norm == report.examples[0].norm), key=lambda e: e.eps)
    save_example_grid(
        {
            "clean": shown.clean,
            "adversarial": shown.adversarial,
            "labels": shown.labels,
            "clean_pred": shown.clean_pred,
            "adv_pred": shown.adv_pred,
            "title": f"{shown.norm} eps <= {shown.eps:.4g} (each at the smallest sweep eps that broke it)",
        },
        directory / GRID_FILE,
        class_names=class_names,
        max_examples=GRID_EXAMPLES,
    )
    # what the grid's columns are, for the report's caption
    shows = GridShows(norm=shown.norm, eps=shown.eps, attacks=list(shown.attacks)[:GRID_EXAMPLES])
    return BundleFiles(examples=EXAMPLES_FILE, grid=GRID_FILE, grid_shows=shows)
