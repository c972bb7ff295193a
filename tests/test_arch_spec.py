"""The macro architecture spec: JSON round trip, validation by shape arithmetic, building, hashing."""

import json

import pytest
import torch
from torch import nn

from search_spaces import (
    SPEC_VERSION,
    Arch,
    CellArch,
    ConvLayer,
    Head,
    InvalidArchitecture,
    Normalize,
    NotAnArchitecture,
    Pool,
    arch_from_dict,
    arch_from_json,
    arch_hash,
    arch_to_dict,
    arch_to_json,
    build,
    build_model,
    infer_shapes,
    validate,
)


def _rich_arch() -> Arch:
    return Arch(
        layers=(
            ConvLayer(filter_height=5, filter_width=3, stride=1, filters=8, padding="same", activation="tanh"),
            ConvLayer(3, 3, 2, 16, padding=1, batch_norm=False, bias=True, pool=Pool("avg", 2, 1, 1)),
            ConvLayer(1, 7, 1, 12, padding="valid", skips=(0,), combine="concat"),
            ConvLayer(3, 3, 1, 12, skips=(1, 0), combine="add", shortcut="projection", pool=Pool("max", 2)),
        ),
        head=Head(pool="flatten", dense=(32, 16), dropout=0.25, activation="gelu"),
        name="rich",
    )


def test_dict_and_json_round_trip_exactly():
    arch = _rich_arch()
    data = arch_to_dict(arch)
    assert data["kind"] == "macro" and data["version"] == SPEC_VERSION
    assert arch_from_dict(data) == arch
    # through real JSON text, twice: the text itself is stable
    text = arch_to_json(arch)
    assert arch_from_json(text) == arch
    assert arch_to_json(arch_from_json(text)) == text
    assert json.loads(text)["layers"][3]["skips"] == [1, 0]

    cell = CellArch(
        ("nor_conv_3x3", "none", "skip_connect", "avg_pool_3x3", "nor_conv_1x1", "none"), cells_per_stage=1, channels=8
    )
    cell_dict = arch_to_dict(cell)
    assert cell_dict["kind"] == "cell" and cell_dict["version"] == SPEC_VERSION
    assert arch_from_json(arch_to_json(cell)) == cell


def test_minimal_hand_written_json_gets_defaults():
    arch = arch_from_json('{"layers": [{"filters": 4}, {"filter_height": 5, "filter_width": 5, "stride": 2}]}')
    assert arch.layers[0] == ConvLayer(filters=4)
    assert arch.layers[1].filters == ConvLayer().filters and arch.layers[1].stride == 2
    assert arch.head == Head()


@pytest.mark.parametrize(
    "data, message",
    [
        ({"layers": []}, "non-empty list"),
        ({"layers": [{"filters": 0}]}, "layer 0.filters must be >= 1"),
        ({"layers": [{"filters": 3.5}]}, "layer 0.filters must be an integer"),
        ({"layers": [{"filters": 10**8}]}, "layer 0.filters must be in 1..16384, not 100000000"),
        ({"layers": [{"filter_height": 99}]}, "layer 0.filter_height must be in 1..64"),
        ({"layers": [{}], "head": {"dense": [10**7]}}, "head.dense[0] must be in 1..65536"),
        ({"layers": [{}] * 1025}, "needs 1..1024 layers, not 1025"),
        (
            {"kind": "cell", "cell": "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "channels": 10**8},
            "channels must be in 1..16384",
        ),
        ({"layers": [{"filterz": 3}]}, "unknown field(s) 'filterz'"),
        ({"layers": [{}, {"skips": [1]}]}, "layer 1: skip from layer 1 must come from an earlier layer"),
        ({"layers": [{"skips": [0]}]}, "first layer cannot take skip connections"),
        ({"layers": [{"activation": "swishy"}]}, "activation must be one of"),
        ({"layers": [{"padding": "full"}]}, "padding must be one of same, valid"),
        ({"layers": [{"pool": {"kind": "max", "size": 2, "padding": 2}}]}, "pool padding 2 must be at most half"),
        ({"layers": [{}], "head": {"dropout": 1.0}}, "head.dropout"),
        ({"layers": [{}], "version": SPEC_VERSION + 1}, "newer than this nasbench understands"),
        ({"kind": "resnet", "layers": [{}]}, "kind must be 'cell' or 'macro'"),
        ({"kind": "cell", "cell": "|nor_conv_3x3~0|"}, "3 '+'-separated nodes"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_malformed_input_is_rejected_with_a_reason(data, message):
    with pytest.raises(InvalidArchitecture) as info:
        arch_from_dict(data)
    assert message in str(info.value)


def test_invalid_json_text():
    with pytest.raises(InvalidArchitecture, match="not valid JSON"):
        arch_from_json('{"layers": [')


def test_output_sizes_follow_the_conv_arithmetic():
    # (n + 2p - f) / s + 1, LeNet-5 on 32x32: 28, 14, 10, 5
    lenet = Arch(
        layers=(
            ConvLayer(5, 5, 1, 6, padding="valid", pool=Pool("avg", 2)),
            ConvLayer(5, 5, 1, 16, padding="valid", pool=Pool("avg", 2)),
        )
    )
    shapes = infer_shapes(lenet, (1, 32, 32))
    assert [s.conv for s in shapes] == [(6, 28, 28), (16, 10, 10)]
    assert [s.output for s in shapes] == [(6, 14, 14), (16, 5, 5)]
    # rectangular filters: (9 - 3)//2 + 1 = 4 rows, (9 - 5)//2 + 1 = 3 columns; "same" pads 1 and 2
    assert infer_shapes(Arch(layers=(ConvLayer(3, 5, 2, 4, padding="valid"),)), (3, 9, 9))[0].conv == (4, 4, 3)
    assert infer_shapes(Arch(layers=(ConvLayer(3, 5, 2, 4, padding="same"),)), (3, 9, 9))[0].conv == (4, 5, 5)
    # concatenated skips add their channels to the conv's input
    concat = Arch(layers=(ConvLayer(filters=8), ConvLayer(filters=16, stride=2), ConvLayer(filters=4, skips=(0,))))
    assert infer_shapes(concat, (1, 8, 8))[2].input == (24, 4, 4)


def test_collapse_is_reported_with_layer_and_numbers():
    arch = Arch(
        layers=(
            ConvLayer(filters=4),
            ConvLayer(filters=4, stride=2),
            ConvLayer(filters=4, stride=2),
            ConvLayer(5, 5, 1, 4, padding="valid"),
        )
    )
    with pytest.raises(InvalidArchitecture) as info:
        validate(arch, (1, 8, 8))
    assert str(info.value) == "layer 3: feature map collapses to 0x0 (2x2 input, 5x5 filter, stride 1, padding 0)"
    validate(arch, (1, 20, 20))  # 20 -> 10 -> 5 -> 1: fine

    pooled = Arch(layers=(ConvLayer(filters=4, stride=3, pool=Pool("max", 3, 2)),))
    with pytest.raises(InvalidArchitecture, match=r"layer 0: pooling collapses the feature map to 0x0 \(2x2 input"):
        validate(pooled, (1, 4, 4))
    # build_model validates first: a reason, never a shape error from torch
    with pytest.raises(InvalidArchitecture, match="collapses"):
        build_model(arch, (1, 8, 8), 10)


def test_built_model_matches_the_spec():
    torch.manual_seed(0)
    arch = Arch(
        layers=(ConvLayer(filters=8), ConvLayer(filters=16, stride=2), ConvLayer(filters=4, skips=(0,))),
        head=Head(pool="flatten", dense=(20,), dropout=0.1),
    )
    model = build(arch, (1, 8, 8), 10)  # build_model by its short name
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [tuple(c.weight.shape) for c in convs] == [(8, 1, 3, 3), (16, 8, 3, 3), (4, 24, 3, 3)]
    assert all(c.bias is None for c in convs)  # batch norm follows
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [(4 * 4 * 4, 20), (20, 10)]
    assert model(torch.rand(3, 1, 8, 8)).shape == (3, 10)


def test_added_skips_use_projection_or_zero_padding():
    torch.manual_seed(0)

    def block(shortcut):
        return Arch(
            layers=(
                ConvLayer(filters=8),
                ConvLayer(filters=16, stride=2),
                ConvLayer(filters=16, skips=(0,), combine="add", shortcut=shortcut),
            )
        )

    projected = build_model(block("projection"), (1, 8, 8), 10)
    projection = projected.layers[2].merge[0]
    assert isinstance(projection[0], nn.Conv2d) and projection[0].stride == (2, 2)
    assert tuple(projection[0].weight.shape) == (16, 8, 1, 1)

    padded = build_model(block("zero_pad"), (1, 8, 8), 10)
    assert sum(p.numel() for p in padded.layers[2].merge.parameters()) == 0
    x = torch.rand(2, 8, 8, 8)
    shortcut = padded.layers[2].merge[0](x)
    assert shortcut.shape == (2, 16, 4, 4)
    assert torch.equal(shortcut[:, :8], x[:, :, ::2, ::2]) and not shortcut[:, 8:].any()
    assert padded(torch.rand(2, 1, 8, 8)).shape == (2, 10)

    impossible = Arch(
        layers=(ConvLayer(filters=16), ConvLayer(filters=8, skips=(0,), combine="add", shortcut="zero_pad"))
    )
    with pytest.raises(InvalidArchitecture, match="use shortcut 'projection'"):
        validate(impossible, (1, 8, 8))


def _same_function(a: Arch, b: Arch, input_shape=(1, 8, 8)) -> bool:
    torch.manual_seed(0)
    model_a, model_b = build_model(a, input_shape, 5).eval(), build_model(b, input_shape, 5).eval()
    model_b.load_state_dict(model_a.state_dict())  # strict: same parameters, same shapes
    x = torch.rand(4, *input_shape)
    return torch.allclose(model_a(x), model_b(x))


def test_equivalent_architectures_share_a_hash_and_a_function():
    base = Arch(layers=(ConvLayer(filters=8), ConvLayer(filters=8), ConvLayer(filters=8, skips=(0, 1))), name="one")
    equivalent = Arch(
        layers=(
            ConvLayer(3, 3, 1, 8, padding=1, bias=False),
            ConvLayer(filters=8, pool=Pool("max", 1, 1)),
            ConvLayer(filters=8, skips=(1, 0, 0), shortcut="zero_pad"),
        ),
        name="two",
    )
    assert arch_hash(base) == arch_hash(equivalent)
    assert _same_function(base, equivalent)
    assert len(arch_hash(base)) == 64 and int(arch_hash(base), 16) >= 0


def test_the_shortcut_of_a_residual_whose_shapes_match_does_not_change_the_hash():
    def residual(shortcut, stride=1):
        return Arch(
            layers=(
                ConvLayer(filters=8),
                ConvLayer(filters=8, stride=stride),
                ConvLayer(filters=8, skips=(0,), combine="add", shortcut=shortcut),
            )
        )

    # shapes match for every input size: both shortcuts are the identity
    assert arch_hash(residual("projection")) == arch_hash(residual("zero_pad"))
    assert _same_function(residual("projection"), residual("zero_pad"))
    # a stride in between: the shortcut downsamples, projection and zero padding differ
    assert arch_hash(residual("projection", stride=2)) != arch_hash(residual("zero_pad", stride=2))
    projected, padded = (build_model(residual(kind, stride=2), (1, 8, 8), 5) for kind in ("projection", "zero_pad"))
    assert sum(p.numel() for p in projected.parameters()) > sum(p.numel() for p in padded.parameters())


def test_different_architectures_get_different_hashes():
    base = Arch(layers=(ConvLayer(filters=8), ConvLayer(filters=8), ConvLayer(filters=8)))
    variants = [
        Arch(layers=(ConvLayer(filters=8), ConvLayer(filters=8), ConvLayer(filters=9))),
        Arch(layers=(ConvLayer(filters=8), ConvLayer(filters=8), ConvLayer(filters=8, skips=(0,)))),
        # an *added* skip from the previous layer is a residual connection: it matters
        Arch(layers=(ConvLayer(filters=8), ConvLayer(filters=8), ConvLayer(filters=8, skips=(1,), combine="add"))),
        Arch(layers=(ConvLayer(filters=8), ConvLayer(filters=8), ConvLayer(3, 5, 1, 8))),
        Arch(layers=base.layers, head=Head(pool="flatten")),
    ]
    hashes = {arch_hash(base)} | {arch_hash(v) for v in variants}
    assert len(hashes) == len(variants) + 1
    residual = variants[2]
    assert not _same_function(base, residual)


def test_what_is_no_architecture_is_named_by_every_operation():
    # a NotAnArchitecture is both: callers catching either keep working
    assert issubclass(NotAnArchitecture, InvalidArchitecture) and issubclass(NotAnArchitecture, TypeError)
    operations = {
        "arch_to_dict": arch_to_dict,
        "arch_hash": arch_hash,
        "validate": lambda arch: validate(arch, (1, 8, 8)),
        "build_model": lambda arch: build_model(arch, (1, 8, 8), 10),
    }
    for name, operation in operations.items():
        with pytest.raises(NotAnArchitecture, match="not an architecture: dict"):
            operation({"layers": [{}]})  # the dict form is not the spec itself
            pytest.fail(f"{name} accepted a dict")


def test_a_dict_without_kind_is_read_by_its_fields():
    cell = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|"
    assert arch_from_dict({"cell": cell, "cells_per_stage": 1}) == CellArch.from_string(cell, cells_per_stage=1)
    assert arch_from_dict({"layers": [{"filters": 4}]}) == Arch(layers=(ConvLayer(filters=4),))
    assert arch_to_dict(CellArch.from_string(cell))["kind"] == "cell"


def test_normalize_maps_unit_range_images():
    norm = Normalize((0.5, 0.25), (0.5, 0.25))
    x = torch.rand(2, 2, 4, 4)
    expected = torch.stack([(x[:, 0] - 0.5) / 0.5, (x[:, 1] - 0.25) / 0.25], dim=1)
    assert torch.allclose(norm(x), expected)
    assert torch.allclose(norm(torch.full((1, 2, 1, 1), 0.5))[0, :, 0, 0], torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="std must be positive"):
        Normalize((0.0,), (0.0,))
