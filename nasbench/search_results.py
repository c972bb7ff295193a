"""What a search found: its summary, the ranked best (or Pareto) architectures, and
their export to ``best/`` and to the MLflow model registry."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasbench.search_config import SearchConfig
from nasbench.trial_context import OBJECTIVES

if TYPE_CHECKING:  # Optuna and MLflow are imported when a search ends
    import optuna
    from optuna.trial import FrozenTrial

    from nasbench.data import Dataset
    from nasbench.tracking import SearchRun, TrackingConfig


@dataclass
class SearchSummary:
    """What a search found and what it cost."""

    experiment: str
    experiment_dir: Path
    requested: int
    finished: int  # Optuna trials COMPLETE + PRUNED + FAIL
    complete: int
    pruned: int
    failed: int
    deduplicated: int
    interrupted: bool
    seconds: float
    best: list[dict] = field(default_factory=list)  # ranked rows (or the Pareto front)
    pareto: bool = False
    mlflow_run_id: str | None = None
    exported: list[Path] = field(default_factory=list)
    failures: dict[int, str] = field(default_factory=dict)  # trial number -> reason

    def to_dict(self) -> dict:
        data = {k: v for k, v in self.__dict__.items()}
        data["experiment_dir"] = str(self.experiment_dir)
        data["exported"] = [str(p) for p in self.exported]
        return data


def summarise(
    config: SearchConfig,
    directory: Path,
    study: optuna.Study,
    counts: dict[str, Any],
    interrupted: bool,
    seconds: float,
    search_run: SearchRun | None,
) -> SearchSummary:
    """The summary of ``study``: its counts (``study_progress``) and its ranked best rows."""
    from optuna.trial import TrialState

    failures = {
        t.number: t.user_attrs.get("reason", "") for t in study.get_trials(deepcopy=False) if t.state == TrialState.FAIL
    }
    best = ranked_best(config, study)
    return SearchSummary(
        experiment=directory.name,
        experiment_dir=directory,
        requested=config.trials,
        finished=counts["finished"],
        complete=counts["complete"],
        pruned=counts["pruned"],
        failed=counts["failed"],
        deduplicated=counts["deduplicated"],
        interrupted=interrupted,
        seconds=seconds,
        best=best if config.multi_objective else best[: max(config.export_top, 10)],
        pareto=config.multi_objective,
        mlflow_run_id=search_run.run_id if search_run else None,
        failures=failures,
    )


def ranked_best(config: SearchConfig, study: optuna.Study) -> list[dict]:
    """One row per distinct architecture of the completed trials, best first, ranked from
    1: by the first objective, or with several the Pareto front ordered by the first."""
    from optuna.trial import TrialState

    rows = [_row(config, trial) for trial in study.get_trials(deepcopy=False) if trial.state == TrialState.COMPLETE]
    first = config.objectives[0]
    sign = -1 if OBJECTIVES[first][1] == "max" else 1
    if config.multi_objective:
        front = {t.number for t in study.best_trials}
        best = sorted((row for row in rows if row["trial"] in front), key=lambda r: sign * r[first])
    else:
        best = sorted(rows, key=lambda r: (sign * r[first], r["trial"]))
    unique, seen = [], set()
    for row in best:  # duplicates answered from the store share a hash
        if row["arch_hash"] not in seen:
            seen.add(row["arch_hash"])
            unique.append(row)
    for rank, row in enumerate(unique, start=1):
        row["rank"] = rank
    return unique


def _row(config: SearchConfig, trial: FrozenTrial) -> dict:
    row = {
        "rank": 0,
        "trial": trial.number,
        "arch_hash": trial.user_attrs.get("arch_hash"),
        "status": trial.user_attrs.get("status", "ok"),
        "arch": trial.user_attrs.get("arch"),
    }
    row.update(zip(config.objectives, trial.values, strict=True))
    return row


def table_row(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "arch"}


def export_best(
    config: SearchConfig,
    directory: Path,
    summary: SearchSummary,
    dataset: Dataset,
    tracking: TrackingConfig | None,
    search_run: SearchRun | None,
) -> list[Path]:
    """Copy the best (or Pareto) architectures to ``best/<rank>-<hash>/`` and log them to
    MLflow as registered models, the winners with the aliases ``best-val`` / ``best-robust``."""
    if config.export_top == 0 or not summary.best:
        return []
    best_dir = directory / "best"
    if best_dir.exists():
        shutil.rmtree(best_dir)
    exported = []
    for row in summary.best[: config.export_top]:
        target = best_dir / f"{row['rank']:02d}-{row['arch_hash'][:12]}"
        source = directory / "checkpoints" / row["arch_hash"][:16]
        if (source / "model.safetensors").is_file():
            shutil.copytree(source, target)
        else:  # answered from a shared store or a replay: the architecture, no weights
            target.mkdir(parents=True)
            (target / "arch.json").write_text(json.dumps(row["arch"], indent=2))
        (target / "metrics.json").write_text(json.dumps(table_row(row), indent=2, default=str))
        exported.append(target)
    if tracking is not None and search_run is not None and config.register_models and config.replay is None:
        _register_best(config, summary, dataset, tracking, search_run, directory)
    return exported


def _register_best(
    config: SearchConfig,
    summary: SearchSummary,
    dataset: Dataset,
    tracking: TrackingConfig,
    search_run: SearchRun,
    directory: Path,
) -> None:
    """Log every exported best/Pareto member that has weights (and each alias winner) as an
    MLflow model of its trial run, registered under the experiment's name in rank order;
    the winners also get the aliases ``best-val`` / ``best-robust``."""
    from nasbench.checkpoint import load_checkpoint
    from nasbench.tracking import (
        find_trial_run,
        log_model,
        registered_model_name,
        registered_version,
        set_aliases,
    )

    name = registered_model_name(tracking)
    aliases = _aliases(config, summary.best)
    exported = {row["trial"] for row in summary.best[: config.export_top]}
    for row in summary.best:
        if row["trial"] not in exported and row["trial"] not in aliases:
            continue
        checkpoint = directory / "checkpoints" / row["arch_hash"][:16]
        run_id = find_trial_run(tracking, search_run.run_id, row["trial"])
        if run_id is None or not (checkpoint / "model.safetensors").is_file():
            continue  # answered from a shared store or a replay: no weights here
        version = registered_version(tracking, name, run_id)
        if version is not None:  # registered by an earlier run of this search (a resume)
            set_aliases(tracking, name, version, aliases.get(row["trial"], []))
            continue
        model, arch, meta = load_checkpoint(checkpoint)
        log_model(
            tracking, run_id, model, dataset.val.x[:2].cpu(), name, aliases.get(row["trial"], []), arch=arch, meta=meta
        )


def _aliases(config: SearchConfig, rows: list[dict]) -> dict[int, list[str]]:
    """Trial number -> its registry aliases: the best row per objective that has one."""
    aliases: dict[int, list[str]] = {}
    for objective, alias in (("val_acc", "best-val"), ("robust_acc", "best-robust")):
        candidates = [r for r in rows if r.get(objective) is not None]
        if objective in config.objectives and candidates:
            top = max(candidates, key=lambda r: r[objective])
            aliases.setdefault(top["trial"], []).append(alias)
    return aliases
