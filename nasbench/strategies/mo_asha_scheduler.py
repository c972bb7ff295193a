"""The Ray Tune scheduler of multi-objective successive halving (:mod:`nasbench.strategies.mo_asha`).

It imports Ray Tune: imported only when a search builds its scheduler.
"""

from __future__ import annotations

from typing import Any

from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from nasbench.strategies.mo_asha import MultiObjectiveRungs, bracket_count
from nasbench.strategies.settings import SchedulerSettings
from nasbench.trial_context import OBJECTIVES


class MultiObjectiveASHAScheduler(FIFOScheduler):
    """Ray Tune's trial scheduler interface around :class:`MultiObjectiveRungs`."""

    def __init__(self, rungs: MultiObjectiveRungs) -> None:
        super().__init__()
        self.rungs = rungs

    def set_search_properties(self, metric: Any, mode: Any, **spec: Any) -> bool:
        return True  # the objectives were given at construction

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        self.rungs.add(trial.trial_id)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if "epoch" not in result or result.get("trial_complete"):
            return TrialScheduler.CONTINUE
        keep = self.rungs.on_result(trial.trial_id, result["epoch"], result)
        return TrialScheduler.CONTINUE if keep else TrialScheduler.STOP

    def debug_string(self) -> str:
        return (
            f"multi-objective successive halving over {', '.join(self.rungs.directions)}: {self.rungs.stopped} stopped"
        )


def make_multi_objective_scheduler(config: SchedulerSettings) -> MultiObjectiveASHAScheduler:
    """The Ray Tune scheduler for ``--scheduler asha|hyperband`` with several objectives."""
    directions = {OBJECTIVES[name][0]: OBJECTIVES[name][1] for name in config.objectives}
    rungs = MultiObjectiveRungs(
        directions,
        config.epochs,
        min(config.grace_period, config.epochs),
        config.reduction_factor,
        bracket_count(config),
    )
    return MultiObjectiveASHAScheduler(rungs)
