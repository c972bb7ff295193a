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
from ray import cloudpickle

from nasbench.search import SearchConfig, run_search
from nasbench.study import study_progress

# the stand-in trials defined here run inside the Ray workers: ship them by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def config(tmp_path, **values):
    defaults = dict(
        experiments_dir=tmp_path / "experiments",
        epochs=1,
        trials=6,
        concurrency=2,
        batch_size=64,
        progress=False,
        export_top=0,
    )
    return SearchConfig(**{**defaults, **values})


def load_study(summary_or_dir):
    directory = getattr(summary_or_dir, "experiment_dir", summary_or_dir)
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(directory / "optuna.journal"))
    )
    return optuna.load_study(study_name="search", storage=storage)


def child_runs(directory, tracking_uri=None):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri or f"sqlite:///{directory / 'mlflow.db'}")
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


def test_failing_and_crashing_trials_are_recorded_and_the_search_goes_on(ray_runtime, tracking_uri, tmp_path):
    from nasbench.store import Benchmark

    summary = run_search(
        config(tmp_path, experiment="faults", trials=8, tracking_uri=tracking_uri),
        evaluate=failing_trials,
        extra={"crash_marker": str(tmp_path / "crashed")},
    )
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
    runs = {r.data.tags["nasbench.trial_id"]: r for r in child_runs(summary.experiment_dir, tracking_uri)}
    for trial in failed:
        row = store.lookup(trial.user_attrs["arch_hash"], "digits", 1, 0)
        assert row["status"] == "failed" and row["reason"]
        run = runs[str(trial.number)]
        assert run.data.tags["nasbench.status"] == "failed" and run.info.status == "FAILED"


def test_plain_optuna_search_reports_early_stopped_trials_as_complete_ours_as_pruned():
    from ray.tune.search.optuna import OptunaSearch

    from nasbench.searcher import NasOptunaSearch

    def space(trial):
        trial.suggest_int("x", 0, 10)

    stopped_after_one_epoch = {"val_acc": 0.31, "epoch": 1, "training_iteration": 1}
    states = {}
    for cls in (OptunaSearch, NasOptunaSearch):
        searcher = cls(space, metric="val_acc", mode="max")
        searcher.suggest("t1")
        searcher.on_trial_complete("t1", stopped_after_one_epoch)
        searcher.suggest("t2")
        searcher.on_trial_complete("t2", {"val_acc": 0.9, "epoch": 3, "trial_complete": True})
        states[cls.__name__] = [t.state.name for t in searcher._ot_study.trials]
    assert states["OptunaSearch"] == ["COMPLETE", "COMPLETE"]  # the peer pitfall
    assert states["NasOptunaSearch"] == ["PRUNED", "COMPLETE"]


def test_asha_stopped_trials_are_pruned_in_optuna_store_and_mlflow(ray_runtime, tracking_uri, tmp_path):
    from nasbench.store import Benchmark

    summary = run_search(
        config(
            tmp_path,
            experiment="asha",
            trials=10,
            epochs=4,
            scheduler="asha",
            grace_period=1,
            reduction_factor=2,
            tracking_uri=tracking_uri,
        ),
        evaluate=learning_curves,
    )
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
    runs = {r.data.tags["nasbench.trial_id"]: r for r in child_runs(summary.experiment_dir, tracking_uri)}
    for trial in pruned:
        row = store.lookup(trial.user_attrs["arch_hash"], "digits", 4, 0)
        assert row["status"] == "pruned" and "stopped by asha" in row["reason"]
        run = runs[str(trial.number)]
        assert run.data.tags["nasbench.status"] == "pruned" and run.info.status == "KILLED"


@pytest.mark.e2e
def test_kill_9_then_resume_finishes_exactly_the_requested_trials(ray_runtime, tmp_path):
    """The real thing: a CLI driver in its own process, training, killed with SIGKILL.
    (The default run covers the same resume logic in-process, below.)"""
    from nasbench.store import Benchmark

    experiments = tmp_path / "experiments"
    address = ray_runtime.get_runtime_context().gcs_address
    command = [
        sys.executable,
        "-m",
        "nasbench.cli",
        "search",
        "--experiment",
        "crash",
        "--experiments-dir",
        str(experiments),
        "--trials",
        "6",
        "--concurrency",
        "2",
        "--epochs",
        "2",
        "--batch-size",
        "64",
        "--export-top",
        "0",
        "--no-progress",
        "--address",
        address,
    ]
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
    # a trial is logged before Optuna is told, so the last logged one may not be told yet:
    # the resume then tells it from results.jsonl
    assert 1 <= before["finished"] < 6
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


def slow_trials(arch, context, report):
    """Stand-in trials that take a moment, so a driver can die while two are running."""
    time.sleep(0.3)
    return {"val_acc": 1.0 - 1.0 / (1.0 + width(arch) / 60.0), "epoch": context.budget}


def test_resume_reruns_the_trials_a_dead_driver_left_running(ray_runtime, tracking_uri, tmp_path):
    """What ``kill -9`` of the driver leaves behind, made in-process: trials RUNNING in
    Optuna (one sampled completely with its MLflow child run RUNNING, one still being
    sampled), the parent run RUNNING. ``--resume`` runs exactly those again, as the same
    Optuna trials and child runs, then the rest: exactly the requested count."""
    from nasbench.store import Benchmark
    from nasbench.study import STUDY_NAME, optuna_storage
    from nasbench.tracking import TrackingConfig, trial_run
    from search_spaces import arch_hash, arch_to_dict, get_space

    first = run_search(config(tmp_path, experiment="crash", trials=3, tracking_uri=tracking_uri), evaluate=slow_trials)
    assert first.finished == 3
    directory = first.experiment_dir
    study = optuna.load_study(study_name=STUDY_NAME, storage=optuna_storage(directory))
    space = get_space("macro", (1, 8, 8))
    sampled = study.ask()  # sampled and started in a worker that died with the driver
    arch = space.sample(sampled)
    sampled.set_user_attr("arch", arch_to_dict(arch))
    sampled.set_user_attr("arch_hash", arch_hash(arch))
    sampled_params = dict(sampled.params)
    cfg = TrackingConfig(tracking_uri, directory.name)
    with (
        pytest.raises(KeyboardInterrupt),
        trial_run(
            cfg,
            first.mlflow_run_id,
            str(sampled.number),
            arch=arch_to_dict(arch),
            arch_hash=arch_hash(arch),
            train_config={"epochs": 1},
            dataset="digits",
        ) as run,
    ):
        raise KeyboardInterrupt  # the worker dies: its run is left KILLED, not FINISHED
    half = study.ask()  # the driver died while sampling this one: one parameter drawn
    layers = half.suggest_int("num_layers", space.min_layers, space.max_layers)
    unhashed = study.ask()  # ... and this one between recording its architecture and its hash
    unhashed_arch = space.sample(unhashed)
    unhashed.set_user_attr("arch", arch_to_dict(unhashed_arch))
    unhashed_params = dict(unhashed.params)
    assert study_progress(study)["running"] == [3, 4, 5]

    resumed = run_search(
        config(tmp_path, experiment="crash", trials=7, resume=True, tracking_uri=tracking_uri), evaluate=slow_trials
    )
    assert resumed.finished == 7 and resumed.complete == 7 and not resumed.interrupted
    study = load_study(directory)
    assert [t.number for t in study.trials] == list(range(7))
    assert all(t.state.name == "COMPLETE" for t in study.trials)
    assert study.trials[3].params == sampled_params  # the same trial, the same architecture
    assert study.trials[3].user_attrs["arch_hash"] == arch_hash(arch)
    assert study.trials[4].params["num_layers"] == layers  # sampling went on where it stopped
    assert study.trials[5].params == unhashed_params
    assert study.trials[5].user_attrs["arch_hash"] == arch_hash(unhashed_arch)
    # one child run per trial (trial 3 reused its run), all finished; the store holds each
    # architecture once
    runs = child_runs(directory, tracking_uri)
    assert sorted(int(r.data.tags["nasbench.trial_id"]) for r in runs) == list(range(7))
    assert all(r.info.status == "FINISHED" for r in runs)
    assert next(r for r in runs if r.data.tags["nasbench.trial_id"] == "3").info.run_id == run.run_id
    store = Benchmark(directory / "benchmark.db")
    assert len(store) == len({t.user_attrs["arch_hash"] for t in study.trials})
    log = [json.loads(line) for line in (directory / "search.log").read_text().splitlines()]
    assert next(e for e in log if e.get("event") == "resume")["rerun"] == [3, 4, 5]


# ----------------------------------------------------------------------------- bad inputs, no work lost


def quick_trials(arch, context, report):
    return {"val_acc": 0.5, "epoch": context.budget}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--store", "{store}"], "is not a SQLite database (left untouched)"),
        (["--gpus-per-trial", "1000"], "each trial asks for 1000 GPU(s) (--gpus-per-trial), but the Ray cluster has"),
        (["--tracking-uri", "bogus://x"], "invalid tracking-uri: MLflow cannot track to bogus://"),
    ],
)
def test_bad_search_inputs_stop_before_the_experiment_exists(argv, message, ray_runtime, tmp_path, capsys):
    from nasbench.cli import main

    not_a_store = tmp_path / "store.json"
    not_a_store.write_text("{}")
    argv = [arg.format(store=not_a_store) for arg in argv]
    assert (
        main(
            [
                "search",
                "--experiments-dir",
                str(tmp_path / "experiments"),
                "--experiment",
                "bad",
                "--trials",
                "1",
                "--no-progress",
                *argv,
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "experiments" / "bad").exists()  # the corrected command needs no --resume
    assert not_a_store.read_text() == "{}"


def test_a_resume_checks_the_resources_its_saved_config_asks_for(ray_runtime, tmp_path):
    from nasbench.errors import UserError
    from nasbench.search_experiment import prepare_experiment

    prepare_experiment(config(tmp_path, experiment="gpu", gpus_per_trial=1000))  # saved, as a search saves it
    with pytest.raises(UserError, match="asks for 1000 GPU"):
        run_search(config(tmp_path, experiment="gpu", resume=True), evaluate=quick_trials)


def test_corrupt_journal_or_mlflow_store_on_resume_is_one_line_and_kept(ray_runtime, tmp_path, capsys):
    from nasbench.cli import main

    run_search(config(tmp_path, experiment="kept", trials=2), evaluate=quick_trials)
    directory = tmp_path / "experiments" / "kept"
    resume = [
        "search",
        "--experiments-dir",
        str(tmp_path / "experiments"),
        "--experiment",
        "kept",
        "--resume",
        "--trials",
        "3",
        "--no-progress",
    ]

    journal = directory / "optuna.journal"
    good_journal = journal.read_bytes()
    journal.write_bytes(b"not json\n" + good_journal)
    assert main(resume) == 2
    err = capsys.readouterr().err
    assert "line 1 of" in err and "optuna.journal is not JSON; keep a copy" in err and err.count("\n") == 1
    assert journal.read_bytes() == b"not json\n" + good_journal  # left as it was, for the user to inspect
    journal.write_bytes(good_journal)

    store = directory / "mlflow.db"
    good_store = store.read_bytes()
    store.write_bytes(good_store[:4096] + b"\0" * 8192)  # the header survives, the tables do not
    assert main(resume) == 2
    err = capsys.readouterr().err
    assert "cannot open the MLflow store" in err and err.count("\n") == 1
    assert len(load_study(directory).trials) == 2  # nothing recorded was lost


def test_trials_given_no_gpu_train_on_the_cpu(ray_runtime):
    import ray

    from nasbench.trial import trial_device

    @ray.remote(num_cpus=0, num_gpus=0)
    def devices():
        return trial_device("auto"), trial_device("cuda:1"), trial_device("cpu")

    assert ray.get(devices.remote()) == ("cpu", "cuda:1", "cpu")


# ----------------------------------------------------------------------------- the driver is the only writer

STALLED_DRIVER = """
import sys, time
from nasbench import trial_writer

# The driver's writer never gets to write: every trial that finishes is recorded in the
# outbox and told to Optuna, and its MLflow run and store row stay unwritten.
trial_writer.TrialWriter._write = lambda self, events: time.sleep(3600)

from nasbench.search import SearchConfig, run_search
from nasbench.trial import sleep_evaluate

run_search(SearchConfig(experiments_dir=sys.argv[1], experiment="unwritten", trials=6, concurrency=2, epochs=1,
                        progress=False, export_top=0, address=sys.argv[2]),
           evaluate=sleep_evaluate, extra={"sleep": 0.1})
"""


def test_a_killed_driver_with_finished_but_unwritten_trials_resumes_with_exact_counts(ray_runtime, tmp_path):
    """A driver killed with ``kill -9`` while trials it had told Optuna about were still
    waiting to be written: ``--resume`` writes them from ``results.jsonl`` (they are not run
    again), then runs the rest; Optuna, the store and MLflow end with exactly 6 trials."""
    from nasbench.store import Benchmark

    experiments = tmp_path / "experiments"
    directory = experiments / "unwritten"
    address = ray_runtime.get_runtime_context().gcs_address
    driver = subprocess.Popen(
        [sys.executable, "-c", STALLED_DRIVER, str(experiments), address],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    outbox = directory / "results.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and driver.poll() is None:
        if outbox.exists() and outbox.read_text().count('"record"') >= 3:
            break
        time.sleep(0.1)
    assert driver.poll() is None, driver.stderr.read().decode()[-2000:]
    driver.send_signal(signal.SIGKILL)
    driver.wait()

    before = study_progress(load_study(directory))
    told = [t.number for t in load_study(directory).trials if t.state.name == "COMPLETE"]
    assert 3 <= before["finished"] == len(told) < 6
    assert child_runs(directory) == []  # nothing written to MLflow ...
    assert len(Benchmark(directory / "benchmark.db")) == 0  # ... nor to the store

    resumed = run_search(config(tmp_path, experiment="unwritten", resume=True), evaluate=slow_trials)
    assert resumed.finished == 6 and resumed.complete == 6 and not resumed.interrupted
    study = load_study(directory)
    assert [t.number for t in study.trials] == list(range(6))
    assert all(t.state.name == "COMPLETE" for t in study.trials)
    log = [json.loads(line) for line in (directory / "search.log").read_text().splitlines()]
    assert sorted(next(e for e in log if e.get("event") == "resume")["recovered"]) == told
    # written from the records, not run again: each trial finished once in the log
    assert sorted(e["trial"] for e in log if "trial" in e) == list(range(6))
    runs = child_runs(directory)
    assert sorted(int(r.data.tags["nasbench.trial_id"]) for r in runs) == list(range(6))
    assert all(r.info.status == "FINISHED" for r in runs)
    store = Benchmark(directory / "benchmark.db")
    ok = {t.user_attrs["arch_hash"] for t in study.trials if t.user_attrs["status"] == "ok"}
    assert len(store) == len(ok) and all(store.lookup(h, "digits", 1, 0)["status"] == "ok" for h in ok)
    assert {store.lookup(h, "digits", 1, 0)["mlflow_run_id"] for h in ok} <= {r.info.run_id for r in runs}


def test_a_trial_in_the_outbox_but_still_running_in_optuna_is_told_not_rerun(ray_runtime, tracking_uri, tmp_path):
    """The driver died between keeping a trial's record and telling Optuna: ``--resume``
    tells Optuna from the record (the trial is not run again) and writes its run and row."""
    from nasbench.store import Benchmark
    from nasbench.study import STUDY_NAME, optuna_storage
    from nasbench.trial_writer import Outbox
    from search_spaces import arch_hash, arch_to_dict, get_space

    first = run_search(
        config(tmp_path, experiment="between", trials=2, tracking_uri=tracking_uri), evaluate=slow_trials
    )
    directory = first.experiment_dir
    study = optuna.load_study(study_name=STUDY_NAME, storage=optuna_storage(directory))
    trial = study.ask()
    arch = get_space("macro", (1, 8, 8)).sample(trial)
    trial.set_user_attr("arch", arch_to_dict(arch))
    trial.set_user_attr("arch_hash", arch_hash(arch))
    Outbox(directory / "results.jsonl").add(
        {
            "trial": trial.number,
            "arch": arch_to_dict(arch),
            "arch_hash": arch_hash(arch),
            "rerun": False,
            "status": "ok",
            "reason": None,
            "values": [0.625],
            "metrics": {"epoch": 1, "val_acc": 0.625},
            "curves": [{"epoch": 1, "val_acc": 0.625}],
            "robust": None,
        }
    )

    resumed = run_search(
        config(tmp_path, experiment="between", trials=3, resume=True, tracking_uri=tracking_uri),
        evaluate=refuse_to_train,
    )
    assert (resumed.finished, resumed.complete) == (3, 3)
    told = load_study(directory).trials[2]
    assert (told.state.name, told.value, told.user_attrs["status"]) == ("COMPLETE", 0.625, "ok")
    log = [json.loads(line) for line in (directory / "search.log").read_text().splitlines()]
    resume = next(e for e in log if e.get("event") == "resume")
    assert (resume["recovered"], resume["rerun"], resume["remaining"]) == ([2], [], 0)
    run = next(r for r in child_runs(directory, tracking_uri) if r.data.tags["nasbench.trial_id"] == "2")
    assert run.info.status == "FINISHED" and run.data.metrics["val_acc"] == 0.625
    row = Benchmark(directory / "benchmark.db").lookup(arch_hash(arch), "digits", 1, 0)
    assert (row["status"], row["val_acc"], row["mlflow_run_id"]) == ("ok", 0.625, run.info.run_id)


def refuse_to_train(arch, context, report):
    raise AssertionError("this trial should have been answered from its record")
