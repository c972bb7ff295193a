"""`nasbench demo`, the main job: search, attacks, transfer, report, MLflow and store,
checked by what it leaves behind."""

import json
import re
import sys

import mlflow
import pytest

from nasbench.cli import main
from nasbench.store import Benchmark


def check_demo_outputs(directory, trials: int, models: int, capsys):
    printed = capsys.readouterr().out
    assert f"report:    {directory / 'report.html'}" in printed
    # plain `nasbench` when it is on PATH, else the program as it was started
    assert re.search(r"dashboard: (nasbench|\S+/bin/nasbench) ui --experiment", printed)

    # every trial is in the store and in MLflow, nested under the search's parent run
    with Benchmark(directory / "benchmark.db") as store:
        assert store.stats()["rows"] == trials
        assert store.stats()["robust_settings"] > 1  # the search's FGSM, and the attacks' eps grid
    client = mlflow.MlflowClient(f"sqlite:///{directory / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(directory.name)
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    roles = [run.data.tags.get("nasbench.role") for run in runs]
    assert roles.count("search") == 1 and roles.count("trial") == trials
    parent = next(run for run in runs if run.data.tags.get("nasbench.role") == "search")
    assert all(
        run.data.tags.get("mlflow.parentRunId") == parent.info.run_id
        for run in runs
        if run.data.tags.get("nasbench.role") == "trial"
    )
    assert roles.count("evaluation") >= models

    # found architectures and the classic baselines were attacked on the same points
    evaluations = sorted((directory / "evaluations").glob("*/evaluation.json"))
    assert len(evaluations) == models
    kinds = set()
    trial_runs = {run.info.run_id for run in runs if run.data.tags.get("nasbench.role") == "trial"}
    attack_links = {
        run.data.tags.get("nasbench.model_run_id") for run in runs if run.data.tags.get("nasbench.role") == "evaluation"
    }
    for path in evaluations:
        record = json.loads(path.read_text())
        kinds.add(record["model"]["kind"])
        if record["model"]["kind"] == "found":
            # the attack's robust accuracies joined the trial's benchmark row, and its run links to the trial's
            assert record["store"]["status"] == "recorded"
            assert record["model"]["run_id"] in trial_runs & attack_links
        report = record["report"]
        worst = {row["eps"]: row["robust_accuracy"] for row in report["worst_case"]}
        assert report["clean_accuracy"] > 0.3  # far above chance (10%) on digits
        assert worst[max(worst)] < report["clean_accuracy"]
        assert (path.parent / "grid.png").is_file()
        # and under the 15 common corruptions at severities 1, 3, 5, against the first classic baseline
        corruptions = record["corruptions"]
        assert len(corruptions["corruptions"]) == 15 and corruptions["severities"] == [1, 3, 5]
        assert corruptions["errors"]["baseline"] == "lenet5"
    assert kinds == {"found", "classic"}
    transfer = json.loads((directory / "evaluations" / "transfer.json").read_text())
    assert len(transfer["sources"]) == models

    summary = json.loads((directory / "report.json").read_text())
    assert len(summary["models"]) == models
    # the command that remakes the report, not the whole demo
    assert summary["reproducibility"]["report"]["command"].startswith(f"nasbench report --experiment {directory.name}")
    html = (directory / "report.html").read_text()
    for section in ("Threat model", "Transferability", "Common corruptions", "Sanity checks", "Reproducibility"):
        assert section in html
    assert "corruptions" in summary["figures"] and all(m["corruption"] for m in summary["models"])


def test_small_demo_end_to_end(ray_runtime, tmp_path, capsys, monkeypatch):
    argv = [
        "demo",
        "--experiments-dir",
        str(tmp_path),
        "--experiment",
        "small",
        "--trials",
        "2",
        "--epochs",
        "1",
        "--top",
        "2",
        "--baselines",
        "lenet5",
        "--attacks",
        "fgsm,pgd",
        "--eps",
        "0,0.1,0.3",
        "--n",
        "40",
    ]
    monkeypatch.setattr(sys, "argv", ["/usr/local/bin/nasbench", *argv])  # as the console script runs it
    assert main(argv) == 0
    # both trials are attacked: the Pareto front, filled up by validation accuracy
    check_demo_outputs(tmp_path / "small", trials=2, models=3, capsys=capsys)


@pytest.mark.e2e
def test_the_default_demo(ray_runtime, tmp_path, capsys):
    """The README's first command, as it runs: 12 trials, 2 found + 2 classic models."""
    assert main(["demo", "--experiments-dir", str(tmp_path), "--experiment", "default"]) == 0
    check_demo_outputs(tmp_path / "default", trials=12, models=4, capsys=capsys)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--attacks", "pgd,bogus"], "unknown attack 'bogus'"),
        (["--eps", "0,5"], "eps 5 is out of range"),
        (["--baselines", "lenet6"], "unknown model 'lenet6'"),
        (["--trials", "1"], "invalid trials"),
        (["--device", "tpu"], "invalid device: must be auto, cpu, cuda or cuda:N"),
        (["--corruptions", "fog,rain"], "unknown corruption 'rain'"),
    ],
)
def test_bad_demo_options_stop_before_any_work(argv, message, tmp_path, capsys):
    assert main(["demo", "--experiments-dir", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())  # nothing was started, nothing written
