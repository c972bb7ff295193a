"""How a search trial ended, told to Optuna; and trials answered on the driver.

Every trial ends as one *record* (a plain dict, one JSON line in the experiment's
``results.jsonl``): its number, architecture, status (ok, deduplicated, failed, pruned),
reason, final metrics, per-epoch curves and robust results. The driver makes it from
what a trial reported through Ray Tune, or answers it without launching anything:

- a *duplicate*: the benchmark store already holds this (architecture hash, dataset,
  budget, seed) with every objective -- isomorphic architectures share a hash, so they
  are never retrained (NAS-Bench-101 found most proposals of a search to be repeats);
- a *replay* (``--replay``): the recorded benchmark's row, with its per-epoch curve and
  training time as simulated seconds (NAS-Bench-201's ``simulate_train_eval``).

No Ray import here; Optuna only inside the functions that tell it.
"""

from __future__ import annotations

import math
from typing import Any

from nasbench.trial_context import OBJECTIVES

# The metrics a record keeps of a trial's final result (the rest is Ray Tune's own).
FINAL_METRICS = (
    "epoch",
    "val_acc",
    "train_acc",
    "train_loss",
    "epoch_seconds",
    "adv_eps",
    "test_acc",
    "robust_acc",
    "corruption_acc",
    "params",
    "macs",
    "latency_ms",
    "train_seconds",
    "simulated_seconds",
    "device",
)


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def trial_outcome(result: dict, error: bool, metrics: list[str]) -> tuple[str, str | None, list[float] | None]:
    """``(status, reason, objective values)`` of a trial from its last result.

    COMPLETE only if the last result says ``trial_complete`` (a trial stopped by ASHA
    after one epoch is PRUNED, never COMPLETE with its low-fidelity score); a
    ``failed`` status, a crashed worker or a missing objective is FAIL.
    """
    values = [result.get(name) for name in metrics]
    if error or result.get("status") == "failed":
        return "failed", result.get("reason") or "the trial's worker crashed", None
    if not result.get("trial_complete"):
        return "pruned", f"stopped early after epoch {result.get('epoch', 0)}", None
    if not all(finite(v) for v in values):
        return "failed", f"objective values missing or not finite: {dict(zip(metrics, values, strict=False))}", None
    return result.get("status", "ok"), None, [float(v) for v in values if v is not None]


def tell_study(study, trial, status: str, reason: str | None, values: list[float] | None) -> None:
    """Tell Optuna how ``trial`` (an ``optuna.Trial`` or a trial number) ended."""
    from optuna.trial import Trial, TrialState

    if not isinstance(trial, Trial):
        storage = study._storage
        trial = Trial(study, storage.get_trial_id_from_study_id_trial_number(study._study_id, int(trial)))
    state = {"failed": TrialState.FAIL, "pruned": TrialState.PRUNED}.get(status, TrialState.COMPLETE)
    trial.set_user_attr("status", status)
    if reason:
        trial.set_user_attr("reason", reason)
    told = None if values is None else values if len(values) > 1 else values[0]
    study.tell(trial, told, state=state)


def row_metrics(row: dict) -> dict:
    """A benchmark row's numbers under the names a trial reports them."""
    metrics = {
        key: row.get(key)
        for key in ("val_acc", "train_acc", "test_acc", "params", "macs", "latency_ms", "train_seconds")
    }
    results = row.get("robust") or []
    robust = [r["accuracy"] for r in results if r.get("norm") != "corruption"]
    if robust:
        metrics["robust_acc"] = min(robust)
    corrupted = [r["accuracy"] for r in results if r.get("norm") == "corruption" and r.get("attack") == "mean"]
    if corrupted:  # the mean over the search's corruption subset (nasbench.trial._corruption)
        metrics["corruption_acc"] = corrupted[-1]
    curves = row.get("curves") or []
    metrics["epoch"] = curves[-1]["epoch"] if curves else row.get("budget")
    return metrics


class DriverAnswers:
    """Trials the driver answers from the benchmark store (duplicates) or a replay.

    ``remember`` keeps what this search's own trials found: their store rows are written
    in the background, and a duplicate proposed meanwhile must still be recognised.
    """

    def __init__(
        self,
        *,
        store_path: str | None,
        store_journal: str | None,
        replay_path: str | None,
        dataset: str,
        budget: int,
        seed: int,
        objectives: tuple[str, ...],
    ):
        self.store_path, self.store_journal, self.replay_path = store_path, store_journal, replay_path
        self.dataset, self.budget, self.seed, self.objectives = dataset, budget, seed, objectives
        self._stores: dict[str, Any] = {}
        self._found: dict[str, dict] = {}

    def __getstate__(self) -> dict:  # Ray Tune pickles the searcher into tuner.pkl: no open stores
        return {**self.__dict__, "_stores": {}}

    def _store(self, path: str, journal: str | None = None):
        if path not in self._stores:
            from nasbench.store import Benchmark

            self._stores[path] = Benchmark(path, journal_mode=journal)
        return self._stores[path]

    def _has_objectives(self, metrics: dict) -> bool:
        return all(finite(metrics.get(OBJECTIVES[name][0])) for name in self.objectives)

    def remember(self, arch_hash: str, result: dict) -> None:
        metrics = {k: result.get(k) for k in FINAL_METRICS if k in result}
        if result.get("status") == "ok" and self._has_objectives(metrics):
            self._found.setdefault(arch_hash, metrics)

    def answer(self, arch_hash: str) -> dict | None:
        """A final result for ``arch_hash`` without training it, or None (train it)."""
        known = self._found.get(arch_hash)
        if known is None and self.store_path is not None:
            row = self._store(self.store_path, self.store_journal).lookup(
                arch_hash, self.dataset, self.budget, self.seed
            )
            if row is not None and row["status"] == "ok" and self._has_objectives(row_metrics(row)):
                known = row_metrics(row)
        if known is not None:
            return {**known, "status": "deduplicated", "trial_complete": True, "curves": [], "epochs": []}
        if self.replay_path is not None:
            return self._replay(arch_hash)
        return None

    def _replay(self, arch_hash: str) -> dict:
        assert self.replay_path is not None
        row = self._store(self.replay_path).lookup(arch_hash, self.dataset, self.budget, self.seed)
        if row is None or row["status"] != "ok":
            return {
                "status": "failed",
                "trial_complete": True,
                "reason": f"LookupError: architecture {arch_hash[:12]} is not recorded in the replay benchmark "
                f"{self.replay_path} for {self.dataset}, {self.budget} epochs, seed {self.seed}",
            }
        curves = row.get("curves") or []
        seconds = row.get("train_seconds") or 0.0
        per_epoch = seconds / max(1, len(curves) or self.budget)
        epochs = [
            {**{k: v for k, v in entry.items() if finite(v)}, "simulated_seconds": per_epoch * (i + 1)}
            for i, entry in enumerate(curves[:-1])
        ]  # the last epoch comes with the final metrics
        return {
            **row_metrics(row),
            "simulated_seconds": seconds,
            "status": "ok",
            "trial_complete": True,
            "curves": [],
            "epochs": epochs,
            "replayed": True,
        }

    def close(self) -> None:
        for store in self._stores.values():
            store.close()
        self._stores.clear()
