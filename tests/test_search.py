"""`nasbench search`: real Ray Tune + Optuna + MLflow + benchmark store on digits.

Ray starts once per test session and every search here shares one MLflow database
(creating its tables costs a second or more). Each search costs its worker start-up
(seconds: fresh actors import Ray Tune and torch), so there are few of them: one real
training search that the dedup and replay tests reuse, one multi-objective search that
also measures robust accuracy, and stand-in trials elsewhere.
"""

import json
import math
import sys

import pytest
from ray import cloudpickle

from nasbench.cli import main
from nasbench.errors import UserError
from nasbench.progress import ProgressState
from nasbench.search import SearchConfig, run_search

# the stand-in trials defined here run inside the Ray workers: ship them by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def config(tmp_path, **values):
    defaults = dict(
        experiments_dir=tmp_path / "experiments",
        epochs=1,
        trials=4,
        concurrency=2,
        batch_size=64,
        progress=False,
        export_top=2,
    )
    return SearchConfig(**{**defaults, **values})


def fake_metrics(arch, context, report):
    """A stand-in trial: deterministic numbers from the architecture, no training."""
    layers = arch["layers"]
    width = sum(layer["filters"] for layer in layers)
    return {
        "val_acc": round(1.0 - 1.0 / (1 + width / 50), 6),
        "params": 100 * width,
        "macs": 1000 * width + len(layers),
    }


def stand_in_curves(arch, context, report):
    """A stand-in trial with per-epoch curves: val_acc and train_acc at every epoch of the
    budget; its final val_acc is the last epoch's, as in real training."""
    width = sum(layer["filters"] for layer in arch["layers"])
    for epoch in range(1, context.budget + 1):
        report({"epoch": epoch, "val_acc": epoch / 10, "train_acc": epoch / 20, "train_loss": 1 / epoch})
    return {
        "val_acc": context.budget / 10,
        "train_acc": context.budget / 20,
        "params": 100 * width,
        "macs": 1000 * width,
    }


def mlflow_runs(summary, tracking_uri):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    parent = client.get_run(summary.mlflow_run_id)
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{summary.mlflow_run_id}'"
    )
    return client, parent, children


@pytest.fixture(scope="module")
def trained(ray_runtime, tracking_uri, tmp_path_factory):
    """One real search: 4 architectures trained for one epoch on digits, its checkpoints kept
    by Ray Tune in a storage of their own (as on a cluster: a folder every node mounts)."""
    tmp_path = tmp_path_factory.mktemp("trained")
    return tmp_path, run_search(
        config(tmp_path, experiment="first", tracking_uri=tracking_uri, checkpoint_storage=str(tmp_path / "shared"))
    )


def test_search_trains_records_and_exports(trained, tracking_uri):
    import optuna

    from nasbench.checkpoint import load_checkpoint
    from nasbench.data import load_dataset
    from nasbench.store import Benchmark
    from nasbench.tracking import dataset_digest

    _, summary = trained
    assert (summary.finished, summary.complete, summary.failed) == (4, 4, 0)
    assert not summary.interrupted

    # Optuna: four COMPLETE trials whose values are the store's val_acc
    study = optuna.load_study(
        study_name="search",
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(summary.experiment_dir / "optuna.journal"))
        ),
    )
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 4
    store = Benchmark(summary.experiment_dir / "benchmark.db")
    for trial in study.trials:
        row = store.lookup(trial.user_attrs["arch_hash"], "digits", 1, 0)
        assert row["status"] == "ok" and row["val_acc"] == pytest.approx(trial.value)
        assert len(row["curves"]) == 1 and row["params"] > 0 and row["macs"] > 0
        assert row["latency_ms"] > 0  # measured for every trial, not only for the latency objective
    # a search that trained learns something: digits has 10 classes
    assert max(t.value for t in study.trials) > 0.3

    # MLflow: a parent run and one finished child per trial, written by the driver, each
    # with its params, final metrics, arch.json and the search's dataset as its input
    client, parent, children = mlflow_runs(summary, tracking_uri)
    digest = dataset_digest(load_dataset("digits", seed=0, val_fraction=SearchConfig().val_fraction))
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["trials_finished"] == 4
    assert [i.dataset.digest for i in parent.inputs.dataset_inputs] == [digest]
    assert sorted(int(r.data.tags["nasbench.trial_id"]) for r in children) == [0, 1, 2, 3]
    assert {r.data.tags["nasbench.status"] for r in children} == {"ok"}
    assert all(r.info.status == "FINISHED" for r in children)
    by_number = {int(r.data.tags["nasbench.trial_id"]): r for r in children}
    for trial in study.trials:
        run = by_number[trial.number]
        assert run.data.metrics["val_acc"] == pytest.approx(trial.value)
        assert run.data.metrics["latency_ms"] > 0 and run.data.metrics["params"] > 0
        assert run.data.params["train.epochs"] == "1" and run.data.params["dataset"] == "digits"
        assert run.data.tags["nasbench.arch_hash"] == trial.user_attrs["arch_hash"]
        assert "nasbench.reason" not in run.data.tags
        assert "arch.json" in {f.path for f in client.list_artifacts(run.info.run_id)}
        [dataset_input] = run.inputs.dataset_inputs
        assert (dataset_input.dataset.name, dataset_input.dataset.digest) == ("digits", digest)
        for key in ("val_acc", "train_acc", "train_loss"):  # one point per epoch, none at step 0
            assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [1]
    stored_runs = {store.lookup(t.user_attrs["arch_hash"], "digits", 1, 0)["mlflow_run_id"] for t in study.trials}
    assert stored_runs == {r.info.run_id for r in children}

    # the weights went through Ray Tune's checkpoints in the storage given, nothing of Tune's
    # in the experiment; the driver filed them with the trial's run id
    tmp_path, _ = trained
    assert len(list((tmp_path / "shared").rglob("model.safetensors"))) == 4
    assert not (summary.experiment_dir / "ray").exists()
    for trial in study.trials:
        meta = json.loads(
            (summary.experiment_dir / "checkpoints" / trial.user_attrs["arch_hash"][:16] / "meta.json").read_text()
        )
        assert meta["mlflow_run_id"] == by_number[trial.number].info.run_id

    # the best architectures are exported (arch JSON + safetensors), each one logged as an
    # MLflow model of its trial run and registered; the winner carries the alias
    assert [p.name[:2] for p in summary.exported] == ["01", "02"]
    model, arch, meta = load_checkpoint(summary.exported[0])
    assert arch == summary.best[0]["arch"]
    assert summary.best[0]["val_acc"] == max(t.value for t in study.trials)
    exported_runs = [by_number[row["trial"]].info.run_id for row in summary.best[:2]]
    versions = client.search_model_versions("name = 'nasbench-first'")
    assert sorted((int(v.version), v.run_id) for v in versions) == [(1, exported_runs[0]), (2, exported_runs[1])]
    assert client.get_model_version_by_alias("nasbench-first", "best-val").run_id == exported_runs[0]


def test_a_resume_with_nothing_left_registers_no_model_again(trained, tracking_uri):
    from mlflow import MlflowClient

    tmp_path, summary = trained
    client = MlflowClient(tracking_uri)
    before = sorted((v.version, v.run_id) for v in client.search_model_versions("name = 'nasbench-first'"))
    again = run_search(config(tmp_path, experiment="first", resume=True), evaluate=refuse_to_train)
    assert again.finished == 4
    after = sorted((v.version, v.run_id) for v in client.search_model_versions("name = 'nasbench-first'"))
    assert after == before and len(before) == 2
    assert client.get_model_version_by_alias("nasbench-first", "best-val").run_id == before[0][1]


def test_the_same_search_on_the_same_store_trains_nothing(trained, tracking_uri):
    from nasbench.store import Benchmark

    tmp_path, summary = trained
    again = run_search(
        config(
            tmp_path,
            experiment="second",
            store=summary.experiment_dir / "benchmark.db",
            export_top=0,
            tracking_uri=tracking_uri,
        ),
        evaluate=refuse_to_train,
    )
    assert (again.finished, again.complete, again.deduplicated) == (4, 4, 4)
    assert len(Benchmark(summary.experiment_dir / "benchmark.db")) == 4
    assert [r["val_acc"] for r in again.best] == [r["val_acc"] for r in summary.best]
    _, _, children = mlflow_runs(again, tracking_uri)
    assert {r.data.tags["nasbench.status"] for r in children} == {"deduplicated"}
    assert len(children) == 4
    # answered from the store, never loaded the data: still the search's dataset input
    assert all([i.dataset.name for i in r.inputs.dataset_inputs] == ["digits"] for r in children)


def test_trial_curves_have_one_point_per_epoch_and_the_final_metrics_at_the_last(ray_runtime, tracking_uri, tmp_path):
    """The final metrics join the curves at the last epoch's step: no step-0 point before
    them (the UI would draw final, epoch 1, epoch 2, ...), and no second point at the end."""
    summary = run_search(
        config(tmp_path, experiment="curves", trials=2, epochs=3, export_top=0, tracking_uri=tracking_uri),
        evaluate=stand_in_curves,
    )
    assert summary.complete == 2
    client, _, children = mlflow_runs(summary, tracking_uri)
    for run in children:
        for key, scale in (("val_acc", 10), ("train_acc", 20)):
            history = sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: m.step)
            assert [(m.step, m.value) for m in history] == [(1, 1 / scale), (2, 2 / scale), (3, 3 / scale)]
        assert [m.step for m in client.get_metric_history(run.info.run_id, "params")] == [3]
        assert run.data.metrics["val_acc"] == 0.3


def test_replay_answers_from_a_recorded_benchmark(trained, tracking_uri):
    tmp_path, summary = trained
    replay = run_search(
        config(
            tmp_path,
            experiment="replay",
            trials=4,
            export_top=0,
            tracking_uri=tracking_uri,
            replay=summary.experiment_dir / "benchmark.db",
        ),
        evaluate=refuse_to_train,
    )
    # same seed, same sampler: the same architectures, answered from the recording
    assert replay.complete == 4 and replay.failed == 0 and replay.deduplicated == 0
    assert [r["val_acc"] for r in replay.best] == [r["val_acc"] for r in summary.best]
    log = [json.loads(line) for line in (replay.experiment_dir / "search.log").read_text().splitlines()]
    assert sorted(e["trial"] for e in log if e.get("status") == "ok") == [0, 1, 2, 3]


def test_cell_subspace_search_replays_the_shipped_benchmark(ray_runtime, tracking_uri, tmp_path):
    """The space's options from the command line select the recorded subspace of
    tests/fixtures/cell_digits.parquet; every trial is answered from it, none trained."""
    from pathlib import Path

    from nasbench.store import Benchmark

    recorded = tmp_path / "cell_digits.db"
    with Benchmark(recorded) as bench:
        bench.import_parquet(Path(__file__).parent / "fixtures" / "cell_digits.parquet")
    code = main(
        [
            "search",
            "--space",
            "cell",
            "--space-option",
            "channels=8",
            "--space-option",
            "cells_per_stage=1",
            "--space-option",
            "ops=[skip_connect,nor_conv_1x1,nor_conv_3x3]",
            "--replay",
            str(recorded),
            "--epochs",
            "2",
            "--trials",
            "6",
            "--seed",
            "3",
            "--experiments-dir",
            str(tmp_path / "exp"),
            "--experiment",
            "replayed",
            "--tracking-uri",
            tracking_uri,
            "--export-top",
            "0",
            "--no-register-models",
            "--no-progress",
        ]
    )
    assert code == 0
    log = [json.loads(line) for line in (tmp_path / "exp" / "replayed" / "search.log").read_text().splitlines()]
    trials = [entry for entry in log if "trial" in entry]
    assert len(trials) == 6 and all(entry["status"] == "ok" for entry in trials)
    with Benchmark(recorded) as bench:
        for entry in trials:  # seed 3's recorded numbers, not a new training run
            row = bench.lookup(entry["arch_hash"], "digits", 2, 3)
            assert (entry["val_acc"], entry["params"]) == (pytest.approx(row["val_acc"]), row["params"])


def test_unknown_space_option_is_refused_before_the_experiment_exists(tmp_path, capsys):
    code = main(
        [
            "search",
            "--space",
            "cell",
            "--space-option",
            "width=8",
            "--experiments-dir",
            str(tmp_path),
            "--experiment",
            "typo",
            "--no-progress",
        ]
    )
    assert code == 2
    assert "unknown option(s) width; the cell space takes cells_per_stage, channels, ops" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists()


def refuse_to_train(arch, context, report):
    """A trial that should have been answered from a store or a replay."""
    raise AssertionError("this trial should not have been evaluated")


def test_multi_objective_search_with_robust_accuracy_returns_the_pareto_front(ray_runtime, tracking_uri, tmp_path):
    from nasbench.store import Benchmark

    summary = run_search(
        config(
            tmp_path,
            experiment="pareto",
            trials=4,
            objectives=["val_acc", "robust_acc"],
            sampler="nsga2",
            robust_attack="fgsm",
            robust_eps=0.3,
            robust_samples=64,
            tracking_uri=tracking_uri,
        )
    )
    assert summary.pareto and summary.complete == 4
    lines = [json.loads(line) for line in (summary.experiment_dir / "search.log").read_text().splitlines()]
    points = {(e["val_acc"], e["robust_acc"]) for e in lines if e.get("status") == "ok"}
    assert len(points) == 4
    front = {(r["val_acc"], r["robust_acc"]) for r in summary.best}

    def dominated(p):
        return any(q[0] >= p[0] and q[1] >= p[1] and q != p for q in points)

    assert front == {p for p in points if not dominated(p)}

    # robust accuracy was measured in the loop and stored with the attack that measured it
    store = Benchmark(summary.experiment_dir / "benchmark.db")
    for row in summary.best:
        stored = store.lookup(row["arch_hash"], "digits", 1, 0)
        assert stored["robust"] == [
            {"attack": "fgsm", "norm": "Linf", "eps": 0.3, "accuracy": pytest.approx(row["robust_acc"])}
        ]
        # a one-epoch model under FGSM at 0.3 loses accuracy
        assert 0.0 <= row["robust_acc"] < row["val_acc"]

    # every exported front member is a registered model of its trial run; the aliases
    # name the front's best clean and best robust members
    client, _, children = mlflow_runs(summary, tracking_uri)
    run_of = {int(r.data.tags["nasbench.trial_id"]): r.info.run_id for r in children}
    best_val = max(summary.best, key=lambda r: r["val_acc"])
    best_robust = max(summary.best, key=lambda r: r["robust_acc"])
    expected = {run_of[r["trial"]] for r in [*summary.best[:2], best_val, best_robust]}
    versions = client.search_model_versions("name = 'nasbench-pareto'")
    assert sorted(v.run_id for v in versions) == sorted(expected)
    for alias, winner in (("best-val", best_val), ("best-robust", best_robust)):
        assert client.get_model_version_by_alias("nasbench-pareto", alias).run_id == run_of[winner["trial"]]


def test_a_console_passed_to_the_search_draws_its_progress(ray_runtime, tracking_uri, tmp_path):
    """Ray pickles the Tuner with its callbacks; a rich Console holds locks that cannot be."""
    import copy
    import io
    import pickle

    from rich.console import Console

    from nasbench.progress import SearchProgress

    progress = SearchProgress(total=3, console=Console(file=io.StringIO()))
    with progress:
        assert pickle.dumps(progress)  # what Tuner does with its callbacks
        restored = copy.deepcopy(progress)  # the same __getstate__ path, without unpickling bytes
    assert restored._console is None and restored.state.total == 3

    out = io.StringIO()
    summary = run_search(
        config(tmp_path, experiment="console", trials=3, export_top=0, progress=True, tracking_uri=tracking_uri),
        evaluate=fake_metrics,
        console=Console(file=out, width=200),
    )
    assert summary.complete == 3
    assert "3/3 done" in out.getvalue() and "0 failed" in out.getvalue()


def test_progress_state_counts_best_and_pareto():
    state = ProgressState(total=5)
    for _ in range(3):
        state.start_trial()
    state.finish_trial({"trial_complete": True, "status": "ok", "val_acc": 0.5})
    state.finish_trial({"trial_complete": True, "status": "deduplicated", "val_acc": 0.7})
    state.finish_trial({"status": "failed", "reason": "boom", "trial_complete": True})
    assert (state.done, state.running, state.failed, state.deduplicated, state.best) == (3, 0, 1, 1, 0.7)
    assert "3/5 done" in state.line() and "best val_acc 0.7" in state.line()
    assert math.isfinite(state.eta) and state.eta > 0
    state.finish_trial({"epoch": 1, "val_acc": 0.99})  # stopped early: not a candidate for best
    assert state.pruned == 1 and state.best == 0.7

    pareto = ProgressState(total=4, objectives=["val_acc", "params"])
    for acc, params in ((0.9, 500), (0.8, 100), (0.85, 600), (0.95, 100)):
        pareto.finish_trial({"trial_complete": True, "val_acc": acc, "params": params})
    assert sorted(pareto.front) == [(0.95, -100)]
    assert "Pareto front 1" in pareto.line()


def test_cli_rejects_bad_input_with_one_line(tmp_path, capsys):
    assert main(["search", "--objectives", "val_acc,speed", "--experiments-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "objectives" in err
    assert main(["search", "--experiment", "nothing-here", "--resume", "--experiments-dir", str(tmp_path)]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_an_existing_experiment_needs_resume(tmp_path):
    from nasbench.search_experiment import prepare_experiment

    cfg = config(tmp_path, experiment="taken", trials=7)
    prepare_experiment(cfg)
    with pytest.raises(UserError, match="--resume"):
        prepare_experiment(cfg)
    resumed, _ = prepare_experiment(config(tmp_path, experiment="taken", trials=9, resume=True, epochs=5))
    assert resumed.trials == 9  # runtime options come from the new command line ...
    assert resumed.epochs == 1  # ... what is searched from the saved config


TRIAL_ALONE = """
import json, os, sys
from nasbench.config import TrainConfig
from nasbench.trial import evaluate_trial
from nasbench.trial_context import TrialContext

arch, arch_hash = json.loads(sys.argv[1]), sys.argv[2]
reports = []

def report(metrics, checkpoint_dir=None):
    reports.append({"metrics": metrics, "files": sorted(os.listdir(checkpoint_dir)) if checkpoint_dir else None})

context = TrialContext(dataset="digits", data_dir="data", val_fraction=0.2, seed=0, space="macro",
                       train=TrainConfig(epochs=2, batch_size=64, threads=1).model_dump())
evaluate_trial(arch, arch_hash, 7, context, report)
heavy = ("mlflow", "sqlalchemy", "optuna", "nasbench.store", "nasbench.tracking", "nasbench.trial_writer")
print(json.dumps({"reports": reports, "imported": [name for name in heavy if name in sys.modules]}, default=str))
"""


def test_a_trial_is_pure_compute_and_imports_no_mlflow(tmp_path):
    """In a fresh interpreter a trial trains, reports each epoch and then its final result
    with its weights, and never imports MLflow, SQLAlchemy, Optuna or the benchmark store."""
    import subprocess

    import optuna

    from search_spaces import arch_hash, arch_to_dict, get_space

    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1)).ask()
    arch = get_space("macro", (1, 8, 8)).sample(trial)
    out = subprocess.run(
        [sys.executable, "-c", TRIAL_ALONE, json.dumps(arch_to_dict(arch)), arch_hash(arch)],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["imported"] == []
    first, final = seen["reports"]
    assert first["metrics"]["epoch"] == 1 and first["files"] is None
    assert final["metrics"]["trial_complete"] and final["metrics"]["status"] == "ok"
    assert final["metrics"]["trial_number"] == 7 and final["metrics"]["params"] > 0
    assert [entry["epoch"] for entry in final["metrics"]["curves"]] == [1, 2]
    assert final["files"] == ["arch.json", "meta.json", "model.safetensors"]
