"""Faults of a search: failing and crashing trials, early-stopped trials told to Optuna as
PRUNED, and ``kill -9`` of the driver followed by ``--resume``."""

import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest

from nasbench.search import SearchConfig, run_search, study_progress


@pytest.fixture(scope="module")
def ray_runtime():
    import ray
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def config(tmp_path, **values):
    defaults = dict(experiments_dir=tmp_path / "experiments", epochs=1, trials=6, concurrency=2,
                    batch_size=64, progress=False, export_top=0)
    return SearchConfig(**{**defaults, **values})


def load_study(summary_or_dir):
    directory = getattr(summary_or_dir, "experiment_dir", summary_or_dir)
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(directory / "optuna.journal")))
    return optuna.load_study(study_name="search", storage=storage)


def child_runs(directory):
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{directory / 'mlflow.db'}")
    parent_id = (directory / "mlflow_run_id").read_text().strip()
    experiment = client.get_run(parent_id).info.experiment_id
    return client.search_runs([experiment], filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'")


def width(arch):
    return sum(layer["filters"] for layer in arch["layers"])


def failing_trials(arch, context, report):
    """Wide first layers raise (like an out-of-memory); the first 2-layer net kills its
    worker (once: a new worker costs seconds)."""
    marker = context.extra["crash_marker"]
    if len(arch["layers"]) == 2 and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(3)
    if arch["layers"][0]["filters"] >= 48:
        raise MemoryError(f"out of memory with {arch['layers'][0]['filters']} filters")
    return {"val_acc": 0.5, "epoch": context.budget}


def learning_curves(arch, context, report):
    """Per-epoch validation accuracy that grows with the net's width (no training)."""
    quality = 1.0 - 1.0 / (1.0 + width(arch) / 60.0)
    for epoch in range(1, context.budget):
        time.sleep(0.05)
        report({"epoch": epoch, "val_acc": quality * epoch / context.budget})
    return {"val_acc": quality, "epoch": context.budget}


def test_failing_and_crashing_trials_are_recorded_and_the_search_goes_on(ray_runtime, tmp_path):
    from nasbench.store import Benchmark

    summary = run_search(config(tmp_path, experiment="faults", trials=8), evaluate=failing_trials,
                         extra={"crash_marker": str(tmp_path / "crashed")})
    assert (tmp_path / "crashed").exists()
    study = load_study(summary)
    states = [t.state.name for t in study.trials]
    assert len(states) == 8 and "RUNNING" not in states
    failed = [t for t in study.trials if t.state.name == "FAIL"]
    assert summary.failed == len(failed) >= 2 and summary.complete == 8 - len(failed) >= 1
    reasons = {t.number: t.user_attrs["reason"] for t in failed}
    assert any("MemoryError: out of memory" in r for r in reasons.values())
    assert any("crashed" in r for r in reasons.values())
    assert summary.failures == reasons

    store = Benchmark(summary.experiment_dir / "benchmark.db")
    runs = {r.data.tags["nasbench.trial_id"]: r for r in child_runs(summary.experiment_dir)}
    for trial in failed:
        row = store.lookup(trial.user_attrs["arch_hash"], "digits", 1, 0)
        assert row["status"] == "failed" and row["reason"]
        run = runs[str(trial.number)]
        assert run.data.tags["nasbench.status"] == "failed" and run.info.status == "FAILED"


def test_plain_optuna_search_reports_early_stopped_trials_as_complete_ours_as_pruned():
    from ray.tune.search.optuna import OptunaSearch

    from nasbench.search import _searcher_class

    def space(trial):
        trial.suggest_int("x", 0, 10)

    stopped_after_one_epoch = {"val_acc": 0.31, "epoch": 1, "training_iteration": 1}
    states = {}
    for cls in (OptunaSearch, _searcher_class()):
        searcher = cls(space, metric="val_acc", mode="max")
        searcher.suggest("t1")
        searcher.on_trial_complete("t1", stopped_after_one_epoch)
        searcher.suggest("t2")
        searcher.on_trial_complete("t2", {"val_acc": 0.9, "epoch": 3, "trial_complete": True})
        states[cls.__name__] = [t.state.name for t in searcher._ot_study.trials]
    assert states["OptunaSearch"] == ["COMPLETE", "COMPLETE"]  # the peer pitfall
    assert states["NasOptunaSearch"] == ["PRUNED", "COMPLETE"]


def test_asha_stopped_trials_are_pruned_in_optuna_store_and_mlflow(ray_runtime, tmp_path):
    from nasbench.store import Benchmark

    summary = run_search(config(tmp_path, experiment="asha", trials=10, epochs=4, scheduler="asha",
                                grace_period=1, reduction_factor=2), evaluate=learning_curves)
    study = load_study(summary)
    pruned = [t for t in study.trials if t.state.name == "PRUNED"]
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(pruned) == summary.pruned >= 1 and len(complete) + len(pruned) == 10
    # a COMPLETE value is always the full-budget score, never a low-fidelity one
    for trial in complete:
        assert trial.value == pytest.approx(1.0 - 1.0 / (1.0 + width(trial.user_attrs["arch"]) / 60.0))
    log = [json.loads(line) for line in (summary.experiment_dir / "search.log").read_text().splitlines()]
    assert all(e["epoch"] < 4 for e in log if e.get("status") == "pruned")

    store = Benchmark(summary.experiment_dir / "benchmark.db")
    runs = {r.data.tags["nasbench.trial_id"]: r for r in child_runs(summary.experiment_dir)}
    for trial in pruned:
        row = store.lookup(trial.user_attrs["arch_hash"], "digits", 4, 0)
        assert row["status"] == "pruned" and "stopped by asha" in row["reason"]
        run = runs[str(trial.number)]
        assert run.data.tags["nasbench.status"] == "pruned" and run.info.status == "KILLED"


def test_kill_9_then_resume_finishes_exactly_the_requested_trials(ray_runtime, tmp_path):
    from nasbench.store import Benchmark

    experiments = tmp_path / "experiments"
    address = ray_runtime.get_runtime_context().gcs_address
    command = [sys.executable, "-m", "nasbench.cli", "search", "--experiment", "crash",
               "--experiments-dir", str(experiments), "--trials", "6", "--concurrency", "2",
               "--epochs", "2", "--batch-size", "64", "--export-top", "0", "--no-progress",
               "--address", address]
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    log = experiments / "crash" / "search.log"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and driver.poll() is None:
        if log.exists() and sum('"trial"' in line for line in log.read_text().splitlines()) >= 2:
            break
        time.sleep(0.2)
    assert driver.poll() is None, driver.stderr.read().decode()[-2000:]
    driver.send_signal(signal.SIGKILL)
    driver.wait()

    directory = experiments / "crash"
    before = study_progress(load_study(directory))
    assert 2 <= before["finished"] < 6
    summary = run_search(config(tmp_path, experiment="crash", resume=True))
    assert summary.finished == 6 and not summary.interrupted

    study = load_study(directory)
    assert [t.number for t in study.trials] == list(range(6))
    assert all(t.state.name == "COMPLETE" for t in study.trials)
    # the store holds each architecture once; MLflow one finished child run per trial
    store = Benchmark(directory / "benchmark.db")
    hashes = {t.user_attrs["arch_hash"] for t in study.trials}
    assert len(store) == len(hashes)
    assert all(store.lookup(h, "digits", 2, 0)["status"] == "ok" for h in hashes)
    runs = child_runs(directory)
    assert sorted(int(r.data.tags["nasbench.trial_id"]) for r in runs) == list(range(6))
    assert all(r.info.status == "FINISHED" for r in runs)
