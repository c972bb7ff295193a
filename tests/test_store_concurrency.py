"""Many processes writing one benchmark at once, and writers killed mid-write.

Real processes (spawn), a real file, SIGKILL. A search's trials no longer write the store
(its driver is the single writer), but several programs still may at once: searches
sharing one ``--store``, ``nasbench attack`` adding robust accuracies, ``bench import``;
and any of them may be killed mid-write.
"""

import multiprocessing
import os
import signal
import sqlite3
import time

import pytest

from nasbench.store import Benchmark, validate_row
from nasbench.store import journal as store_journal
from nasbench.store.rows import encode_json
from nasbench.store.writes import insert_row

WORKERS = 4
ROWS_EACH = 25
EPOCHS = 20
ATTACKS = ("fgsm", "pgd", "square")


def complete_row(arch_hash: str, seed: int = 0) -> dict:
    """A row whose completeness can be checked: EPOCHS curve points, one result per attack."""
    return {
        "arch_hash": arch_hash,
        "dataset": "digits",
        "budget": EPOCHS,
        "seed": seed,
        "space": "macro",
        "arch": {"layers": [{"filters": 16, "kernel": 3}] * 4, "name": arch_hash},
        "status": "ok",
        "reason": None,
        "curves": [
            {"epoch": e, "train_loss": 1.0 / e, "val_acc": 0.5 + e / 100, "pad": "x" * 200}
            for e in range(1, EPOCHS + 1)
        ],
        "train_acc": 0.9,
        "val_acc": 0.7,
        "test_acc": 0.69,
        "params": 1234,
        "macs": 5678,
        "latency_ms": 0.5,
        "device": "cpu",
        "train_seconds": 1.0,
        "mlflow_run_id": None,
        "robust": [{"attack": attack, "norm": "Linf", "eps": 0.1, "accuracy": 0.3} for attack in ATTACKS],
        "provenance": {"test": True},
    }


def write_rows(path: str, worker: int, start, results) -> None:
    start.wait()  # all workers begin together, on a file none of them has created yet
    bench = Benchmark(path)
    inserted = [bench.record(complete_row(f"w{worker}-r{i}")) for i in range(ROWS_EACH)]
    # Every worker also races for one shared key: exactly one may win it.
    shared = bench.record(complete_row("shared"))
    bench.close()
    results.put((worker, sum(inserted), shared))


def write_forever(path: str, worker: int, progress) -> None:
    bench = Benchmark(path)
    for i in range(10**9):
        bench.record(complete_row(f"k{worker}-r{i}"))
        progress.value = i + 1


def hold_a_transaction_open(path: str, ready) -> None:
    """Insert a row without its robustness results, then wait inside the transaction."""
    bench = Benchmark(path)
    with bench._db.transaction() as conn:
        row = validate_row(complete_row("half-written"))
        insert_row(conn, row, encode_json(row))
        ready.set()
        time.sleep(60)


def assert_every_row_complete(path) -> int:
    """SQLite's integrity check passes and every stored row has all its parts."""
    with Benchmark(path) as bench:
        assert bench.integrity_check() == []
    conn = sqlite3.connect(path)
    total = conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    incomplete = conn.execute(
        "SELECT COUNT(*) FROM results r LEFT JOIN payloads p ON p.result_id = r.id "
        "WHERE (SELECT COUNT(*) FROM robustness WHERE result_id = r.id) != ? "
        "OR p.curves IS NULL OR json_array_length(p.curves) != ?",
        (len(ATTACKS), EPOCHS),
    ).fetchone()[0]
    conn.close()
    assert incomplete == 0
    return total


@pytest.mark.parametrize("journal", ["wal", "delete"])  # delete: what a network file system gets
def test_concurrent_writers_end_with_exactly_all_rows(journal, tmp_path, monkeypatch):
    monkeypatch.setenv("NASBENCH_STORE_JOURNAL", journal)  # the spawned writers inherit it
    context = multiprocessing.get_context("spawn")
    path = str(tmp_path / "shared.db")
    start, results = context.Event(), context.Queue()
    workers = [context.Process(target=write_rows, args=(path, w, start, results)) for w in range(WORKERS)]
    for worker in workers:
        worker.start()
    start.set()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    assert sorted(inserted for _, inserted, _ in outcomes) == [ROWS_EACH] * WORKERS
    assert sum(shared for _, _, shared in outcomes) == 1
    assert assert_every_row_complete(path) == WORKERS * ROWS_EACH + 1
    with Benchmark(path) as bench:
        assert bench.stats()["architectures"] == WORKERS * ROWS_EACH + 1
        assert bench._db.conn.execute("PRAGMA journal_mode").fetchone()[0] == journal == bench.journal_mode


def test_network_file_systems_get_the_rollback_journal(tmp_path, monkeypatch):
    monkeypatch.setattr(store_journal, "file_system_type", lambda path: "nfs4")  # no NFS mount here
    assert store_journal.journal_mode_for(tmp_path / "b.db") == "delete"
    monkeypatch.setattr(store_journal, "file_system_type", lambda path: "ext4")
    assert store_journal.journal_mode_for(tmp_path / "b.db") == "wal"
    monkeypatch.setenv("NASBENCH_STORE_JOURNAL", "delete")
    assert store_journal.journal_mode_for(tmp_path / "b.db") == "delete"
    # and the real mount table: the temporary directory is on some mount
    assert store_journal.file_system_type(tmp_path) is not None


def test_writer_killed_inside_a_transaction_leaves_nothing_behind(tmp_path):
    context = multiprocessing.get_context("spawn")
    path = str(tmp_path / "killed.db")
    with Benchmark(path) as bench:
        assert bench.record(complete_row("before"))
    ready = context.Event()
    writer = context.Process(target=hold_a_transaction_open, args=(path, ready))
    writer.start()
    assert ready.wait(timeout=60)
    os.kill(writer.pid, signal.SIGKILL)
    writer.join(timeout=30)
    assert writer.exitcode == -signal.SIGKILL
    # The half-written row is gone, the write lock is free, the file is sound.
    with Benchmark(path, timeout=5) as bench:
        assert bench.lookup("half-written", "digits", EPOCHS, 0) is None
        assert bench.record(complete_row("after"))
        assert len(bench) == 2
    assert assert_every_row_complete(path) == 2


def test_writers_killed_at_random_moments_leave_only_complete_rows(tmp_path):
    context = multiprocessing.get_context("spawn")
    path = str(tmp_path / "stream.db")
    Benchmark(path).close()
    progress = [context.Value("i", 0) for _ in range(2)]
    writers = [context.Process(target=write_forever, args=(path, w, progress[w])) for w in range(2)]
    for writer in writers:
        writer.start()
    deadline = time.monotonic() + 60
    while min(p.value for p in progress) < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    for writer in writers:
        os.kill(writer.pid, signal.SIGKILL)
    for writer in writers:
        writer.join(timeout=30)
        assert writer.exitcode == -signal.SIGKILL
    total = assert_every_row_complete(path)
    # Every record() that returned is stored; at most the one in flight per writer may be too.
    done = sum(p.value for p in progress)
    assert done >= 40 and done <= total <= done + len(writers)
    with Benchmark(path) as bench:
        assert bench.record(complete_row("after"))
