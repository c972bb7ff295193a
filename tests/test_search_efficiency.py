"""The recorded cell-space benchmark (tests/fixtures/cell_digits.parquet) and the
search-efficiency harness replayed on it (benchmarks/search_efficiency.py)."""

import importlib.util
import itertools
import math
import sys
from pathlib import Path

import pytest

from nasbench.store import Benchmark
from search_spaces import CellArch, arch_from_dict, arch_hash
from search_spaces.cell import EDGES

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "cell_digits.parquet"
SUBSPACE_OPS = ("skip_connect", "nor_conv_1x1", "nor_conv_3x3")
SUBSPACE_CLASSES = 496  # canonical classes among the 3**6 = 729 cells over SUBSPACE_OPS
SEEDS = (0, 1, 2, 3, 4)  # every class trained once per seed


def _load_benchmark_module(name):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


efficiency = _load_benchmark_module("search_efficiency")
builder = _load_benchmark_module("build_cell_benchmark")


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    with Benchmark(tmp_path_factory.mktemp("replay") / "cell.db") as store:
        store.import_parquet(FIXTURE)
        yield store


@pytest.fixture(scope="module")
def rows(bench):
    return bench.top(k=10_000, by="val_acc", dataset="digits")


def test_fixture_is_small_and_holds_every_class_of_the_subspace_for_every_seed(bench, rows):
    assert FIXTURE.stat().st_size < 1_000_000
    assert len(bench) == SUBSPACE_CLASSES * len(SEEDS)
    assert len(rows) == SUBSPACE_CLASSES * len(SEEDS)  # all finished
    classes = {arch_hash(CellArch(ops, cells_per_stage=1, channels=8))
               for ops in itertools.product(SUBSPACE_OPS, repeat=len(EDGES))}
    assert len(classes) == SUBSPACE_CLASSES
    for seed in SEEDS:
        assert {row["arch_hash"] for row in rows if row["seed"] == seed} == classes
    for row in rows:  # the stored hash is the canonical hash of the stored architecture
        assert arch_hash(arch_from_dict(row["arch"])) == row["arch_hash"]
    assert {(row["budget"], row["space"]) for row in rows} == {(rows[0]["budget"], "cell")}


def test_fixture_rows_are_complete_and_accuracies_sane(rows):
    budget = rows[0]["budget"]
    for row in rows:
        assert [entry["epoch"] for entry in row["curves"]] == list(range(1, budget + 1))
        assert row["curves"][-1]["val_acc"] == pytest.approx(row["val_acc"], abs=1e-6)
        assert row["params"] > 0 and row["macs"] > 0 and row["train_seconds"] > 0
        assert 0.0 <= row["test_acc"] <= 1.0
    # Ten classes: chance is 10%. Twenty steps are few, yet every cell learns something
    # and the typical one most of the digits.
    for seed in SEEDS:
        accuracies = sorted(row["val_acc"] for row in rows if row["seed"] == seed)
        assert accuracies[0] > 0.1  # above chance
        assert accuracies[len(accuracies) // 2] > 0.7
        assert accuracies[-1] > 0.9
    # More convolutions, more parameters: the all-3x3 cell is the largest of the space.
    largest = max(rows, key=lambda row: row["params"])
    assert arch_from_dict(largest["arch"]).ops == ("nor_conv_3x3",) * 6


def test_recorded_space_scores_each_class_by_its_mean_over_seeds(bench, rows):
    recorded = efficiency.load_recorded(bench)
    assert recorded.space.ops == SUBSPACE_OPS
    assert (recorded.space.cells_per_stage, recorded.space.channels) == (1, 8)
    assert recorded.seeds == SEEDS
    assert len(recorded.val_acc) == SUBSPACE_CLASSES
    per_class: dict[str, list[float]] = {}
    for row in rows:
        per_class.setdefault(row["arch_hash"], []).append(row["val_acc"])
    for key, values in per_class.items():
        assert len(values) == len(SEEDS)
        assert recorded.val_acc[key] == pytest.approx(sum(values) / len(values))
    k = math.ceil(0.01 * SUBSPACE_CLASSES)
    assert len(recorded.top) >= k  # ties at the threshold are all in the goal
    best = sorted(recorded.val_acc.values(), reverse=True)
    assert recorded.threshold == pytest.approx(best[k - 1])
    assert sum(acc >= recorded.threshold for acc in recorded.val_acc.values()) == len(recorded.top)


def test_a_class_missing_a_seed_is_refused(rows, tmp_path):
    dropped = rows[0]
    kept = [row for row in rows if (row["arch_hash"], row["seed"]) != (dropped["arch_hash"], dropped["seed"])]
    with Benchmark(tmp_path / "gap.db") as gap:
        gap.record_many(kept)
        with pytest.raises(ValueError, match="lack some of the seeds"):
            efficiency.load_recorded(gap)


def test_two_seed_efficiency_run_returns_sensible_counts(bench):
    max_trials = 120
    recorded, summaries = efficiency.efficiency(bench, seeds=range(2), max_trials=max_trials)
    assert list(summaries) == ["random", "tpe", "nsga2"]
    for summary in summaries.values():
        assert [run.seed for run in summary.runs] == [0, 1]
        for run in summary.runs:
            assert 1 <= run.unique <= run.trials <= max_trials
            assert run.resampled == 0  # the fixture covers its subspace: nothing falls outside
            assert run.found == (run.best_val_acc >= recorded.threshold)
            assert run.found or run.trials == max_trials
            assert run.best_val_acc <= max(recorded.val_acc.values())
    # The same seed replays the same search.
    again = efficiency.run_search(recorded, "tpe", 0, max_trials)
    first = summaries["tpe"].runs[0]
    assert (again.trials, again.unique, again.found) == (first.trials, first.unique, first.found)
    table = efficiency.format_table(recorded, summaries, max_trials)
    assert "random" in table and "tpe" in table and "nsga2" in table


def test_unrecorded_cells_are_resampled_not_counted(bench, rows, tmp_path):
    # Keep the top classes and every other of the rest: proposals of dropped classes
    # must be drawn again, and only recorded classes count as trials.
    recorded_full = efficiency.load_recorded(bench)
    classes = sorted({row["arch_hash"] for row in rows})
    kept_classes = {h for i, h in enumerate(classes) if h in recorded_full.top or i % 2 == 0}
    with Benchmark(tmp_path / "partial.db") as partial:
        partial.record_many([row for row in rows if row["arch_hash"] in kept_classes])
        recorded = efficiency.load_recorded(partial)
        assert set(recorded.val_acc) == kept_classes
        run = efficiency.run_search(recorded, "random", seed=3, max_trials=60)
        assert run.resampled > 0
        assert 1 <= run.unique <= run.trials <= 60


def test_tpe_needs_fewer_trials_than_random_search(bench):
    """The recorded landscape has structure a model-based sampler learns: over 10
    seeds TPE's median is well below random search's (the benchmark records the ratio)."""
    recorded, summaries = efficiency.efficiency(bench, samplers=("random", "tpe"), seeds=range(10))
    assert all(run.found for summary in summaries.values() for run in summary.runs)
    assert summaries["tpe"].median_trials < 0.6 * summaries["random"].median_trials


def test_build_trains_recorded_rows_and_resumes(tmp_path):
    db = tmp_path / "build.db"
    ops = ("none", "skip_connect")  # 2**6 cells, 8 classes, no convolutions in the cell: quick
    quiet = lambda *args, **kwargs: None  # noqa: E731
    assert builder.build(db, ops=ops, epochs=1, channels=4, limit=1, log=quiet) == 1
    with Benchmark(db) as store:
        (first,) = store.top(k=10, by="val_acc")
    assert first["status"] == "ok" and len(first["curves"]) == 1 and first["params"] > 0
    assert first["val_acc"] == pytest.approx(first["curves"][0]["val_acc"], abs=1e-6)
    # Resuming skips what is stored: the next call trains another class, not the same one.
    assert builder.build(db, ops=ops, epochs=1, channels=4, limit=1, log=quiet) == 1
    with Benchmark(db) as store:
        hashes = {row["arch_hash"] for row in store.top(k=10, by="val_acc")}
        assert store.lookup(first["arch_hash"], "digits", 1, 0)["created_at"] == first["created_at"]
    assert len(hashes) == 2 and hashes <= set(builder.subspace_classes(ops, channels=4))
    # A second seed trains the same classes again, on its own split.
    assert builder.build(db, ops=ops, epochs=1, channels=4, seeds=(1,), limit=1, log=quiet) == 1
    with Benchmark(db) as store:
        (second,) = store.query(first["arch_hash"], dataset="digits", epochs=1, reduce=None)[1:]
    assert second["seed"] == 1 and second["status"] == "ok"
    assert builder.export(db, tmp_path / "out.parquet") == 3
