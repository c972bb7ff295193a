"""Per-layer profiles (shapes, params, exact MACs, receptive fields) and `nasbench describe`."""

import json

import pytest
import torch
from torch import nn

from nasbench.cli import main
from search_spaces import Arch, ConvLayer, Head, Pool, arch_to_json, build_model, describe, measure_latency

# The seed's Inception example: 28x28x192 input, 32 5x5 "same" filters, with and without a 1x1 bottleneck
NAIVE = Arch(layers=(ConvLayer(5, 5, 1, 32, batch_norm=False),), name="naive 5x5")
BOTTLENECK = Arch(
    layers=(ConvLayer(1, 1, 1, 16, batch_norm=False), ConvLayer(5, 5, 1, 32, batch_norm=False)), name="1x1 bottleneck"
)


def _conv_rows(description):
    return [r for r in description.rows if r.type == "Conv2d"]


class Residual(nn.Module):
    """A 3x3 convolution, then a 5x5 one whose output is added back to the first's."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(2, 2, 5, padding=2, dilation=1)

    def forward(self, x):
        y = self.a(x)
        return self.b(y) + y


def test_inception_bottleneck_multiplies_are_exact():
    naive = describe(NAIVE, (192, 28, 28))
    assert [r.macs for r in _conv_rows(naive)] == [28 * 28 * 32 * 5 * 5 * 192] == [120_422_400]
    reduced = describe(BOTTLENECK, (192, 28, 28))
    assert [r.macs for r in _conv_rows(reduced)] == [2_408_448, 10_035_200]
    assert [r.output_shape for r in _conv_rows(reduced)] == [(16, 28, 28), (32, 28, 28)]


def test_lenet5_profile_follows_the_arithmetic():
    d = describe("lenet5", (1, 32, 32))
    shapes = [(r.type, r.output_shape) for r in d.rows]
    assert shapes == [
        ("Conv2d", (6, 28, 28)),
        ("AvgPool2d", (6, 14, 14)),
        ("Conv2d", (16, 10, 10)),
        ("AvgPool2d", (16, 5, 5)),
        ("Flatten", (400,)),
        ("Linear", (120,)),
        ("Linear", (84,)),
        ("Linear", (10,)),
    ]
    assert [r.params for r in d.rows if r.params] == [156, 2_416, 48_120, 10_164, 850]
    expected_macs = 28 * 28 * 6 * 25 + 10 * 10 * 16 * 25 * 6 + 400 * 120 + 120 * 84 + 84 * 10
    assert d.totals["macs"] == expected_macs == 416_520
    assert d.totals["params"] == 61_706 and d.totals["output_shape"] == (10,)
    # receptive fields: 5, +1 by the 2x2 pool, +4*2 by the second conv, +1*4 by the pool: 5, 6, 14, 16
    assert [r.receptive_field for r in d.rows[:4]] == [(5, 5), (6, 6), (14, 14), (16, 16)]


def test_alexnet_paper_shapes():
    d = describe("alexnet", (3, 224, 224), num_classes=1000)
    convs = [r.output_shape for r in _conv_rows(d)]
    # (224 + 4 - 11)/4 + 1 = 55; pools (55 - 3)/2 + 1 = 27, 13, 6
    assert convs == [(64, 55, 55), (192, 27, 27), (384, 13, 13), (256, 13, 13), (256, 13, 13)]
    assert d.rows[-1].output_shape == (1000,)
    assert d.totals["params"] == 61_100_840


def test_receptive_fields_of_stacks_and_branches():
    # Simonyan & Zisserman 2015: two stacked 3x3 convs see 5x5, three see 7x7
    vgg_stack = Arch(layers=(ConvLayer(filters=4), ConvLayer(filters=4), ConvLayer(filters=4)))
    assert [r.receptive_field for r in _conv_rows(describe(vgg_stack, (1, 16, 16)))] == [(3, 3), (5, 5), (7, 7)]
    # a stride multiplies the growth of everything after it; rectangular filters grow each axis
    strided = Arch(layers=(ConvLayer(3, 3, 2, 4), ConvLayer(3, 5, 1, 4)))
    assert [r.receptive_field for r in _conv_rows(describe(strided, (1, 16, 16)))] == [(3, 3), (7, 11)]
    # through a concatenated skip the largest path counts: layer 2 sees 3 + 2 + 2
    skipped = Arch(layers=(ConvLayer(filters=4), ConvLayer(filters=4), ConvLayer(filters=4, skips=(0,))))
    assert _conv_rows(describe(skipped, (1, 16, 16)))[-1].receptive_field == (7, 7)

    # a module handed in directly, with a residual addition between plain functional ops
    rows = describe(Residual(), (1, 12, 12)).rows
    assert [r.receptive_field for r in rows] == [(3, 3), (7, 7)]


def test_totals_agree_with_the_module():
    torch.manual_seed(0)
    arch = Arch(
        layers=(
            ConvLayer(filters=8, pool=Pool("max", 2)),
            ConvLayer(filters=8, skips=(), stride=2),
            ConvLayer(filters=8, skips=(0,), combine="add"),
        ),
        head=Head(dense=(16,)),
    )
    model = build_model(arch, (3, 16, 16), 10)
    d = describe(model, (3, 16, 16))
    assert d.totals["params"] == sum(p.numel() for p in model.parameters())
    assert sum(r.params for r in d.rows) == d.totals["params"]
    assert d.totals["macs"] == sum(r.macs for r in d.rows) > 0
    data = json.loads(json.dumps(d.to_dict()))
    assert data["totals"]["params"] == d.totals["params"] and len(data["rows"]) == len(d.rows)


def test_measure_latency_times_real_batches():
    model = build_model(BOTTLENECK, (3, 16, 16), 10)
    latency = measure_latency(model, (3, 16, 16), batch_size=4, device="cpu", warmup=1, repeats=3)
    assert latency.device == "cpu" and latency.batch_size == 4 and latency.repeats == 3
    assert 0 < latency.min_ms <= latency.mean_ms
    assert latency.per_image_ms == pytest.approx(latency.mean_ms / 4)


# ---------------------------------------------------------------- the CLI


def test_cli_table_shows_exact_macs(tmp_path, capsys):
    path = tmp_path / "naive.json"
    path.write_text(arch_to_json(NAIVE))
    assert main(["describe", "--model", str(path), "--input", "192x28x28"]) == 0
    out = capsys.readouterr().out
    assert "120,422,400" in out and "32x28x28" in out and "naive 5x5" in out


def test_cli_json_and_latency(tmp_path, capsys):
    path = tmp_path / "bottleneck.json"
    path.write_text(arch_to_json(BOTTLENECK))
    code = main(
        [
            "describe",
            "--model",
            str(path),
            "--input",
            "192x28x28",
            "--json",
            "--latency",
            "--batch-size",
            "2",
            "--repeats",
            "2",
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["macs"] for r in data["rows"] if r["type"] == "Conv2d"] == [2_408_448, 10_035_200]
    assert data["input_shape"] == [192, 28, 28]
    assert data["latency"]["batch_size"] == 2 and data["latency"]["mean_ms"] > 0


def test_cli_classic_model_and_cell_string(capsys):
    assert main(["describe", "--model", "resnet20", "--input", "3x32x32", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["params"] == 269_722
    cell = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    assert main(["describe", "--model", cell, "--input", "1x8x8"]) == 0
    assert "AvgPool2d" in capsys.readouterr().out


def test_cli_checkpoint_directory_and_classic_spec(tmp_path, capsys):
    from nasbench.checkpoint import save_checkpoint
    from nasbench.models import build_from_spec

    spec = {"kind": "classic", "name": "lenet5"}
    network = build_from_spec(spec, (1, 8, 8), 10)
    save_checkpoint(
        tmp_path / "ckpt", network, spec, {"input_shape": [1, 8, 8], "num_classes": 10, "mean": [0.5], "std": [0.25]}
    )
    # A checkpoint knows its own input shape and classes.
    assert main(["describe", "--model", str(tmp_path / "ckpt"), "--json"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["input_shape"] == [1, 8, 8]
    assert described["totals"]["params"] == sum(p.numel() for p in network.parameters())
    # Its arch.json alone is a classic spec: on LeNet-5's own 32x32 input it is the paper's network.
    arch_json = str(tmp_path / "ckpt" / "arch.json")
    assert main(["describe", "--model", arch_json, "--input", "1x32x32", "--variant", "paper", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["params"] == 61_706
    (tmp_path / "nameless.json").write_text('{"kind": "classic"}')
    assert main(["describe", "--model", str(tmp_path / "nameless.json"), "--input", "1x8x8"]) == 2
    assert "unknown classic model None" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "resnet50", "--input", "3x32x32"], "unknown model 'resnet50'"),
        (["--model", "lenet5", "--input", "32x32"], "--input must be CxHxW"),
        (["--model", "alexnet", "--variant", "paper", "--input", "3x32x32"], "collapses"),
        (["--model", "|bad~0|", "--input", "1x8x8"], "'+'-separated nodes"),
        (["--model", "missing.json", "--input", "1x8x8"], "cannot read architecture missing.json"),
        (["--model", "lenet5"], "--input CxHxW is needed"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(args, message, capsys):
    assert main(["describe", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cli_bad_or_collapsing_json(tmp_path, capsys):
    broken = tmp_path / "broken.json"
    broken.write_text('{"layers": [{"filters": 8}')
    assert main(["describe", "--model", str(broken), "--input", "1x8x8"]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    collapsing = tmp_path / "collapsing.json"
    collapsing.write_text(arch_to_json(Arch(layers=(ConvLayer(7, 7, 1, 4, padding="valid"),))))
    assert main(["describe", "--model", str(collapsing), "--input", "1x4x4"]) == 2
    assert (
        "layer 0: feature map collapses to 0x0 (4x4 input, 7x7 filter, stride 1, padding 0)" in capsys.readouterr().err
    )
