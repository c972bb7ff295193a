"""The macro search space, sampled define-by-run through real Optuna studies."""

import optuna
import pytest
import torch

from search_spaces import (
    Arch,
    CellArch,
    CellSpace,
    InvalidArchitecture,
    MacroSpace,
    arch_from_json,
    arch_hash,
    arch_to_json,
    build_model,
    get_space,
    infer_shapes,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _sample_many(space, sampler, n_trials):
    study = optuna.create_study(sampler=sampler)
    archs = []

    def objective(trial):
        arch = space.sample(trial)
        archs.append(arch)
        return float(sum(layer.filters for layer in arch.layers))

    study.optimize(objective, n_trials=n_trials)
    return study, archs


@pytest.mark.parametrize(
    "sampler", [optuna.samplers.RandomSampler(seed=0), optuna.samplers.TPESampler(seed=0)], ids=["random", "tpe"]
)
def test_samples_are_valid_for_8x8_digits(sampler):
    space = MacroSpace((1, 8, 8))
    study, archs = _sample_many(space, sampler, 40)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    for arch in archs:
        assert isinstance(arch, Arch) and 2 <= len(arch.layers) <= 6
        infer_shapes(arch, (1, 8, 8))  # raises if any layer collapses
        for layer in arch.layers:
            assert layer.filter_height in (1, 3, 5, 7) and layer.filter_width in (1, 3, 5, 7)
            assert layer.stride in (1, 2, 3) and layer.filters in (24, 36, 48, 64)
    # the search really explores: strides of 3 on an 8x8 map and skips both occur
    assert any(layer.stride == 3 for arch in archs for layer in arch.layers)
    assert any(layer.skips for arch in archs for layer in arch.layers)
    assert len({arch_hash(a) for a in archs}) > 30


def test_sampled_models_build_and_run():
    torch.manual_seed(0)
    _, archs = _sample_many(MacroSpace((1, 8, 8), max_layers=4), optuna.samplers.RandomSampler(seed=1), 6)
    for arch in archs:
        model = build_model(arch, (1, 8, 8), 10)
        assert model(torch.rand(2, 1, 8, 8)).shape == (2, 10)


def test_conditional_parameters_and_fixed_trials():
    space = MacroSpace((1, 8, 8), min_layers=1, max_layers=3)
    params = {
        "num_layers": 1,
        "layer0_filter_height": 5,
        "layer0_filter_width": 3,
        "layer0_stride": 2,
        "layer0_filters": 36,
        "layer0_pool": "max",
    }
    arch = space.sample(optuna.trial.FixedTrial(params))
    (layer,) = arch.layers
    assert (layer.filter_height, layer.filter_width, layer.stride, layer.filters) == (5, 3, 2, 36)
    assert layer.pool.kind == "max" and infer_shapes(arch, (1, 8, 8))[0].output == (36, 2, 2)

    # a study records only the parameters that exist in each architecture
    study, archs = _sample_many(space, optuna.samplers.RandomSampler(seed=3), 15)
    for trial, arch in zip(study.trials, archs, strict=True):
        depth = trial.params["num_layers"]
        assert len(arch.layers) == depth
        assert not any(name.startswith(f"layer{depth}_") for name in trial.params)
        # skip choices only for anchors before the previous layer
        for i, built in enumerate(arch.layers):
            assert set(built.skips) <= set(range(i - 1))


def test_pooling_is_only_offered_while_the_map_allows_it():
    space = MacroSpace((1, 2, 2), min_layers=3, max_layers=3, pools=("max",), strides=(1,))
    arch = space.sample(
        optuna.trial.FixedTrial(
            {
                "num_layers": 3,
                **{
                    f"layer{i}_{k}": v
                    for i in range(3)
                    for k, v in {"filter_height": 3, "filter_width": 3, "stride": 1, "filters": 24}.items()
                },
                "layer2_skip_from0": False,
            }
        )
    )
    # 2x2 -> pooled to 1x1 after layer 0; layers 1 and 2 must not pool again
    assert [layer.pool is not None for layer in arch.layers] == [True, False, False]
    infer_shapes(arch, (1, 2, 2))


def test_configurable_choices_and_valid_padding_fallback():
    space = MacroSpace(
        (3, 6, 6),
        min_layers=3,
        max_layers=3,
        filter_sizes=(7,),
        strides=(1,),
        filters=(8,),
        pools=("none",),
        paddings=("valid",),
        skips=False,
    )
    _, archs = _sample_many(space, optuna.samplers.RandomSampler(seed=0), 3)
    for arch in archs:
        assert all((c.filter_height, c.filter_width, c.filters, c.skips) == (7, 7, 8, ()) for c in arch.layers)
        # a valid 7x7 conv cannot run on 6x6: the layer falls back to "same" and stays valid
        assert all(c.padding == "same" for c in arch.layers)
        assert infer_shapes(arch, (3, 6, 6))[-1].output == (8, 6, 6)
    # a fixed space has exactly one architecture, so one hash
    assert len({arch_hash(a) for a in archs}) == 1

    tiny = MacroSpace((1, 1, 1), filter_sizes=(2, 4), strides=(3,))
    _, archs = _sample_many(tiny, optuna.samplers.RandomSampler(seed=0), 10)
    for arch in archs:  # even filters on a 1x1 map: padded enough to never collapse
        assert min(min(s.output[1:]) for s in infer_shapes(arch, (1, 1, 1))) >= 1


def test_add_combination_samples_residual_skips():
    space = MacroSpace((1, 8, 8), min_layers=5, max_layers=5, combine=("add",))
    _, archs = _sample_many(space, optuna.samplers.RandomSampler(seed=2), 10)
    added = [c for a in archs for c in a.layers if c.skips]
    assert added and all(c.combine == "add" for c in added)
    model = build_model(next(a for a in archs if any(c.skips for c in a.layers)), (1, 8, 8), 10)
    assert model(torch.rand(2, 1, 8, 8)).shape == (2, 10)


def test_get_space_and_bad_options():
    macro = get_space("macro", (1, 8, 8), max_layers=3, filters=(8, 16))
    assert isinstance(macro, MacroSpace) and macro.name == "macro" and macro.filters == (8, 16)
    cell = get_space("cell", (1, 8, 8), cells_per_stage=1, channels=8)
    assert isinstance(cell, CellSpace) and cell.name == "cell"
    arch = cell.sample(
        optuna.trial.FixedTrial(
            {f"edge_{s}_{t}": "nor_conv_3x3" for t, s in ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))}
        )
    )
    assert arch == CellArch(("nor_conv_3x3",) * 6, cells_per_stage=1, channels=8)
    assert arch_from_json(arch_to_json(arch)) == arch
    with pytest.raises(InvalidArchitecture, match="unknown search space 'nasnet'"):
        get_space("nasnet", (1, 8, 8))
    with pytest.raises(InvalidArchitecture, match="unknown option.s. depth; the macro space takes activations"):
        get_space("macro", (1, 8, 8), depth=3)
    with pytest.raises(InvalidArchitecture, match="search space 'macro':"):  # a value of the wrong type
        get_space("macro", (1, 8, 8), min_layers="two")
    with pytest.raises(InvalidArchitecture, match="min_layers <= max_layers"):
        MacroSpace((1, 8, 8), min_layers=4, max_layers=2)
    with pytest.raises(InvalidArchitecture, match="pools: unknown choice"):
        MacroSpace((1, 8, 8), pools=("max", "lp"))
    with pytest.raises(InvalidArchitecture, match="strides must be positive integers"):
        MacroSpace((1, 8, 8), strides=(0, 1))


def test_space_options_from_a_config_file_take_plain_values():
    """YAML gives lists, dicts and bare strings; the spaces take them as their own types."""
    macro = get_space("macro", (1, 8, 8), filters=[8, 16], pools="none", head={"pool": "flatten", "dense": [32]})
    assert macro.filters == (8, 16) and macro.pools == ("none",)
    assert macro.head.pool == "flatten" and macro.head.dense == (32,)
    cell = get_space("cell", (1, 8, 8), ops="nor_conv_3x3", channels=4, cells_per_stage=1)
    assert cell.ops == ("nor_conv_3x3",)
    with pytest.raises(InvalidArchitecture, match="head.pool must be one of"):
        get_space("macro", (1, 8, 8), head={"pool": "max"})
