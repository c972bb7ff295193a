"""The tabular benchmark store: rows, validation, queries, Pareto fronts, Parquet, schema."""

import json
import platform
import re
import sqlite3
import subprocess

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nasbench.errors import UserError
from nasbench.store import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    Benchmark,
    BenchmarkError,
    InvalidRow,
    overview,
    pareto_front,
    parse_objective,
)


def make_row(arch_hash="a" * 16, seed=0, val_acc=0.9, **overrides):
    """A complete, plausible row: 3 epochs on digits with one PGD result."""
    acc = 0.5 if val_acc is None else val_acc
    row = {
        "arch_hash": arch_hash,
        "dataset": "digits",
        "budget": 3,
        "seed": seed,
        "space": "macro",
        "arch": {"layers": [{"filters": 8, "kernel": 3}], "hash": arch_hash},
        "status": "ok",
        "reason": None,
        "curves": [
            {"epoch": e, "train_loss": 1.0 / e, "train_acc": acc - 0.1 * (3 - e), "val_acc": acc - 0.1 * (3 - e)}
            for e in (1, 2, 3)
        ],
        "train_acc": min(1.0, acc + 0.02),
        "val_acc": val_acc,
        "test_acc": acc - 0.01,
        "params": 1000,
        "macs": 50_000,
        "latency_ms": 1.5,
        "device": "cpu",
        "train_seconds": 4.0,
        "mlflow_run_id": f"run-{arch_hash[:4]}-{seed}",
        "robust": [{"attack": "pgd", "norm": "Linf", "eps": 0.1, "accuracy": acc / 2}],
    }
    row.update(overrides)
    return row


@pytest.fixture
def bench(tmp_path):
    with Benchmark(tmp_path / "bench.db") as store:
        yield store


# ------------------------------------------------------------------ record, lookup


def test_record_then_lookup_round_trips_every_field(bench):
    row = make_row(provenance={"torch": "2.13.0", "git_commit": "abc"}, created_at="2026-01-01T00:00:00+00:00")
    assert bench.record(row) is True
    stored = bench.lookup(row["arch_hash"], "digits", 3, 0)
    for key, value in row.items():
        assert stored[key] == value, key
    assert bench.lookup(row["arch_hash"], "digits", 3, 1) is None
    assert bench.lookup(row["arch_hash"], "mnist", 3, 0) is None


def test_duplicate_key_is_not_inserted_and_first_result_kept(bench):
    assert bench.record(make_row(val_acc=0.9)) is True
    assert bench.record(make_row(val_acc=0.5, robust=[])) is False
    stored = bench.lookup("a" * 16, "digits", 3, 0)
    assert stored["val_acc"] == 0.9
    assert stored["robust"] == [{"attack": "pgd", "norm": "Linf", "eps": 0.1, "accuracy": 0.45}]
    assert len(bench) == 1
    # A different seed, budget or dataset is a different row.
    assert (
        bench.record(make_row(seed=1)) and bench.record(make_row(budget=6)) and bench.record(make_row(dataset="mnist"))
    )
    assert len(bench) == 4


def test_record_many_validates_everything_first_and_skips_existing_keys(bench):
    bench.record(make_row("a" * 16))
    with pytest.raises(InvalidRow, match="status must be one of"):
        bench.record_many([make_row("b" * 16), make_row("c" * 16, status="?")])
    assert len(bench) == 1
    rows = [make_row(h * 16, seed=s) for h in "abcd" for s in range(3)]
    assert bench.record_many(rows) == 11
    assert bench.record_many(rows) == 0 and len(bench) == 12


def test_provenance_is_filled_in_with_versions_and_git_commit(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=n", "-c", "user.email=n@example.org", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "-C", str(repo), "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    commit = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    monkeypatch.chdir(repo)
    with Benchmark(tmp_path / "b.db") as bench:
        bench.record(make_row())
        provenance = bench.lookup("a" * 16, "digits", 3, 0)["provenance"]
    assert provenance["git_commit"] == commit
    assert provenance["python"] == platform.python_version()
    from importlib.metadata import version

    for package in ("torch", "torchvision", "ray", "optuna", "mlflow", "torchattacks"):
        assert provenance[package] == version(package)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"status": "done"}, "status must be one of ok, failed, pruned"),
        ({"status": "failed"}, "needs a reason"),
        ({"status": "pruned", "reason": "  "}, "needs a reason"),
        ({"val_acc": 1.5}, "val_acc must be a fraction in [0, 1]"),
        ({"val_acc": float("nan")}, "val_acc must be a fraction"),
        ({"params": -1}, "params must be a whole number"),
        ({"params": 10.5}, "params must be a whole number"),
        ({"budget": "3"}, "budget must be a whole number"),
        ({"seed": True}, "seed must be an integer"),
        ({"space": "zoo"}, "space must be one of macro, cell, classic"),
        ({"arch": "conv3x3"}, "arch must be a dict"),
        ({"curves": [{"val_acc": 0.5}]}, "curves[0] needs an integer 'epoch'"),
        ({"robust": [{"attack": "pgd", "norm": "Linf", "eps": 0.1}]}, "robust[0] is missing accuracy"),
        ({"robust": [{"attack": "pgd", "norm": "Linf", "eps": -1, "accuracy": 0.1}]}, "eps must be"),
        ({"val_accuracy": 0.5}, "unknown key(s) val_accuracy"),
        ({"arch": {"f": object()}}, "arch is not JSON-serialisable"),
    ],
)
def test_bad_rows_are_rejected_with_a_clear_message(bench, change, message):
    with pytest.raises(InvalidRow) as caught:
        bench.record(make_row(**change))
    assert message in str(caught.value)
    assert len(bench) == 0


def test_missing_keys_are_named(bench):
    row = make_row()
    del row["dataset"], row["status"]
    with pytest.raises(ValueError, match="missing dataset, status"):
        bench.record(row)
    # The same error is a UserError, so the CLI prints it as one line with exit 2.
    with pytest.raises(UserError):
        bench.record(row)


def test_failed_and_pruned_rows_keep_their_reason_and_null_metrics(bench):
    failed = make_row(
        status="failed", reason="CUDA out of memory", val_acc=None, train_acc=None, test_acc=None, curves=[], robust=[]
    )
    assert bench.record(failed)
    stored = bench.lookup("a" * 16, "digits", 3, 0)
    assert (stored["status"], stored["reason"], stored["val_acc"], stored["curves"]) == (
        "failed",
        "CUDA out of memory",
        None,
        [],
    )


def test_record_robustness_upserts_per_setting(bench):
    bench.record(make_row(robust=[]))
    bench.record_robustness(
        "a" * 16,
        "digits",
        3,
        0,
        [
            {"attack": "pgd", "norm": "Linf", "eps": 8 / 255, "accuracy": 0.5},
            {"attack": "fgsm", "norm": "Linf", "eps": 0.1, "accuracy": 0.6},
        ],
    )
    bench.record_robustness(
        "a" * 16,
        "digits",
        3,
        0,
        [
            {"attack": "pgd", "norm": "Linf", "eps": 8 / 255, "accuracy": 0.25},  # same setting: replaced
            {"attack": "pgd", "norm": "L2", "eps": 0.5, "accuracy": 0.7},
        ],
    )
    robust = {
        (r["attack"], r["norm"], round(r["eps"], 6)): r["accuracy"]
        for r in bench.lookup("a" * 16, "digits", 3, 0)["robust"]
    }
    assert robust == {("pgd", "Linf", round(8 / 255, 6)): 0.25, ("fgsm", "Linf", 0.1): 0.6, ("pgd", "L2", 0.5): 0.7}
    with pytest.raises(BenchmarkError, match="no benchmark row"):
        bench.record_robustness(
            "b" * 16, "digits", 3, 0, [{"attack": "pgd", "norm": "Linf", "eps": 0.1, "accuracy": 0.1}]
        )


# ------------------------------------------------------------------------- query


def test_query_reduces_seeds_metric_by_metric(bench):
    h = "c" * 16
    bench.record(make_row(h, seed=0, val_acc=0.8))
    bench.record(make_row(h, seed=1, val_acc=0.9))
    bench.record(make_row(h, seed=2, val_acc=0.6))
    bench.record(make_row(h, seed=3, status="failed", reason="diverged", val_acc=None, robust=[]))
    mean = bench.query(h, dataset="digits", epochs=3)
    assert mean["n_seeds"] == 3 and mean["seeds"] == [0, 1, 2] and mean["n_unfinished"] == 1
    assert mean["val_acc"] == pytest.approx((0.8 + 0.9 + 0.6) / 3)
    assert mean["val_acc_std"] == pytest.approx(np.std([0.8, 0.9, 0.6]))
    assert mean["params"] == 1000
    # Curves are reduced epoch by epoch: epoch 1 val_acc was val_acc - 0.2 for each seed.
    assert [entry["epoch"] for entry in mean["curves"]] == [1, 2, 3]
    assert mean["curves"][0]["val_acc"] == pytest.approx((0.6 + 0.7 + 0.4) / 3)
    assert mean["robust"] == [
        {"attack": "pgd", "norm": "Linf", "eps": 0.1, "accuracy": pytest.approx((0.4 + 0.45 + 0.3) / 3), "n": 3}
    ]
    assert bench.query(h, dataset="digits", epochs=3, reduce="median")["val_acc"] == 0.8
    assert bench.query(h, dataset="digits", epochs=3, reduce="max")["val_acc"] == 0.9
    assert bench.query(h, dataset="digits", epochs=3, seed=1)["val_acc"] == 0.9
    assert bench.query(h, dataset="digits", epochs=3, seed=9) is None
    assert [row["seed"] for row in bench.query(h, reduce=None)] == [0, 1, 2, 3]
    assert bench.query("d" * 16, dataset="digits", epochs=3) is None
    with pytest.raises(BenchmarkError, match="unknown reduce"):
        bench.query(h, reduce="mode")


def test_query_without_budget_gives_one_summary_per_dataset_and_budget(bench):
    h = "e" * 16
    for budget, acc in ((3, 0.7), (12, 0.9)):
        bench.record(make_row(h, budget=budget, val_acc=acc))
    bench.record(make_row(h, dataset="mnist", val_acc=0.95))
    summaries = bench.query(h, dataset="digits")
    assert [(s["budget"], s["val_acc"]) for s in summaries] == [(3, 0.7), (12, 0.9)]
    assert {(s["dataset"], s["budget"]) for s in bench.query(h)} == {("digits", 3), ("digits", 12), ("mnist", 3)}


# -------------------------------------------------------------------- top, pareto


@pytest.fixture
def ranked(bench):
    """Five architectures with known accuracy, size and robustness, two seeds for 'a'."""
    specs = {
        "a": (0.90, 500, 0.40),
        "b": (0.95, 4000, 0.10),
        "c": (0.85, 200, 0.50),
        "d": (0.80, 300, 0.30),
        "e": (0.92, 600, 0.20),
    }
    for name, (acc, params, robust) in specs.items():
        bench.record(
            make_row(
                name * 16,
                val_acc=acc,
                params=params,
                robust=[{"attack": "pgd", "norm": "Linf", "eps": 0.1, "accuracy": robust}],
            )
        )
    bench.record(make_row("a" * 16, seed=1, val_acc=0.70, params=500, robust=[]))
    bench.record(make_row("f" * 16, status="pruned", reason="ASHA", val_acc=0.99, robust=[]))
    bench.record(make_row("g" * 16, val_acc=0.97, params=100, space="cell", budget=12, robust=[]))
    return bench


def names(rows):
    return [row["arch_hash"][0] for row in rows]


def test_top_ranks_finished_rows_by_any_metric(ranked):
    assert names(ranked.top(3)) == ["g", "b", "e"]  # the pruned 0.99 is not a finished result
    assert names(ranked.top(2, by="params")) == ["g", "c"]  # costs rank ascending by default
    assert names(ranked.top(2, by="params:max")) == ["b", "e"]
    assert names(ranked.top(10, by="val_acc:min"))[:2] == ["a", "d"]
    robust = ranked.top(2, by="robust:pgd:Linf:0.1")
    assert names(robust) == ["c", "a"] and robust[0]["robust:pgd:Linf:0.1"] == 0.5
    # Rows lacking the metric (no robustness result) are left out, not ranked last.
    assert len(ranked.top(10, by="robust:pgd:Linf:0.1")) == 5
    assert ranked.top(3, by="robust:pgd:L2:0.5") == []


def test_top_filters(ranked):
    assert names(ranked.top(10, where={"budget": 12})) == ["g"]
    assert names(ranked.top(10, where={"params": ("<=", 500)})) == ["g", "a", "c", "d", "a"]
    assert names(ranked.top(10, where={"arch_hash": ["c" * 16, "d" * 16]})) == ["c", "d"]
    assert names(ranked.top(10, where={"space": "cell"})) == ["g"]
    assert ranked.top(10, dataset="mnist") == []
    with pytest.raises(BenchmarkError, match="unknown column 'colour'"):
        ranked.top(3, where={"colour": "red"})
    with pytest.raises(BenchmarkError, match="unknown metric 'accuracy'"):
        ranked.top(3, by="accuracy")
    with pytest.raises(BenchmarkError, match="k must be"):
        ranked.top(0)


def test_top_with_reduce_ranks_architectures_by_their_mean_over_seeds(ranked):
    rows = ranked.top(6, reduce="mean")
    # 'a' has seeds at 0.90 and 0.70: its mean 0.80 ties with 'd' (ties by hash).
    assert names(rows) == ["g", "b", "e", "c", "a", "d"]
    assert rows[4]["val_acc"] == pytest.approx(0.80) and rows[4]["n_seeds"] == 2


def test_pareto_front_of_accuracy_and_size(ranked):
    front = ranked.pareto(["val_acc:max", "params:min"], where={"budget": 3})
    # b (most accurate), e, a (seed 0), c; d (0.80, 300) is beaten by c (0.85, 200).
    assert names(front) == ["b", "e", "a", "c"]
    assert [row["params"] for row in front] == [4000, 600, 500, 200]
    robust_front = ranked.pareto(["robust:pgd:Linf:0.1:max", "val_acc:max"])
    assert names(robust_front) == ["c", "a", "e", "b"]
    with pytest.raises(BenchmarkError, match="at least two objectives"):
        ranked.pareto(["val_acc"])


def test_pareto_front_matches_brute_force_on_random_points():
    rng = np.random.default_rng(0)
    points = rng.integers(0, 12, size=(400, 3)).astype(float)  # many ties and duplicates
    expected = [i for i, p in enumerate(points) if not any(np.all(q <= p) and np.any(q < p) for q in points)]
    assert sorted(pareto_front(points)) == expected
    assert pareto_front([]) == []


def test_parse_objective():
    assert parse_objective("val_acc") == ("val_acc", "max")
    assert parse_objective("latency_ms") == ("latency_ms", "min")
    assert parse_objective("val_acc:min") == ("val_acc", "min")
    assert parse_objective("robust:pgd:Linf:0.10:max") == ("robust:pgd:Linf:0.1", "max")
    with pytest.raises(BenchmarkError, match="robust:ATTACK:NORM:EPS"):
        parse_objective("robust:pgd")


def test_stats_counts(ranked):
    stats = ranked.stats()
    assert stats["rows"] == 8 and stats["architectures"] == 7
    assert stats["by_status"] == {"ok": 7, "failed": 0, "pruned": 1}
    assert stats["by_space"] == {"cell": 1, "macro": 7}
    assert stats["by_dataset"]["digits"] == {"rows": 8, "ok": 7, "architectures": 7, "best_val_acc": 0.99}
    assert stats["budgets"] == [3, 12] and stats["seeds"] == [0, 1]
    assert stats["robust_results"] == 5 and stats["robust_settings"] == 1
    assert stats["schema_version"] == SCHEMA_VERSION


def test_stats_counts_every_distinct_robustness_setting(bench):
    def setting(attack, norm, eps):
        return {"attack": attack, "norm": norm, "eps": eps, "accuracy": 0.3}

    bench.record(
        make_row(
            robust=[
                setting("pgd", "Linf", 0.1),
                setting("pgd", "Linf", 0.3),
                setting("pgd", "L2", 0.5),
                setting("fgsm", "Linf", 0.1),
            ]
        )
    )
    bench.record(
        make_row(
            arch_hash="b" * 16,
            robust=[setting("pgd", "Linf", 0.1), setting("square", "Linf", 0.1), setting("pgd", "Linf", 0.2)],
        )
    )
    expected = sorted(bench._db.read("SELECT DISTINCT attack, norm, eps FROM robustness"))
    assert overview.robust_settings(bench._db) == expected and len(expected) == 6
    assert bench.stats()["robust_settings"] == 6 and bench.stats()["robust_results"] == 7


def test_top_reads_the_best_rows_from_an_index(ranked):
    """Milliseconds on 10^5 rows come from indexes; benchmarks/store_query.py measures them."""
    for by, kwargs in (
        ("val_acc", {}),
        ("params", {"dataset": "digits"}),
        ("test_acc:min", {}),
        ("robust:pgd:Linf:0.1", {}),
    ):
        plan = ranked.explain_top(by, **kwargs)
        assert re.search(r"USING (COVERING )?INDEX (results_ok_|robustness_by_setting)", plan), plan
        assert "TEMP B-TREE" not in plan, plan
    conn = sqlite3.connect(ranked.path)
    plan = " ".join(
        str(row[-1])
        for row in conn.execute(
            "EXPLAIN QUERY PLAN SELECT val_acc FROM results WHERE arch_hash = 'a' AND dataset = 'digits' "
            "AND budget = 3 AND seed = 0"
        )
    )
    assert "INDEX sqlite_autoindex_results_1 (arch_hash=? AND dataset=? AND budget=? AND seed=?)" in plan, plan
    conn.close()


# ------------------------------------------------------------------------ parquet


def test_export_import_round_trip_and_importing_twice_adds_nothing(ranked, tmp_path):
    assert ranked.export_parquet(tmp_path / "bench.parquet") == 8
    with Benchmark(tmp_path / "copy.db") as copy:
        assert copy.import_parquet(tmp_path / "bench.parquet") == 8
        assert copy.import_parquet(tmp_path / "bench.parquet") == 0
        assert len(copy) == 8
        for row in ranked.query("a" * 16, reduce=None) + ranked.query("f" * 16, reduce=None):
            assert copy.lookup(row["arch_hash"], row["dataset"], row["budget"], row["seed"]) == row
        assert copy.stats()["robust_results"] == 5


def test_import_merges_overlapping_benchmarks(tmp_path):
    with Benchmark(tmp_path / "site_a.db") as site_a, Benchmark(tmp_path / "site_b.db") as site_b:
        site_a.record(make_row("a" * 16))
        site_a.record(make_row("b" * 16))
        site_b.record(
            make_row(
                "b" * 16,
                val_acc=0.1,
                robust=[
                    {"attack": "pgd", "norm": "Linf", "eps": 0.1, "accuracy": 0.01},  # stays as in site_a
                    {"attack": "square", "norm": "Linf", "eps": 0.1, "accuracy": 0.3},
                ],
            )
        )  # added to site_a's row
        site_b.record(make_row("c" * 16))
        site_b.export_parquet(tmp_path / "b.parquet")
        assert site_a.import_parquet(tmp_path / "b.parquet") == 1
        assert sorted(names(site_a.query(h * 16, reduce=None)[0] for h in "abc")) == ["a", "b", "c"]
        merged = site_a.lookup("b" * 16, "digits", 3, 0)
        assert merged["val_acc"] == 0.9
        assert {(r["attack"], r["accuracy"]) for r in merged["robust"]} == {("pgd", 0.45), ("square", 0.3)}


def test_import_rejects_files_that_are_not_exports(bench, tmp_path):
    (tmp_path / "notes.parquet").write_text("not parquet")
    with pytest.raises(BenchmarkError, match="not a readable Parquet file"):
        bench.import_parquet(tmp_path / "notes.parquet")
    pq.write_table(pa.table({"x": [1, 2]}), tmp_path / "other.parquet")
    with pytest.raises(BenchmarkError, match="not a nasbench benchmark export: missing column"):
        bench.import_parquet(tmp_path / "other.parquet")
    with pytest.raises(BenchmarkError, match="no Parquet file"):
        bench.import_parquet(tmp_path / "absent.parquet")
    # A file with one bad row imports nothing at all.
    bench.record(make_row("a" * 16))
    bench.record(make_row("b" * 16))
    bench.export_parquet(tmp_path / "good.parquet")
    table = pq.read_table(tmp_path / "good.parquet")
    statuses = table.column("status").to_pylist()
    statuses[1] = "exploded"
    pq.write_table(
        table.set_column(table.schema.get_field_index("status"), "status", pa.array(statuses)), tmp_path / "bad.parquet"
    )
    with Benchmark(tmp_path / "fresh.db") as fresh:
        with pytest.raises(BenchmarkError, match="row 1: .*status must be one of"):
            fresh.import_parquet(tmp_path / "bad.parquet")
        assert len(fresh) == 0


# ---------------------------------------------------------------- files and schema


def test_new_file_is_wal_and_versioned_and_reopens_with_its_rows(tmp_path):
    path = tmp_path / "bench.db"
    with Benchmark(path) as bench:
        bench.record(make_row())
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    conn.close()
    with Benchmark(path, create=False) as bench:
        assert len(bench) == 1 and bench.integrity_check() == []


def test_files_that_are_not_benchmarks_are_refused_and_left_untouched(tmp_path):
    text = tmp_path / "notes.db"
    text.write_bytes(b"experiment notes, not a database\n" * 10)
    with pytest.raises(BenchmarkError, match="is not a SQLite database"):
        Benchmark(text)
    assert text.read_bytes() == b"experiment notes, not a database\n" * 10

    other = tmp_path / "mlflow.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE experiments (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(BenchmarkError, match="database of another program .*experiments"):
        Benchmark(other)
    conn = sqlite3.connect(other)
    assert [name for (name,) in conn.execute("SELECT name FROM sqlite_master")] == ["experiments"]
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    conn.close()

    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 40)
    with pytest.raises(BenchmarkError, match="corrupt.db"):
        Benchmark(corrupt)

    with pytest.raises(BenchmarkError, match="is a directory"):
        Benchmark(tmp_path)
    with pytest.raises(BenchmarkError, match="no benchmark database"):
        Benchmark(tmp_path / "absent.db", create=False)
    assert not (tmp_path / "absent.db").exists()
    with pytest.raises(BenchmarkError, match="does not exist"):
        Benchmark(tmp_path / "no" / "such" / "dir.db")


def test_integrity_check_reports_a_row_without_its_documents(tmp_path):
    path = tmp_path / "bench.db"
    with Benchmark(path) as bench:
        bench.record(make_row())
        assert bench.integrity_check() == []
    conn = sqlite3.connect(path)
    conn.execute("DELETE FROM payloads")
    conn.commit()
    conn.close()
    with Benchmark(path) as bench:
        assert bench.integrity_check() == ["result 1 has no architecture/curves document"]


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "future.db"
    Benchmark(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(BenchmarkError, match=f"schema v{SCHEMA_VERSION + 1}, newer"):
        Benchmark(path)


def test_a_version_1_file_is_migrated_in_place_with_its_rows(tmp_path):
    """Schema v2 added the indexes stats() reads; a v1 file gains them on open."""
    path = tmp_path / "v1.db"
    with Benchmark(path) as bench:
        bench.record(make_row())
        bench.record(make_row(arch_hash="b" * 16, seed=1, dataset="mnist"))
        before = bench.stats()
    conn = sqlite3.connect(path)
    conn.execute("DROP INDEX results_overview")
    conn.execute("DROP INDEX results_by_dataset_arch")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with Benchmark(path) as bench:
        assert len(bench) == 2 and bench.integrity_check() == []
        after = bench.stats()
    assert {k: v for k, v in after.items() if k != "bytes"} == {k: v for k, v in before.items() if k != "bytes"}
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    names = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"results_overview", "results_by_dataset_arch"} <= names
    conn.close()


def test_stats_groups_from_an_index_not_the_table(ranked):
    plan = ranked._db.read(
        "EXPLAIN QUERY PLAN SELECT dataset, status, space, budget, seed, COUNT(*), MAX(val_acc) "
        "FROM results GROUP BY dataset, status, space, budget, seed"
    )
    details = " ".join(row[-1] for row in plan)
    assert "COVERING INDEX results_overview" in details and "TEMP B-TREE" not in details, details


def test_an_empty_sqlite_file_is_migrated(tmp_path):
    """sqlite3 leaves a 0-byte file when a database is opened but never written."""
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    assert path.stat().st_size == 0
    with Benchmark(path) as bench:
        assert bench.record(make_row())
        assert json.loads(json.dumps(bench.stats()))["rows"] == 1
