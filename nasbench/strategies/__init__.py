"""Search strategies: the Optuna sampler that proposes architectures and the Ray Tune
scheduler that stops weak trials early.

Samplers (``--sampler``), each seeded by ``--seed``:

- ``tpe``, ``random``, ``nsga2``, ``gp``, ``qmc``: Optuna's own;
- ``evolution``: regularized (aging) evolution, Real et al. 2019
  (:mod:`nasbench.strategies.evolution`);
- ``reinforce``: the recurrent controller of Zoph & Le 2017 trained by REINFORCE
  (:mod:`nasbench.strategies.reinforce`).

The last two plan whole architectures through the search space's define-by-run code
(:mod:`nasbench.strategies.planning`), so they need the space.

Schedulers (``--scheduler``): ``fifo`` runs every trial to the end; ``asha`` and
``hyperband`` stop weak trials at rungs (Li et al. 2020). With one objective they rank
by validation accuracy (Ray Tune's own schedulers); with several, by non-dominated rank
and crowding distance over all objectives (:mod:`nasbench.strategies.mo_asha`).
"""

from __future__ import annotations

import warnings
from typing import Any

from nasbench.errors import UserError
from nasbench.strategies.settings import SchedulerSettings

SAMPLERS = ("tpe", "random", "nsga2", "gp", "qmc", "evolution", "reinforce")
SCHEDULERS = ("fifo", "asha", "hyperband")


def make_sampler(name: str, seed: int, multi_objective: bool, space=None, **options: Any):
    """The Optuna sampler for ``--sampler``; every one is seeded.

    ``space`` (a search space with ``sample(trial)``) is needed by ``evolution`` and
    ``reinforce``; ``options`` are their keyword arguments (population_size,
    sample_size; batch_size, learning_rate, baseline_decay, hidden_size, num_layers).
    """
    import optuna

    try:
        check_sampler_options(name, options)
    except ValueError as error:
        raise UserError(str(error)) from None
    if name == "tpe":
        # multivariate + group model dependencies between define-by-run parameters;
        # Optuna flags both as experimental on every construction: known, and chosen
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(
                seed=seed, multivariate=True, group=True, constant_liar=True, n_startup_trials=5
            )
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=8)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=5)
    if name == "qmc":
        return optuna.samplers.QMCSampler(seed=seed, scramble=True)
    if name in ("evolution", "reinforce"):
        if space is None:
            raise UserError(f"sampler {name!r} needs the search space")
        try:
            return _planning_sampler(name, space, seed, options)
        except (TypeError, ValueError) as error:
            raise UserError(f"sampler {name}: {error}") from None
    raise UserError(f"unknown sampler {name!r}; choose from {', '.join(SAMPLERS)}")


def _planning_sampler(name: str, space, seed: int, options: dict[str, Any]):
    """Regularized evolution or REINFORCE over ``space``: imported only when chosen."""
    if name == "evolution":
        from nasbench.strategies.evolution import RegularizedEvolutionSampler

        return RegularizedEvolutionSampler(space, seed, **options)
    from nasbench.strategies.reinforce import ReinforceSampler

    return ReinforceSampler(space, seed, **options)


SAMPLER_OPTIONS = {
    "evolution": ("population_size", "sample_size"),
    "reinforce": ("batch_size", "learning_rate", "baseline_decay", "hidden_size", "num_layers"),
}


def check_sampler_options(name: str, options: dict) -> None:
    """Raise ValueError for an option the sampler ``name`` does not take."""
    known = SAMPLER_OPTIONS.get(name, ())
    unknown = sorted(set(options) - set(known))
    if unknown:
        takes = f"takes {', '.join(known)}" if known else "takes no options"
        raise ValueError(f"sampler {name} {takes}; unknown: {', '.join(unknown)}")
    for key, value in options.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"sampler option {key} must be a number, not {value!r}")
    if name == "evolution":
        from nasbench.strategies.evolution import check_sizes

        check_sizes(**options)
    if name == "reinforce":
        from nasbench.strategies.reinforce import check_settings

        check_settings(**options)


def make_scheduler(config: SchedulerSettings):
    """The Ray Tune scheduler for ``--scheduler``; Ray is imported here, when a search runs."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, HyperBandScheduler

    if config.scheduler != "fifo" and config.multi_objective:
        from nasbench.strategies.mo_asha_scheduler import make_multi_objective_scheduler

        return make_multi_objective_scheduler(config)
    # the per-epoch fidelity is validation accuracy, whatever the objectives
    if config.scheduler == "asha":
        return ASHAScheduler(
            time_attr="epoch",
            metric="val_acc",
            mode="max",
            max_t=config.epochs,
            grace_period=min(config.grace_period, config.epochs),
            reduction_factor=config.reduction_factor,
        )
    if config.scheduler == "hyperband":
        return HyperBandScheduler(
            time_attr="epoch",
            metric="val_acc",
            mode="max",
            max_t=config.epochs,
            reduction_factor=config.reduction_factor,
        )
    return FIFOScheduler()
