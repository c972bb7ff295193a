"""One run of a search on Ray Tune: the searcher, the scheduler, the trials and the
driver's callbacks around ``Tuner.fit``. Imported late: it imports Ray Tune."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ray import tune

from nasbench.ledger import TrialLedger
from nasbench.outcomes import DriverAnswers
from nasbench.progress import SearchProgress
from nasbench.ray_runtime import trial_resources
from nasbench.search_config import SearchConfig
from nasbench.searcher import NasOptunaSearch
from nasbench.silent_reporter import SilentReporter
from nasbench.strategies import make_scheduler
from nasbench.study import STUDY_NAME
from nasbench.trial import run_trial
from nasbench.trial_context import OBJECTIVES, TrialContext
from nasbench.trial_writer import Outbox, TrialWriter
from search_spaces import arch_hash, arch_to_dict


@dataclass(frozen=True)
class RunPlan:
    """What one run of a search on Ray Tune is to do."""

    remaining: int  # trials to start: a resumed search runs only what is left
    resume_numbers: list[int]  # Optuna trials a killed driver left RUNNING, run again as themselves
    already: dict[str, Any]  # the study's counts before this run (nasbench.study.study_progress)


@dataclass(frozen=True)
class DriverRecords:
    """Where the driver records what the trials report, and the answers it gives itself."""

    outbox: Outbox
    writer: TrialWriter
    answers: DriverAnswers


def run_tune(
    config: SearchConfig,
    directory: Path,
    space: Any,
    context: TrialContext,
    study: Any,
    storage: Any,
    plan: RunPlan,
    records: DriverRecords,
    callbacks: list | None = None,
    console: Any = None,
) -> None:
    """Run ``plan.remaining`` trials of the study, each recorded before Optuna is told."""
    progress = SearchProgress(
        total=config.trials,
        already=plan.already,
        objectives=config.objectives,
        enabled=config.progress,
        console=console,
    )
    ledger = TrialLedger(
        directory, records.outbox, records.writer, records.answers, config.scheduler, config.epochs, progress
    )
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(run_trial, context=context), trial_resources(config)),
        tune_config=tune.TuneConfig(
            search_alg=_searcher(config, space, study, storage, plan, records.answers, ledger),
            scheduler=make_scheduler(config),
            num_samples=plan.remaining,
            max_concurrent_trials=config.concurrency,
            reuse_actors=True,
            trial_dirname_creator=_trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=_run_name(config, directory),
            storage_path=config.checkpoint_storage or str(directory / "ray"),
            verbose=0,
            progress_reporter=SilentReporter(),
            log_to_file=False,
            stop=_reported_its_end,
            callbacks=[ledger, progress, *(callbacks or [])],
            checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=0),
            failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
        ),
    )
    # the result grid Tuner.fit builds at the end looks for the per-trial CSV/JSON files
    # that are deliberately not written: its warnings about them are noise here
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    with progress:
        tuner.fit()


def _searcher(
    config: SearchConfig,
    space: Any,
    study: Any,
    storage: Any,
    plan: RunPlan,
    answers: DriverAnswers,
    ledger: TrialLedger,
) -> NasOptunaSearch:
    """Optuna proposes each trial's architecture through ``space``'s define-by-run code."""
    metrics = [OBJECTIVES[name][0] for name in config.objectives]
    modes = [OBJECTIVES[name][1] for name in config.objectives]

    def define_by_run(trial):
        arch = space.sample(trial)
        as_dict, digest = arch_to_dict(arch), arch_hash(arch)
        trial.set_user_attr("arch", as_dict)
        trial.set_user_attr("arch_hash", digest)
        return {"arch": as_dict, "arch_hash": digest}

    return NasOptunaSearch(
        define_by_run,
        metric=metrics if len(metrics) > 1 else metrics[0],
        mode=modes if len(modes) > 1 else modes[0],
        sampler=study.sampler,
        study_name=STUDY_NAME,
        storage=storage,
        resume_numbers=plan.resume_numbers,
        budget=plan.remaining,
        answer=answers.answer,
        ledger=ledger,
    )


def _reported_its_end(trial_id: str, result: Mapping[str, Any]) -> bool:
    """A trial ends with the result that says so. Left to itself, Tune would ask the actor
    for one more result and wait up to 0.2 s for the function's thread to end (its result
    queue's poll), with the actor kept from the next trial all that time."""
    return bool(result.get("trial_complete"))


def _run_name(config: SearchConfig, directory: Path) -> str:
    """``run-<n>`` in the experiment's own ``ray/`` (a resume adds one); in a shared
    checkpoint storage the experiment's name and the time keep searches apart."""
    if config.checkpoint_storage:
        return f"{directory.name}-{datetime.now():%Y%m%d-%H%M%S}"
    local = directory / "ray"
    return f"run-{len(list(local.glob('run-*'))) + 1 if local.exists() else 1}"


def _trial_dirname(trial) -> str:
    return f"trial-{trial.config.get('trial_number', 'x')}-{trial.trial_id}"
