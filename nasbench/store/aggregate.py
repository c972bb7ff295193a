"""Combining the seeds of one (architecture, dataset, budget): metrics, per-epoch curves
and robust accuracies reduced by mean, median, min or max, as NAS-Bench-201 reports them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nasbench.store.rows import is_number

REDUCERS = ("mean", "median", "min", "max")
# Metrics that differ between seeds; params and MACs depend on the architecture alone.
_AGGREGATED = ("train_acc", "val_acc", "test_acc", "latency_ms", "train_seconds")


def reduce_values(values: list[float], how: str) -> float | None:
    """``values`` (None left out) reduced by ``how``, one of :data:`REDUCERS`; None when empty."""
    import statistics

    reducers: dict[str, Callable[[list[float]], float]] = {
        "mean": statistics.fmean,
        "median": statistics.median,
        "min": min,
        "max": max,
    }
    values = [v for v in values if v is not None]
    return reducers[how](values) if values else None


def reduce_std(values: list[float]) -> float | None:
    """Population standard deviation over seeds, as NAS-Bench-201 reports it."""
    import statistics

    return statistics.pstdev(values) if len(values) > 1 else (0.0 if values else None)


def summarise(rows: list[dict], how: str) -> dict:
    """One summary of the rows of one (architecture, dataset, budget): finished seeds
    reduced by ``how``, with ``n_seeds``, ``seeds`` and ``n_unfinished``."""
    finished = [row for row in rows if row["status"] == "ok"]
    first = rows[0]
    summary: dict[str, Any] = {
        "arch_hash": first["arch_hash"],
        "dataset": first["dataset"],
        "budget": first["budget"],
        "space": first["space"],
        "arch": first["arch"],
        "reduce": how,
        "n_seeds": len(finished),
        "seeds": [row["seed"] for row in finished],
        "n_unfinished": len(rows) - len(finished),
    }
    for key in _AGGREGATED:
        summary[key] = reduce_values([row[key] for row in finished], how)
    for key in ("train_acc", "val_acc", "test_acc"):
        values = [row[key] for row in finished if row[key] is not None]
        summary[f"{key}_std"] = reduce_std(values)
    # Params and MACs depend on the architecture only: any finished seed tells.
    for key in ("params", "macs"):
        summary[key] = next((row[key] for row in finished if row[key] is not None), None)
    summary["curves"] = _reduced_curves(finished, how)
    summary["robust"] = _reduced_robust(finished, how)
    return summary


def _reduced_curves(finished: list[dict], how: str) -> list[dict[str, Any]]:
    """Per epoch, each numeric curve value reduced over the seeds that have it."""
    epochs: dict[int, dict[str, list[float]]] = {}
    for row in finished:
        for entry in row["curves"]:
            slot = epochs.setdefault(entry["epoch"], {})
            for name, value in entry.items():
                if name != "epoch" and is_number(value):
                    slot.setdefault(name, []).append(value)
    return [
        {"epoch": epoch, **{name: reduce_values(values, how) for name, values in metrics.items()}}
        for epoch, metrics in sorted(epochs.items())
    ]


def _reduced_robust(finished: list[dict], how: str) -> list[dict[str, Any]]:
    """Per (attack, norm, eps), the accuracy reduced over the seeds that have it, and their number."""
    settings: dict[tuple, list[float]] = {}
    for row in finished:
        for item in row["robust"]:
            settings.setdefault((item["attack"], item["norm"], item["eps"]), []).append(item["accuracy"])
    return [
        {"attack": a, "norm": n, "eps": e, "accuracy": reduce_values(v, how), "n": len(v)}
        for (a, n, e), v in sorted(settings.items())
    ]
