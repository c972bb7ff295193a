"""`nasbench attack --corruptions`: evaluation.json, the benchmark store (queried, exported,
imported), MLflow, the report, a named baseline, and bad input (one line, exit 2)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from test_attack_cli import make_checkpoint, record_search_row, run_cli

from attacks import evaluate_corruptions
from nasbench.checkpoint import load_checkpoint
from nasbench.cli import main
from nasbench.store import Benchmark


@pytest.fixture(scope="module")
def found(digits, tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "found", digits, meta_extra={"mlflow_run_id": None})


@dataclass(frozen=True)
class CorruptionRun:
    """One `nasbench attack --corruptions` of the checkpoint into an experiment whose store has its row."""

    directory: Path
    arch_hash: str
    root: Path
    experiment: Path
    out: str
    record: dict

    @property
    def corruptions(self):
        return self.record["corruptions"]


@pytest.fixture(scope="module")
def corrupted(found, tmp_path_factory):
    directory, arch_hash, trained = found
    root = tmp_path_factory.mktemp("corruptions") / "experiments"
    experiment = root / "c1"
    experiment.mkdir(parents=True)
    record_search_row(experiment / "benchmark.db", directory, arch_hash, trained)  # its row gets the numbers
    code, out, err = run_cli(
        [
            "attack",
            "--model",
            str(directory),
            "--corruptions",
            "fog,contrast,jpeg",
            "--severities",
            "1,5",
            "--n",
            "64",
            "--experiment",
            "c1",
            "--experiments-dir",
            str(root),
        ]
    )
    assert code == 0, err
    record = json.loads(next((experiment / "evaluations").glob("*/evaluation.json")).read_text())
    return CorruptionRun(directory, arch_hash, root, experiment, out, record)


def test_corruptions_alone_run_no_attack_and_record_each_corruption_and_severity(corrupted):
    assert corrupted.record["report"]["results"] == []  # no attack ran
    assert corrupted.corruptions["corruptions"] == ["fog", "contrast", "jpeg_compression"]
    assert corrupted.corruptions["severities"] == [1, 5]


def test_the_corruption_numbers_are_the_models_on_the_recorded_points(corrupted, digits):
    corruptions = corrupted.corruptions
    model, _, _ = load_checkpoint(corrupted.directory)
    index = torch.tensor(corrupted.record["indices"])
    again = evaluate_corruptions(
        model,
        digits.test.x[index],
        digits.test.y[index],
        "fog,contrast,jpeg",
        [1, 5],
        seed=0,
        batch_size=256,
        device="cpu",
    )
    assert corruptions["accuracy"]["contrast"]["5"] == pytest.approx(again.accuracy["contrast"][5])
    assert corruptions["mean_accuracy"] == pytest.approx(again.mean_accuracy)
    assert corruptions["clean_accuracy"] == pytest.approx(corrupted.record["report"]["clean_accuracy"])
    assert corruptions["accuracy"]["contrast"]["5"] < corruptions["accuracy"]["contrast"]["1"]
    assert corruptions["errors"]["mce"] == pytest.approx(1.0)  # its own baseline


def test_the_printed_summary_names_the_mean_corruption_accuracy_and_each_corruption(corrupted):
    assert "mean corruption accuracy" in corrupted.out and "contrast" in corrupted.out


def test_the_store_row_holds_each_pair_and_the_means_ranked_by_corruption_accuracy(corrupted):
    corruptions = corrupted.corruptions
    with Benchmark(corrupted.experiment / "benchmark.db") as bench:
        row = bench.lookup(corrupted.arch_hash, "digits", 3, 0)
        assert bench.top(1, by="corruption_acc")[0]["corruption_acc"] == pytest.approx(corruptions["mean_accuracy"])
    stored = {(r["attack"], r["eps"]): r["accuracy"] for r in row["robust"] if r["norm"] == "corruption"}
    assert stored[("fog", 5.0)] == pytest.approx(corruptions["accuracy"]["fog"]["5"])
    assert stored[("fog", 0.0)] == pytest.approx(corruptions["corruption_mean"]["fog"])
    assert stored[("mean", 1.0)] == pytest.approx(corruptions["severity_mean"]["1"])


def test_the_corruption_rows_go_through_parquet_and_back_and_are_queried(corrupted, tmp_path, capsys):
    corruptions = corrupted.corruptions
    db = str(corrupted.experiment / "benchmark.db")
    parquet, copy = str(tmp_path / "c.parquet"), str(tmp_path / "copy.db")
    assert main(["bench", "export", "--db", db, parquet]) == 0
    assert main(["bench", "import", "--db", copy, parquet]) == 0
    capsys.readouterr()
    assert main(["bench", "top", "--db", copy, "--by", "corruption:contrast:5", "--json"]) == 0
    top = json.loads(capsys.readouterr().out)
    assert top[0]["corruption:contrast:5"] == pytest.approx(corruptions["accuracy"]["contrast"]["5"])
    assert main(["bench", "query", "--db", copy, corrupted.arch_hash]) == 0
    assert "accuracy under common corruptions" in capsys.readouterr().out


def test_the_mlflow_run_has_the_corruption_accuracies(corrupted):
    from mlflow import MlflowClient

    corruptions = corrupted.corruptions
    tracking = f"sqlite:///{corrupted.experiment.resolve() / 'mlflow.db'}"
    run = MlflowClient(tracking).get_run(corrupted.record["mlflow_run_id"])
    assert run.data.metrics["corruption_acc"] == pytest.approx(corruptions["mean_accuracy"])
    assert run.data.metrics["corruption_acc.fog.s5"] == pytest.approx(corruptions["accuracy"]["fog"]["5"])
    assert run.data.params["corruptions"] == "fog,contrast,jpeg_compression"


def test_the_report_shows_the_heatmap_the_table_and_the_summary_column(corrupted, tmp_path):
    out = tmp_path / "report.html"
    argv = ["report", "--experiment", "c1", "--experiments-dir", str(corrupted.root), "--out", str(out)]
    assert main([*argv, "--no-tracking"]) == 0
    summary = json.loads(out.with_suffix(".json").read_text())
    assert "corruptions" in summary["figures"]
    assert summary["models"][0]["corruption"]["mean_acc"] == pytest.approx(corrupted.corruptions["mean_accuracy"])
    page = out.read_text()
    assert 'id="corruptions"' in page and "corruption acc (mCE)" in page


def test_corruptions_beside_attacks_with_a_named_baseline(found, digits, tmp_path, capsys):
    first, _, _ = found
    second, _, _ = make_checkpoint(tmp_path / "wide", digits, filters=12, seed=1, epochs=2)
    root = tmp_path / "experiments"
    code = main(
        [
            "attack",
            "--model",
            f"{first},{second}",
            "--attacks",
            "fgsm",
            "--eps",
            "0,0.1",
            "--corruptions",
            "gaussian_noise,defocus_blur",
            "--severities",
            "2,4",
            "--n",
            "48",
            "--no-checks",
            "--no-tracking",
            "--experiment",
            "pair",
            "--experiments-dir",
            str(root),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    records = {
        r.parent.name: json.loads(r.read_text())
        for r in (root / "pair" / "evaluations").glob("*/*.json")
        if r.name == "evaluation.json"
    }
    assert len(records) == 2
    baseline = json.loads((root / "pair" / "evaluations" / "transfer.json").read_text())["sources"][0]
    assert baseline in records  # the first model, named in every model's errors
    for record in records.values():
        assert record["report"]["results"]  # the attack ran too
        errors = record["corruptions"]["errors"]
        assert errors["baseline"] == baseline
        other = records[baseline]["corruptions"]
        for name in ("gaussian_noise", "defocus_blur"):
            mine = sum(1 - record["corruptions"]["accuracy"][name][s] for s in ("2", "4"))
            theirs = sum(1 - other["accuracy"][name][s] for s in ("2", "4"))
            assert errors["ce"][name] == (pytest.approx(mine / theirs) if theirs else None)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--corruptions", "fog,rain"], "unknown corruption 'rain'"),
        (["--corruptions", "fog", "--severities", "0,6"], "outside 1-5"),
        (["--attacks", "none"], "--attacks none leaves nothing to evaluate"),
        (["--corruptions", "fog", "--corruption-baseline", "alexnet"], "corruption baseline 'alexnet'"),
        (["--severities", "1,2"], "--severities and --corruption-baseline need --corruptions"),
    ],
)
def test_bad_corruption_input_is_one_line_and_exit_2(found, tmp_path, capsys, extra, message):
    directory, _, _ = found
    code = main(
        ["attack", "--model", str(directory), "--n", "16", "--no-tracking", "--experiments-dir", str(tmp_path), *extra]
    )
    err = capsys.readouterr().err.strip().splitlines()
    # one error line, no traceback (a baseline is checked once the models and their labels are loaded,
    # after the data line)
    errors = [line for line in err if line.startswith("nasbench attack: error: ")]
    assert code == 2 and len(errors) == 1 and message in errors[0] and errors[0] == err[-1], err
    assert not any("Traceback" in line for line in err)
    assert not list(tmp_path.glob("*/evaluations/*/evaluation.json"))


def test_the_search_objective_measures_the_stated_subset_on_validation_images(found, digits):
    from attacks import subset_accuracies
    from nasbench.search import SearchConfig
    from nasbench.trial import _corruption
    from nasbench.trial_context import OBJECTIVES, CorruptionConfig

    assert OBJECTIVES["corruption_acc"] == ("corruption_acc", "max")
    config = SearchConfig(objectives=["val_acc", "corruption_acc"], corruption_samples=64)
    assert config.corruption_subset == ["gaussian_noise:3", "defocus_blur:3", "fog:3", "jpeg_compression:3"]
    model, _, _ = load_checkpoint(found[0])
    rows = _corruption(model, digits, CorruptionConfig(("fog:5", "contrast:5"), 64), seed=0)
    index = torch.randperm(len(digits.val), generator=torch.Generator().manual_seed(0))[:64]
    expected = subset_accuracies(model, digits.val.x[index], digits.val.y[index], ["fog:5", "contrast:5"], seed=0)
    assert [(r["attack"], r["eps"]) for r in rows] == [("fog", 5.0), ("contrast", 5.0), ("mean", 0.0)]
    assert rows[1]["accuracy"] == pytest.approx(expected[("contrast", 5)])
    assert rows[-1]["accuracy"] == pytest.approx(sum(expected.values()) / 2)
    assert all(r["norm"] == "corruption" for r in rows)


def test_a_bad_search_subset_is_one_line_and_exit_2(tmp_path, capsys):
    code = main(
        [
            "search",
            "--objectives",
            "val_acc,corruption_acc",
            "--corruption-subset",
            "fog:3,rain:2",
            "--experiments-dir",
            str(tmp_path),
            "--trials",
            "1",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "rain" in err[0], err
    assert not list(tmp_path.iterdir())
