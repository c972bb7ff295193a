"""Regularized (aging) evolution: Real, Aggarwal, Huang & Le, "Regularized Evolution for
Image Classifier Architecture Search", AAAI 2019 (arXiv:1802.01548).

The loop of the paper (its Algorithm 1): the population is the ``P`` most recently
finished architectures; each new one is a *mutation* of the best of ``S`` members
drawn at random (tournament selection), and it is the oldest member, not the worst,
that leaves the population ("aging"), which regularises towards architectures that
retrain well. The first ``P`` architectures are drawn at random. On NAS-Bench-201
(Dong & Yang 2020, table 5) it is the strongest simple baseline.

Here, on Optuna's define-by-run decisions (:mod:`nasbench.strategies.planning`):

- a mutation changes *one decision* of the parent (one edge's operation in the cell
  space; one filter size, stride, filter count, skip, pooling choice or the depth in
  the macro space) to another of its values; decisions a change brings into existence
  (deeper layers, skips of a new layer) are drawn at random;
- no trial is spent on a class already in the study (NAS-Bench-101/201 users drown in
  isomorphic duplicates): among the one-decision mutations of the parent, in random
  order, the first whose canonical class (``arch_hash``) is new is taken; when every
  one is known, a random unseen architecture is. Trials still running count as seen,
  so parallel workers are not handed the same class;
- several objectives: the tournament's winner is the first by non-dominated rank, then
  crowding distance (NSGA-II's order) among the ``S`` drawn;
- pruned and failed trials are not members (they have no final value) but their classes
  count as seen.

The population, the tournament and the mutation of trial ``n`` depend only on the
study's finished trials (in the order they finished) and on ``(seed, n)``: a resumed
study continues exactly as the uninterrupted one. Defaults (``population_size=10``,
``sample_size=3``) were chosen by measurement on the recorded cell benchmark
(``benchmarks/search_efficiency.py``); the paper used P=100, S=25 with 20,000 trials.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna

from nasbench.strategies.pareto import rank_order, to_maximise
from nasbench.strategies.planning import (
    PLAN_ATTR,
    PlanningSampler,
    choices_of,
    finished_in_order,
    plan,
    random_decider,
    rng_for,
    seen_classes,
)

FRESH_TRIES = 200  # random draws looking for an unseen class before taking a seen one


def check_sizes(population_size: int = 5, sample_size: int = 5) -> None:
    if (
        int(population_size) != population_size
        or int(sample_size) != sample_size
        or not 1 <= sample_size <= population_size
    ):
        raise ValueError(
            f"evolution needs whole numbers 1 <= sample_size <= population_size, got "
            f"sample_size {sample_size} and population_size {population_size}"
        )


class RegularizedEvolutionSampler(PlanningSampler):
    """Aging evolution as an Optuna sampler; see the module docstring."""

    def __init__(self, space, seed: int = 0, population_size: int = 5, sample_size: int = 5) -> None:
        super().__init__(space, seed)
        check_sizes(population_size, sample_size)
        self.population_size = int(population_size)
        self.sample_size = int(sample_size)

    def propose(self, study: optuna.Study, number: int) -> tuple[dict[str, Any], str]:
        trials = study.get_trials(deepcopy=False)
        seen = seen_classes(trials, number)
        finished = finished_in_order(trials)
        rng = rng_for(self.seed, number)
        if len(finished) < self.population_size:
            return self.fresh(rng, seen)
        population = finished[-self.population_size :]  # aging: the oldest have left
        drawn = rng.choice(len(population), size=self.sample_size, replace=False)
        tournament = [population[i] for i in sorted(drawn)]
        directions = ["max" if d == optuna.study.StudyDirection.MAXIMIZE else "min" for d in study.directions]
        order = rank_order([to_maximise(t.values, directions) for t in tournament])
        return self.mutate(tournament[order[0]], rng, seen)

    def fresh(self, rng: np.random.Generator, seen: set[str]) -> tuple[dict[str, Any], str]:
        """A random architecture, of an unseen class if one turns up in ``FRESH_TRIES`` draws."""
        for _ in range(FRESH_TRIES):
            params, _, key = plan(self.space, random_decider(rng))
            if key not in seen:
                break
        return params, key

    def mutate(self, parent, rng: np.random.Generator, seen: set[str]) -> tuple[dict[str, Any], str]:
        """One decision of ``parent`` changed, towards a class not seen yet."""
        # sorted by name: the same list whatever order the storage keeps the parameters in
        moves = [
            (name, value)
            for name, distribution in sorted(parent.distributions.items())
            for value in choices_of(distribution)
            if not _same(value, parent.params[name])
        ]
        parent_key = (parent.system_attrs.get(PLAN_ATTR) or {}).get("key") or parent.user_attrs.get("arch_hash")
        for index in rng.permutation(len(moves)):
            name, value = moves[index]
            child, _, key = plan(self.space, random_decider(rng, {**parent.params, name: value}))
            if key not in seen and key != parent_key:
                return child, key
        return self.fresh(rng, seen)


def _same(a, b) -> bool:
    return a == b and type(a) is type(b)
