"""NAS-Bench-201's cell space: arch strings, enumeration, canonical classes, the skeleton."""

import itertools

import optuna
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from search_spaces import CELL_OPS, CellArch, CellSpace, InvalidArchitecture, all_cells, arch_hash, build_model
from search_spaces.cell import EDGES

BENCHMARK_EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def test_arch_strings_parse_and_format_round_trip():
    cell = CellArch.from_string(BENCHMARK_EXAMPLE)
    assert cell.ops == ("nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3", "skip_connect", "nor_conv_3x3", "skip_connect")
    assert cell.to_string() == BENCHMARK_EXAMPLE == str(cell)
    # edge order inside a node does not matter when parsing
    shuffled = "|nor_conv_3x3~0|+|avg_pool_3x3~1|nor_conv_3x3~0|+|skip_connect~2|nor_conv_3x3~1|skip_connect~0|"
    assert CellArch.from_string(shuffled) == cell


@pytest.mark.parametrize(
    "text, message",
    [
        ("|nor_conv_3x3~0|+|none~0|none~1|", "3 '+'-separated nodes"),
        ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown cell operation 'conv'"),
        ("|none~0|+|none~0|none~2|+|none~0|none~1|none~2|", "bad edge 'none~2' in node 2"),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 of"),
        ("|none~0|+|none~0|none~0|+|none~0|none~1|none~2|", "lists input 0 twice"),
        ("none~0+|none~0|none~1|+|none~0|none~1|none~2|", "must look like"),
    ],
)
def test_malformed_strings_are_rejected(text, message):
    with pytest.raises(InvalidArchitecture) as info:
        CellArch.from_string(text)
    assert message in str(info.value)


def test_enumeration_has_15625_cells_and_6466_canonical_classes():
    cells = list(all_cells())
    assert len(cells) == 5**6 == 15_625
    assert len({c.ops for c in cells}) == 15_625
    assert all(CellArch.from_string(c.to_string()) == c for c in cells[::97])
    # NAS-Bench-201's to_unique_str(consider_zero=True): 6,466 unique architectures
    assert len({c.unique_str() for c in cells}) == 6_466
    assert len({arch_hash(c) for c in cells}) == 6_466


def test_isomorphic_cells_share_a_hash():
    # node 1 copies the input, so conv(node 1) is conv(input): the same cell two ways
    a = CellArch.from_string("|skip_connect~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|nor_conv_3x3~2|")
    b = CellArch.from_string("|skip_connect~0|+|nor_conv_3x3~0|none~1|+|none~0|none~1|nor_conv_3x3~2|")
    assert arch_hash(a) == arch_hash(b)
    # every cell whose output is cut off from the input computes zero: one class
    dead = [c for c in all_cells() if c.unique_str() == "#+#+#"]
    assert len({arch_hash(c) for c in dead}) == 1 and len(dead) > 100
    # ... while a different op on the output edge is a different architecture
    c = CellArch.from_string("|skip_connect~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|nor_conv_1x1~2|")
    assert arch_hash(a) != arch_hash(c)
    # the skeleton size is part of the identity
    assert arch_hash(a) != arch_hash(CellArch(a.ops, cells_per_stage=1))


def _nor_conv_params(c: int) -> int:
    return c * c * 9 + 2 * c  # conv without bias + BN


def test_skeleton_parameter_count_matches_the_benchmark():
    # stem + two ResNet reductions + last BN + classifier, for C = 16 and 10 classes
    skeleton = (
        (3 * 16 * 9 + 32)
        + (16 * 32 * 9 + 64 + _nor_conv_params(32) + 16 * 32)
        + (32 * 64 * 9 + 128 + _nor_conv_params(64) + 32 * 64)
        + 128
        + (64 * 10 + 10)
    )
    no_params = CellArch(("skip_connect", "none", "avg_pool_3x3", "none", "skip_connect", "skip_connect"))
    assert sum(p.numel() for p in build_model(no_params, (3, 32, 32), 10).parameters()) == skeleton
    widest = CellArch(("nor_conv_3x3",) * 6)
    cells = 6 * 5 * sum(_nor_conv_params(c) for c in (16, 32, 64))
    total = sum(p.numel() for p in build_model(widest, (3, 32, 32), 10).parameters())
    assert total == skeleton + cells == 1_531_546  # NAS-Bench-201's largest model: 1.53 M


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (1, 7, 7)])
def test_small_skeleton_runs_on_any_size(shape):
    torch.manual_seed(0)
    model = build_model(CellArch.from_string(BENCHMARK_EXAMPLE, cells_per_stage=1, channels=8), shape, 10)
    assert model(torch.rand(2, *shape)).shape == (2, 10)


def test_zero_and_skip_ops_compute_what_they_say():
    torch.manual_seed(0)
    dead = build_model(CellArch(("none",) * 6, cells_per_stage=1, channels=4), (1, 8, 8), 3).eval()
    # the cells output zeros, so every input gets the same logits
    out = dead(torch.rand(5, 1, 8, 8))
    assert torch.allclose(out, out[:1].expand_as(out))
    alive = build_model(CellArch(("skip_connect",) * 6, cells_per_stage=1, channels=4), (1, 8, 8), 3).eval()
    out = alive(torch.rand(5, 1, 8, 8))
    assert not torch.allclose(out, out[:1].expand_as(out))


@pytest.fixture
def one_thread():
    # on a shared 2-core machine two intra-op threads fight the other processes: 1 thread is ~30x faster
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_small_cell_model_learns_digits_quickly(one_thread):
    torch.manual_seed(0)
    digits = load_digits()
    x = torch.tensor(digits.images[:512], dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target[:512])
    model = build_model(CellArch.from_string(BENCHMARK_EXAMPLE, cells_per_stage=1, channels=8), (1, 8, 8), 10)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(3):
        for batch in torch.arange(512).split(64):
            optimizer.zero_grad()
            loss_fn(model(x[batch]), y[batch]).backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    assert accuracy > 0.6  # chance is 0.1


def test_cell_space_samples_every_edge_through_optuna():
    space = CellSpace((1, 8, 8), cells_per_stage=1, channels=8)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = []
    study.optimize(lambda trial: float(len(seen.append(space.sample(trial)) or seen)), n_trials=30)
    assert all(isinstance(c, CellArch) and c.cells_per_stage == 1 and c.channels == 8 for c in seen)
    assert set(itertools.chain.from_iterable(c.ops for c in seen)) == set(CELL_OPS)
    assert set(study.trials[0].params) == {f"edge_{src}_{to}" for to, src in EDGES}
    restricted = CellSpace((1, 8, 8), ops=("none", "nor_conv_1x1"))
    cell = restricted.sample(optuna.trial.FixedTrial({f"edge_{s}_{t}": "nor_conv_1x1" for t, s in EDGES}))
    assert cell.ops == ("nor_conv_1x1",) * 6
    with pytest.raises(InvalidArchitecture, match="unknown choice"):
        CellSpace((1, 8, 8), ops=("sep_conv_3x3",))
