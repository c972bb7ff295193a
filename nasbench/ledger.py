"""The driver's ledger of a search's trials: a Ray Tune ``Callback``.

It sees every trial start, report and end on the driver and turns them into one record
per trial (``nasbench.outcomes``): first into the outbox (``results.jsonl``), then to
``search.log`` and the progress display, then to the single writer
(``nasbench.trial_writer``) that streams MLflow runs and store rows. The searcher calls
:meth:`TrialLedger.finish` before it tells Optuna, and :meth:`TrialLedger.answered` for
trials it answers on the driver: so Optuna never counts a trial the outbox lacks.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from ray.tune import Callback

from nasbench.outcomes import FINAL_METRICS

_CURVE_KEYS = ("epoch", "train_loss", "train_acc", "val_acc")
_LOG_KEYS = ("epoch", "val_acc", "robust_acc", "corruption_acc", "params", "macs", "latency_ms")


class TrialLedger(Callback):
    """Records of the trials of one run of a search (see the module docstring).

    Args:
        directory: the experiment directory (``search.log``).
        outbox: ``nasbench.trial_writer.Outbox``.
        writer: ``nasbench.trial_writer.TrialWriter``.
        answers: ``nasbench.outcomes.DriverAnswers`` (told what this search found).
        scheduler: the trial scheduler's name (a pruned trial's reason names it).
        budget: epochs per trial.
        progress: ``nasbench.progress.SearchProgress`` (answered trials are counted there).
    """

    def __init__(self, directory: Path, outbox, writer, answers, scheduler: str, budget: int, progress=None):
        self.log_path = Path(directory) / "search.log"
        self.outbox, self.writer, self.answers = outbox, writer, answers
        self.scheduler, self.budget, self.progress = scheduler, budget, progress
        self.trials: dict[str, object] = {}  # Tune trial id -> the Tune Trial
        self.curves: dict[str, list[dict]] = {}
        self.finished: set[str] = set()
        self.answered_count = 0

    def __getstate__(self) -> dict:
        # Tune pickles its callbacks into tuner.pkl: the copy keeps no trials and writes nothing
        state = self.__dict__.copy()
        state.update(trials={}, curves={}, writer=None, answers=None, progress=None)
        return state

    # ------------------------------------------------------------------ Ray Tune hooks

    def on_trial_start(self, iteration, trials, trial, **info):
        self.trials[trial.trial_id] = trial
        config = trial.config
        self.writer.start(
            int(config["trial_number"]), config["arch"], config["arch_hash"], rerun=bool(config.get("rerun"))
        )

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if "epoch" in result and "val_acc" in result and not result.get("trial_complete"):
            self.curves.setdefault(trial.trial_id, []).append({k: result[k] for k in _CURVE_KEYS if k in result})
            self.writer.epoch(
                int(trial.config["trial_number"]),
                {k: v for k, v in result.items() if k in FINAL_METRICS or k in _CURVE_KEYS},
            )

    # ------------------------------------------------------------------ called by the searcher

    def finish(
        self, trial_id: str, config: dict, result: dict, status: str, reason: str | None, values: list[float] | None
    ) -> str | None:
        """Record how a Tune trial ended, before Optuna is told; returns the reason to tell
        (a crash names its last error line, an early stop its scheduler)."""
        if trial_id in self.finished or not config:
            return reason
        self.finished.add(trial_id)
        trial = self.trials.get(trial_id)
        if status == "failed" and not result.get("reason"):
            reason = f"the trial's worker crashed: {_last_error_line(getattr(trial, 'error_file', None))}"
        elif status == "pruned":
            reason = f"stopped by {self.scheduler} after epoch {result.get('epoch', 0)} of {self.budget}"
        curves = result.get("curves") or self.curves.get(trial_id, [])
        record = self._record(config, result, status, reason, values, curves=curves)
        record["checkpoint"] = _checkpoint_uri(trial) if status == "ok" and trial is not None else None
        if status == "ok":
            self.answers.remember(record["arch_hash"], result)
        self._commit(record)
        return reason

    def answered(self, config: dict, result: dict, status: str, reason: str | None, values: list[float] | None) -> None:
        """Record a trial answered on the driver (a duplicate or a replay), before Optuna is told."""
        record = self._record(config, result, status, reason, values, curves=result.get("curves") or [])
        record["epochs"] = result.get("epochs") or []
        record["store"] = False  # already in the store, or a replay (which records nothing)
        self.answered_count += 1
        self._commit(record)
        if self.progress is not None:
            self.progress.state.start_trial()
            self.progress.state.finish_trial(result)
            self.progress._draw()

    # ------------------------------------------------------------------ records

    def _record(self, config: dict, result: dict, status: str, reason: str | None, values, curves) -> dict:
        return {
            "trial": int(config["trial_number"]),
            "arch": config["arch"],
            "arch_hash": config["arch_hash"],
            "rerun": bool(config.get("rerun")),
            "status": status,
            "reason": reason,
            "values": values,
            "metrics": {k: result[k] for k in FINAL_METRICS if result.get(k) is not None},
            "curves": curves,
            "robust": result.get("robust") or None,
        }

    def _commit(self, record: dict) -> None:
        self.outbox.add(record)  # durable first: a killed driver's resume writes it
        entry = {
            "trial": record["trial"],
            "arch_hash": record["arch_hash"],
            "status": record["status"],
            "reason": record["reason"],
            "time": time.time(),
        }
        entry.update({k: record["metrics"][k] for k in _LOG_KEYS if k in record["metrics"]})
        with open(self.log_path, "a") as handle:
            handle.write(json.dumps(entry, default=str) + "\n")
        self.writer.finish(record)


def _last_error_line(path) -> str:
    try:
        lines = [line for line in Path(path).read_text().splitlines() if line.strip()]
        return lines[-1][:300] if lines else "no error file"
    except (OSError, TypeError):
        return "no error file"


def _checkpoint_uri(trial) -> str | None:
    """Where Tune persisted the trial's last checkpoint: a local path, or a storage URI."""
    checkpoint = getattr(trial, "checkpoint", None)
    if checkpoint is None:
        return None
    kind = checkpoint.filesystem.type_name
    return checkpoint.path if kind == "local" else f"{kind}://{checkpoint.path}"
