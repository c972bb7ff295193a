"""The rung-aligned LR schedule (``schedule: rungs``): warm restarts at the rungs of
successive halving, so that a rung's metric is that of a finished short schedule."""

import math

import pytest
import torch

from nasbench.config import TrainConfig
from nasbench.strategies.mo_asha import rung_epochs
from nasbench.train import make_schedule

FLOOR = 1 / 2.5e5  # one-cycle's final LR, as a fraction of cfg.lr


def learning_rates(cfg: TrainConfig, steps_per_epoch: int, milestones=None) -> list[float]:
    """The LR of every optimizer step of ``cfg.epochs`` epochs, as a fraction of ``cfg.lr``."""
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([parameter], lr=cfg.lr)
    schedule = make_schedule(optimizer, cfg, cfg.epochs * steps_per_epoch, milestones)
    rates = []
    for _ in range(cfg.epochs * steps_per_epoch):
        rates.append(optimizer.param_groups[0]["lr"] / cfg.lr)
        optimizer.step()
        schedule.step()
    return rates


def test_rungs_is_a_schedule_of_the_config():
    assert TrainConfig(schedule="rungs").schedule == "rungs"


@pytest.mark.parametrize(("epochs", "milestones"), [(6, None), (9, None), (12, [2, 6]), (5, [])])
def test_the_lr_reaches_its_floor_on_the_last_step_before_each_milestone_and_restarts_after_it(epochs, milestones):
    steps = 10
    rates = learning_rates(TrainConfig(epochs=epochs, schedule="rungs", lr=0.01), steps, milestones)
    rungs = rung_epochs(epochs) if milestones is None else milestones
    ends = [m * steps for m in rungs] + [epochs * steps]
    starts = [0] + ends[:-1]
    for start, end in zip(starts, ends, strict=True):
        segment = rates[start:end]
        assert segment[-1] == pytest.approx(FLOOR)  # annealed: the rung sees a finished schedule
        assert segment[0] > 0.97  # restarted at (about) cfg.lr
        assert all(a > b for a, b in zip(segment, segment[1:], strict=False))  # cosine, downwards
        n = end - start  # SGDR's cosine over the segment
        expected = [FLOOR + (1 - FLOOR) * 0.5 * (1 + math.cos(math.pi * (i + 1) / n)) for i in range(n)]
        assert segment == pytest.approx(expected)
    floors = [i + 1 for i, rate in enumerate(rates) if rate == pytest.approx(FLOOR)]
    assert floors == ends  # at the milestones and at the end, nowhere else


def test_default_milestones_are_the_rungs_of_asha_with_grace_period_1_and_eta_3():
    assert rung_epochs(6) == [1, 3]
    default = learning_rates(TrainConfig(epochs=6, schedule="rungs"), 4)
    assert default == learning_rates(TrainConfig(epochs=6, schedule="rungs"), 4, [1, 3])
    assert default != learning_rates(TrainConfig(epochs=6, schedule="rungs"), 4, [2])


def test_milestones_past_the_end_are_ignored_and_few_steps_run():
    assert learning_rates(TrainConfig(epochs=2, schedule="rungs"), 3, [2, 4]) == pytest.approx(
        learning_rates(TrainConfig(epochs=2, schedule="rungs"), 3, [])
    )
    assert all(math.isfinite(rate) for rate in learning_rates(TrainConfig(epochs=3, schedule="rungs"), 1))


def _floor_epochs(cfg: TrainConfig, steps: int = 10) -> list[int]:
    """The epochs after whose last step the LR sits at its floor (a restart follows)."""
    rates = learning_rates(cfg, steps)
    return [epoch for epoch in range(1, cfg.epochs) if math.isclose(rates[epoch * steps - 1], FLOOR, rel_tol=1e-6)]


@pytest.mark.parametrize(
    ("scheduler", "objectives", "grace_period", "reduction_factor", "epochs", "restarts"),
    [
        ("asha", ["val_acc"], 1, 3, 6, [1, 3]),
        ("asha", ["val_acc"], 2, 2, 9, [2, 4, 8]),
        ("fifo", ["val_acc"], 1, 3, 6, [1, 3]),  # FIFO trains as ASHA's trials would
        ("hyperband", ["val_acc", "robust_acc"], 1, 3, 9, [1, 3]),  # every bracket's rungs
    ],
)
def test_a_search_restarts_its_schedule_at_the_rungs_of_its_scheduler(
    scheduler, objectives, grace_period, reduction_factor, epochs, restarts
):
    from nasbench.search_config import SearchConfig

    config = SearchConfig(
        schedule="rungs",
        scheduler=scheduler,
        objectives=objectives,
        grace_period=grace_period,
        reduction_factor=reduction_factor,
        epochs=epochs,
    )
    trial = config.train_config()
    assert trial.schedule_milestones == restarts  # what the trials train with, and MLflow records
    assert _floor_epochs(trial) == restarts


def test_the_experiment_states_the_restarts_its_trials_train_with(tmp_path):
    import yaml

    from nasbench.search_config import SearchConfig
    from nasbench.search_experiment import prepare_experiment

    config = SearchConfig(
        schedule="rungs", scheduler="asha", objectives=["val_acc", "robust_acc"], epochs=27, experiments_dir=tmp_path
    )
    config, directory = prepare_experiment(config)
    assert config.schedule_milestones == [1, 3, 9] == config.train_config().schedule_milestones
    assert yaml.safe_load((directory / "config.yaml").read_text())["schedule_milestones"] == [1, 3, 9]
    # a resumed search reads them back
    resumed, _ = prepare_experiment(config.model_copy(update={"resume": True}))
    assert resumed.schedule_milestones == [1, 3, 9]


def test_a_single_objective_hyperband_is_refused_with_schedule_rungs():
    from pydantic import ValidationError

    from nasbench.search_config import SearchConfig

    with pytest.raises(ValidationError, match="single-objective hyperband places its rungs otherwise"):
        SearchConfig(schedule="rungs", scheduler="hyperband")


def test_the_search_cli_takes_the_schedule_and_refuses_a_bad_one(tmp_path, capsys):
    from test_cli import exit_code

    assert exit_code(["search", "--schedule", "sawtooth", "--experiments-dir", str(tmp_path)]) == 2
    assert "sawtooth" in capsys.readouterr().err
    argv = ["search", "--schedule", "rungs", "--scheduler", "hyperband", "--experiments-dir", str(tmp_path)]
    assert exit_code(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "single-objective hyperband" in err, err
    assert not any(tmp_path.iterdir())  # refused before the experiment exists
