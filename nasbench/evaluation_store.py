"""An evaluation's robust accuracies in the benchmark store: the row of a model that came
out of a search gets them beside its training metrics."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # attacks loads torch
    from attacks import CorruptionReport, RobustnessReport
    from nasbench.model_loading import ModelInfo

__all__ = ["record_in_store", "robust_rows"]


def robust_rows(report: RobustnessReport) -> list[dict[str, Any]]:
    """``{"attack", "norm", "eps", "accuracy"}`` per bounded attack and eps, plus the worst case."""
    rows = [
        {"attack": r.attack, "norm": r.norm, "eps": r.eps, "accuracy": r.robust_accuracy}
        for r in report.results
        if r.kind not in ("noise", "min-norm") and math.isfinite(r.eps)
    ]
    rows += [
        {"attack": "worst", "norm": w.norm, "eps": w.eps, "accuracy": w.robust_accuracy} for w in report.worst_case
    ]
    return rows


def record_in_store(
    store_path: Path, info: ModelInfo, report: RobustnessReport, corruption: CorruptionReport | None = None
) -> str:
    """Write robust accuracies (and accuracies under common corruptions) to the benchmark
    row of a model from a search; say what happened."""
    key = info.store_key
    if key is None:
        return "not a search result (no arch_hash/dataset/budget/seed in its meta)"
    if not store_path.is_file():
        return f"no benchmark store at {store_path}"
    from nasbench.store import Benchmark, BenchmarkError

    try:
        with Benchmark(store_path, create=False) as bench:
            bench.record_robustness(*key, robust_rows(report))
            if corruption is not None:
                bench.record_corruption(*key, corruption.accuracy)
    except BenchmarkError as error:
        return f"not recorded: {error}"
    return "recorded"
