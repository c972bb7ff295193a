"""Exchanging benchmarks as Parquet: every row exported (JSON documents as text, robust
accuracies as a list of structs) and exports merged back into a store."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nasbench.store.database import Database
from nasbench.store.errors import BenchmarkError
from nasbench.store.queries import robust_for
from nasbench.store.schema import JSON_COLUMNS, PAYLOAD_JOIN, ROW_COLUMNS, ROW_SELECT, SCALAR_COLUMNS, SCHEMA_VERSION
from nasbench.store.writes import add_missing_robust, record_many

# Rows read from SQLite per Parquet row group: memory stays flat on large benchmarks.
EXPORT_CHUNK = 10000
_KEY = ("arch_hash", "dataset", "budget", "seed")
# The columns an export must have (others are ignored).
_EXPORT_COLUMNS = frozenset({*SCALAR_COLUMNS, *JSON_COLUMNS, "robust"})


def arrow_schema() -> Any:
    """The Parquet file's columns: the scalars typed, the JSON documents as text, the robust list."""
    import pyarrow as pa

    robust = pa.list_(
        pa.struct([("attack", pa.string()), ("norm", pa.string()), ("eps", pa.float64()), ("accuracy", pa.float64())])
    )
    types = {
        "budget": pa.int64(),
        "seed": pa.int64(),
        "params": pa.int64(),
        "macs": pa.int64(),
        **{key: pa.float64() for key in ("train_acc", "val_acc", "test_acc", "latency_ms", "train_seconds")},
    }
    fields = [pa.field(key, types.get(key, pa.string())) for key in SCALAR_COLUMNS]
    fields += [pa.field(key, pa.string()) for key in JSON_COLUMNS]
    fields.append(pa.field("robust", robust))
    return pa.schema(
        fields, metadata={"nasbench.schema_version": str(SCHEMA_VERSION), "nasbench.format": "benchmark-rows"}
    )


def export_parquet(db: Database, path: str | os.PathLike) -> int:
    """Write every row to a Parquet file, renamed into place: see :meth:`Benchmark.export_parquet`."""
    import pyarrow.parquet as pq

    target = Path(path)
    if target.is_dir():
        raise BenchmarkError(f"{target} is a directory; give a .parquet file name")
    if not target.parent.exists():
        raise BenchmarkError(f"cannot write {target}: directory {target.parent} does not exist")
    schema = arrow_schema()
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    written = 0
    try:
        with pq.ParquetWriter(partial, schema, compression="zstd") as writer:
            for table in _row_tables(db, schema):
                writer.write_table(table)
                written += table.num_rows
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return written


def _row_tables(db: Database, schema: Any) -> Iterator[Any]:
    """Every stored row in id order, as Arrow tables of up to ``EXPORT_CHUNK`` rows."""
    import pyarrow as pa

    last_id = 0
    while True:
        records = db.read(
            f"SELECT {ROW_SELECT} FROM results {PAYLOAD_JOIN} WHERE results.id > ? ORDER BY results.id LIMIT ?",
            (last_id, EXPORT_CHUNK),
        )
        if not records:
            return
        last_id = records[-1][0]
        robust = robust_for(db, [record[0] for record in records])
        columns = {name: [record[i + 1] for record in records] for i, name in enumerate(ROW_COLUMNS[1:])}
        columns["robust"] = [robust.get(record[0], []) for record in records]
        yield pa.Table.from_pydict(columns, schema=schema)


def import_parquet(db: Database, path: str | os.PathLike) -> int:
    """Merge rows from an export, skipping keys already stored: see :meth:`Benchmark.import_parquet`."""
    import pyarrow as pa

    source = Path(path)
    table = _read_export(source)
    # Rows already stored only contribute robust accuracies they lack: skip
    # decoding and validating the rest of them (re-importing is then cheap).
    stored = {tuple(key) for key in db.read("SELECT arch_hash, dataset, budget, seed FROM results")}
    keys = list(zip(*(table.column(name).to_pylist() for name in _KEY), strict=True))
    is_new = [key not in stored for key in keys]
    robust = table.column("robust").to_pylist()
    rows = table.filter(pa.array(is_new, type=pa.bool_())).select(sorted(_EXPORT_COLUMNS)).to_pylist()
    for index, record in enumerate(rows):
        try:
            for key in JSON_COLUMNS:
                record[key] = json.loads(record[key]) if record[key] is not None else None
        except json.JSONDecodeError as error:
            raise BenchmarkError(f"{source}: row {index} holds invalid JSON: {error}") from None
        record["robust"] = record["robust"] or []
    added = record_many(db, rows, source=str(source))
    merges = [(key, items) for key, new, items in zip(keys, is_new, robust, strict=True) if not new and items]
    add_missing_robust(db, merges, str(source))
    return added


def _read_export(source: Path) -> Any:
    """The Arrow table of a benchmark export; a missing, unreadable or foreign file is refused."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not source.is_file():
        raise BenchmarkError(f"no Parquet file at {source}")
    try:
        table = pq.read_table(source)
    except (pa.ArrowException, OSError) as error:
        raise BenchmarkError(f"{source} is not a readable Parquet file: {error}") from None
    missing = sorted(_EXPORT_COLUMNS - set(table.column_names))
    if missing:
        raise BenchmarkError(f"{source} is not a nasbench benchmark export: missing column(s) {', '.join(missing)}")
    return table
