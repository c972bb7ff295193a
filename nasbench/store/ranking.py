"""Ranking finished rows: the k best by one metric (single runs, or seeds combined) and
the Pareto front of several, with the algorithm that finds a front."""

from __future__ import annotations

from collections.abc import Sequence

from nasbench.store.aggregate import summarise
from nasbench.store.database import Database
from nasbench.store.errors import BenchmarkError
from nasbench.store.metrics import parse_objective, robustness_setting
from nasbench.store.queries import ID_CHUNK, decode_rows, read_rows
from nasbench.store.rows import is_int
from nasbench.store.schema import PAYLOAD_JOIN, ROW_SELECT
from nasbench.store.selection import FinishedRows

_SEED_AGGREGATES = {"mean": "AVG", "min": "MIN", "max": "MAX"}


def top(db: Database, k: int, by: str, where: dict | None, dataset: str | None, reduce: str | None) -> list[dict]:
    """The k best finished rows by one metric: see :meth:`Benchmark.top`."""
    if not is_int(k) or k < 1:
        raise BenchmarkError(f"k must be a whole number >= 1 (got {k!r})")
    name, direction = parse_objective(by)
    select = FinishedRows(dataset, where)
    expression = select.metric(name)
    order = "DESC" if direction == "max" else "ASC"
    if reduce is None or reduce == "none":
        return _top_runs(db, k, name, select, expression, order)
    if reduce not in _SEED_AGGREGATES:
        raise BenchmarkError(f"top() reduces seeds with mean, min or max, not {reduce!r}")
    return _top_architectures(db, k, name, select, expression, order, reduce)


def _top_runs(db: Database, k: int, name: str, select: FinishedRows, expression: str, order: str) -> list[dict]:
    from_where, params = select.sql(payloads=True)
    # Ties go by row id in the same direction, so the metric's index yields the
    # rows already in order and SQLite stops after k of them.
    records = db.read(
        f"SELECT {ROW_SELECT}, {expression} {from_where} "
        f"AND {expression} IS NOT NULL ORDER BY {expression} {order}, {select.tiebreak(expression)} {order} LIMIT ?",
        [*params, k],
    )
    rows = decode_rows(db, (record[:-1] for record in records))
    for row, record in zip(rows, records, strict=True):
        row[name] = record[-1]
    return rows


def _top_architectures(
    db: Database, k: int, name: str, select: FinishedRows, expression: str, order: str, reduce: str
) -> list[dict]:
    """The k best (architecture, dataset, budget) by the metric's ``reduce`` over seeds, summarised."""
    from_where, params = select.sql()
    groups = db.read(
        f"SELECT results.arch_hash, results.dataset, results.budget, {_SEED_AGGREGATES[reduce]}({expression}) AS value "
        f"{from_where} AND {expression} IS NOT NULL GROUP BY results.arch_hash, results.dataset, "
        f"results.budget ORDER BY value {order}, results.arch_hash LIMIT ?",
        [*params, k],
    )
    summaries = []
    for arch_hash, group_dataset, budget, _ in groups:
        rows = read_rows(db, "arch_hash = ? AND dataset = ? AND budget = ?", (arch_hash, group_dataset, budget))
        summary = summarise(rows, reduce)
        summary[name] = metric_of(summary, name)
        summaries.append(summary)
    return summaries


def explain_top(db: Database, by: str, where: dict | None, dataset: str | None) -> str:
    """SQLite's plan for :func:`top` of single runs: shows which index serves the ranking."""
    name, direction = parse_objective(by)
    select = FinishedRows(dataset, where)
    expression = select.metric(name)
    from_where, params = select.sql()
    order = "DESC" if direction == "max" else "ASC"
    plan = db.read(
        f"EXPLAIN QUERY PLAN SELECT results.id {from_where} AND {expression} IS NOT NULL "
        f"ORDER BY {expression} {order}, {select.tiebreak(expression)} {order} LIMIT 10",
        params,
    )
    return "\n".join(str(step[-1]) for step in plan)


def metric_of(row: dict, name: str) -> float | None:
    """A parsed metric's value in a row or summary: its column, or its robust accuracy."""
    setting = robustness_setting(name)
    if setting is None:
        return row.get(name)
    return next(
        (item["accuracy"] for item in row["robust"] if (item["attack"], item["norm"], item["eps"]) == setting), None
    )


def pareto(db: Database, objectives: list[str], dataset: str | None, where: dict | None) -> list[dict]:
    """The finished rows no other row beats on every objective: see :meth:`Benchmark.pareto`."""
    import numpy as np

    if isinstance(objectives, str):
        objectives = [objectives]
    parsed = [parse_objective(text) for text in objectives]
    if len(parsed) < 2:
        raise BenchmarkError("a Pareto front needs at least two objectives, e.g. val_acc:max,params:min")
    if len({name for name, _ in parsed}) != len(parsed):
        raise BenchmarkError("each Pareto objective may appear once")
    select = FinishedRows(dataset, where)
    expressions = [select.metric(name) for name, _ in parsed]
    from_where, params = select.sql()
    not_null = " AND ".join(f"{e} IS NOT NULL" for e in expressions)
    records = db.read(f"SELECT results.id, {', '.join(expressions)} {from_where} AND {not_null}", params)
    # Minimise everything: maximised objectives change sign.
    signs = np.array([-1.0 if direction == "max" else 1.0 for _, direction in parsed])
    points = np.array([record[1:] for record in records], dtype=float).reshape(len(records), len(parsed))
    front = pareto_front(points * signs)
    values = {records[i][0]: records[i][1:] for i in front}
    rows = _rows_with_values(db, [records[i][0] for i in front], [name for name, _ in parsed], values)
    first, first_direction = parsed[0]
    rows.sort(key=lambda row: row[first], reverse=first_direction == "max")
    return rows


def _rows_with_values(db: Database, ids: list[int], names: list[str], values: dict[int, tuple]) -> list[dict]:
    """The rows ``ids``, each with its objective values (``values[id]``) under ``names``."""
    rows = []
    for start in range(0, len(ids), ID_CHUNK):
        chunk = ids[start : start + ID_CHUNK]
        found = db.read(
            f"SELECT {ROW_SELECT} FROM results {PAYLOAD_JOIN} WHERE results.id IN ({', '.join('?' * len(chunk))})",
            chunk,
        )
        for row, record in zip(decode_rows(db, found), found, strict=True):
            row.update(zip(names, values[record[0]], strict=True))
            rows.append(row)
    return rows


def pareto_front(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the points no other point dominates, all objectives minimised.

    A point dominates another if it is no worse in every objective and better in at
    least one; equal points do not dominate each other, so duplicates on the front
    are all kept. Each surviving point in turn removes every point it dominates, in
    one vectorised comparison; visiting points by ascending sum of objectives meets
    front points early, so the candidate set shrinks fast. Returned in input order.
    """
    import numpy as np

    values = np.asarray(points, dtype=float)
    if values.size == 0:
        return []
    order = np.argsort(values.sum(axis=1), kind="stable")
    candidates, remaining = order, values[order]
    position = 0
    while position < len(remaining):
        pivot = remaining[position]
        keep = np.any(remaining < pivot, axis=1) | np.all(remaining == pivot, axis=1)
        position = int(keep[:position].sum()) + 1  # the pivot always keeps itself
        candidates, remaining = candidates[keep], remaining[keep]
    return sorted(int(index) for index in candidates)
