"""`nasbench search`: real Ray Tune + Optuna + MLflow + benchmark store on digits.

Ray starts once for the module (it costs seconds on 2 cores); searches are tiny: a
few trials of one epoch, or stand-in trials that report numbers without training.
"""

import json
import math
import sys

import pytest

from nasbench.cli import main
from nasbench.errors import UserError
from nasbench.progress import ProgressState
from nasbench.search import SearchConfig, run_search


@pytest.fixture(scope="module")
def ray_runtime():
    import ray
    from ray import cloudpickle

    # the stand-in trials below are defined here: ship them by value to the workers
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory):
    """One MLflow database for the module (creating its tables costs seconds); each
    search still gets its own MLflow experiment."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def config(tmp_path, **values):
    defaults = dict(experiments_dir=tmp_path / "experiments", epochs=1, trials=4, concurrency=2,
                    batch_size=64, progress=False, export_top=2)
    return SearchConfig(**{**defaults, **values})


def fake_metrics(arch, context, report):
    """A stand-in trial: deterministic numbers from the architecture, no training."""
    layers = arch["layers"]
    width = sum(layer["filters"] for layer in layers)
    return {"val_acc": round(1.0 - 1.0 / (1 + width / 50), 6), "params": 100 * width,
            "macs": 1000 * width + len(layers)}


def mlflow_runs(summary, tracking_uri):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    parent = client.get_run(summary.mlflow_run_id)
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.`mlflow.parentRunId` = '{summary.mlflow_run_id}'")
    return client, parent, children


def test_search_trains_records_and_exports(ray_runtime, tracking_uri, tmp_path):
    import optuna

    from nasbench.checkpoint import load_checkpoint
    from nasbench.store import Benchmark

    summary = run_search(config(tmp_path, experiment="first", tracking_uri=tracking_uri))
    assert (summary.finished, summary.complete, summary.failed) == (4, 4, 0)
    assert not summary.interrupted

    # Optuna: four COMPLETE trials whose values are the store's val_acc
    study = optuna.load_study(study_name="search", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(summary.experiment_dir / "optuna.journal"))))
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 4
    store = Benchmark(summary.experiment_dir / "benchmark.db")
    for trial in study.trials:
        row = store.lookup(trial.user_attrs["arch_hash"], "digits", 1, 0)
        assert row["status"] == "ok" and row["val_acc"] == pytest.approx(trial.value)
        assert len(row["curves"]) == 1 and row["params"] > 0 and row["macs"] > 0
    # a search that trained learns something: digits has 10 classes
    assert max(t.value for t in study.trials) > 0.3

    # MLflow: a parent run and one finished child per trial, created in the workers
    client, parent, children = mlflow_runs(summary, tracking_uri)
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["trials_finished"] == 4
    assert sorted(int(r.data.tags["nasbench.trial_id"]) for r in children) == [0, 1, 2, 3]
    assert {r.data.tags["nasbench.status"] for r in children} == {"ok"}
    assert all(r.info.status == "FINISHED" for r in children)
    stored_runs = {store.lookup(t.user_attrs["arch_hash"], "digits", 1, 0)["mlflow_run_id"] for t in study.trials}
    assert stored_runs == {r.info.run_id for r in children}

    # the best architecture is exported (arch JSON + safetensors) and registered
    assert [p.name[:2] for p in summary.exported] == ["01", "02"]
    model, arch, meta = load_checkpoint(summary.exported[0])
    assert arch == summary.best[0]["arch"]
    assert summary.best[0]["val_acc"] == max(t.value for t in study.trials)
    version = client.get_model_version_by_alias("nasbench-first", "best-val")
    assert version.run_id in {r.info.run_id for r in children}

    # the same search again on the same store: every trial answered from the store
    again = run_search(config(tmp_path, experiment="second", store=summary.experiment_dir / "benchmark.db",
                              export_top=0, tracking_uri=tracking_uri))
    assert (again.finished, again.complete, again.deduplicated) == (4, 4, 4)
    assert len(store) == 4
    assert [r["val_acc"] for r in again.best] == [r["val_acc"] for r in summary.best]
    _, _, children = mlflow_runs(again, tracking_uri)
    assert {r.data.tags["nasbench.status"] for r in children} == {"deduplicated"}


def test_multi_objective_search_returns_the_pareto_front(ray_runtime, tracking_uri, tmp_path):
    summary = run_search(config(tmp_path, experiment="pareto", trials=8, objectives=["val_acc", "params"],
                                sampler="nsga2", export_top=0, tracking_uri=tracking_uri),
                         evaluate=fake_metrics)
    assert summary.pareto and summary.complete == 8
    lines = [json.loads(line) for line in (summary.experiment_dir / "search.log").read_text().splitlines()]
    points = {(e["val_acc"], e["params"]) for e in lines if e.get("status") in ("ok", "deduplicated")}
    front = {(r["val_acc"], r["params"]) for r in summary.best}

    def dominated(p):
        return any(q[0] >= p[0] and q[1] <= p[1] and q != p for q in points)

    assert front == {p for p in points if not dominated(p)}


def test_robust_accuracy_is_measured_in_the_loop(ray_runtime, tracking_uri, tmp_path):
    from nasbench.store import Benchmark

    summary = run_search(config(tmp_path, experiment="robust", trials=2, objectives=["val_acc", "robust_acc"],
                                robust_attack="fgsm", robust_eps=0.3, robust_samples=64, export_top=0,
                                concurrency=1, tracking_uri=tracking_uri))
    assert summary.complete == 2
    store = Benchmark(summary.experiment_dir / "benchmark.db")
    for row in summary.best:
        stored = store.lookup(row["arch_hash"], "digits", 1, 0)
        assert stored["robust"] == [{"attack": "fgsm", "norm": "Linf", "eps": 0.3,
                                     "accuracy": pytest.approx(row["robust_acc"])}]
        # a one-epoch model under FGSM at 0.3 loses accuracy
        assert 0.0 <= row["robust_acc"] < row["val_acc"]


def test_replay_answers_from_a_recorded_benchmark(ray_runtime, tracking_uri, tmp_path):
    first = run_search(config(tmp_path, experiment="record", trials=4, export_top=0, tracking_uri=tracking_uri),
                       evaluate=fake_metrics)
    replay = run_search(config(tmp_path, experiment="replay", trials=4, export_top=0, tracking_uri=tracking_uri,
                               replay=first.experiment_dir / "benchmark.db"))
    # same seed, same sampler: the same architectures, answered without training
    assert replay.complete == 4 and replay.failed == 0 and replay.deduplicated == 0
    assert [r["val_acc"] for r in replay.best] == [r["val_acc"] for r in first.best]


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
    from nasbench.search import prepare_experiment

    cfg = config(tmp_path, experiment="taken", trials=7)
    prepare_experiment(cfg)
    with pytest.raises(UserError, match="--resume"):
        prepare_experiment(cfg)
    resumed, _ = prepare_experiment(config(tmp_path, experiment="taken", trials=9, resume=True, epochs=5))
    assert resumed.trials == 9  # runtime options come from the new command line ...
    assert resumed.epochs == 1  # ... what is searched from the saved config
