"""`nasbench attack` and nasbench.evaluation: bundles, MLflow runs, store rows, bad input.

Models are tiny macro architectures trained for a few epochs on digits and saved with
``save_checkpoint``; attacks run on 48-64 test points with few steps.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from PIL import Image

from nasbench.checkpoint import load_checkpoint, save_checkpoint
from nasbench.cli import main
from nasbench.config import TrainConfig
from nasbench.models import wrap_normalized
from nasbench.train import train_model

EPS = [0.0, 0.1, 0.3]


def make_checkpoint(directory, digits, *, filters=8, seed=0, epochs=3, meta_extra=None):
    """Train a two-layer macro CNN on digits briefly and save it as a platform checkpoint."""
    from search_spaces import Arch, ConvLayer, arch_hash, arch_to_dict, build_model

    arch = Arch(layers=(ConvLayer(filters=filters), ConvLayer(filters=2 * filters, stride=2)))
    torch.manual_seed(seed)
    model = wrap_normalized(build_model(arch, digits.input_shape, digits.num_classes), digits)
    result = train_model(model, digits, TrainConfig(epochs=epochs, device="cpu"), seed=seed)
    meta = {
        "dataset": "digits",
        "input_shape": list(digits.input_shape),
        "num_classes": digits.num_classes,
        "mean": list(digits.mean),
        "std": list(digits.std),
        "test_acc": result.test_acc,
        "arch_hash": arch_hash(arch),
        "budget": epochs,
        "seed": seed,
        **(meta_extra or {}),
    }
    save_checkpoint(directory, result.model, arch_to_dict(arch), meta)
    return directory, arch_hash(arch), result


@pytest.fixture(scope="module")
def checkpoint(digits, tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "found", digits, meta_extra={"mlflow_run_id": None})


def _predict(model, x):
    with torch.no_grad():
        return model(x).argmax(1)


def run_cli(argv):
    """``main(argv)`` with its standard output and error captured: (exit code, out, err)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def record_search_row(db_path, directory, arch_hash, trained, **extra):
    """Record the checkpoint's run in a benchmark store, as a search does (``extra``: more
    of the row's fields); returns its arch."""
    from nasbench.store import Benchmark

    arch = json.loads((directory / "arch.json").read_text())
    with Benchmark(db_path) as bench:
        bench.record(
            {
                "arch_hash": arch_hash,
                "dataset": "digits",
                "budget": 3,
                "seed": 0,
                "space": "macro",
                "arch": arch,
                "status": "ok",
                "val_acc": trained.val_acc,
                **extra,
            }
        )
    return arch


@dataclass(frozen=True)
class AttackRun:
    """One `nasbench attack` of the checkpoint into an experiment whose store has its row."""

    directory: Path
    arch_hash: str
    arch: dict
    experiment: Path
    out: str
    bundle: Path
    record: dict
    model: torch.nn.Module
    clean: float

    @property
    def report(self):
        return self.record["report"]

    @property
    def worst(self):
        return {w["eps"]: w["robust_accuracy"] for w in self.report["worst_case"]}


@pytest.fixture(scope="module")
def attacked(checkpoint, digits, tmp_path_factory):
    directory, arch_hash, trained = checkpoint
    root = tmp_path_factory.mktemp("attack") / "experiments"
    experiment = root / "e1"
    experiment.mkdir(parents=True)
    # A search result: the store has its row, and robust accuracies must land there.
    from search_spaces import arch_from_dict

    arch = record_search_row(experiment / "benchmark.db", directory, arch_hash, trained)
    assert arch_from_dict(arch) is not None

    code, out, err = run_cli(
        [
            "attack",
            "--model",
            str(directory),
            "--attacks",
            "fgsm,pgd:steps=5",
            "--eps",
            "0,0.1,0.3",
            "--n",
            "64",
            "--experiment",
            "e1",
            "--experiments-dir",
            str(root),
        ]
    )
    assert code == 0, err
    bundles = list((experiment / "evaluations").iterdir())
    assert len(bundles) == 1
    record = json.loads((bundles[0] / "evaluation.json").read_text())
    model, _, _ = load_checkpoint(directory)
    index = torch.tensor(record["indices"])
    clean = float((_predict(model, digits.test.x[index]) == digits.test.y[index]).float().mean())
    return AttackRun(directory, arch_hash, arch, experiment, out, bundles[0], record, model, clean)


def test_the_bundle_holds_the_models_numbers_on_the_chosen_points(attacked):
    record, model = attacked.record, attacked.model
    index = torch.tensor(record["indices"])
    assert record["n"] == 64 == len(index) == len(set(record["indices"]))
    assert attacked.report["clean_accuracy"] == pytest.approx(attacked.clean)
    assert record["model"]["clean_acc"] == pytest.approx(attacked.clean)
    assert record["model"]["params"] == sum(p.numel() for p in model.parameters())
    assert record["model"]["macs"] > 0 and record["model"]["latency_ms"] > 0
    assert record["model"]["kind"] == "found" and record["model"]["spec"] == attacked.arch
    assert record["dataset"] == "digits" and record["seed"] == 0 and record["targeted"] is False
    assert record["versions"]["torch"] == torch.__version__.split("+")[0]
    assert record["command"].startswith("nasbench attack")


def test_the_worst_case_is_per_example_and_falls_as_eps_grows(attacked):
    report, worst = attacked.report, attacked.worst
    assert sorted(worst) == EPS
    assert worst[0.0] == pytest.approx(attacked.clean)
    for eps in EPS[1:]:
        per_attack = [r["robust_accuracy"] for r in report["results"] if r["eps"] == eps]
        assert len(per_attack) == 2
        assert worst[eps] <= min(per_attack) + 1e-12  # per-example worst case, never above any attack
    assert worst[0.3] < worst[0.1] < worst[0.0]  # an undefended model breaks as eps grows
    assert {c["name"] for c in report["checks"]} >= {"monotone-in-eps", "reaches-chance"}


def test_adversarial_examples_lie_in_the_ball_are_misclassified_and_drawn(attacked):
    from safetensors.torch import load_file

    tensors = load_file(attacked.bundle / "examples.safetensors")
    key = max((k for k in tensors if k.endswith("/adversarial")), key=lambda k: float(k.split("eps")[1].split("/")[0]))
    prefix = key.rsplit("/", 1)[0]
    adv, original = tensors[f"{prefix}/adversarial"], tensors[f"{prefix}/clean"]
    assert (adv - original).abs().max() <= 0.3 + 1e-5
    assert torch.equal(_predict(attacked.model, adv), tensors[f"{prefix}/adv_pred"])
    assert (tensors[f"{prefix}/adv_pred"] != tensors[f"{prefix}/labels"]).all()
    with Image.open(attacked.bundle / "grid.png") as image:
        image.verify()


def test_robust_accuracies_reach_the_store_row_worst_case_included(attacked):
    from nasbench.store import Benchmark

    with Benchmark(attacked.experiment / "benchmark.db") as bench:
        row = bench.lookup(attacked.arch_hash, "digits", 3, 0)
    stored = {(r["attack"], r["eps"]): r["accuracy"] for r in row["robust"]}
    assert stored[("worst", 0.1)] == pytest.approx(attacked.worst[0.1])
    assert stored[("pgd-5", 0.3)] == pytest.approx(attacked.report["results"][-1]["robust_accuracy"])
    assert attacked.record["store"]["status"] == "recorded"


def test_the_mlflow_run_has_the_robust_accuracies_and_the_bundle_as_artifacts(attacked):
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{attacked.experiment.resolve() / 'mlflow.db'}")
    run = client.get_run(attacked.record["mlflow_run_id"])
    assert run.data.metrics["robust_acc.worst.linf.eps_0.1000"] == pytest.approx(attacked.worst[0.1])
    assert run.data.metrics["clean_acc"] == pytest.approx(attacked.clean)
    assert run.data.tags["nasbench.role"] == "evaluation"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")}
    assert artifacts == {"evaluation/evaluation.json", "evaluation/examples.safetensors", "evaluation/grid.png"}


def test_the_printed_summary_names_the_worst_case_the_bundle_and_the_checks(attacked):
    assert "worst case" in attacked.out and str(attacked.bundle) in attacked.out
    assert "monotone-in-eps" in attacked.out


def test_two_models_give_a_transfer_matrix(checkpoint, digits, tmp_path, capsys):
    first, _, _ = checkpoint
    second, _, _ = make_checkpoint(tmp_path / "wide", digits, filters=12, seed=1, epochs=2)
    root = tmp_path / "experiments"
    code = main(
        [
            "attack",
            "--model",
            f"{first},{second}",
            "--attacks",
            "fgsm,pgd:steps=5",
            "--eps",
            "0,0.1,0.3",
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
    evaluations = root / "pair" / "evaluations"
    records = {p.parent.name: json.loads(p.read_text()) for p in evaluations.glob("*/evaluation.json")}
    assert len(records) == 2
    matrix = json.loads((evaluations / "transfer.json").read_text())
    assert sorted(matrix["sources"]) == sorted(records)
    for label, record in records.items():
        # Every model is judged on the same points: the clean accuracies agree across files.
        assert matrix["clean_accuracy"][label] == pytest.approx(record["report"]["clean_accuracy"])
        for source in matrix["sources"]:
            assert 0.0 <= matrix["robust_accuracy"][source][label] <= matrix["clean_accuracy"][label] + 0.25
    assert matrix["eps"] in (0.1, 0.3) and matrix["attack"]["name"] == "pgd"
    assert "transfer" in captured.out


def test_classic_model_is_trained_once_and_reused(digits, tmp_path, capsys):
    root = tmp_path / "experiments"
    argv = [
        "attack",
        "--model",
        "lenet5",
        "--epochs",
        "1",
        "--attacks",
        "fgsm",
        "--eps",
        "0,0.2",
        "--n",
        "32",
        "--no-checks",
        "--no-tracking",
        "--experiment",
        "classic",
        "--experiments-dir",
        str(root),
    ]
    assert main(argv) == 0
    first = capsys.readouterr()
    assert "epoch   1/1" in first.err
    weights = root / "classic" / "models" / "lenet5-digits-e1-s0" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    assert main(argv) == 0
    second = capsys.readouterr()
    assert "epoch" not in second.err and weights.stat().st_mtime_ns == stamp
    record = json.loads((root / "classic" / "evaluations" / "lenet5" / "evaluation.json").read_text())
    assert record["model"]["kind"] == "classic" and record["model"]["spec"] == {"kind": "classic", "name": "lenet5"}


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--attacks", "pgd,nosuchattack"], "unknown attack 'nosuchattack'"),
        (["--eps", "0,2"], "out of range"),
        (["--eps", "0,abc"], "not a number"),
        (["--n", "0"], "invalid n"),
    ],
)
def test_bad_attack_options_exit_2_with_one_line(extra, message, checkpoint, tmp_path, capsys):
    directory, _, _ = checkpoint
    code = main(["attack", "--model", str(directory), "--no-tracking", "--experiments-dir", str(tmp_path), *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_missing_and_corrupt_checkpoints_exit_2(checkpoint, tmp_path, capsys):
    directory, _, _ = checkpoint
    common = ["--attacks", "fgsm", "--eps", "0,0.1", "--n", "16", "--no-tracking", "--experiments-dir", str(tmp_path)]
    assert main(["attack", "--model", str(tmp_path / "nowhere" / "ckpt"), *common]) == 2
    assert "no checkpoint directory" in capsys.readouterr().err

    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    for name in ("arch.json", "meta.json"):
        (corrupt / name).write_text((directory / name).read_text())
    (corrupt / "model.safetensors").write_bytes(b"\x00garbage, not safetensors" * 10)
    assert main(["attack", "--model", str(corrupt), *common]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1 and "weights cannot be loaded safely" in errors[0]
    assert not (tmp_path / "default" / "evaluations").exists()


def test_evaluate_models_python_api(checkpoint, digits, tmp_path):
    from nasbench.evaluation import evaluate_models
    from nasbench.evaluation_record import read_evaluations
    from nasbench.model_loading import ModelInfo

    directory, _, _ = checkpoint
    model, arch, meta = load_checkpoint(directory)
    calls = []
    evaluations = evaluate_models(
        {"mine": (model, ModelInfo(label="mine", spec=arch, source=str(directory), meta=meta))},
        digits,
        "fgsm",
        [0.0, 0.2],
        n=40,
        targeted=False,
        seed=3,
        out_dir=tmp_path,
        checks=False,
        progress=lambda label, done, total, what: calls.append((label, done, total)),
    )
    (evaluation,) = evaluations
    assert evaluation.report.n == 40 and evaluation.record["seed"] == 3
    assert calls and calls[-1][0] == "mine" and calls[-1][1] == calls[-1][2]  # the bar ends full
    assert [r.model.label for r in read_evaluations(tmp_path)] == ["mine"]
    assert evaluation.store_status.startswith("no benchmark store")


def test_a_store_the_search_recorded_and_that_is_gone_is_not_created_anew(tmp_path, monkeypatch, capsys):
    from nasbench.search import SearchConfig

    monkeypatch.chdir(tmp_path)
    # a relative store is recorded with its absolute path: later commands run from other folders
    recorded = SearchConfig(tracking_uri="sqlite:///elsewhere.db").tracking_uri
    assert recorded == f"sqlite:///{tmp_path / 'elsewhere.db'}"
    experiment = tmp_path / "experiments" / "gone"
    experiment.mkdir(parents=True)
    (experiment / "config.yaml").write_text(f"dataset: digits\ntracking_uri: {recorded}\n")
    assert (
        main(
            ["attack", "--model", "lenet5", "--experiment", "gone", "--experiments-dir", str(tmp_path / "experiments")]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert f"was tracked to {recorded}, and that store does not exist" in err and err.count("\n") == 1
    assert not (tmp_path / "elsewhere.db").exists() and not (experiment / "mlflow.db").exists()
