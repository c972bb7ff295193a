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
from nasbench.train import StopTraining, TrainingDiverged, train_model

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
    assert "nasbench: warning: --augment flip on digits: a mirrored digit is not the same digit\n" in \
        capsys.readouterr().err


def test_checkpoint_round_trip(trained, digits, tmp_path):
    meta = {"input_shape": list(digits.input_shape), "num_classes": 10, "mean": list(digits.mean),
            "std": list(digits.std)}
    save_checkpoint(tmp_path / "ckpt", trained.model, LENET, meta)
    model, arch, loaded_meta = load_checkpoint(tmp_path / "ckpt")
    assert arch == LENET and loaded_meta["num_classes"] == 10
    with torch.no_grad():
        assert torch.allclose(model(digits.test.x[:32]), trained.model.cpu()(digits.test.x[:32]), atol=1e-6)


class _RunsCode:
    def __reduce__(self):
        import os
        return (os.system, ("echo pwned > pwned.txt",))


def test_checkpoint_that_runs_code_on_load_is_refused(trained, digits, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    meta = {"input_shape": list(digits.input_shape), "num_classes": 10, "mean": list(digits.mean),
            "std": list(digits.std)}
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
    np.savez(own, x=np.random.default_rng(0).integers(0, 255, (40, 8, 8), dtype=np.uint8),
             y=np.arange(40) % 2)
    assert main(["train", "--model", "arch.json", "--dataset", f"npz:{own}", "--epochs", "1"]) == 0
    assert (tmp_path / "experiments" / "models" / "lenet5-pets" / "model.safetensors").is_file()


def test_sgd_gets_its_own_default_learning_rate():
    assert TrainConfig(optimizer="sgd").lr == 0.1
    assert TrainConfig().lr == 0.01 and TrainConfig(optimizer="sgd", lr=0.5).lr == 0.5
