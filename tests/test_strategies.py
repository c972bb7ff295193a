"""Search strategies: regularized evolution, the REINFORCE controller, the Pareto ranking
and the multi-objective successive halving (nasbench.strategies)."""

import math

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from nasbench.errors import UserError
from nasbench.search import SearchConfig
from nasbench.strategies import SAMPLERS, make_sampler
from nasbench.strategies.fidelity import fidelity_ladder, ladder_epochs
from nasbench.strategies.mo_asha import MultiObjectiveRungs, promoted, rung_epochs
from nasbench.strategies.pareto import crowding_distances, hypervolume_2d, nondominated_ranks, rank_order
from nasbench.strategies.planning import PLAN_ATTR
from search_spaces import CellSpace, arch_hash, get_space
from search_spaces.cell import EDGES

optuna.logging.set_verbosity(optuna.logging.WARNING)

OPS = ("skip_connect", "nor_conv_1x1", "nor_conv_3x3")


@pytest.fixture
def cell_space():
    return CellSpace((1, 8, 8), cells_per_stage=1, channels=8, ops=OPS)


def conv_score(arch) -> float:
    """A made-up accuracy: more 3x3 convolutions are better, 1x1 half as good."""
    return sum({"nor_conv_3x3": 1.0, "nor_conv_1x1": 0.5}.get(op, 0.0) for op in arch.ops) / len(arch.ops)


def run(study, space, trials, score=conv_score):
    """Ask/tell ``trials`` trials sequentially; their (params, class) in order."""
    seen = []
    for _ in range(trials):
        trial = study.ask()
        arch = space.sample(trial)
        seen.append((dict(trial.params), arch_hash(arch)))
        study.tell(trial, score(arch))
    return seen


def journal_study(path, sampler):
    storage = JournalStorage(JournalFileBackend(str(path)))
    return optuna.create_study(
        storage=storage, study_name="s", sampler=sampler, load_if_exists=True, direction="maximize"
    )


def test_both_samplers_are_registered_and_need_the_space(cell_space):
    assert {"evolution", "reinforce"} <= set(SAMPLERS)
    with pytest.raises(UserError, match="needs the search space"):
        make_sampler("evolution", 0, False)
    with pytest.raises(UserError, match="population_size, sample_size; unknown: size"):
        make_sampler("evolution", 0, False, space=cell_space, size=3)
    with pytest.raises(UserError, match="sample_size <= population_size"):
        make_sampler("evolution", 0, False, space=cell_space, population_size=2, sample_size=3)
    with pytest.raises(ValueError, match="sampler tpe takes no options"):
        SearchConfig(sampler="tpe", sampler_options={"population_size": 4})
    # checked with the config, before an experiment folder exists
    with pytest.raises(ValueError, match="sample_size 5 and population_size 4"):
        SearchConfig(sampler="evolution", sampler_options={"population_size": 4})
    with pytest.raises(ValueError, match="learning_rate > 0"):
        SearchConfig(sampler="reinforce", sampler_options={"learning_rate": 0})


def test_evolution_never_repeats_a_class_and_mutates_one_edge_of_a_recent_trial(cell_space):
    population = 5
    study = optuna.create_study(
        direction="maximize",
        sampler=make_sampler("evolution", 1, False, space=cell_space, population_size=population, sample_size=2),
    )
    history = run(study, cell_space, 60)
    keys = [key for _, key in history]
    assert len(set(keys)) == len(keys)  # the store never has to answer a duplicate
    for number in range(population, len(history)):
        child = history[number][0]
        recent = [params for params, _ in history[number - population : number]]
        # a one-decision mutation of a member of the population (the aging window)
        assert any(sum(child[k] != parent[k] for k in child) == 1 for parent in recent), number
    # it climbs: the later half scores better than the random start
    scores = [t.value for t in study.trials]
    assert sum(scores[30:]) / 30 > sum(scores[:population]) / population
    assert max(scores) == 1.0  # all six edges 3x3: the optimum of the made-up score


@pytest.mark.parametrize("name", ["evolution", "reinforce"])
def test_a_resumed_study_continues_as_the_uninterrupted_one(tmp_path, cell_space, name):
    whole = journal_study(tmp_path / "whole.journal", make_sampler(name, 7, False, space=cell_space))
    uninterrupted = run(whole, cell_space, 24)
    first = journal_study(tmp_path / "parts.journal", make_sampler(name, 7, False, space=cell_space))
    part = run(first, cell_space, 13)
    # a new process: a new sampler object, the study read back from its journal
    resumed = journal_study(tmp_path / "parts.journal", make_sampler(name, 7, False, space=cell_space))
    part += run(resumed, cell_space, 11)
    assert part == uninterrupted
    other_seed = journal_study(tmp_path / "other.journal", make_sampler(name, 8, False, space=cell_space))
    assert run(other_seed, cell_space, 24) != uninterrupted


def test_a_trial_rerun_after_a_dead_driver_keeps_its_planned_decisions(tmp_path, cell_space):
    study = journal_study(tmp_path / "j.journal", make_sampler("evolution", 0, False, space=cell_space))
    run(study, cell_space, 6)
    trial = study.ask()  # planned, then the driver dies before sampling it
    planned = study._storage.get_trial(trial._trial_id).system_attrs[PLAN_ATTR]
    reopened = journal_study(tmp_path / "j.journal", make_sampler("evolution", 0, False, space=cell_space))
    again = optuna.trial.Trial(reopened, trial._trial_id)
    arch = cell_space.sample(again)
    assert again.params == planned["params"] and arch_hash(arch) == planned["key"]


def test_evolution_plans_the_macro_space_with_its_conditional_decisions():
    space = get_space("macro", (1, 8, 8), max_layers=4)
    study = optuna.create_study(
        direction="maximize", sampler=make_sampler("evolution", 0, False, space=space, population_size=4, sample_size=2)
    )
    history = run(
        study, space, 30, score=lambda arch: len(arch.layers) + sum(layer.filters for layer in arch.layers) / 1000
    )
    assert len({key for _, key in history}) == 30
    for trial in study.trials:  # what the trial sampled is what was planned for it
        assert trial.params == trial.system_attrs[PLAN_ATTR]["params"]
    assert max(len([k for k in params if k.endswith("_stride")]) for params, _ in history[4:]) == 4


def test_reinforce_learns_from_rewards_and_uses_anchor_attention_for_skips(cell_space):
    sampler = make_sampler("reinforce", 0, False, space=cell_space, batch_size=5, learning_rate=0.02)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    run(study, cell_space, 80)
    scores = [t.value for t in study.trials]
    assert sampler.updates == 15  # a batch of 5 per update; the last batch is not in yet when trial 79 is asked
    assert sum(scores[-20:]) / 20 > sum(scores[:20]) / 20 + 0.2
    # one softmax head per kind of decision: each edge is its own kind in the cell space
    assert sorted(sampler.controller.heads) == sorted(f"edge_{s}_{t}-3" for t, s in EDGES)

    macro = get_space("macro", (1, 8, 8), max_layers=4)
    sampler = make_sampler("reinforce", 0, False, space=macro, batch_size=2)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    run(study, macro, 8, score=lambda arch: sum(len(layer.skips) for layer in arch.layers))
    kinds = set(sampler.controller.heads)
    assert {"filter_height-4", "filter_width-4", "stride-3", "filters-4"} <= kinds  # shared by all layers
    assert not any("skip" in kind for kind in kinds)  # skips come from the anchor-point attention
    assert sampler.controller.attend_v.weight.grad is not None


def test_reinforce_minimises_a_minimised_first_objective(cell_space):
    sampler = make_sampler("reinforce", 3, False, space=cell_space, learning_rate=0.02)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    run(study, cell_space, 80)
    scores = [t.value for t in study.trials]
    assert sum(scores[-20:]) / 20 < sum(scores[:20]) / 20 - 0.2


def test_pareto_ranking_crowding_and_hypervolume():
    points = [(0.9, 0.1), (0.5, 0.5), (0.1, 0.9), (0.4, 0.4), (0.05, 0.05), (0.5, 0.45)]
    assert nondominated_ranks(points) == [0, 0, 0, 2, 3, 1]
    front = crowding_distances(points[:3])
    assert front[0] == front[2] == math.inf and front[1] == pytest.approx(2.0)
    assert rank_order(points) == [0, 2, 1, 5, 3, 4]
    # staircase: 0.9*0.1 + 0.5*0.4 + 0.1*0.4 = 0.33
    assert hypervolume_2d(points) == pytest.approx(0.33)
    assert hypervolume_2d(points[:1], reference=(0.95, 0)) == 0.0
    assert hypervolume_2d([]) == 0.0


def test_rungs_follow_asha():
    assert rung_epochs(9, 1, 3) == [1, 3]
    assert rung_epochs(6, 1, 3, bracket=1) == [3]
    assert rung_epochs(3, 1, 3) == [1]
    assert rung_epochs(1, 1, 3) == []
    assert rung_epochs(16, 2, 2) == [2, 4, 8]


def test_multi_objective_rung_keeps_the_front_not_the_best_val_acc():
    directions = {"val_acc": "max", "robust_acc": "max"}
    at_rung = {
        "a": {"val_acc": 0.9, "robust_acc": 0.1},
        "b": {"val_acc": 0.8, "robust_acc": 0.2},
        "c": {"val_acc": 0.7, "robust_acc": 0.6},
    }
    # keep 2 of 3: c has the worst val_acc (ASHA on val_acc would stop it) but the best
    # robust_acc; on the front it is an extreme, of infinite crowding distance, as is a
    assert promoted(at_rung, "c", directions, 2)
    assert promoted(at_rung, "a", directions, 2)
    assert not promoted(at_rung, "b", directions, 2)
    assert [promoted(at_rung, t, directions, 3) for t in "abc"] == [True, False, False]  # keep 1: ties by arrival
    # four on one front, keep 2: the extremes d and c; a and b lie between them, crowded
    with_d = {**at_rung, "d": {"val_acc": 0.95, "robust_acc": 0.05}}
    assert [promoted(with_d, t, directions, 2) for t in "abcd"] == [False, False, True, True]
    # a minimised objective is negated
    assert promoted(
        {"x": {"val_acc": 0.5, "params": 10}, "y": {"val_acc": 0.5, "params": 99}},
        "x",
        {"val_acc": "max", "params": "min"},
        2,
    )


def test_multi_objective_rungs_stop_dominated_trials_in_arrival_order():
    rungs = MultiObjectiveRungs({"val_acc": "max", "robust_acc": "max"}, max_t=9, grace_period=1, reduction_factor=3)
    assert rungs.on_result("t0", 1, {"val_acc": 0.5, "robust_acc": 0.5})  # alone at its rung
    assert not rungs.on_result("t1", 1, {"val_acc": 0.4, "robust_acc": 0.4})  # dominated by t0
    assert rungs.on_result("t2", 1, {"val_acc": 0.9, "robust_acc": 0.9})
    assert rungs.on_result("t2", 2, {"val_acc": 0.9, "robust_acc": 0.9})  # no rung at epoch 2
    assert rungs.on_result("t0", 3, {"val_acc": 0.6, "robust_acc": 0.6})  # first at rung 3
    assert not rungs.on_result("t2", 3, {"val_acc": 0.55, "robust_acc": 0.5})
    assert rungs.stopped == 2
    # an objective not reported at the rung (latency) is left out of its ranking
    assert rungs.on_result("t3", 1, {"val_acc": 0.95, "robust_acc": 0.95, "latency_ms": 3.0})


def test_the_fidelity_ladder_is_in_the_config_and_the_trial_context():
    mo = dict(objectives=["val_acc", "robust_acc"], epochs=9, robust_attack="pgd")
    assert SearchConfig(**mo).rung_attack == "fgsm"
    assert ladder_epochs(SearchConfig(**mo)) == ()  # fifo checks nothing
    asha = SearchConfig(**mo, scheduler="asha")
    ladder = fidelity_ladder(asha)
    assert ladder["rung_epochs"] == (1, 3)
    assert ladder["rung_robust"].attack == "fgsm" and ladder["rung_robust"].eps == asha.robust_eps
    assert ladder_epochs(SearchConfig(**mo, scheduler="hyperband")) == (1, 3)
    assert fidelity_ladder(SearchConfig(objectives=["val_acc", "params"], scheduler="asha", epochs=9)) == {
        "rung_epochs": (1, 3),
        "rung_robust": None,
    }
    assert ladder_epochs(SearchConfig(scheduler="asha", epochs=9)) == ()  # one objective: Ray's ASHA


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["evolution", "reinforce"])
def test_cli_search_replays_the_recorded_cells_and_resumes(ray_runtime, tracking_uri, tmp_path, name):
    """``nasbench search --sampler NAME --replay`` on the shipped record, then ``--resume``
    for more trials: the study goes on from its own history."""
    import json
    from pathlib import Path

    from nasbench.cli import main
    from nasbench.store import Benchmark

    recorded = tmp_path / "cell_digits.db"
    with Benchmark(recorded) as bench:
        bench.import_parquet(Path(__file__).parent / "fixtures" / "cell_digits.parquet")
    common = ["--experiments-dir", str(tmp_path / "exp"), "--experiment", name, "--no-progress"]
    assert (
        main(
            [
                "search",
                "--space",
                "cell",
                "--space-option",
                "channels=8",
                "--space-option",
                "cells_per_stage=1",
                "--space-option",
                "ops=[skip_connect,nor_conv_1x1,nor_conv_3x3]",
                "--replay",
                str(recorded),
                "--epochs",
                "2",
                "--trials",
                "8",
                "--sampler",
                name,
                "--sampler-option",
                "batch_size=2" if name == "reinforce" else "sample_size=3",
                "--tracking-uri",
                tracking_uri,
                "--export-top",
                "0",
                "--no-register-models",
                *common,
            ]
        )
        == 0
    )
    assert main(["search", "--trials", "12", "--resume", *common]) == 0
    directory = tmp_path / "exp" / name
    log = [json.loads(line) for line in (directory / "search.log").read_text().splitlines()]
    trials = [entry for entry in log if entry.get("status") == "ok"]
    assert sorted(entry["trial"] for entry in trials) == list(range(12))
    if name == "evolution":  # no class twice, across the resume too
        assert len({entry["arch_hash"] for entry in trials}) == 12
    import optuna

    study = optuna.load_study(
        study_name="search",
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(directory / "optuna.journal"))
        ),
    )
    for trial in study.trials:  # every trial ran the architecture its sampler planned
        assert trial.params == trial.system_attrs[PLAN_ATTR]["params"]
        assert trial.user_attrs["arch_hash"] == trial.system_attrs[PLAN_ATTR]["key"]


@pytest.mark.e2e
def test_multi_objective_asha_prunes_on_both_objectives_measured_at_the_rung(ray_runtime, tracking_uri, tmp_path):
    """A real search: trials report FGSM robust accuracy at the rung (the fidelity ladder),
    the final objective is PGD's, and the trials stopped at the rung are PRUNED in Optuna."""
    import json

    import optuna

    from nasbench.cli import main

    assert (
        main(
            [
                "search",
                "--space",
                "cell",
                "--space-option",
                "channels=4",
                "--space-option",
                "cells_per_stage=1",
                "--epochs",
                "3",
                "--trials",
                "6",
                "--concurrency",
                "1",
                "--objectives",
                "val_acc,robust_acc",
                "--scheduler",
                "asha",
                "--robust-attack",
                "pgd",
                "--robust-samples",
                "64",
                "--sampler",
                "evolution",
                "--experiments-dir",
                str(tmp_path),
                "--experiment",
                "mo",
                "--tracking-uri",
                tracking_uri,
                "--export-top",
                "0",
                "--no-register-models",
                "--no-progress",
            ]
        )
        == 0
    )
    log = [json.loads(line) for line in (tmp_path / "mo" / "search.log").read_text().splitlines()]
    ended = {entry["trial"]: entry for entry in log if entry.get("status") in ("ok", "pruned")}
    assert len(ended) == 6
    pruned = [entry for entry in ended.values() if entry["status"] == "pruned"]
    assert pruned and all(entry["epoch"] == 1 and 0.0 <= entry["robust_acc"] <= 1.0 for entry in pruned)
    assert any(entry["status"] == "ok" and entry["epoch"] == 3 for entry in ended.values())
    study = optuna.load_study(
        study_name="search",
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(tmp_path / "mo" / "optuna.journal"))
        ),
    )
    states = {t.number: t.state for t in study.trials}
    assert {n for n, s in states.items() if s == optuna.trial.TrialState.PRUNED} == {e["trial"] for e in pruned}
    config = (tmp_path / "mo" / "config.yaml").read_text()
    assert "rung_attack: fgsm" in config and "robust_attack: pgd" in config
