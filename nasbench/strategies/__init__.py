"""Search strategies: the Optuna sampler that proposes architectures and the Ray Tune
scheduler that stops weak trials early."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from nasbench.errors import UserError

if TYPE_CHECKING:
    from nasbench.search import SearchConfig

SAMPLERS = ("tpe", "random", "nsga2", "gp", "qmc")
SCHEDULERS = ("fifo", "asha", "hyperband")


def make_sampler(name: str, seed: int, multi_objective: bool):
    """The Optuna sampler for ``--sampler``; every one is seeded."""
    import optuna

    if name == "tpe":
        # multivariate + group model dependencies between define-by-run parameters;
        # Optuna flags both as experimental on every construction: known, and chosen
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True,
                                              constant_liar=True, n_startup_trials=5)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=8)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=5)
    if name == "qmc":
        return optuna.samplers.QMCSampler(seed=seed, scramble=True)
    raise UserError(f"unknown sampler {name!r}; choose from {', '.join(SAMPLERS)}")


def make_scheduler(config: "SearchConfig"):
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, HyperBandScheduler

    # the per-epoch fidelity is validation accuracy, whatever the objectives
    if config.scheduler == "asha":
        return ASHAScheduler(time_attr="epoch", metric="val_acc", mode="max", max_t=config.epochs,
                             grace_period=min(config.grace_period, config.epochs),
                             reduction_factor=config.reduction_factor)
    if config.scheduler == "hyperband":
        return HyperBandScheduler(time_attr="epoch", metric="val_acc", mode="max", max_t=config.epochs,
                                  reduction_factor=config.reduction_factor)
    return FIFOScheduler()
