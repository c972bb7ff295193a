"""The GPU path's choices, exercised on the CPU: bfloat16 autocast, channels_last and
device checks. CI has no GPU, so the same code runs here with the switches turned on."""

import pytest
import torch
from test_cli import exit_code

from nasbench.config import TrainConfig
from nasbench.errors import UserError
from nasbench.models import build_from_spec, wrap_normalized
from nasbench.train import Placement, predict, select_device, train_model


def test_auto_means_on_for_cuda_and_off_for_the_cpu():
    cuda = Placement.resolve(torch.device("cuda"))
    assert cuda.amp and cuda.channels_last and cuda.memory_format is torch.channels_last
    cpu = Placement.resolve(torch.device("cpu"))
    assert not cpu.amp and not cpu.channels_last and cpu.memory_format is torch.contiguous_format
    assert Placement.resolve(torch.device("cuda"), amp="off", channels_last="off") == Placement(torch.device("cuda"))
    assert Placement.resolve(torch.device("cpu"), amp="on", channels_last="on") == Placement(
        torch.device("cpu"), True, True
    )


def test_autocast_computes_in_bfloat16_and_batches_are_channels_last():
    placement = Placement(torch.device("cpu"), amp=True, channels_last=True)
    conv = torch.nn.Conv2d(1, 4, 3).to(memory_format=torch.channels_last)
    batch = placement.batch(torch.rand(2, 1, 8, 8))
    assert batch.is_contiguous(memory_format=torch.channels_last)
    with placement.autocast():
        assert conv(batch).dtype == torch.bfloat16
    with Placement(torch.device("cpu")).autocast():
        assert conv(batch).dtype == torch.float32


def test_training_with_amp_and_channels_last_learns(digits):
    cfg = TrainConfig(epochs=6, device="cpu", amp="on", channels_last="on")
    model = wrap_normalized(build_from_spec({"kind": "classic", "name": "lenet5"}, digits.input_shape, 10), digits)
    result = train_model(model, digits, cfg, seed=0)
    assert result.test_acc > 0.8  # far above the 10% of chance, in bfloat16
    conv = next(m for m in result.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    # evaluation takes the same path: float32 predictions agree on nearly every image
    fp32 = predict(result.model, digits.test.x, Placement(torch.device("cpu")))
    bf16 = predict(result.model, digits.test.x, Placement(torch.device("cpu"), amp=True, channels_last=True))
    assert (fp32 == bf16).float().mean() > 0.97


def test_a_gpu_that_is_not_there_is_a_user_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    with pytest.raises(UserError, match="no CUDA device is available here"):
        select_device("cuda")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(UserError, match="only 1 CUDA device"):
        select_device("cuda:1")
    assert select_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--device", "cuda"], "device 'cuda': no CUDA device is available here"),
        (["train", "--device", "tpu"], "invalid device: must be auto, cpu, cuda or cuda:N (got 'tpu')"),
        (["train", "--amp", "maybe"], "argument --amp: invalid choice: 'maybe'"),
        (["attack", "--device", "cuda:0", "--no-tracking"], "no CUDA device is available here"),
    ],
)
def test_device_options_are_checked_before_any_work(args, message, monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert exit_code(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not any(tmp_path.iterdir())  # nothing loaded, trained or written
