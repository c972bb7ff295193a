"""The finished rows a ranking reads: the FROM/WHERE clause of ``top`` and ``pareto``,
built from column filters and the metrics it ranks by, with bound parameters."""

from __future__ import annotations

from typing import Any

from nasbench.store.errors import BenchmarkError
from nasbench.store.metrics import robustness_setting
from nasbench.store.schema import METRIC_COLUMNS, PAYLOAD_JOIN

# Columns that may appear in ``where`` (besides the metrics).
FILTER_COLUMNS = (
    "arch_hash",
    "dataset",
    "budget",
    "seed",
    "space",
    "status",
    "reason",
    "device",
    "mlflow_run_id",
    *METRIC_COLUMNS,
)
_COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")


class FinishedRows:
    """``ok`` rows of ``dataset`` (any when None) that match ``where``; each metric asked
    for with :meth:`metric` joins what it needs."""

    def __init__(self, dataset: str | None, where: dict | None):
        self.joins: list[str] = []
        self.conditions: list[str] = ["results.status = 'ok'"]  # a literal: partial indexes apply
        self.params: list[Any] = []
        self.join_params: list[Any] = []
        where = dict(where or {})
        if dataset is not None:
            where.setdefault("dataset", dataset)
        for column, value in where.items():
            self._condition(column, value)

    def _condition(self, column: str, value: Any) -> None:
        if column not in FILTER_COLUMNS:
            raise BenchmarkError(f"unknown column {column!r} in where: use one of {', '.join(FILTER_COLUMNS)}")
        if column == "status":
            raise BenchmarkError("top and pareto rank finished rows only; status cannot be filtered here")
        ref = f"results.{column}"
        if isinstance(value, (list, set, frozenset)):
            values = list(value)
            if not values:
                self.conditions.append("0")
                return
            self.conditions.append(f"{ref} IN ({', '.join('?' * len(values))})")
            self.params.extend(values)
        elif isinstance(value, tuple):
            if len(value) != 2 or value[0] not in _COMPARISONS:
                raise BenchmarkError(
                    f"where {column!r}: a tuple must be (op, value) with op one of =, !=, <, <=, >, >="
                )
            self.conditions.append(f"{ref} {value[0]} ?")
            self.params.append(value[1])
        elif value is None:
            self.conditions.append(f"{ref} IS NULL")
        else:
            self.conditions.append(f"{ref} = ?")
            self.params.append(value)

    def metric(self, name: str) -> str:
        """An SQL expression for a metric; robust and corruption metrics join their robustness row."""
        setting = robustness_setting(name)
        if setting is None:
            return f"results.{name}"
        alias = f"robust_{len(self.joins)}"
        self.joins.append(
            f"JOIN robustness {alias} ON {alias}.result_id = results.id "
            f"AND {alias}.attack = ? AND {alias}.norm = ? AND {alias}.eps = ?"
        )
        self.join_params.extend(setting)
        return f"{alias}.accuracy"

    @staticmethod
    def tiebreak(expression: str) -> str:
        """The row id next to a metric: the last column of the metric's index."""
        if expression.startswith("results."):
            return "results.id"
        return expression.split(".")[0] + ".result_id"

    def sql(self, payloads: bool = False) -> tuple[str, list[Any]]:
        """FROM ... WHERE ...; with ``payloads``, the JSON documents are joined too."""
        joins = " ".join(self.joins + ([PAYLOAD_JOIN] if payloads else []))
        return f"FROM results {joins} WHERE {' AND '.join(self.conditions)}", self.join_params + self.params
