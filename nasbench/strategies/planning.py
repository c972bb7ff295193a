"""Samplers that plan a whole architecture at once, through the space's own define-by-run code.

Optuna asks a sampler for one decision at a time (``sample_independent``). Evolution
and a recurrent controller want to decide the whole architecture together: mutate one
decision of a parent, or emit the decisions one after another, each conditioned on the
ones before. :class:`PlanningSampler` does so at the start of every trial
(``before_trial``): it runs the search space's ``sample(trial)`` once with a
:class:`PlanningTrial`, which answers every ``suggest_*`` through the strategy, and keeps
the resulting *plan* (every decision, and the architecture's canonical class). The real
trial's ``suggest_*`` calls are then served from the plan. So the strategies work on any
space written define-by-run (the macro space's conditional decisions included) and
know the class (:func:`search_spaces.arch_hash`) of what they propose before it runs.

The plan is stored in the trial's system attributes: a trial rerun after a killed
driver keeps its decisions, and every state a strategy keeps is rebuilt from the
study's trials (so a resumed study continues as the uninterrupted one would have).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

PLAN_ATTR = "nasbench:plan"
"""Trial system attribute holding ``{"params": {...}, "key": arch_hash}``."""

Decide = Callable[[str, BaseDistribution], Any]


def choices_of(distribution: BaseDistribution) -> list:
    """Every value a (finite) distribution can take, in order."""
    if isinstance(distribution, CategoricalDistribution):
        return list(distribution.choices)
    if isinstance(distribution, IntDistribution) and not distribution.log:
        return list(range(distribution.low, distribution.high + 1, distribution.step))
    raise ValueError(f"{distribution!r}: only categorical and integer decisions are planned")


def fits(value: Any, distribution: BaseDistribution) -> bool:
    try:
        return any(value == choice and type(value) is type(choice) for choice in choices_of(distribution))
    except ValueError:
        return False


class PlanningTrial:
    """An Optuna trial stand-in: every ``suggest_*`` asks ``decide(name, distribution)``.

    Records the decisions (``params``) and their distributions in the order the space
    made them."""

    def __init__(self, decide: Decide) -> None:
        self.decide = decide
        self.params: dict[str, Any] = {}
        self.distributions: dict[str, BaseDistribution] = {}

    def _suggest(self, name: str, distribution: BaseDistribution):
        if name not in self.params:
            self.params[name] = self.decide(name, distribution)
            self.distributions[name] = distribution
        return self.params[name]

    def suggest_categorical(self, name: str, choices):
        return self._suggest(name, CategoricalDistribution(tuple(choices)))

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        return self._suggest(name, IntDistribution(low, high, log=log, step=step))

    def suggest_float(self, name: str, low: float, high: float, *, step=None, log: bool = False) -> float:
        raise ValueError(f"{name}: continuous decisions cannot be planned by evolution or the controller")


def plan(space, decide: Decide) -> tuple[dict[str, Any], dict[str, BaseDistribution], str]:
    """Run ``space.sample`` with ``decide`` making every decision: (params, distributions, class)."""
    from search_spaces import arch_hash

    trial = PlanningTrial(decide)
    arch = space.sample(trial)
    return trial.params, trial.distributions, arch_hash(arch)


def rng_for(seed: int, *words: int | str) -> np.random.Generator:
    """A generator fixed by the sampler's seed and ``words`` (trial number, decision name)."""
    entropy = [int(seed) & 0xFFFFFFFF] + [w if isinstance(w, int) else zlib.crc32(w.encode()) for w in words]
    return np.random.default_rng(entropy)


def random_decider(rng: np.random.Generator, fixed: dict[str, Any] | None = None) -> Decide:
    """Take ``fixed`` values where they fit, draw every other decision uniformly."""
    fixed = fixed or {}

    def decide(name: str, distribution: BaseDistribution):
        if name in fixed and fits(fixed[name], distribution):
            return fixed[name]
        options = choices_of(distribution)
        return options[int(rng.integers(len(options)))]

    return decide


def seen_classes(trials: list[FrozenTrial], number: int) -> set[str]:
    """The classes of every other trial of the study, finished or running (parallel workers)."""
    seen = set()
    for trial in trials:
        if trial.number == number:
            continue
        key = (trial.system_attrs.get(PLAN_ATTR) or {}).get("key") or trial.user_attrs.get("arch_hash")
        if key:
            seen.add(key)
    return seen


def finished_in_order(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """COMPLETE trials with values, in the order they finished (ties by number): the order a
    live driver saw them arrive, and the order a resumed driver rebuilds them in."""
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.values is not None]
    return sorted(done, key=lambda t: (t.datetime_complete or t.datetime_start, t.number))


class PlanningSampler(BaseSampler):
    """Base class: plan in ``before_trial`` (:meth:`propose`), serve ``suggest_*`` from the plan."""

    def __init__(self, space, seed: int = 0) -> None:
        if space is None or not hasattr(space, "sample"):
            raise ValueError(f"{type(self).__name__} needs the search space (an object with sample(trial))")
        self.space = space
        self.seed = int(seed)
        self._plans: dict[int, dict] = {}

    def propose(self, study: optuna.Study, number: int) -> tuple[dict[str, Any], str]:
        """The decisions of trial ``number`` and the class they build (subclasses)."""
        raise NotImplementedError

    # ---- Optuna's sampler interface

    def infer_relative_search_space(self, study, trial):
        return {}

    def sample_relative(self, study, trial, search_space):
        return {}

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        stored = trial.system_attrs.get(PLAN_ATTR)
        if stored is None:  # a rerun keeps the plan it was given
            params, key = self.propose(study, trial.number)
            stored = {"params": params, "key": key}
            study._storage.set_trial_system_attr(trial._trial_id, PLAN_ATTR, stored)
        self._plans[trial.number] = stored

    def sample_independent(self, study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution):
        stored = self._plans.get(trial.number) or trial.system_attrs.get(PLAN_ATTR) or {}
        params = stored.get("params", {})
        if param_name in params and fits(params[param_name], param_distribution):
            return params[param_name]
        return random_decider(rng_for(self.seed, trial.number, param_name))(param_name, param_distribution)

    def after_trial(self, study, trial, state, values) -> None:
        self._plans.pop(trial.number, None)
