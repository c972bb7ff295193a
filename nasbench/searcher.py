"""The searcher of ``nasbench search``: Ray's ``OptunaSearch``, made exact.

Imported late (``nasbench.search`` imports it when a search runs): it imports Ray Tune.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from optuna.trial import Trial
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from nasbench.outcomes import tell_study, trial_outcome


class NasOptunaSearch(OptunaSearch):
    """``OptunaSearch`` that tells Optuna how each trial really ended, resumes trials a dead
    driver left RUNNING, and answers duplicates and replays on the driver.

    Ray's ``on_trial_complete`` tells COMPLETE whenever the last result holds the metric --
    also for a trial ASHA stopped after one epoch, which biases TPE towards architectures
    that learn fast in one epoch. Here a trial is COMPLETE only if its last result says
    ``trial_complete``; a trial without it was stopped by the scheduler (PRUNED);
    ``status == "failed"`` or a crashed worker is FAIL (:func:`nasbench.outcomes.trial_outcome`).

    Args (besides ``OptunaSearch``'s):
        resume_numbers: Optuna trials left RUNNING by a dead driver, run again first as the
            same trials (same number, same architecture).
        budget: how many trials this run may still start or answer; then ``FINISHED``.
        answer: ``arch_hash -> final result | None``: a trial answered without an actor.
        ledger: ``nasbench.ledger.TrialLedger``: records each trial before Optuna hears of it.
    """

    def __init__(
        self,
        *args,
        resume_numbers: Sequence[int] = (),
        budget: int | None = None,
        answer: Callable[[str], dict | None] | None = None,
        ledger=None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self._resume_numbers = list(resume_numbers)
        self._budget = budget
        self._answer = answer
        self._ledger = ledger
        self._configs: dict[str, dict] = {}
        self._given = 0

    def _metrics(self) -> list[str]:
        return self.metric if isinstance(self.metric, list) else [self.metric]

    def suggest(self, trial_id: str):
        while self._budget is None or self._given < self._budget:
            config = self._next(trial_id)
            if config is None or config == Searcher.FINISHED:
                return config
            self._given += 1
            answered = self._answer(config["arch_hash"]) if self._answer is not None else None
            if answered is None:
                self._configs[trial_id] = config
                return config
            # answered on the driver: recorded and told now, no actor spent on it
            ot_trial = self._ot_trials.pop(trial_id)
            status, reason, values = trial_outcome(answered, False, self._metrics())
            if self._ledger is not None:
                self._ledger.answered(config, answered, status, reason, values)
            tell_study(self._ot_study, ot_trial, status, reason, values)
        return Searcher.FINISHED

    def _next(self, trial_id: str):
        """The next configuration: a trial a dead driver left RUNNING, else a new sample."""
        if not self._resume_numbers:
            config = super().suggest(trial_id)
            if config is not None and config != Searcher.FINISHED:
                config["trial_number"] = self._ot_trials[trial_id].number
            return config
        number = self._resume_numbers.pop(0)
        study = self._ot_study
        assert study is not None, "OptunaSearch builds its study in __init__"
        storage = study._storage
        frozen = storage.get_trial(storage.get_trial_id_from_study_id_trial_number(study._study_id, number))
        ot_trial = Trial(study, frozen._trial_id)
        self._ot_trials[trial_id] = ot_trial
        if "arch" not in frozen.user_attrs or "arch_hash" not in frozen.user_attrs:
            # the dead driver was still sampling it (it may have recorded the architecture
            # but not yet its hash): finish sampling the same trial (parameters it already
            # has keep their values, so the architecture is the same)
            config = self._suggest_from_define_by_run_func(self._space, ot_trial)
            return {**config, "trial_number": number, "rerun": True}
        return {
            **frozen.params,
            "arch": frozen.user_attrs["arch"],
            "arch_hash": frozen.user_attrs["arch_hash"],
            "trial_number": number,
            "rerun": True,
        }

    def on_trial_result(self, trial_id: str, result: dict):
        if isinstance(self.metric, list) or trial_id in self._completed_trials:
            return  # Optuna keeps no intermediate values for several objectives
        if "epoch" in result and self.metric in result and not result.get("trial_complete"):
            self._ot_trials[trial_id].report(float(result[self.metric]), int(result["epoch"]))

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        result = result or {}
        status, reason, values = trial_outcome(result, error, self._metrics())
        if self._ledger is not None:  # durable record first, then Optuna
            reason = self._ledger.finish(trial_id, self._configs.pop(trial_id, {}), result, status, reason, values)
        tell_study(self._ot_study, self._ot_trials[trial_id], status, reason, values)
        self._completed_trials.add(trial_id)

    # Ray's experiment snapshots would pickle the study; the journal already is the
    # searcher's durable state.
    def save(self, checkpoint_path: str):
        return None

    def restore(self, checkpoint_path: str):
        return None

    def save_to_dir(self, *args, **kwargs):
        return None

    def restore_from_dir(self, *args, **kwargs):
        return None
