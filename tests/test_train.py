"""The trainer and checkpoints: real accuracy on digits, determinism, safe loading."""

import json
import pickle

import numpy as np
import pytest
import torch

from nasbench.checkpoint import load_checkpoint, save_checkpoint
from nasbench.cli import main
from nasbench.config import TrainConfig
from nasbench.errors import DoubtfulInput, UserError
from nasbench.models import build_from_spec, wrap_normalized
from nasbench.train import StopTraining, TrainingCollapsed, TrainingDiverged, TrainResult, collapse_reason, train_model

LENET = {"kind": "classic", "name": "lenet5"}


def lenet(digits):
    return wrap_normalized(build_from_spec(LENET, digits.input_shape, digits.num_classes), digits)


@pytest.fixture(scope="module")
def trained(digits):
    cfg = TrainConfig(epochs=15, batch_size=32, lr=1e-2)
    return train_model(lenet(digits), digits, cfg, seed=0)


def test_lenet5_reaches_95_percent_on_digits(trained):
    assert trained.test_acc >= 0.95
    assert len(trained.history) == 15
    assert trained.history[-1]["train_loss"] < trained.history[0]["train_loss"]
    assert set(trained.history[0]) == {"epoch", "train_loss", "train_acc", "val_acc", "epoch_seconds"}


def test_training_is_deterministic_by_seed(digits):
    cfg = TrainConfig(epochs=2)
    torch.manual_seed(3)
    first = train_model(lenet(digits), digits, cfg, seed=3)
    torch.manual_seed(3)  # the same initial weights
    second = train_model(lenet(digits), digits, cfg, seed=3)
    assert first.history[-1]["train_loss"] == second.history[-1]["train_loss"]
    assert first.test_acc == second.test_acc


def test_on_epoch_can_stop_training(digits):
    seen = []

    def stop_after_two(metrics):
        seen.append(metrics["epoch"])
        if metrics["epoch"] == 2:
            raise StopTraining

    result = train_model(lenet(digits), digits, TrainConfig(epochs=10), on_epoch=stop_after_two)
    assert seen == [1, 2] and result.stopped_early and result.test_acc is None


def test_nan_loss_is_reported_as_divergence(digits):
    linear = torch.nn.Linear(64, 10)
    torch.nn.init.constant_(linear.weight, 3e38)  # logits overflow to inf: the loss is NaN
    overflowing = wrap_normalized(torch.nn.Sequential(torch.nn.Flatten(), linear), digits)
    with pytest.raises(TrainingDiverged, match="diverged: loss became nan in epoch 1"):
        train_model(overflowing, digits, TrainConfig(epochs=2))


def test_a_last_batch_of_one_example_joins_the_batch_before(digits):
    # Two stride-3 layers take 8x8 digits to a 1x1 map, where batch norm needs two examples.
    one_by_one = {"kind": "macro", "layers": [{"filters": 8, "stride": 3}, {"filters": 8, "stride": 3}]}
    model = wrap_normalized(build_from_spec(one_by_one, digits.input_shape, digits.num_classes), digits)
    batch_size = (len(digits.train) - 1) // 3
    assert len(digits.train) % batch_size == 1
    result = train_model(model, digits, TrainConfig(epochs=1, batch_size=batch_size))
    assert result.history[0]["train_loss"] > 0


@pytest.mark.parametrize("schedule", ["onecycle", "cosine", "constant"])
@pytest.mark.parametrize("total_steps", [1, 2, 3, 4, 5])
def test_every_schedule_runs_however_few_steps(digits, schedule, total_steps):
    batch_size = len(digits.train) // total_steps + 1
    assert -(-len(digits.train) // batch_size) == total_steps
    cfg = TrainConfig(epochs=1, batch_size=batch_size, schedule=schedule)
    assert train_model(lenet(digits), digits, cfg).history[0]["train_loss"] > 0


def test_augmentation_and_mixup_train(digits):
    result = train_model(lenet(digits), digits, TrainConfig(epochs=1), augment=["crop", "erase", "mixup"])
    assert 0.0 <= result.val_acc <= 1.0 and result.history[0]["train_loss"] > 0


def test_flipping_digits_is_warned_about_in_one_line(digits, tmp_path, capsys):
    with pytest.warns(DoubtfulInput, match="a mirrored digit is not the same digit"):
        train_model(lenet(digits), digits, TrainConfig(epochs=1), augment=["flip", "cutmix"])
    assert main(["train", "--augment", "flip", "--epochs", "1", "--out", str(tmp_path / "flipped")]) == 0
    assert (
        "nasbench: warning: --augment flip on digits: a mirrored digit is not the same digit\n"
        in capsys.readouterr().err
    )


def test_checkpoint_round_trip(trained, digits, tmp_path):
    meta = {
        "input_shape": list(digits.input_shape),
        "num_classes": 10,
        "mean": list(digits.mean),
        "std": list(digits.std),
    }
    save_checkpoint(tmp_path / "ckpt", trained.model, LENET, meta)
    model, arch, loaded_meta = load_checkpoint(tmp_path / "ckpt")
    assert arch == LENET and loaded_meta["num_classes"] == 10
    with torch.no_grad():
        assert torch.allclose(model(digits.test.x[:32]), trained.model.cpu()(digits.test.x[:32]), atol=1e-6)


class _RunsCode:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > pwned.txt",))


# the hostile file is a protocol-4 pickle, which torch's weights-only reader notes before refusing it
@pytest.mark.filterwarnings("ignore:Detected pickle protocol 4:UserWarning")
def test_checkpoint_that_runs_code_on_load_is_refused(trained, digits, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    meta = {
        "input_shape": list(digits.input_shape),
        "num_classes": 10,
        "mean": list(digits.mean),
        "std": list(digits.std),
    }
    directory = save_checkpoint(tmp_path / "evil", trained.model, LENET, meta)
    hostile = pickle.dumps({"weights": _RunsCode()})
    (directory / "model.safetensors").write_bytes(hostile)
    with pytest.raises(UserError, match="cannot be loaded safely"):
        load_checkpoint(directory)
    (directory / "model.safetensors").unlink()
    (directory / "model.pt").write_bytes(hostile)
    with pytest.raises(UserError, match="refused|cannot be loaded"):
        load_checkpoint(directory)
    assert not (tmp_path / "pwned.txt").exists()


def test_corrupt_checkpoint_json(tmp_path):
    (tmp_path / "arch.json").write_text("{not json")
    (tmp_path / "meta.json").write_text("{}")
    with pytest.raises(UserError, match="arch.json is not valid JSON"):
        load_checkpoint(tmp_path)


def test_train_command_writes_a_loadable_checkpoint(tmp_path, capsys, digits):
    out = tmp_path / "lenet"
    assert main(["train", "--model", "lenet5", "--epochs", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "test accuracy" in printed and str(out) in printed
    meta = json.loads((out / "meta.json").read_text())
    assert len(meta["history"]) == 2 and meta["dataset"] == "digits"
    model, _, _ = load_checkpoint(out)
    accuracy = (model(digits.test.x).argmax(1) == digits.test.y).float().mean().item()
    assert accuracy == pytest.approx(meta["test_acc"], abs=1e-6)


def test_train_command_gives_one_result_per_seed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    histories = []
    for out in ("first", "second"):
        torch.manual_seed(len(out))  # whatever the global state was, --seed decides the weights
        assert main(["train", "--model", "lenet5", "--epochs", "1", "--seed", "4", "--out", out]) == 0
        histories.append(json.loads((tmp_path / out / "meta.json").read_text())["history"])
    strip = [[{k: v for k, v in epoch.items() if k != "epoch_seconds"} for epoch in h] for h in histories]
    assert strip[0] == strip[1]


def test_train_command_takes_a_checkpoints_classic_arch_json_and_names_its_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "arch.json").write_text(json.dumps(LENET))
    own = tmp_path / "my data" / "pets.npz"
    own.parent.mkdir()
    np.savez(own, x=np.random.default_rng(0).integers(0, 255, (40, 8, 8), dtype=np.uint8), y=np.arange(40) % 2)
    assert main(["train", "--model", "arch.json", "--dataset", f"npz:{own}", "--epochs", "1"]) == 0
    assert (tmp_path / "experiments" / "models" / "lenet5-pets" / "model.safetensors").is_file()


def test_sgd_gets_its_own_default_learning_rate():
    assert TrainConfig(optimizer="sgd").lr == 0.1
    assert TrainConfig().lr == 0.01 and TrainConfig(optimizer="sgd", lr=0.5).lr == 0.5


def finished(accuracy, loss, **values):
    """A TrainResult as training leaves it: three epochs, the last one's loss ``loss``."""
    history = [{"epoch": epoch, "train_loss": loss + 3 - epoch} for epoch in (1, 2, 3)]
    return TrainResult(model=torch.nn.Identity(), history=history, val_acc=accuracy, test_acc=accuracy, **values)


def test_collapse_is_an_accuracy_near_chance_or_a_loss_stuck_at_ln_k():
    assert (
        collapse_reason(finished(0.101, 0.5), 10)
        == "test accuracy 10.1% is within 5.0% of chance (10.0% for 10 classes)"
    )
    assert collapse_reason(finished(0.16, 0.5), 10) is None
    # the margin is at most half of chance: 6% of 100 classes learned something, 1.4% did not
    assert collapse_reason(finished(0.06, 3.0), 100) is None
    assert "within 0.5% of chance (1.0% for 100 classes)" in collapse_reason(finished(0.014, 3.0), 100)
    assert collapse_reason(finished(0.48, 2.276), 10) == (
        "final training loss 2.276 is stuck at ln 10 = 2.303, the loss of a uniform guess (test accuracy 48.0%)"
    )
    assert collapse_reason(finished(0.48, 2.2), 10) is None
    # label smoothing 0.9 puts the lowest reachable loss at 2.266: 2.27 is then a trained model
    assert collapse_reason(finished(0.9, 2.27), 10, label_smoothing=0.9) is None
    assert collapse_reason(finished(0.9, 2.27), 10) is not None
    # without a test split run, the validation accuracy decides; a pruned run is not judged
    assert collapse_reason(finished(0.1, 0.5, stopped_early=True), 10) is None
    unevaluated = finished(0.9, 0.5)
    unevaluated.test_acc, unevaluated.val_acc = None, 0.12
    assert collapse_reason(unevaluated, 10).startswith("val accuracy 12.0%")


def test_a_collapsed_result_raises_with_its_reason_where_that_is_a_failure():
    collapsed = finished(0.1, 2.3)
    collapsed.collapse = collapse_reason(collapsed, 10)
    with pytest.raises(TrainingCollapsed, match=r"training collapsed: test accuracy 10\.0% is within"):
        collapsed.raise_if_collapsed()
    finished(0.9, 0.1).raise_if_collapsed()  # a healthy result passes


def test_adversarial_training_that_collapses_says_so_in_one_warning_line(tmp_path, capsys):
    # PGD-AT at eps 0.3 from the first step, on 8x8 digits: LeNet-5 settles on a uniform guess
    out = tmp_path / "collapsed"
    assert main(["train", "--epochs", "4", "--adv", "pgd", "--eps", "0.3", "--adv-warmup", "0", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if line.startswith("nasbench: warning:")]
    assert len(warnings) == 1, captured.err
    assert warnings[0].startswith("nasbench: warning: training collapsed: ")
    assert "is stuck at ln 10 = 2.303" in warnings[0] or "of chance (10.0% for 10 classes)" in warnings[0]
    assert "checkpoint saved anyway" in warnings[0] and "--adv-warmup" in warnings[0]
    # the checkpoint is kept, and carries the reason and the warm-up it was trained with
    meta = json.loads((out / "meta.json").read_text())
    assert warnings[0].startswith(f"nasbench: warning: training collapsed: {meta['collapse']}; ")
    assert meta["train_config"]["adv_warmup"] == 0
    assert all(epoch["adv_eps"] == pytest.approx(0.3) for epoch in meta["history"])
    assert (out / "model.safetensors").is_file()

    # attacked and reported, the model is flagged at the top of the report and in its row
    common = ["--experiments-dir", str(tmp_path / "experiments"), "--experiment", "x", "--no-tracking"]
    assert (
        main(
            ["attack", "--model", str(out), "--attacks", "fgsm", "--eps", "0,0.1", "--n", "50", "--no-checks", *common]
        )
        == 0
    )
    assert main(["report", *common]) == 0
    summary = json.loads((tmp_path / "experiments" / "x" / "report.json").read_text())
    assert summary["collapsed"] == [{"model": "lenet5", "reason": meta["collapse"]}]
    html = (tmp_path / "experiments" / "x" / "report.html").read_text()
    assert 'id="training-collapsed"' in html and "lenet5 ⚠ training collapsed" in html
    assert html.count(meta["collapse"]) == 1


def test_adversarial_training_warms_eps_up_by_default(tmp_path, capsys):
    out = tmp_path / "warm"
    assert main(["train", "--epochs", "4", "--adv", "fgsm-rs", "--eps", "0.1", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    meta = json.loads((out / "meta.json").read_text())
    assert meta["train_config"]["adv_warmup"] == 2  # half the epochs
    # eps grows per step over the first 2 epochs: epoch 1 ends at half of 0.1, the rest at 0.1
    assert [epoch["adv_eps"] for epoch in meta["history"]] == pytest.approx([0.05, 0.1, 0.1, 0.1])
    assert "val" in captured.err and "eps 0.05  (" in captured.err
    assert meta["collapse"] is None and "warning" not in captured.err and meta["test_acc"] > 0.8


def test_a_warmup_longer_than_training_is_refused_in_one_line(tmp_path, capsys):
    assert main(["train", "--epochs", "2", "--adv", "pgd", "--adv-warmup", "3", "--out", str(tmp_path / "x")]) == 2
    assert (
        capsys.readouterr().err.strip()
        == "nasbench train: error: invalid adv-warmup: must not exceed epochs (2) (got 3.0)"
    )


def test_a_search_whose_training_collapses_records_each_trial_as_failed_with_the_reason(
    ray_runtime, tracking_uri, tmp_path, capsys
):
    import optuna
    from mlflow import MlflowClient

    from nasbench.store import Benchmark

    # at eps 1 the adversary may replace the whole image: nothing can be learnt, every net guesses
    assert (
        main(
            [
                "search",
                "--epochs",
                "1",
                "--trials",
                "2",
                "--adv",
                "fgsm-rs",
                "--adv-eps",
                "1",
                "--adv-warmup",
                "0",
                "--experiments-dir",
                str(tmp_path),
                "--experiment",
                "collapse",
                "--tracking-uri",
                tracking_uri,
                "--export-top",
                "0",
                "--no-progress",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "0 complete" in printed and "2 failed" in printed
    assert printed.count("failed: TrainingCollapsed: training collapsed: test accuracy") == 2

    directory = tmp_path / "collapse"
    study = optuna.load_study(
        study_name="search",
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(directory / "optuna.journal"))
        ),
    )
    assert [t.state.name for t in study.trials] == ["FAIL", "FAIL"]
    client = MlflowClient(tracking_uri)
    parent_id = (directory / "mlflow_run_id").read_text().strip()
    runs = {
        r.data.tags["nasbench.trial_id"]: r
        for r in client.search_runs(
            [client.get_run(parent_id).info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'"
        )
    }
    store = Benchmark(directory / "benchmark.db")
    for trial in study.trials:
        reason = trial.user_attrs["reason"]
        assert reason.startswith("TrainingCollapsed: training collapsed: test accuracy ")
        assert reason.endswith("of chance (10.0% for 10 classes)")
        row = store.lookup(trial.user_attrs["arch_hash"], "digits", 1, 0)
        assert row["status"] == "failed" and row["reason"] == reason
        run = runs[str(trial.number)]
        assert run.info.status == "FAILED" and run.data.tags["nasbench.status"] == "failed"
        assert run.data.tags["nasbench.reason"] == reason
        assert run.data.params["train.adv_warmup"] == "0.0"
