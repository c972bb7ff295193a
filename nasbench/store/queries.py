"""Reading rows back: one row by its key, every row of one architecture (its seeds
reduced or as stored), and decoding records into row dicts with their robust accuracies."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from nasbench.store.aggregate import REDUCERS, summarise
from nasbench.store.database import Database
from nasbench.store.errors import BenchmarkError
from nasbench.store.schema import JSON_COLUMNS, PAYLOAD_JOIN, ROW_COLUMNS, ROW_SELECT

# SQLite binds at most 999 parameters in older builds: ids go in chunks below that.
ID_CHUNK = 900


def read_rows(db: Database, where_sql: str, params: Sequence[Any] = (), order_sql: str = "") -> list[dict]:
    """The rows matching ``where_sql`` over ``results``, decoded, in ``order_sql``."""
    records = db.read(f"SELECT {ROW_SELECT} FROM results {PAYLOAD_JOIN} WHERE {where_sql} {order_sql}", params)
    return decode_rows(db, records)


def decode_rows(db: Database, records: Iterable[tuple]) -> list[dict]:
    """Records of ``ROW_SELECT`` as row dicts: JSON parsed, robust accuracies attached, no id."""
    rows = []
    for record in records:
        row = dict(zip(ROW_COLUMNS, record, strict=True))
        for key in JSON_COLUMNS:
            row[key] = json.loads(row[key])
        rows.append(row)
    robust = robust_for(db, [row["id"] for row in rows])
    for row in rows:
        row["robust"] = robust.get(row.pop("id"), [])
    return rows


def robust_for(db: Database, ids: list[int]) -> dict[int, list[dict]]:
    """The robust accuracies of the results ``ids``, by result id, sorted by setting."""
    found: dict[int, list[dict]] = {}
    for start in range(0, len(ids), ID_CHUNK):
        chunk = ids[start : start + ID_CHUNK]
        for result_id, attack, norm, eps, accuracy in db.read(
            "SELECT result_id, attack, norm, eps, accuracy FROM robustness "
            f"WHERE result_id IN ({', '.join('?' * len(chunk))}) ORDER BY attack, norm, eps",
            chunk,
        ):
            found.setdefault(result_id, []).append({"attack": attack, "norm": norm, "eps": eps, "accuracy": accuracy})
    return found


def lookup(db: Database, arch_hash: str, dataset: str, budget: int, seed: int) -> dict | None:
    """The stored row for this exact key, or None."""
    rows = read_rows(
        db, "arch_hash = ? AND dataset = ? AND budget = ? AND seed = ?", (arch_hash, dataset, budget, seed)
    )
    return rows[0] if rows else None


def query(
    db: Database,
    arch_or_hash: str | dict,
    dataset: str | None,
    epochs: int | None,
    seed: int | None,
    reduce: str | None,
) -> dict | list[dict] | None:
    """The rows of one architecture, or their seeds reduced: see :meth:`Benchmark.query`."""
    arch_hash = resolve_hash(arch_or_hash)
    conditions: list[str] = ["arch_hash = ?"]
    params: list[Any] = [arch_hash]
    for column, value in (("dataset", dataset), ("budget", epochs), ("seed", seed)):
        if value is not None:
            conditions.append(f"{column} = ?")
            params.append(value)
    rows = read_rows(db, " AND ".join(conditions), params, "ORDER BY dataset, budget, seed")
    if seed is not None:
        return rows[0] if rows else None
    if reduce is None or reduce == "none":
        return rows
    if reduce not in REDUCERS:
        raise BenchmarkError(f"unknown reduce {reduce!r}: use one of {', '.join(REDUCERS)} or None")
    groups: dict[tuple[str, int], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["budget"]), []).append(row)
    summaries = [summarise(group, reduce) for group in groups.values()]
    if dataset is not None and epochs is not None:
        return summaries[0] if summaries else None
    return summaries


def resolve_hash(arch_or_hash: str | dict) -> str:
    """The architecture hash given, or the hash of an architecture's dict form."""
    if isinstance(arch_or_hash, str):
        if not arch_or_hash.strip():
            raise BenchmarkError("an architecture hash must be a non-empty string")
        return arch_or_hash.strip()
    if isinstance(arch_or_hash, dict):
        try:
            from search_spaces import arch_from_dict, arch_hash
        except ImportError:
            raise BenchmarkError(
                "querying by architecture needs search_spaces.arch_hash; pass the architecture hash instead"
            ) from None
        try:
            return arch_hash(arch_from_dict(arch_or_hash))
        except ValueError as error:
            raise BenchmarkError(f"not a valid architecture: {error}") from None
    raise BenchmarkError(f"query() takes an architecture hash or dict, not {type(arch_or_hash).__name__}")
