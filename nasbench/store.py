"""The tabular benchmark: every evaluated architecture, queryable like NAS-Bench-101/201.

NAS-Bench-101 (Ying et al., 2019, arXiv:1902.09635) trained 423k cell architectures
on CIFAR-10 at four epoch budgets with three seeds each and published the results as
a table, which turned an architecture evaluation into a millisecond lookup.
NAS-Bench-201 (Dong & Yang, 2020, arXiv:2001.00326) added per-epoch curves for
several datasets. This store builds such a table as a by-product of every search and
adds robust accuracy per (attack, norm, eps).

One row per (architecture hash, dataset, training budget in epochs, seed) holds the
architecture JSON, per-epoch curves, params, MACs, latency and device, training time,
status (ok / failed / pruned, with the reason), robust accuracies and provenance
(package versions, git commit, MLflow run id).

Storage is one SQLite file. In a search the driver is its only writer (trials report
to the driver, never to the store), but ``attack`` runs, merges and readers may open it
while a search runs, and a killed process must never leave half a row behind:

- WAL journal on local disks: readers never block the writer and the writer never
  blocks readers. WAL needs memory shared between the processes of one host, so on a
  network file system (NFS, SMB, Lustre, ...) the store keeps SQLite's rollback journal
  and POSIX locks instead, the mode SQLite supports there;
- every write is one ``BEGIN IMMEDIATE`` transaction (a row and its robustness
  results commit together or not at all), waiting up to ``busy_timeout`` for the
  write lock instead of failing with "database is locked";
- ``PRAGMA user_version`` numbers the schema; ``MIGRATIONS`` upgrade older files in
  place when they are opened; ``PRAGMA application_id`` marks the file as ours, so
  another program's database is refused rather than altered.

Scalar metrics are real columns with partial indexes over finished (``ok``) rows, so
``top`` reads the k best rows straight from an index; JSON (architecture, curves,
provenance) is stored as TEXT.

Accuracy under common corruptions (Hendrycks & Dietterich 2019) is robustness under the
threat model ``corruption``: a robustness row with norm ``corruption``, the corruption's
name as the attack and the severity (1-5) as the eps. Its means are rows too: severity 0
is the mean over the severities, attack ``mean`` the mean over the corruptions, so
``mean``/0 is the mean corruption accuracy. They are queried as ``corruption:NAME:SEVERITY``
(``corruption:fog:3``, ``corruption:fog:mean``, ``corruption:mean:5``) and
``corruption_acc``, ranked, exported and imported like every robust accuracy.
"""

from __future__ import annotations

import datetime as _datetime
import functools
import json
import math
import os
import platform
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from nasbench.errors import UserError

__all__ = [
    "Benchmark",
    "BenchmarkError",
    "InvalidRow",
    "SCHEMA_VERSION",
    "STATUSES",
    "collect_provenance",
    "corruption_results",
    "parse_objective",
    "pareto_front",
    "validate_row",
]

# "nasB" as a big-endian 32-bit integer: marks a SQLite file as a nasbench benchmark.
APPLICATION_ID = 0x6E617342
SQLITE_MAGIC = b"SQLite format 3\x00"
STATUSES = ("ok", "failed", "pruned")
SPACES = ("macro", "cell", "classic")

# Scalar columns that rank rows; accuracies are better high, costs better low.
METRIC_COLUMNS = {
    "train_acc": "max",
    "val_acc": "max",
    "test_acc": "max",
    "params": "min",
    "macs": "min",
    "latency_ms": "min",
    "train_seconds": "min",
}
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
ROBUST_PREFIX = "robust"
CORRUPTION_PREFIX = "corruption"
CORRUPTION_NORM = "corruption"  # the norm of corruption rows in the robustness table
CORRUPTION_METRIC = "corruption_acc"  # mean corruption accuracy: corruption:mean:mean

REQUIRED_KEYS = ("arch_hash", "dataset", "budget", "seed", "space", "arch", "status")
OPTIONAL_KEYS = (
    "reason",
    "curves",
    "train_acc",
    "val_acc",
    "test_acc",
    "params",
    "macs",
    "latency_ms",
    "device",
    "train_seconds",
    "mlflow_run_id",
    "robust",
    "provenance",
    "created_at",
)
ROW_KEYS = REQUIRED_KEYS + OPTIONAL_KEYS

# Packages whose versions make a result reproducible (or explain why it is not).
PROVENANCE_PACKAGES = ("nasbench", "torch", "torchvision", "ray", "optuna", "mlflow", "torchattacks")

# Rows per transaction when importing: short enough that live searches writing to
# the same file are not starved of the write lock.
IMPORT_CHUNK = 500


class BenchmarkError(UserError, ValueError):
    """A benchmark file or request that cannot be served: one clear line.

    A ``ValueError`` for Python callers and a ``UserError`` for the CLI (exit 2).
    """


class InvalidRow(BenchmarkError):
    """A row given to :meth:`Benchmark.record` is missing keys or has bad values."""


# --------------------------------------------------------------------------- schema

_V1 = [
    """
    CREATE TABLE results (
        id            INTEGER PRIMARY KEY,
        arch_hash     TEXT    NOT NULL,
        dataset       TEXT    NOT NULL,
        budget        INTEGER NOT NULL CHECK (budget >= 0),
        seed          INTEGER NOT NULL,
        space         TEXT    NOT NULL,
        status        TEXT    NOT NULL CHECK (status IN ('ok', 'failed', 'pruned')),
        reason        TEXT,
        train_acc     REAL,
        val_acc       REAL,
        test_acc      REAL,
        params        INTEGER,
        macs          INTEGER,
        latency_ms    REAL,   -- one image on `device`, best of 20 passes after 2 warm-ups
        device        TEXT,
        train_seconds REAL,
        mlflow_run_id TEXT,
        created_at    TEXT    NOT NULL,
        UNIQUE (arch_hash, dataset, budget, seed)
    )
    """,
    # The JSON documents live apart from the scalars, so that ranking, Pareto
    # fronts and statistics scan small rows (kilobytes of curves per run otherwise).
    """
    CREATE TABLE payloads (
        result_id  INTEGER PRIMARY KEY REFERENCES results (id) ON DELETE CASCADE,
        arch       TEXT NOT NULL,
        curves     TEXT NOT NULL,
        provenance TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE robustness (
        result_id INTEGER NOT NULL REFERENCES results (id) ON DELETE CASCADE,
        attack    TEXT    NOT NULL,
        norm      TEXT    NOT NULL,
        eps       REAL    NOT NULL,
        accuracy  REAL    NOT NULL,
        PRIMARY KEY (result_id, attack, norm, eps)
    ) WITHOUT ROWID
    """,
    "CREATE INDEX robustness_by_setting ON robustness (attack, norm, eps, accuracy)",
    # top() filters on status = 'ok' and orders by one metric, with or without a
    # dataset: one partial index per case lets SQLite stop after k rows.
    *(f"CREATE INDEX results_ok_{column} ON results ({column}) WHERE status = 'ok'" for column in METRIC_COLUMNS),
    *(
        f"CREATE INDEX results_ok_dataset_{column} ON results (dataset, {column}) WHERE status = 'ok'"
        for column in METRIC_COLUMNS
    ),
    "CREATE INDEX results_by_mlflow_run ON results (mlflow_run_id)",
]

_V2 = [
    # stats() reads every row: grouped in the order of one narrow index instead of
    # scanning the table and sorting, and distinct architectures counted per dataset.
    "CREATE INDEX results_overview ON results (dataset, status, space, budget, seed, val_acc)",
    "CREATE INDEX results_by_dataset_arch ON results (dataset, arch_hash)",
]

# MIGRATIONS[i] upgrades a file from schema version i to i + 1. Append, never edit.
MIGRATIONS: list[list[str]] = [_V1, _V2]
SCHEMA_VERSION = len(MIGRATIONS)


# ----------------------------------------------------------------------- provenance


def _git(directory: str, *args: str) -> str | None:
    """git's stripped output in ``directory``, or None when git fails or is missing."""
    try:
        done = subprocess.run(["git", *args], cwd=directory, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@functools.cache
def _git_commit(directory: str) -> str | None:
    """HEAD, with " (uncommitted changes)" after it when tracked files differ from it: code run
    from a dirty tree is not that commit. Untracked files are left out, as a checkout holds
    experiments and other outputs that are no part of the code."""
    commit = _git(directory, "rev-parse", "HEAD")
    if not commit:
        return None
    dirty = _git(directory, "status", "--porcelain", "--untracked-files=no")
    return f"{commit} (uncommitted changes)" if dirty else commit


@functools.cache
def _package_versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PROVENANCE_PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


def collect_provenance() -> dict[str, Any]:
    """Package versions and the git commit of the working directory (None outside a checkout),
    marked "<commit> (uncommitted changes)" when the checkout has uncommitted changes.

    Ray runs trials in their own directories, so when the working directory is not a
    checkout the commit of the nasbench source tree is used instead, when there is one.
    """
    commit = _git_commit(os.getcwd()) or _git_commit(str(Path(__file__).resolve().parent))
    return {**_package_versions(), "git_commit": commit}


# ------------------------------------------------------------------- row validation


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _canonical_eps(eps: float) -> float:
    """Round eps to 10 significant digits so that 8/255 written twice is one key."""
    return float(f"{float(eps):.10g}")


def _validate_robust(results: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(results, (list, tuple)):
        raise InvalidRow(
            f"{where}: 'robust' must be a list of {{attack, norm, eps, accuracy}} dicts, not {type(results).__name__}"
        )
    clean = []
    for index, item in enumerate(results):
        at = f"{where}: robust[{index}]"
        if not isinstance(item, dict):
            raise InvalidRow(f"{at} must be a dict, not {type(item).__name__}")
        missing = [key for key in ("attack", "norm", "eps", "accuracy") if key not in item]
        if missing:
            raise InvalidRow(f"{at} is missing {', '.join(missing)}")
        attack, norm, eps, accuracy = item["attack"], item["norm"], item["eps"], item["accuracy"]
        if not isinstance(attack, str) or not attack.strip():
            raise InvalidRow(f"{at}: attack must be a non-empty string")
        if not isinstance(norm, str) or not norm.strip():
            raise InvalidRow(f"{at}: norm must be a non-empty string such as 'Linf' or 'L2'")
        if not _is_number(eps) or eps < 0:
            raise InvalidRow(f"{at}: eps must be a finite number >= 0 (got {eps!r})")
        if not _is_number(accuracy) or not 0.0 <= accuracy <= 1.0:
            raise InvalidRow(f"{at}: accuracy must be a fraction in [0, 1] (got {accuracy!r})")
        clean.append(
            {"attack": attack.strip(), "norm": norm.strip(), "eps": _canonical_eps(eps), "accuracy": float(accuracy)}
        )
    return clean


def validate_row(row: Any) -> dict[str, Any]:
    """Check a row for :meth:`Benchmark.record` and return it with defaults filled in.

    Raises :class:`InvalidRow` naming the first problem: a missing or unknown key, a
    status outside ok/failed/pruned, a failed/pruned row without a reason, an accuracy
    outside [0, 1], a negative count, curves that are not a list of per-epoch dicts.
    """
    if not isinstance(row, dict):
        raise InvalidRow(f"a benchmark row must be a dict, not {type(row).__name__}")
    missing = [key for key in REQUIRED_KEYS if key not in row]
    if missing:
        raise InvalidRow(f"benchmark row is missing {', '.join(missing)} (required: {', '.join(REQUIRED_KEYS)})")
    unknown = sorted(set(row) - set(ROW_KEYS))
    if unknown:
        raise InvalidRow(f"benchmark row has unknown key(s) {', '.join(unknown)} (known: {', '.join(ROW_KEYS)})")
    clean: dict[str, Any] = {key: row.get(key) for key in ROW_KEYS}
    where = f"row {row['arch_hash']!r}/{row['dataset']!r}"

    for key in ("arch_hash", "dataset"):
        if not isinstance(clean[key], str) or not clean[key].strip():
            raise InvalidRow(f"benchmark row: {key} must be a non-empty string (got {clean[key]!r})")
    if not _is_int(clean["budget"]) or clean["budget"] < 0:
        raise InvalidRow(f"{where}: budget must be a whole number of epochs >= 0 (got {clean['budget']!r})")
    if not _is_int(clean["seed"]):
        raise InvalidRow(f"{where}: seed must be an integer (got {clean['seed']!r})")
    if clean["space"] not in SPACES:
        raise InvalidRow(f"{where}: space must be one of {', '.join(SPACES)} (got {clean['space']!r})")
    if not isinstance(clean["arch"], dict):
        raise InvalidRow(
            f"{where}: arch must be a dict (the architecture's JSON form), not {type(clean['arch']).__name__}"
        )
    if clean["status"] not in STATUSES:
        raise InvalidRow(f"{where}: status must be one of {', '.join(STATUSES)} (got {clean['status']!r})")
    if clean["status"] != "ok" and not (isinstance(clean["reason"], str) and clean["reason"].strip()):
        raise InvalidRow(f"{where}: a {clean['status']} row needs a reason (why it did not finish)")
    if clean["reason"] is not None and not isinstance(clean["reason"], str):
        raise InvalidRow(f"{where}: reason must be a string or None")

    for key in ("train_acc", "val_acc", "test_acc"):
        value = clean[key]
        if value is not None and (not _is_number(value) or not 0.0 <= value <= 1.0):
            raise InvalidRow(f"{where}: {key} must be a fraction in [0, 1] or None (got {value!r})")
    for key in ("params", "macs"):
        value = clean[key]
        if value is not None and (not _is_int(value) or value < 0):
            raise InvalidRow(f"{where}: {key} must be a whole number >= 0 or None (got {value!r})")
    for key in ("latency_ms", "train_seconds"):
        value = clean[key]
        if value is not None and (not _is_number(value) or value < 0):
            raise InvalidRow(f"{where}: {key} must be a finite number >= 0 or None (got {value!r})")
    for key in ("device", "mlflow_run_id", "created_at"):
        if clean[key] is not None and not isinstance(clean[key], str):
            raise InvalidRow(f"{where}: {key} must be a string or None")

    curves = clean["curves"] if clean["curves"] is not None else []
    if not isinstance(curves, (list, tuple)) or not all(isinstance(e, dict) for e in curves):
        raise InvalidRow(
            f"{where}: curves must be a list of per-epoch dicts like {{'epoch': 1, 'train_loss': ..., 'val_acc': ...}}"
        )
    for index, entry in enumerate(curves):
        if not _is_int(entry.get("epoch")):
            raise InvalidRow(f"{where}: curves[{index}] needs an integer 'epoch'")
    clean["curves"] = list(curves)
    clean["robust"] = _validate_robust(clean["robust"] or [], where)
    if clean["provenance"] is None:
        clean["provenance"] = collect_provenance()
    elif not isinstance(clean["provenance"], dict):
        raise InvalidRow(f"{where}: provenance must be a dict or None")
    if clean["created_at"] is None:
        clean["created_at"] = _datetime.datetime.now(_datetime.UTC).isoformat(timespec="seconds")
    return clean


def _encode_json(row: dict[str, Any]) -> list[str]:
    """The JSON columns of a validated row, as stored (compact; arch keys sorted)."""
    where = f"row {row['arch_hash']!r}/{row['dataset']!r}"
    encoded = []
    for key in ("arch", "curves", "provenance"):
        try:
            encoded.append(json.dumps(row[key], allow_nan=False, separators=(",", ":"), sort_keys=key == "arch"))
        except (TypeError, ValueError) as error:
            raise InvalidRow(f"{where}: {key} is not JSON-serialisable: {error}") from None
    return encoded


# ------------------------------------------------------------------------- metrics


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
        if len(parts) != 3 or not parts[1] or parts[2] not in ("mean", "1", "2", "3", "4", "5"):
            raise BenchmarkError(
                f"corruption metric {text!r} must read corruption:NAME:SEVERITY with a severity "
                "1-5 or mean, e.g. corruption:fog:3 or corruption:mean:mean"
            )
        return f"{CORRUPTION_PREFIX}:{parts[1]}:{parts[2]}", direction or "max"
    if parts[0] == ROBUST_PREFIX:
        if len(parts) != 4 or not parts[1] or not parts[2]:
            raise BenchmarkError(f"robust metric {text!r} must read robust:ATTACK:NORM:EPS, e.g. robust:pgd:Linf:0.1")
        try:
            eps = float(parts[3])
        except ValueError:
            raise BenchmarkError(f"robust metric {text!r}: eps {parts[3]!r} is not a number") from None
        name = f"{ROBUST_PREFIX}:{parts[1]}:{parts[2]}:{_canonical_eps(eps):g}"
        return name, direction or "max"
    if len(parts) != 1 or name not in METRIC_COLUMNS:
        raise BenchmarkError(
            f"unknown metric {text!r}: use one of {', '.join(METRIC_COLUMNS)}, "
            "robust:ATTACK:NORM:EPS, corruption:NAME:SEVERITY or corruption_acc, "
            "optionally followed by :max or :min"
        )
    return name, direction or METRIC_COLUMNS[name]


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
        return attack, norm, _canonical_eps(float(eps))
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


class _Select:
    """Builds the FROM/WHERE part shared by top() and pareto(), with bound parameters."""

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
            if len(value) != 2 or value[0] not in ("=", "!=", "<", "<=", ">", ">="):
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
        joins = " ".join(self.joins + ([_PAYLOAD_JOIN] if payloads else []))
        return f"FROM results {joins} WHERE {' AND '.join(self.conditions)}", self.join_params + self.params


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


# ----------------------------------------------------------------------- the store

_SCALARS = (
    "arch_hash",
    "dataset",
    "budget",
    "seed",
    "space",
    "status",
    "reason",
    "train_acc",
    "val_acc",
    "test_acc",
    "params",
    "macs",
    "latency_ms",
    "device",
    "train_seconds",
    "mlflow_run_id",
    "created_at",
)
_ROW_COLUMNS = ("id", *_SCALARS, "arch", "curves", "provenance")
_ROW_SELECT = ", ".join(
    [f"results.{c}" for c in ("id", *_SCALARS)] + [f"payloads.{c}" for c in ("arch", "curves", "provenance")]
)
_PAYLOAD_JOIN = "JOIN payloads ON payloads.result_id = results.id"
_AGGREGATED = ("train_acc", "val_acc", "test_acc", "latency_ms", "train_seconds")
REDUCERS = ("mean", "median", "min", "max")


def _reduce(values: list[float], how: str) -> float | None:
    import statistics

    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"mean": statistics.fmean, "median": statistics.median, "min": min, "max": max}[how](values)


def _reduce_std(values: list[float]) -> float | None:
    """Population standard deviation over seeds, as NAS-Bench-201 reports it."""
    import statistics

    return statistics.pstdev(values) if len(values) > 1 else (0.0 if values else None)


# File systems shared between hosts, where SQLite's WAL (shared memory) cannot work.
NETWORK_FILE_SYSTEMS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "lustre",
        "gpfs",
        "beegfs",
        "glusterfs",
        "fuse.glusterfs",
        "ceph",
        "fuse.sshfs",
        "9p",
        "afs",
    }
)


def file_system_type(path: Path) -> str | None:
    """The type of the Linux mount holding ``path`` (read from /proc/mounts), or None."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    target = Path(os.path.realpath(path))
    deepest, kind = -1, None
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        mount = Path(fields[1].replace("\\040", " "))  # /proc/mounts escapes spaces
        if (mount == target or mount in target.parents) and len(mount.parts) > deepest:
            deepest, kind = len(mount.parts), fields[2]
    return kind


def journal_mode_for(path: Path) -> str:
    """``"wal"`` on a local disk, ``"delete"`` (the rollback journal) on a network file
    system; ``$NASBENCH_STORE_JOURNAL`` overrides it for file systems not recognised."""
    chosen = os.environ.get("NASBENCH_STORE_JOURNAL", "").strip().lower()
    if chosen:
        if chosen not in ("wal", "delete"):
            raise UserError(f"NASBENCH_STORE_JOURNAL must be 'wal' or 'delete', not {chosen!r}")
        return chosen
    return "delete" if file_system_type(path) in NETWORK_FILE_SYSTEMS else "wal"


class Benchmark:
    """A tabular benchmark of trained architectures in one SQLite file.

    >>> bench = Benchmark("bench.db")                     # doctest: +SKIP
    >>> bench.record(row)                                 # True: inserted
    >>> bench.lookup(arch_hash, "digits", budget=10, seed=0)
    >>> bench.query(arch_hash, dataset="digits", epochs=10)   # mean over seeds
    >>> bench.top(5, by="robust:pgd:Linf:0.1", dataset="digits")
    >>> bench.pareto(["val_acc:max", "params:min"], dataset="digits")

    Args:
        path: the database file; created (with its directory's existing parent) when absent.
        create: when False, a missing file is an error instead of a new benchmark.
        timeout: seconds a writer waits for the write lock held by another process.
        journal_mode: ``"wal"`` or ``"delete"``; by default :func:`journal_mode_for` the
            path. Every process that opens one file must use the same mode: a search's
            workers take the driver's choice.

    Raises:
        BenchmarkError: the path is a directory, is not a SQLite file, is another
            program's database, is corrupt, or was written by a newer schema.
    """

    def __init__(
        self, path: str | os.PathLike, *, create: bool = True, timeout: float = 60.0, journal_mode: str | None = None
    ):
        self.path = Path(path)
        self.timeout = float(timeout)
        self._check_path(create)
        self._lock = threading.RLock()  # one connection, shared safely by a process's threads
        mode = "rwc" if create else "rw"
        uri = f"file:{quote(str(self.path.resolve()))}?mode={mode}"
        try:
            self._conn = sqlite3.connect(
                uri, uri=True, timeout=self.timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as error:
            raise BenchmarkError(f"cannot open benchmark {self.path}: {error}") from None
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            self.journal_mode = journal_mode or journal_mode_for(self.path)
            self._set_journal_mode(self.journal_mode)
            self._conn.execute("PRAGMA foreign_keys = ON")
            # With WAL, NORMAL loses nothing when a process dies; only a power cut
            # can roll back the last transactions, and never corrupts the file. The
            # rollback journal needs FULL for the same guarantee.
            self._conn.execute(f"PRAGMA synchronous = {'NORMAL' if self.journal_mode == 'wal' else 'FULL'}")
            self._migrate()
        except sqlite3.DatabaseError as error:
            self._conn.close()
            raise BenchmarkError(f"{self.path} is not a usable benchmark database: {error}") from None
        except BaseException:
            self._conn.close()
            raise

    # ------------------------------------------------------------ opening, schema

    def _check_path(self, create: bool) -> None:
        path = self.path
        if path.is_dir():
            raise BenchmarkError(f"{path} is a directory, not a benchmark database file")
        if path.exists():
            try:
                with path.open("rb") as handle:
                    header = handle.read(len(SQLITE_MAGIC))
            except OSError as error:
                raise BenchmarkError(f"cannot read {path}: {error.strerror or error}") from None
            # An empty file is what sqlite3 leaves for a database never written to.
            if header and header != SQLITE_MAGIC:
                raise BenchmarkError(
                    f"{path} is not a SQLite database (left untouched); give the path of a nasbench benchmark .db file"
                )
        elif not create:
            raise BenchmarkError(f"no benchmark database at {path}")
        elif not path.parent.exists():
            raise BenchmarkError(f"cannot create benchmark {path}: directory {path.parent} does not exist")

    def _set_journal_mode(self, wanted: str) -> None:
        # Switching a brand-new file's journal needs a moment of exclusive access; when
        # several workers open it at once the busy handler is not always consulted.
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                mode = self._conn.execute(f"PRAGMA journal_mode = {wanted}").fetchone()[0]
                break
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        if str(mode).lower() != wanted:
            raise BenchmarkError(
                f"{self.path}: the file system does not support SQLite's {wanted} journal "
                f"(journal mode stayed {mode!r}); use a local disk"
            )

    def _migrate(self) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            self._check_application_id()
            return
        if version > SCHEMA_VERSION:
            raise BenchmarkError(
                f"{self.path} has benchmark schema v{version}, newer than this "
                f"nasbench reads (v{SCHEMA_VERSION}); upgrade nasbench"
            )
        with self._transaction() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]  # another process may have won
            if version == 0:
                tables = [
                    name
                    for (name,) in conn.execute(
                        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                    )
                ]
                if tables:
                    raise BenchmarkError(
                        f"{self.path} is a SQLite database of another program "
                        f"(tables: {', '.join(sorted(tables)[:5])}); left untouched"
                    )
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            else:
                self._check_application_id()
            for step in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[step]:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _check_application_id(self) -> None:
        app = self._conn.execute("PRAGMA application_id").fetchone()[0]
        if app != APPLICATION_ID:
            raise BenchmarkError(
                f"{self.path} is a SQLite database of another program (application id {app:#x}); left untouched"
            )

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: BEGIN IMMEDIATE takes the write lock up front (waiting
        for it), so a transaction never fails half-way on a lock upgrade."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def close(self) -> None:
        """Close the connection; the file stays consistent whether or not this is called."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Benchmark:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Benchmark({str(self.path)!r})"

    # --------------------------------------------------------------------- writing

    def _insert(self, conn: sqlite3.Connection, row: dict[str, Any], encoded: list[str]) -> int | None:
        """Insert a validated row (inside a transaction); its id, or None if the key exists."""
        cursor = conn.execute(
            f"INSERT INTO results ({', '.join(_SCALARS)}) VALUES ({', '.join('?' * len(_SCALARS))}) "
            "ON CONFLICT (arch_hash, dataset, budget, seed) DO NOTHING",
            [row[key] for key in _SCALARS],
        )
        if cursor.rowcount != 1:
            return None
        conn.execute(
            "INSERT INTO payloads (result_id, arch, curves, provenance) VALUES (?, ?, ?, ?)",
            [cursor.lastrowid, *encoded],
        )
        return cursor.lastrowid

    @staticmethod
    def _insert_robust(conn: sqlite3.Connection, result_id: int, results: list[dict], replace: bool = True) -> None:
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        conn.executemany(
            f"{verb} INTO robustness (result_id, attack, norm, eps, accuracy) VALUES (?, ?, ?, ?, ?)",
            [(result_id, r["attack"], r["norm"], r["eps"], r["accuracy"]) for r in results],
        )

    def record(self, row: dict) -> bool:
        """Store one trained architecture; True if inserted, False if its key already existed.

        The key is (arch_hash, dataset, budget, seed). An existing row is left as it is,
        so a retried or duplicated trial never overwrites the first result. The row and
        its robust accuracies are written in one transaction.

        Raises:
            InvalidRow: missing or unknown keys, or bad values (see :func:`validate_row`).
        """
        clean = validate_row(row)
        encoded = _encode_json(clean)
        with self._transaction() as conn:
            result_id = self._insert(conn, clean, encoded)
            if result_id is not None and clean["robust"]:
                self._insert_robust(conn, result_id, clean["robust"])
        return result_id is not None

    def record_many(self, rows: Iterable[dict], *, source: str | None = None) -> int:
        """Store many rows at once; the number inserted (rows whose key exists are skipped).

        Every row is validated before anything is written; then rows are written in
        transactions of ``IMPORT_CHUNK`` rows, so other writers are not starved and a
        killed process leaves whole chunks only. ``source`` names where the rows came
        from in error messages.
        """
        clean = []
        for index, row in enumerate(rows):
            try:
                valid = validate_row(row)
                clean.append((valid, _encode_json(valid)))
            except InvalidRow as error:
                if source is None:
                    raise
                raise InvalidRow(f"{source}: row {index}: {error}") from None
        added = 0
        for start in range(0, len(clean), IMPORT_CHUNK):
            with self._transaction() as conn:
                for row, encoded in clean[start : start + IMPORT_CHUNK]:
                    result_id = self._insert(conn, row, encoded)
                    if result_id is not None:
                        added += 1
                        self._insert_robust(conn, result_id, row["robust"])
        return added

    def record_robustness(self, arch_hash: str, dataset: str, budget: int, seed: int, results: list[dict]) -> None:
        """Add or update robust accuracies of a stored row, one per (attack, norm, eps).

        ``results`` looks like ``[{"attack": "pgd", "norm": "Linf", "eps": 0.1,
        "accuracy": 0.42}, ...]``; a setting already stored is overwritten.
        """
        clean = _validate_robust(results, f"robustness of {arch_hash!r}/{dataset!r}")
        with self._transaction() as conn:
            found = conn.execute(
                "SELECT id FROM results WHERE arch_hash = ? AND dataset = ? AND budget = ? AND seed = ?",
                (arch_hash, dataset, budget, seed),
            ).fetchone()
            if found is None:
                raise BenchmarkError(
                    f"no benchmark row for {arch_hash!r} on {dataset!r} with budget "
                    f"{budget} and seed {seed}; record() it first"
                )
            self._insert_robust(conn, found[0], clean)

    def record_corruption(
        self, arch_hash: str, dataset: str, budget: int, seed: int, accuracy: dict[str, dict[int, float]]
    ) -> None:
        """Add or update the accuracies of a stored row under common corruptions,
        ``{corruption: {severity: accuracy}}``, with their means (:func:`corruption_results`)."""
        self.record_robustness(arch_hash, dataset, budget, seed, corruption_results(accuracy))

    # --------------------------------------------------------------------- reading

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as error:
                raise BenchmarkError(f"cannot read benchmark {self.path}: {error}") from None

    def _rows(self, where_sql: str, params: Sequence[Any] = (), order_sql: str = "") -> list[dict]:
        records = self._read(f"SELECT {_ROW_SELECT} FROM results {_PAYLOAD_JOIN} WHERE {where_sql} {order_sql}", params)
        return self._decode(records)

    def _decode(self, records: Iterable[tuple]) -> list[dict]:
        rows = []
        for record in records:
            row = dict(zip(_ROW_COLUMNS, record))
            for key in ("arch", "curves", "provenance"):
                row[key] = json.loads(row[key])
            rows.append(row)
        robust = self._robust_for([row["id"] for row in rows])
        for row in rows:
            row["robust"] = robust.get(row.pop("id"), [])
        return rows

    def _robust_for(self, ids: list[int]) -> dict[int, list[dict]]:
        found: dict[int, list[dict]] = {}
        for start in range(0, len(ids), 900):  # stay below SQLite's bound-parameter limit
            chunk = ids[start : start + 900]
            for result_id, attack, norm, eps, accuracy in self._read(
                "SELECT result_id, attack, norm, eps, accuracy FROM robustness "
                f"WHERE result_id IN ({', '.join('?' * len(chunk))}) ORDER BY attack, norm, eps",
                chunk,
            ):
                found.setdefault(result_id, []).append(
                    {"attack": attack, "norm": norm, "eps": eps, "accuracy": accuracy}
                )
        return found

    def lookup(self, arch_hash: str, dataset: str, budget: int, seed: int) -> dict | None:
        """The stored row for this exact key, or None: what a search asks before training."""
        rows = self._rows(
            "arch_hash = ? AND dataset = ? AND budget = ? AND seed = ?", (arch_hash, dataset, budget, seed)
        )
        return rows[0] if rows else None

    def query(
        self,
        arch_or_hash: str | dict,
        dataset: str | None = None,
        epochs: int | None = None,
        seed: int | None = None,
        reduce: str | None = "mean",
    ) -> dict | list[dict] | None:
        """What the benchmark knows about one architecture.

        Args:
            arch_or_hash: the architecture hash, or its dict form (hashed with
                ``search_spaces.arch_hash(search_spaces.arch_from_dict(d))``).
            dataset, epochs, seed: narrow the rows; ``epochs`` is the training budget.
            reduce: how seeds are combined: "mean" (NAS-Bench-201 reports the mean
                over seeds), "median", "min", "max"; None returns every row as stored.

        Returns:
            With ``seed`` given: that row, or None. With ``reduce=None``: the list of
            matching rows. Otherwise one summary per (dataset, budget): finished
            (``ok``) seeds reduced metric by metric, per-epoch curves and robust
            accuracies included, plus ``n_seeds``, ``seeds`` and ``n_unfinished``;
            a single dict (or None) when both ``dataset`` and ``epochs`` are given,
            else a list.
        """
        arch_hash = self._resolve_hash(arch_or_hash)
        conditions, params = ["arch_hash = ?"], [arch_hash]
        for column, value in (("dataset", dataset), ("budget", epochs), ("seed", seed)):
            if value is not None:
                conditions.append(f"{column} = ?")
                params.append(value)
        rows = self._rows(" AND ".join(conditions), params, "ORDER BY dataset, budget, seed")
        if seed is not None:
            return rows[0] if rows else None
        if reduce is None or reduce == "none":
            return rows
        if reduce not in REDUCERS:
            raise BenchmarkError(f"unknown reduce {reduce!r}: use one of {', '.join(REDUCERS)} or None")
        groups: dict[tuple[str, int], list[dict]] = {}
        for row in rows:
            groups.setdefault((row["dataset"], row["budget"]), []).append(row)
        summaries = [self._summarise(group, reduce) for group in groups.values()]
        if dataset is not None and epochs is not None:
            return summaries[0] if summaries else None
        return summaries

    @staticmethod
    def _resolve_hash(arch_or_hash: str | dict) -> str:
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

    @staticmethod
    def _summarise(rows: list[dict], how: str) -> dict:
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
            summary[key] = _reduce([row[key] for row in finished], how)
        for key in ("train_acc", "val_acc", "test_acc"):
            values = [row[key] for row in finished if row[key] is not None]
            summary[f"{key}_std"] = _reduce_std(values)
        # Params and MACs depend on the architecture only: any finished seed tells.
        for key in ("params", "macs"):
            summary[key] = next((row[key] for row in finished if row[key] is not None), None)
        epochs: dict[int, dict[str, list[float]]] = {}
        for row in finished:
            for entry in row["curves"]:
                slot = epochs.setdefault(entry["epoch"], {})
                for name, value in entry.items():
                    if name != "epoch" and _is_number(value):
                        slot.setdefault(name, []).append(value)
        summary["curves"] = [
            {"epoch": epoch, **{name: _reduce(values, how) for name, values in metrics.items()}}
            for epoch, metrics in sorted(epochs.items())
        ]
        settings: dict[tuple, list[float]] = {}
        for row in finished:
            for item in row["robust"]:
                settings.setdefault((item["attack"], item["norm"], item["eps"]), []).append(item["accuracy"])
        summary["robust"] = [
            {"attack": a, "norm": n, "eps": e, "accuracy": _reduce(v, how), "n": len(v)}
            for (a, n, e), v in sorted(settings.items())
        ]
        return summary

    # -------------------------------------------------------------- top and pareto

    def top(
        self,
        k: int = 10,
        by: str = "val_acc",
        where: dict | None = None,
        dataset: str | None = None,
        reduce: str | None = None,
    ) -> list[dict]:
        """The k best finished rows by one metric.

        Args:
            by: a metric, optionally with a direction: "val_acc", "params:min",
                "robust:pgd:Linf:0.1" (see :func:`parse_objective`).
            where: column filters: ``{"budget": 10}`` (equals), ``{"space": ["macro",
                "cell"]}`` (one of), ``{"params": ("<=", 100_000)}`` (compare).
            dataset: shorthand for ``where={"dataset": ...}``.
            reduce: None ranks single runs; "mean" (or "min"/"max") first combines
                the seeds of each (architecture, dataset, budget) and ranks those.

        Rows come with the metric's value under the metric's name (so robust ranks
        show the number they were ranked by). Rows missing the metric are left out.
        """
        if not _is_int(k) or k < 1:
            raise BenchmarkError(f"k must be a whole number >= 1 (got {k!r})")
        name, direction = parse_objective(by)
        select = _Select(dataset, where)
        expression = select.metric(name)
        from_where, params = select.sql()
        order = "DESC" if direction == "max" else "ASC"
        if reduce is None or reduce == "none":
            from_where, params = select.sql(payloads=True)
            # Ties go by row id in the same direction, so the metric's index yields the
            # rows already in order and SQLite stops after k of them.
            records = self._read(
                f"SELECT {_ROW_SELECT}, {expression} {from_where} "
                f"AND {expression} IS NOT NULL ORDER BY {expression} {order}, {select.tiebreak(expression)} {order} LIMIT ?",
                [*params, k],
            )
            rows = self._decode(record[:-1] for record in records)
            for row, record in zip(rows, records):
                row[name] = record[-1]
            return rows
        if reduce not in ("mean", "min", "max"):
            raise BenchmarkError(f"top() reduces seeds with mean, min or max, not {reduce!r}")
        aggregate = {"mean": "AVG", "min": "MIN", "max": "MAX"}[reduce]
        groups = self._read(
            f"SELECT results.arch_hash, results.dataset, results.budget, {aggregate}({expression}) AS value "
            f"{from_where} AND {expression} IS NOT NULL GROUP BY results.arch_hash, results.dataset, "
            f"results.budget ORDER BY value {order}, results.arch_hash LIMIT ?",
            [*params, k],
        )
        summaries = []
        for arch_hash, group_dataset, budget, _ in groups:
            rows = self._rows("arch_hash = ? AND dataset = ? AND budget = ?", (arch_hash, group_dataset, budget))
            summary = self._summarise(rows, reduce)
            summary[name] = self._metric_of(summary, name)
            summaries.append(summary)
        return summaries

    def explain_top(self, by: str = "val_acc", where: dict | None = None, dataset: str | None = None) -> str:
        """SQLite's plan for :meth:`top` (reduce=None): shows which index serves the ranking."""
        name, direction = parse_objective(by)
        select = _Select(dataset, where)
        expression = select.metric(name)
        from_where, params = select.sql()
        order = "DESC" if direction == "max" else "ASC"
        plan = self._read(
            f"EXPLAIN QUERY PLAN SELECT results.id {from_where} AND {expression} IS NOT NULL "
            f"ORDER BY {expression} {order}, {select.tiebreak(expression)} {order} LIMIT 10",
            params,
        )
        return "\n".join(str(step[-1]) for step in plan)

    @staticmethod
    def _metric_of(row: dict, name: str) -> float | None:
        setting = robustness_setting(name)
        if setting is None:
            return row.get(name)
        return next(
            (item["accuracy"] for item in row["robust"] if (item["attack"], item["norm"], item["eps"]) == setting), None
        )

    def pareto(self, objectives: list[str], dataset: str | None = None, where: dict | None = None) -> list[dict]:
        """Finished rows that no other row beats on every objective at once.

        Args:
            objectives: two or more metrics with directions, e.g. ``["val_acc:max",
                "params:min"]`` or ``["robust:pgd:Linf:0.1:max", "latency_ms:min"]``.
            dataset, where: as in :meth:`top`. Rows missing an objective are left out.

        Returns:
            The front, sorted by the first objective (best first); each row carries
            the objective values under their names.
        """
        if isinstance(objectives, str):
            objectives = [objectives]
        parsed = [parse_objective(text) for text in objectives]
        if len(parsed) < 2:
            raise BenchmarkError("a Pareto front needs at least two objectives, e.g. val_acc:max,params:min")
        if len({name for name, _ in parsed}) != len(parsed):
            raise BenchmarkError("each Pareto objective may appear once")
        select = _Select(dataset, where)
        expressions = [select.metric(name) for name, _ in parsed]
        from_where, params = select.sql()
        not_null = " AND ".join(f"{e} IS NOT NULL" for e in expressions)
        records = self._read(f"SELECT results.id, {', '.join(expressions)} {from_where} AND {not_null}", params)
        # Minimise everything: maximised objectives change sign.
        import numpy as np

        signs = np.array([-1.0 if direction == "max" else 1.0 for _, direction in parsed])
        points = np.array([record[1:] for record in records], dtype=float).reshape(len(records), len(parsed))
        front = pareto_front(points * signs)
        front_ids = [records[i][0] for i in front]
        values = {records[i][0]: records[i][1:] for i in front}
        rows = []
        for start in range(0, len(front_ids), 900):
            chunk = front_ids[start : start + 900]
            found = self._read(
                f"SELECT {_ROW_SELECT} FROM results {_PAYLOAD_JOIN} "
                f"WHERE results.id IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            for row, record in zip(self._decode(found), found):
                for (name, _), value in zip(parsed, values[record[0]]):
                    row[name] = value
                rows.append(row)
        first, first_direction = parsed[0]
        rows.sort(key=lambda row: row[first], reverse=first_direction == "max")
        return rows

    # ----------------------------------------------------------------- statistics

    def stats(self) -> dict:
        """Counts that describe the benchmark: rows by status and dataset, architectures, budgets."""
        groups = self._read(
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
        for dataset, distinct in self._read("SELECT dataset, COUNT(DISTINCT arch_hash) FROM results GROUP BY dataset"):
            by_dataset[dataset]["architectures"] = distinct
        return {
            "path": str(self.path),
            "schema_version": SCHEMA_VERSION,
            "rows": sum(by_status.values()),
            "architectures": self._read("SELECT COUNT(DISTINCT arch_hash) FROM results")[0][0],
            "by_status": by_status,
            "by_space": dict(sorted(by_space.items())),
            "by_dataset": dict(sorted(by_dataset.items())),
            "budgets": sorted({group[3] for group in groups}),
            "seeds": sorted({group[4] for group in groups}),
            "robust_results": self._read("SELECT COUNT(*) FROM robustness")[0][0],
            "robust_settings": len(self._robust_settings()),
            "bytes": self.path.stat().st_size if self.path.exists() else 0,
        }

    def _robust_settings(self) -> list[tuple[str, str, float]]:
        """Every distinct (attack, norm, eps), hopping along ``robustness_by_setting``:
        a few index seeks per setting instead of a scan of every robust accuracy. (A
        row-value ``(attack, norm, eps) > (?, ?, ?)`` would seek on ``attack`` alone.)"""
        after = (
            "SELECT attack, norm, eps FROM robustness WHERE attack = ? AND norm = ? AND eps > ? ORDER BY eps LIMIT 1",
            "SELECT attack, norm, eps FROM robustness WHERE attack = ? AND norm > ? ORDER BY norm, eps LIMIT 1",
            "SELECT attack, norm, eps FROM robustness WHERE attack > ? ORDER BY attack, norm, eps LIMIT 1",
        )
        settings: list[tuple[str, str, float]] = []
        found = self._read("SELECT attack, norm, eps FROM robustness ORDER BY attack, norm, eps LIMIT 1")
        while found:
            settings.append(attack_norm_eps := tuple(found[0]))
            for sql, params in zip(after, (attack_norm_eps, attack_norm_eps[:2], attack_norm_eps[:1])):
                if found := self._read(sql, params):
                    break
        return settings

    def integrity_check(self) -> list[str]:
        """SQLite's own consistency check plus foreign keys; an empty list means sound."""
        problems = [text for (text,) in self._read("PRAGMA integrity_check") if text != "ok"]
        problems += [
            f"{table} row without its result (rowid {rowid})"
            for table, rowid, *_ in self._read("PRAGMA foreign_key_check")
        ]
        problems += [
            f"result {result_id} has no architecture/curves document"
            for (result_id,) in self._read(
                f"SELECT results.id FROM results LEFT {_PAYLOAD_JOIN} WHERE payloads.result_id IS NULL"
            )
        ]
        return problems

    def __len__(self) -> int:
        return self._read("SELECT COUNT(*) FROM results")[0][0]

    # ------------------------------------------------------------ parquet exchange

    def _arrow_schema(self):
        import pyarrow as pa

        robust = pa.list_(
            pa.struct(
                [("attack", pa.string()), ("norm", pa.string()), ("eps", pa.float64()), ("accuracy", pa.float64())]
            )
        )
        types = {
            "budget": pa.int64(),
            "seed": pa.int64(),
            "params": pa.int64(),
            "macs": pa.int64(),
            **{key: pa.float64() for key in ("train_acc", "val_acc", "test_acc", "latency_ms", "train_seconds")},
        }
        fields = [pa.field(key, types.get(key, pa.string())) for key in _SCALARS]
        fields += [pa.field(key, pa.string()) for key in ("arch", "curves", "provenance")]
        fields.append(pa.field("robust", robust))
        return pa.schema(
            fields, metadata={"nasbench.schema_version": str(SCHEMA_VERSION), "nasbench.format": "benchmark-rows"}
        )

    def export_parquet(self, path: str | os.PathLike) -> int:
        """Write every row (JSON columns as JSON text) to a Parquet file; the row count.

        The file is written next to its target and renamed into place, so a reader
        never sees half of it.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        target = Path(path)
        if target.is_dir():
            raise BenchmarkError(f"{target} is a directory; give a .parquet file name")
        if not target.parent.exists():
            raise BenchmarkError(f"cannot write {target}: directory {target.parent} does not exist")
        schema = self._arrow_schema()
        partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
        written = 0
        try:
            with pq.ParquetWriter(partial, schema, compression="zstd") as writer:
                last_id = 0
                while True:  # in chunks: memory stays flat on large benchmarks
                    records = self._read(
                        f"SELECT {_ROW_SELECT} FROM results {_PAYLOAD_JOIN} "
                        "WHERE results.id > ? ORDER BY results.id LIMIT 10000",
                        (last_id,),
                    )
                    if not records:
                        break
                    last_id = records[-1][0]
                    robust = self._robust_for([record[0] for record in records])
                    columns = {name: [record[i + 1] for record in records] for i, name in enumerate(_ROW_COLUMNS[1:])}
                    columns["robust"] = [robust.get(record[0], []) for record in records]
                    writer.write_table(pa.Table.from_pydict(columns, schema=schema))
                    written += len(records)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        return written

    def import_parquet(self, path: str | os.PathLike) -> int:
        """Merge rows from a Parquet file written by :meth:`export_parquet`; rows added.

        Rows whose key is already stored are skipped (importing twice adds nothing the
        second time); robust accuracies for settings a stored row lacks are added.
        Every row is validated like :meth:`record` before anything is written.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        source = Path(path)
        if not source.is_file():
            raise BenchmarkError(f"no Parquet file at {source}")
        try:
            table = pq.read_table(source)
        except (pa.ArrowException, OSError) as error:
            raise BenchmarkError(f"{source} is not a readable Parquet file: {error}") from None
        needed = set(_SCALARS) | {"arch", "curves", "provenance", "robust"}
        missing = sorted(needed - set(table.column_names))
        if missing:
            raise BenchmarkError(f"{source} is not a nasbench benchmark export: missing column(s) {', '.join(missing)}")
        # Rows already stored only contribute robust accuracies they lack: skip
        # decoding and validating the rest of them (re-importing is then cheap).
        stored = {tuple(key) for key in self._read("SELECT arch_hash, dataset, budget, seed FROM results")}
        keys = list(zip(*(table.column(name).to_pylist() for name in ("arch_hash", "dataset", "budget", "seed"))))
        is_new = [key not in stored for key in keys]
        robust = table.column("robust").to_pylist()
        rows = table.filter(pa.array(is_new, type=pa.bool_())).select(sorted(needed)).to_pylist()
        for index, record in enumerate(rows):
            try:
                for key in ("arch", "curves", "provenance"):
                    record[key] = json.loads(record[key]) if record[key] is not None else None
            except json.JSONDecodeError as error:
                raise BenchmarkError(f"{source}: row {index} holds invalid JSON: {error}") from None
            record["robust"] = record["robust"] or []
        added = self.record_many(rows, source=str(source))
        merges = [(key, items) for key, new, items in zip(keys, is_new, robust) if not new and items]
        for start in range(0, len(merges), IMPORT_CHUNK):
            chunk = [
                (key, _validate_robust(items, f"{source}: row {key}"))
                for key, items in merges[start : start + IMPORT_CHUNK]
            ]
            with self._transaction() as conn:
                for key, items in chunk:
                    found = conn.execute(
                        "SELECT id FROM results WHERE arch_hash = ? AND dataset = ? AND budget = ? AND seed = ?", key
                    ).fetchone()
                    self._insert_robust(conn, found[0], items, replace=False)
        return added
