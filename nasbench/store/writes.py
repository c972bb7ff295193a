"""Writing rows: each one with its JSON documents and robust accuracies in one
transaction, many in chunks, and robust accuracies added to rows already stored."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from nasbench.store.database import Database
from nasbench.store.errors import BenchmarkError, InvalidRow
from nasbench.store.rows import encode_json, validate_robust, validate_row
from nasbench.store.schema import SCALAR_COLUMNS

# Rows per transaction when importing: short enough that live searches writing to
# the same file are not starved of the write lock.
IMPORT_CHUNK = 500

_FIND_KEY = "SELECT id FROM results WHERE arch_hash = ? AND dataset = ? AND budget = ? AND seed = ?"


def insert_row(conn: sqlite3.Connection, row: dict[str, Any], encoded: list[str]) -> int | None:
    """Insert a validated row (inside a transaction); its id, or None if the key exists."""
    cursor = conn.execute(
        f"INSERT INTO results ({', '.join(SCALAR_COLUMNS)}) VALUES ({', '.join('?' * len(SCALAR_COLUMNS))}) "
        "ON CONFLICT (arch_hash, dataset, budget, seed) DO NOTHING",
        [row[key] for key in SCALAR_COLUMNS],
    )
    if cursor.rowcount != 1:
        return None
    conn.execute(
        "INSERT INTO payloads (result_id, arch, curves, provenance) VALUES (?, ?, ?, ?)",
        [cursor.lastrowid, *encoded],
    )
    return cursor.lastrowid


def insert_robust(conn: sqlite3.Connection, result_id: int, results: list[dict], replace: bool = True) -> None:
    """Robust accuracies of one result; a setting already stored is overwritten, or with
    ``replace=False`` kept."""
    verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
    conn.executemany(
        f"{verb} INTO robustness (result_id, attack, norm, eps, accuracy) VALUES (?, ?, ?, ?, ?)",
        [(result_id, r["attack"], r["norm"], r["eps"], r["accuracy"]) for r in results],
    )


def record(db: Database, row: dict) -> bool:
    """Store one row unless its key exists: see :meth:`Benchmark.record`."""
    clean = validate_row(row)
    encoded = encode_json(clean)
    with db.transaction() as conn:
        result_id = insert_row(conn, clean, encoded)
        if result_id is not None and clean["robust"]:
            insert_robust(conn, result_id, clean["robust"])
    return result_id is not None


def record_many(db: Database, rows: Iterable[dict], source: str | None) -> int:
    """Store many rows, all validated first: see :meth:`Benchmark.record_many`."""
    clean = []
    for index, row in enumerate(rows):
        try:
            valid = validate_row(row)
            clean.append((valid, encode_json(valid)))
        except InvalidRow as error:
            if source is None:
                raise
            raise InvalidRow(f"{source}: row {index}: {error}") from None
    added = 0
    for start in range(0, len(clean), IMPORT_CHUNK):
        with db.transaction() as conn:
            for valid, encoded in clean[start : start + IMPORT_CHUNK]:
                result_id = insert_row(conn, valid, encoded)
                if result_id is not None:
                    added += 1
                    insert_robust(conn, result_id, valid["robust"])
    return added


def record_robustness(db: Database, arch_hash: str, dataset: str, budget: int, seed: int, results: list[dict]) -> None:
    """Add or overwrite robust accuracies of a stored row: see :meth:`Benchmark.record_robustness`."""
    clean = validate_robust(results, f"robustness of {arch_hash!r}/{dataset!r}")
    with db.transaction() as conn:
        found = conn.execute(_FIND_KEY, (arch_hash, dataset, budget, seed)).fetchone()
        if found is None:
            raise BenchmarkError(
                f"no benchmark row for {arch_hash!r} on {dataset!r} with budget "
                f"{budget} and seed {seed}; record() it first"
            )
        insert_robust(conn, found[0], clean)


def add_missing_robust(db: Database, merges: list[tuple[tuple, list[dict]]], source: str) -> None:
    """Robust accuracies for stored rows, keyed (arch_hash, dataset, budget, seed), that
    the rows lack; settings already stored are kept. Validated and written in chunks."""
    for start in range(0, len(merges), IMPORT_CHUNK):
        chunk = [
            (key, validate_robust(items, f"{source}: row {key}")) for key, items in merges[start : start + IMPORT_CHUNK]
        ]
        with db.transaction() as conn:
            for key, items in chunk:
                found = conn.execute(_FIND_KEY, key).fetchone()
                insert_robust(conn, found[0], items, replace=False)
