"""The metrics rows are ranked by: scalar columns, robust accuracies and accuracies under
common corruptions, how their names are parsed, and which robustness row each one reads."""

from __future__ import annotations

from typing import Any

from nasbench.store.errors import BenchmarkError
from nasbench.store.rows import canonical_eps
from nasbench.store.schema import METRIC_COLUMNS

ROBUST_PREFIX = "robust"
CORRUPTION_PREFIX = "corruption"
CORRUPTION_NORM = "corruption"  # the norm of corruption rows in the robustness table
CORRUPTION_METRIC = "corruption_acc"  # mean corruption accuracy: corruption:mean:mean
_SEVERITIES = ("mean", "1", "2", "3", "4", "5")


def parse_objective(text: str) -> tuple[str, str]:
    """``"val_acc:max"`` -> ``("val_acc", "max")``; the direction defaults by metric.

    Metrics are the scalar columns (train_acc, val_acc, test_acc, params, macs,
    latency_ms, train_seconds), a robust accuracy written
    ``robust:ATTACK:NORM:EPS`` (e.g. ``robust:pgd:Linf:0.1``), an accuracy under a
    common corruption ``corruption:NAME:SEVERITY`` (NAME or ``mean``, SEVERITY 1-5 or
    ``mean``) or the mean corruption accuracy ``corruption_acc``. Accuracies default
    to ``max``, costs to ``min``.
    """
    parts = [part.strip() for part in str(text).split(":")]
    direction = None
    if len(parts) > 1 and parts[-1] in ("max", "min"):
        direction = parts.pop()
    name = ":".join(parts)
    if name == CORRUPTION_METRIC:
        return name, direction or "max"
    if parts[0] == CORRUPTION_PREFIX:
        return _corruption_name(text, parts), direction or "max"
    if parts[0] == ROBUST_PREFIX:
        return _robust_name(text, parts), direction or "max"
    if len(parts) != 1 or name not in METRIC_COLUMNS:
        raise BenchmarkError(
            f"unknown metric {text!r}: use one of {', '.join(METRIC_COLUMNS)}, "
            "robust:ATTACK:NORM:EPS, corruption:NAME:SEVERITY or corruption_acc, "
            "optionally followed by :max or :min"
        )
    return name, direction or METRIC_COLUMNS[name]


def _corruption_name(text: str, parts: list[str]) -> str:
    if len(parts) != 3 or not parts[1] or parts[2] not in _SEVERITIES:
        raise BenchmarkError(
            f"corruption metric {text!r} must read corruption:NAME:SEVERITY with a severity "
            "1-5 or mean, e.g. corruption:fog:3 or corruption:mean:mean"
        )
    return f"{CORRUPTION_PREFIX}:{parts[1]}:{parts[2]}"


def _robust_name(text: str, parts: list[str]) -> str:
    if len(parts) != 4 or not parts[1] or not parts[2]:
        raise BenchmarkError(f"robust metric {text!r} must read robust:ATTACK:NORM:EPS, e.g. robust:pgd:Linf:0.1")
    try:
        eps = float(parts[3])
    except ValueError:
        raise BenchmarkError(f"robust metric {text!r}: eps {parts[3]!r} is not a number") from None
    return f"{ROBUST_PREFIX}:{parts[1]}:{parts[2]}:{canonical_eps(eps):g}"


def robustness_setting(name: str) -> tuple[str, str, float] | None:
    """The robustness row ``(attack, norm, eps)`` a parsed metric name reads, None for a
    scalar column: ``robust:pgd:Linf:0.1`` -> ("pgd", "Linf", 0.1); ``corruption:fog:3`` ->
    ("fog", "corruption", 3.0); ``corruption:fog:mean`` -> ("fog", "corruption", 0.0);
    ``corruption_acc`` -> ("mean", "corruption", 0.0)."""
    if name == CORRUPTION_METRIC:
        return "mean", CORRUPTION_NORM, 0.0
    if name.startswith(CORRUPTION_PREFIX + ":"):
        _, corruption, severity = name.split(":")
        return corruption, CORRUPTION_NORM, 0.0 if severity == "mean" else float(severity)
    if name.startswith(ROBUST_PREFIX + ":"):
        _, attack, norm, eps = name.split(":")
        return attack, norm, canonical_eps(float(eps))
    return None


def corruption_results(accuracy: dict[str, dict[int, float]]) -> list[dict[str, Any]]:
    """Robustness rows for accuracies per corruption and severity, with their means:
    severity 0 = mean over the severities, corruption ``mean`` = mean over the corruptions."""
    import statistics

    rows = [
        {"attack": name, "norm": CORRUPTION_NORM, "eps": float(severity), "accuracy": float(value)}
        for name, by_severity in accuracy.items()
        for severity, value in by_severity.items()
    ]
    if not rows:
        return rows
    severities = sorted({int(severity) for by_severity in accuracy.values() for severity in by_severity})
    for name, by_severity in accuracy.items():
        rows.append(
            {"attack": name, "norm": CORRUPTION_NORM, "eps": 0.0, "accuracy": statistics.fmean(by_severity.values())}
        )
    for severity in severities:
        values = [by_severity[severity] for by_severity in accuracy.values() if severity in by_severity]
        rows.append(
            {"attack": "mean", "norm": CORRUPTION_NORM, "eps": float(severity), "accuracy": statistics.fmean(values)}
        )
    rows.append(
        {
            "attack": "mean",
            "norm": CORRUPTION_NORM,
            "eps": 0.0,
            "accuracy": statistics.fmean(v for by_severity in accuracy.values() for v in by_severity.values()),
        }
    )
    return rows
