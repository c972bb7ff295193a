"""The benchmark file's layout: its marks, tables and indexes, the migrations that build
them, and the column lists every read and write of a row shares."""

from __future__ import annotations

# "nasB" as a big-endian 32-bit integer: marks a SQLite file as a nasbench benchmark.
APPLICATION_ID = 0x6E617342
SQLITE_MAGIC = b"SQLite format 3\x00"

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

# The columns of ``results`` a row is written with, in the order of its INSERT.
SCALAR_COLUMNS = (
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
JSON_COLUMNS = ("arch", "curves", "provenance")
# What ROW_SELECT reads, in its order: the row id, the scalars, the JSON documents.
ROW_COLUMNS = ("id", *SCALAR_COLUMNS, *JSON_COLUMNS)
ROW_SELECT = ", ".join(
    [f"results.{column}" for column in ("id", *SCALAR_COLUMNS)] + [f"payloads.{column}" for column in JSON_COLUMNS]
)
PAYLOAD_JOIN = "JOIN payloads ON payloads.result_id = results.id"
