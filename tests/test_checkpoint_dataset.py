"""A checkpoint knows its dataset: `attack` and `describe` default to it from any folder,
another --dataset gets one warning line, a recorded dataset that is gone or checkpoints
of different datasets are one line and exit 2, a failed attack leaves no folder behind,
and a report never mixes datasets.

The checkpoints are LeNet-5s trained with `nasbench train` on .npz files written as a
user writes them: scikit-learn's digits, 8x8 with the grey levels reversed (so that the
bundled `digits` is other data of the same shape) and resized to 16x16.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from formats import digit_images

from nasbench.checkpoint import load_checkpoint
from nasbench.cli import main
from nasbench.data import load_dataset

QUICK_ATTACK = ["--attacks", "fgsm", "--eps", "0,0.1", "--n", "60", "--no-checks", "--no-tracking"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two datasets and a LeNet-5 checkpoint of each, trained from a folder with relative paths."""
    home = tmp_path_factory.mktemp("user")
    images, labels = digit_images(n=600)
    np.savez(home / "inverted8.npz", x=255 - images, y=labels)
    np.savez(home / "digits16.npz", x=digit_images(size=16, n=600)[0], y=labels)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(home)
        for name in ("inverted8", "digits16"):
            assert (
                main(
                    [
                        "train",
                        "--model",
                        "lenet5",
                        "--dataset",
                        f"npz:{name}.npz",
                        "--epochs",
                        "6",
                        "--out",
                        f"ck-{name}",
                    ]
                )
                == 0
            )
    return home


def _attack(*argv: str, root) -> int:
    return main(["attack", *argv, *QUICK_ATTACK, "--experiments-dir", str(root)])


def _evaluation(root, experiment: str) -> dict:
    (path,) = (root / experiment / "evaluations").glob("*/evaluation.json")
    return json.loads(path.read_text())


def test_a_checkpoint_records_its_dataset_with_absolute_paths(trained):
    meta = json.loads((trained / "ck-inverted8" / "meta.json").read_text())
    assert meta["dataset"] == "npz:inverted8.npz"  # as typed: the benchmark store's key
    assert meta["data"] == {"dataset": f"npz:{trained / 'inverted8.npz'}", "data_dir": None}


def test_attack_without_dataset_uses_the_checkpoints_own_from_another_folder(trained, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # nowhere near the data
    assert _attack("--model", str(trained / "ck-inverted8"), "--experiment", "own", root=tmp_path / "x") == 0
    err = capsys.readouterr().err
    assert "warning" not in err
    assert (
        f"data npz:{trained / 'inverted8.npz'}: " in err
        and f"(the data {trained / 'ck-inverted8'} was trained on)" in err
    )
    record = _evaluation(tmp_path / "x", "own")
    assert record["dataset"] == f"npz:{trained / 'inverted8.npz'}"
    # the clean accuracy is the model's on that file's own test points
    data = load_dataset(f"npz:{trained / 'inverted8.npz'}")
    model, _, _ = load_checkpoint(trained / "ck-inverted8")
    index = torch.tensor(record["indices"])
    with torch.no_grad():
        clean = (model(data.test.x[index]).argmax(1) == data.test.y[index]).float().mean().item()
    assert record["report"]["clean_accuracy"] == pytest.approx(clean)
    assert clean > 0.8


def test_another_dataset_given_on_purpose_gets_one_warning_line(trained, tmp_path, capsys):
    assert (
        _attack("--model", str(trained / "ck-inverted8"), "--dataset", "digits", "--experiment", "other", root=tmp_path)
        == 0
    )
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warnings == [
        f"nasbench: warning: evaluating on digits as asked, not on the data the model was trained "
        f"on: npz:{trained / 'inverted8.npz'} ({trained / 'ck-inverted8'})"
    ]
    record = _evaluation(tmp_path, "other")
    assert record["dataset"] == "digits"
    assert record["report"]["clean_accuracy"] < 0.5  # reversed grey levels: what the warning is for
    # the same file under another spelling of its path is the checkpoint's own data: no warning
    assert (
        _attack(
            "--model",
            str(trained / "ck-inverted8"),
            "--dataset",
            f"npz:{trained}/./inverted8.npz",
            "--experiment",
            "same",
            root=tmp_path,
        )
        == 0
    )
    assert "warning" not in capsys.readouterr().err


def test_a_recorded_dataset_that_is_gone_is_one_line_and_exit_2(trained, tmp_path, capsys):
    moved = tmp_path / "moved"
    shutil.copytree(trained / "ck-digits16", tmp_path / "ck")
    shutil.copy(trained / "digits16.npz", tmp_path / "digits16.npz")
    meta = json.loads((tmp_path / "ck" / "meta.json").read_text())
    meta["data"]["dataset"] = f"npz:{tmp_path / 'digits16.npz'}"
    (tmp_path / "ck" / "meta.json").write_text(json.dumps(meta))
    (tmp_path / "digits16.npz").rename(tmp_path / "elsewhere.npz")
    assert _attack("--model", str(tmp_path / "ck"), "--experiment", "gone", root=moved) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        f"nasbench attack: error: {tmp_path / 'ck'} was trained on npz:{tmp_path / 'digits16.npz'}, which cannot be "
        f"loaded now (npz: no such file {tmp_path / 'digits16.npz'}); give --dataset (and --data-dir) where that "
        "data is now"
    ]
    assert not moved.exists()  # nothing created for a command that did nothing
    # where it is now, given on purpose: a warning, and the evaluation runs
    assert (
        _attack(
            "--model",
            str(tmp_path / "ck"),
            "--dataset",
            f"npz:{tmp_path / 'elsewhere.npz'}",
            "--experiment",
            "found",
            root=moved,
        )
        == 0
    )
    assert capsys.readouterr().err.count("nasbench: warning: evaluating on npz:") == 1


def test_checkpoints_of_different_datasets_need_dataset_to_share_an_evaluation(trained, tmp_path, capsys):
    both = f"{trained / 'ck-inverted8'},{trained / 'ck-digits16'}"
    assert _attack("--model", both, "--experiment", "mixed", root=tmp_path / "x") == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert (
        f"the models were trained on different datasets (npz:{trained / 'inverted8.npz'} "
        f"({trained / 'ck-inverted8'}); npz:{trained / 'digits16.npz'} ({trained / 'ck-digits16'}))"
    ) in err
    assert "give --dataset, or attack them separately" in err
    assert not (tmp_path / "x").exists()
    # given one on purpose, the checkpoint that cannot take its images is the one line
    assert (
        _attack(
            "--model",
            both,
            "--dataset",
            f"npz:{trained / 'inverted8.npz'}",
            "--experiment",
            "mixed",
            root=tmp_path / "x",
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("nasbench: warning:") == 1 and err.count("error") == 1
    assert (
        f"model {trained / 'ck-digits16'} takes 1x16x16 inputs but npz:{trained / 'inverted8.npz'} images are "
        f"1x8x8 (it was trained on npz:{trained / 'digits16.npz'})"
    ) in err
    assert not (tmp_path / "x").exists()


def test_a_failed_attack_leaves_no_empty_experiment_folder_and_keeps_what_was_recorded(trained, tmp_path, capsys):
    from nasbench.commands.attack import removed_if_left_empty

    # a checkpoint that cannot take the images given: it fails after the checkpoints load
    argv = ("--model", str(trained / "ck-digits16"), "--dataset", "digits", "--experiment", "e")
    assert _attack(*argv, root=tmp_path / "experiments") == 2
    capsys.readouterr()
    assert not (tmp_path / "experiments").exists()
    # an experiment that already holds something keeps it, and its folders
    kept = tmp_path / "experiments" / "e" / "evaluations" / "earlier"
    kept.mkdir(parents=True)
    (kept / "evaluation.json").write_text("{}")
    (tmp_path / "experiments" / "e" / "empty-before").mkdir()
    assert _attack(*argv, root=tmp_path / "experiments") == 2
    assert (kept / "evaluation.json").read_text() == "{}" and (tmp_path / "experiments" / "e" / "empty-before").is_dir()
    # a failure after the folder was made removes the folders it made, never a file
    target = tmp_path / "new" / "exp"
    with pytest.raises(RuntimeError), removed_if_left_empty(target):
        (target / "evaluations" / "m").mkdir(parents=True)
        raise RuntimeError("an attack that failed half-way")
    assert not (tmp_path / "new").exists()
    with pytest.raises(RuntimeError), removed_if_left_empty(target):
        (target / "evaluations" / "m").mkdir(parents=True)
        (target / "mlflow.db").write_bytes(b"recorded")
        raise RuntimeError("failed after recording")
    assert (target / "mlflow.db").read_bytes() == b"recorded" and not (target / "evaluations").exists()


def test_describe_shows_the_checkpoints_dataset_and_warns_about_another(trained, capsys):
    checkpoint = str(trained / "ck-digits16")
    assert main(["describe", "--model", checkpoint, "--json"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["input_shape"] == [1, 16, 16] and described["dataset"] == f"npz:{trained / 'digits16.npz'}"
    assert main(["describe", "--model", checkpoint]) == 0
    assert f"dataset: npz:{trained / 'digits16.npz'} (the checkpoint's)" in capsys.readouterr().out
    assert main(["describe", "--model", checkpoint, "--dataset", "digits", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["input_shape"] == [1, 8, 8]
    assert captured.err.strip().splitlines() == [
        f"nasbench: warning: describing for digits inputs as asked, not for the data the checkpoint was trained on: "
        f"npz:{trained / 'digits16.npz'} ({checkpoint})"
    ]
    assert main(["describe", "--model", checkpoint, "--dataset", "digits", "--input", "1x8x8"]) == 2
    assert "give --input or --dataset, not both" in capsys.readouterr().err


def test_a_report_never_mixes_evaluations_of_different_datasets(trained, tmp_path, capsys):
    from search_spaces import Arch, ConvLayer, arch_to_dict

    root = tmp_path / "experiments"
    assert _attack("--model", str(trained / "ck-inverted8"), "--experiment", "r", root=root) == 0
    # a second model, a macro architecture trained on the bundled digits, into the same experiment
    (tmp_path / "arch.json").write_text(json.dumps(arch_to_dict(Arch(layers=(ConvLayer(filters=8),)))))
    assert main(["train", "--model", str(tmp_path / "arch.json"), "--epochs", "2", "--out", str(tmp_path / "ck")]) == 0
    assert _attack("--model", str(tmp_path / "ck"), "--experiment", "r", root=root) == 0
    labels = sorted(path.name for path in (root / "r" / "evaluations").iterdir())
    capsys.readouterr()
    common = ["--experiment", "r", "--experiments-dir", str(root), "--no-tracking"]
    assert main(["report", *common]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "measured on different datasets" in err
    assert f"npz:{trained / 'inverted8.npz'}: lenet5" in err and "choose the models of one with --models" in err
    assert not (root / "r" / "report.html").exists()
    macro = next(label for label in labels if label != "lenet5")
    assert main(["report", *common, "--models", macro]) == 0
    summary = json.loads((root / "r" / "report.json").read_text())
    assert summary["dataset"] == "digits" and [m["label"] for m in summary["models"]] == [macro]


def test_a_logged_model_is_attacked_on_the_dataset_its_checkpoint_recorded(trained, tmp_path, capsys):
    from mlflow import MlflowClient

    from nasbench.tracking import TrackingConfig, log_model

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=store)
    run = client.create_run(client.create_experiment("trained-by-hand"))
    model, arch, meta = load_checkpoint(trained / "ck-digits16")
    example = load_dataset(meta["data"]["dataset"]).val.x[:2]
    uri = log_model(
        TrackingConfig(store, "trained-by-hand"), run.info.run_id, model, example, None, arch=arch, meta=meta
    )
    capsys.readouterr()
    assert _attack("--model", uri, "--tracking-uri", store, "--experiment", "logged", root=tmp_path / "x") == 0
    err = capsys.readouterr().err
    assert f"data npz:{trained / 'digits16.npz'}: " in err and "warning" not in err
    assert _evaluation(tmp_path / "x", "logged")["dataset"] == f"npz:{trained / 'digits16.npz'}"


def test_a_searchs_exported_checkpoint_records_its_dataset_and_is_attacked_on_it(
    trained, tmp_path, monkeypatch, ray_runtime
):
    """A search on an npz given by a relative path: its trials load the data by its absolute
    path (a worker's folder need not be the driver's), and the exported best model is then
    attacked on that data from another folder, with no --dataset."""
    monkeypatch.chdir(trained)
    experiments = tmp_path / "experiments"
    assert (
        main(
            [
                "search",
                "--dataset",
                "npz:inverted8.npz",
                "--trials",
                "1",
                "--epochs",
                "1",
                "--experiment",
                "npz",
                "--experiments-dir",
                str(experiments),
                "--export-top",
                "1",
                "--no-progress",
            ]
        )
        == 0
    )
    (best,) = (experiments / "npz" / "best").iterdir()
    meta = json.loads((best / "meta.json").read_text())
    assert meta["dataset"] == "npz:inverted8.npz"
    assert meta["data"]["dataset"] == f"npz:{trained / 'inverted8.npz'}"
    monkeypatch.chdir(tmp_path)
    assert _attack("--model", str(best), "--experiment", "best", root=tmp_path / "attacks") == 0
    assert _evaluation(tmp_path / "attacks", "best")["dataset"] == f"npz:{trained / 'inverted8.npz'}"


@pytest.mark.parametrize(
    "colour, expected", [(False, [0.0, 0.05, 0.1, 0.2, 0.3]), (True, [0.0, 1 / 255, 2 / 255, 4 / 255, 8 / 255])]
)
def test_the_default_eps_sweep_follows_the_images_channels_not_the_datasets_name(tmp_path, colour, expected):
    """A user's greyscale digits get the MNIST-style radii that reach zero robust
    accuracy; colour images the CIFAR-style sweep."""
    from formats import write_image_folder

    if colour:
        dataset = f"imagefolder:{write_image_folder(tmp_path / 'colour')}"
    else:
        images, labels = digit_images(n=300)
        np.savez(tmp_path / "grey.npz", x=images, y=labels)
        dataset = f"npz:{tmp_path / 'grey.npz'}"
    assert (
        main(
            [
                "attack",
                "--model",
                "lenet5",
                "--dataset",
                dataset,
                "--epochs",
                "1",
                "--attacks",
                "fgsm",
                "--n",
                "20",
                "--no-checks",
                "--no-tracking",
                "--experiments-dir",
                str(tmp_path / "ex"),
            ]
        )
        == 0
    )
    results = _evaluation(tmp_path / "ex", "default")["report"]["results"]
    assert sorted({r["eps"] for r in results}) == pytest.approx(expected)
