"""Multi-objective successive halving: ASHA and asynchronous Hyperband that rank by
Pareto dominance instead of one metric.

ASHA (Li et al., "A System for Massively Parallel Hyperparameter Tuning", MLSys 2020)
checks a trial at each *rung* (``grace_period * eta**k`` epochs): it goes on if it is in
the top ``1/eta`` of the trials recorded at that rung so far, else it stops. With
several objectives "top" needs an order: here it is NSGA-II's (Deb et al. 2002), the
non-dominated rank first, then the crowding distance within the front (one of the
rankings Schmucker et al. compare in "Multi-objective Asynchronous Successive Halving",
arXiv:2106.12639, 2021). Ray Tune's schedulers rank by one metric (ray#8018) and Optuna refuses
intermediate values of multi-objective studies (optuna#3450), hence this scheduler.

At a rung a trial is compared on the objectives it reported there: validation
accuracy after every epoch, and at rung epochs the trial also measures robust accuracy
(with the cheaper rung attack of the fidelity ladder, see
:mod:`nasbench.strategies.fidelity`) and reports params and MACs. Objectives absent at a
rung (latency is measured once, after training) are left out of that rung's ranking.
A stopped trial is told to Optuna as PRUNED, like every early-stopped trial.

Hyperband (Li et al. 2018) runs several such brackets, each starting at a later rung;
here asynchronously (the ASHA paper's variant), trials assigned to brackets in turn.

This module decides without Ray; :mod:`nasbench.strategies.mo_asha_scheduler` is its
Ray Tune face.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from nasbench.strategies.pareto import rank_order, to_maximise
from nasbench.strategies.settings import SchedulerSettings


def rung_epochs(max_t: int, grace_period: int = 1, reduction_factor: int = 3, bracket: int = 0) -> list[int]:
    """The epochs where a trial of ``bracket`` is checked: ``grace_period * eta**(k + bracket)``
    below ``max_t`` (at ``max_t`` a trial is finished, not checked)."""
    rungs, k = [], bracket
    while grace_period * reduction_factor**k < max_t:
        rungs.append(grace_period * reduction_factor**k)
        k += 1
    return rungs


@dataclass
class Bracket:
    """One successive-halving bracket: the points recorded at each of its rungs."""

    rungs: list[int]
    reduction_factor: int
    recorded: dict[int, dict[str, dict[str, float]]] = field(default_factory=dict)

    def decide(self, trial_id: str, epoch: int, values: dict[str, float], directions: dict[str, str]) -> bool:
        """Record ``values`` at the highest rung ``epoch`` reached first; False: stop the trial."""
        for milestone in reversed(self.rungs):
            if epoch < milestone:
                continue
            at_rung = self.recorded.setdefault(milestone, {})
            if trial_id in at_rung:
                return True  # already checked here
            at_rung[trial_id] = dict(values)
            return promoted(at_rung, trial_id, directions, self.reduction_factor)
        return True


def promoted(
    at_rung: dict[str, dict[str, float]], trial_id: str, directions: dict[str, str], reduction_factor: int
) -> bool:
    """Is ``trial_id`` among the top ``ceil(n / eta)`` of the ``n`` trials at a rung, by
    non-dominated rank then crowding distance over the objectives every one reported?"""
    names = [name for name in directions if all(name in v for v in at_rung.values())]
    ids = list(at_rung)
    if not names:
        return True
    points = [to_maximise([at_rung[i][name] for name in names], [directions[n] for n in names]) for i in ids]
    keep = max(1, math.ceil(len(ids) / reduction_factor))
    return ids.index(trial_id) in rank_order(points)[:keep]


class MultiObjectiveRungs:
    """The scheduler's decisions without Ray: brackets, trials assigned to them in turn.

    ``directions`` maps each objective's result key to ``"max"`` or ``"min"``."""

    def __init__(
        self,
        directions: dict[str, str],
        max_t: int,
        grace_period: int = 1,
        reduction_factor: int = 3,
        brackets: int = 1,
    ) -> None:
        self.directions = dict(directions)
        self.max_t = max_t
        self.brackets = [
            Bracket(rung_epochs(max_t, grace_period, reduction_factor, s), reduction_factor)
            for s in range(max(1, brackets))
        ]
        self.assigned: dict[str, Bracket] = {}
        self.stopped = 0

    def add(self, trial_id: str) -> None:
        self.assigned.setdefault(trial_id, self.brackets[len(self.assigned) % len(self.brackets)])

    def on_result(self, trial_id: str, epoch: int, result: dict) -> bool:
        """False when the trial should stop at this result."""
        self.add(trial_id)
        values = {
            name: float(result[name])
            for name in self.directions
            if isinstance(result.get(name), (int, float)) and math.isfinite(result[name])
        }
        keep = self.assigned[trial_id].decide(trial_id, int(epoch), values, self.directions)
        self.stopped += not keep
        return keep


def bracket_count(config: SchedulerSettings) -> int:
    """ASHA: one bracket; Hyperband: one per first rung, the last without early stopping."""
    grace = min(config.grace_period, config.epochs)
    return 1 if config.scheduler == "asha" else len(rung_epochs(config.epochs, grace, config.reduction_factor)) + 1
