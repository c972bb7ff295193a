"""Many trials at once against one MLflow SQLite store and one benchmark store.

200 trials of near-zero length at concurrency 16 (0.125 CPU each on 2 cores) against one
local MLflow SQLite store and one benchmark store. In ``nasbench search`` the driver is
the only writer (``nasbench.trial_writer``), so however many trials run at once no SQLite
file sees two writers: the benchmark checks that every trial's child run is FINISHED,
every store row is there, and that no "database is locked" error occurred, and prints
trials per second.

Two kinds of trials, one search each:

- ``stand-in``: trials run in Ray actors and return at once (the trainable reports its
  final result straight away), so the search's cost is orchestration and writing;
- ``replay``: the cell benchmark that ships with the tests (``tests/fixtures/
  cell_digits.parquet``) answers every trial on the driver, before any actor is launched.

The store and ``mlflow.db`` stay on the driver's disk; on a cluster of several hosts that
is the point: no SQLite file on a network file system, written by many hosts.

    python benchmarks/many_writers.py [--trials 200] [--concurrency 16] [--cpus-per-trial 0.125]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sqlite3
import tempfile
import time
from pathlib import Path

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "cell_digits.parquet"
CELL_OPTIONS = {"channels": 8, "cells_per_stage": 1, "ops": ["skip_connect", "nor_conv_1x1", "nor_conv_3x3"]}


def instant_trial(arch: dict, context, report) -> dict:
    """A stand-in trial of near-zero length."""
    layers = len(arch.get("layers", ())) or 1
    return {"val_acc": 1.0 / (1.0 + layers), "params": 1000 * layers, "macs": 10_000 * layers}


def check(summary, store_path: Path, trials: int) -> dict:
    """Every child run FINISHED, every row of a trained trial in the store, no lock error."""
    from mlflow import MlflowClient

    tracking_uri = f"sqlite:///{summary.experiment_dir / 'mlflow.db'}"
    client = MlflowClient(tracking_uri)
    parent = client.get_run(summary.mlflow_run_id)
    children = client.search_runs(
        [parent.info.experiment_id],
        max_results=50_000,
        filter_string=f"tags.`mlflow.parentRunId` = '{summary.mlflow_run_id}'",
    )
    finished = sum(run.info.status == "FINISHED" for run in children)
    trial_ids = sorted(int(run.data.tags["nasbench.trial_id"]) for run in children)
    trained = summary.complete - summary.deduplicated
    with sqlite3.connect(store_path) as db:
        rows = db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    return {
        "finished_runs": finished,
        "one_run_per_trial": trial_ids == list(range(trials)),
        "trained": trained,
        "rows": rows,
    }


def run(kind: str, tmp: Path, args, replay: Path | None) -> None:
    from nasbench.search import SearchConfig, run_search

    values = dict(
        experiments_dir=tmp,
        experiment=kind,
        trials=args.trials,
        concurrency=args.concurrency,
        cpus_per_trial=args.cpus_per_trial,
        epochs=2,
        progress=False,
        export_top=0,
        sampler="random",
    )
    if kind == "replay":
        values.update(space="cell", space_options=CELL_OPTIONS, replay=replay, seed=3)
    errors = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stderr(errors):
        summary = run_search(SearchConfig(**values), evaluate=instant_trial if kind == "stand-in" else None)
    wall = time.perf_counter() - started
    result = check(summary, summary.experiment_dir / "benchmark.db", args.trials)
    locked = errors.getvalue().count("database is locked")
    stored = (
        "no rows (a replay records nothing)"
        if kind == "replay"
        else f"{result['rows']} store rows for {result['trained']} trained architectures"
    )
    print(
        f"{kind:9s} {summary.finished}/{args.trials} finished, {result['finished_runs']} child runs FINISHED "
        f"(one per trial: {result['one_run_per_trial']}), {stored}, {summary.deduplicated} duplicates, "
        f"{locked} lock errors: {wall:5.1f} s = {summary.finished / wall:5.1f} trials/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--cpus-per-trial", type=float, default=0.125)
    parser.add_argument("--kinds", default="stand-in,replay", help="comma-separated: stand-in, replay")
    args = parser.parse_args()

    from nasbench.ray_runtime import configure_ray_environment, ensure_ray
    from nasbench.store import Benchmark

    print(f"load average: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    configure_ray_environment()
    ensure_ray(None, num_cpus=2)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        replay = tmp / "cell_digits.db"
        with Benchmark(replay) as bench:
            bench.import_parquet(FIXTURE)
        for kind in args.kinds.split(","):
            run(kind.strip(), tmp, args, replay)
    print(f"load average: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")


if __name__ == "__main__":
    main()
