"""What a benchmark holds as a whole: counts by status, space and dataset, the robustness
settings measured, and whether the file is sound."""

from __future__ import annotations

from nasbench.store.database import Database
from nasbench.store.rows import STATUSES
from nasbench.store.schema import PAYLOAD_JOIN, SCHEMA_VERSION


def stats(db: Database) -> dict:
    """Counts that describe the benchmark: see :meth:`Benchmark.stats`."""
    groups = db.read(
        "SELECT dataset, status, space, budget, seed, COUNT(*), MAX(val_acc) FROM results "
        "GROUP BY dataset, status, space, budget, seed"
    )
    by_status = {status: 0 for status in STATUSES}
    by_space: dict[str, int] = {}
    by_dataset: dict[str, dict] = {}
    for dataset, status, space, _, _, count, best in groups:
        by_status[status] += count
        by_space[space] = by_space.get(space, 0) + count
        entry = by_dataset.setdefault(dataset, {"rows": 0, "ok": 0, "architectures": 0, "best_val_acc": None})
        entry["rows"] += count
        entry["ok"] += count if status == "ok" else 0
        if best is not None and (entry["best_val_acc"] is None or best > entry["best_val_acc"]):
            entry["best_val_acc"] = best
    for dataset, distinct in db.read("SELECT dataset, COUNT(DISTINCT arch_hash) FROM results GROUP BY dataset"):
        by_dataset[dataset]["architectures"] = distinct
    return {
        "path": str(db.path),
        "schema_version": SCHEMA_VERSION,
        "rows": sum(by_status.values()),
        "architectures": db.read("SELECT COUNT(DISTINCT arch_hash) FROM results")[0][0],
        "by_status": by_status,
        "by_space": dict(sorted(by_space.items())),
        "by_dataset": dict(sorted(by_dataset.items())),
        "budgets": sorted({group[3] for group in groups}),
        "seeds": sorted({group[4] for group in groups}),
        "robust_results": db.read("SELECT COUNT(*) FROM robustness")[0][0],
        "robust_settings": len(robust_settings(db)),
        "bytes": db.path.stat().st_size if db.path.exists() else 0,
    }


def robust_settings(db: Database) -> list[tuple[str, str, float]]:
    """Every distinct (attack, norm, eps), hopping along ``robustness_by_setting``:
    a few index seeks per setting instead of a scan of every robust accuracy. (A
    row-value ``(attack, norm, eps) > (?, ?, ?)`` would seek on ``attack`` alone.)"""
    after = (
        "SELECT attack, norm, eps FROM robustness WHERE attack = ? AND norm = ? AND eps > ? ORDER BY eps LIMIT 1",
        "SELECT attack, norm, eps FROM robustness WHERE attack = ? AND norm > ? ORDER BY norm, eps LIMIT 1",
        "SELECT attack, norm, eps FROM robustness WHERE attack > ? ORDER BY attack, norm, eps LIMIT 1",
    )
    settings: list[tuple[str, str, float]] = []
    found = db.read("SELECT attack, norm, eps FROM robustness ORDER BY attack, norm, eps LIMIT 1")
    while found:
        attack, norm, eps = found[0]
        settings.append((attack, norm, eps))
        for sql, params in zip(after, ((attack, norm, eps), (attack, norm), (attack,)), strict=True):
            if found := db.read(sql, params):
                break
    return settings


def integrity_check(db: Database) -> list[str]:
    """SQLite's own consistency check plus foreign keys; an empty list means sound."""
    problems = [text for (text,) in db.read("PRAGMA integrity_check") if text != "ok"]
    problems += [
        f"{table} row without its result (rowid {rowid})" for table, rowid, *_ in db.read("PRAGMA foreign_key_check")
    ]
    problems += [
        f"result {result_id} has no architecture/curves document"
        for (result_id,) in db.read(
            f"SELECT results.id FROM results LEFT {PAYLOAD_JOIN} WHERE payloads.result_id IS NULL"
        )
    ]
    return problems


def count_rows(db: Database) -> int:
    return db.read("SELECT COUNT(*) FROM results")[0][0]
