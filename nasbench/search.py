"""Distributed architecture search: Ray Tune runs the trials, Optuna proposes them.

One search is one *experiment directory*::

    experiments/<NAME>/
        config.yaml        the SearchConfig (a resumed search reads it back)
        optuna.journal     Optuna's study (JournalStorage, append-only, resumable)
        ray/               Ray Tune's per-run folders and the trials' checkpoints (unless
                           --checkpoint-storage names a shared folder or a cloud URI)
        search.log         one JSON line per finished trial
        results.jsonl      every finished trial's record, kept until it is written
        mlflow.db          MLflow (unless --tracking-uri), mlflow_run_id: the parent run
        benchmark.db       the tabular benchmark (unless --store)
        checkpoints/       safetensors weights of every trained architecture
        best/<rank>-<hash>/{model.safetensors, arch.json, meta.json}

Why it looks the way it does:

- Optuna proposes architectures define-by-run through Ray's ``OptunaSearch`` (Akiba
  et al. 2019). :class:`NasOptunaSearch` fixes how trials end: a trial stopped by
  ASHA/HyperBand (Li et al. 2020) is told to Optuna as PRUNED -- Ray's own class tells
  it COMPLETE with its low-fidelity score, which biases TPE towards architectures that
  learn fast in one epoch -- and a trial that failed is told FAIL with its reason.
- Resume is built on the Optuna study, not on Ray's experiment state (which a
  ``kill -9`` can leave half written): trials already COMPLETE/PRUNED/FAIL count as
  done; trials left RUNNING by the dead driver are run again *as the same Optuna trial*
  (same number, same architecture, same MLflow child run, and the store never holds a
  key twice), so a search ends with exactly the requested number of trials.
- The driver is the single writer of persistent state: the Optuna study, the benchmark
  store and MLflow. Trials are pure compute (``nasbench.trial``): they report metrics
  through ``tune.report`` and weights through Ray Tune checkpoints; the driver's ledger
  (``nasbench.ledger``) records each finished trial in ``results.jsonl`` before Optuna is
  told, and its writer (``nasbench.trial_writer``) streams MLflow runs and store rows in
  batches. Duplicates and replays are answered on the driver (``nasbench.outcomes``)
  before any trial is launched. A killed driver loses nothing a trial finished:
  ``--resume`` writes what ``results.jsonl`` holds unwritten. A cluster needs shared
  storage for checkpoints only.
- Orchestration overhead is a first-class cost (measured by
  ``benchmarks/trial_overhead.py``): actors are reused, Ray's automatic loggers,
  dashboard and checkpoint syncing are off, the Optuna storage is a journal file.

This module opens what a search writes and runs it; its parts: the options
(``nasbench.search_config``), the experiment folder (``nasbench.search_experiment``),
the Optuna study (``nasbench.study``), one run on Ray Tune (``nasbench.tune_run``) and
what the search found (``nasbench.search_results``).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasbench.errors import UserError
from nasbench.outcomes import DriverAnswers
from nasbench.ray_runtime import (
    check_resources_fit,
    configure_ray_environment,
    describe_runtime,
    ensure_ray,
    short_error,
    trial_resources,
)
from nasbench.search_config import SearchConfig
from nasbench.search_experiment import prepare_experiment
from nasbench.search_results import SearchSummary, export_best, summarise, table_row
from nasbench.study import STUDY_NAME, open_study, study_progress
from nasbench.trial_context import OBJECTIVES, CorruptionConfig, RobustConfig, TrialContext
from nasbench.trial_writer import Outbox, TrialWriter, recover

if TYPE_CHECKING:  # MLflow is imported when the search opens its tracking
    from nasbench.data import Dataset
    from nasbench.tracking import SearchRun, TrackingConfig

__all__ = ["SearchConfig", "SearchSummary", "run_search"]


@dataclass(frozen=True)
class SearchOutputs:
    """Where a search writes: its MLflow parent run, the benchmark store, the outbox
    (``results.jsonl``) and the single writer of trial runs and store rows."""

    tracking: TrackingConfig
    search_run: SearchRun
    store_path: str
    store_journal: str
    outbox: Outbox
    writer: TrialWriter


def run_search(
    config: SearchConfig,
    *,
    evaluate: Callable[..., dict] | None = None,
    extra: dict | None = None,
    callbacks: list | None = None,
    console: Any = None,
) -> SearchSummary:
    """Run (or resume) a search; returns its summary.

    ``evaluate`` replaces training in every trial (``(arch, context, report) -> metrics``,
    see :class:`nasbench.trial_context.TrialContext`): the orchestration benchmark uses
    trials that sleep; ``extra`` reaches it as ``context.extra``. ``callbacks`` are extra
    Ray Tune callbacks on the driver.
    """
    started = time.perf_counter()
    config, directory, dataset, space = _prepare(config)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    metrics = [OBJECTIVES[name][0] for name in config.objectives]
    modes = [OBJECTIVES[name][1] for name in config.objectives]
    study, storage = open_study(config, directory, modes, space)
    outputs = _open_outputs(config, directory, dataset)
    # what a killed driver finished but had not written: written now, told to Optuna if need be
    recovered = recover(outputs.outbox, outputs.writer, study, metrics)
    before = study_progress(study)
    remaining = max(0, config.trials - before["finished"])
    resume_numbers = before["running"][:remaining]
    answers = _driver_answers(config, outputs)
    context = _trial_context(config, evaluate, extra)
    _log(
        directory,
        {
            "event": "resume" if config.resume else "start",
            "finished": before["finished"],
            "rerun": resume_numbers,
            "recovered": recovered,
            "remaining": remaining,
        },
    )
    try:
        if remaining > 0:
            from nasbench.tune_run import DriverRecords, RunPlan, run_tune

            plan = RunPlan(remaining, resume_numbers, before)
            records = DriverRecords(outputs.outbox, outputs.writer, answers)
            run_tune(config, directory, space, context, study, storage, plan, records, callbacks, console)
    except BaseException:
        _abandon(outputs)
        raise
    finally:
        answers.close()
    after = study_progress(optuna.load_study(study_name=STUDY_NAME, storage=storage))
    return _finish(config, directory, study, after, started, dataset, outputs)


def _prepare(config: SearchConfig) -> tuple[SearchConfig, Path, Dataset, Any]:
    """The config to run, its experiment folder, dataset and search space, on a Ray runtime."""
    if config.resume:  # what to search, and where, comes from the saved config; reopening writes nothing
        config, directory = prepare_experiment(config)
    # A new experiment's inputs and resources are checked before its folder exists: a typo
    # must not leave behind an experiment that the corrected command refuses to overwrite.
    dataset, space = _check_inputs(config)
    from nasbench.train import warn_about_augmentation

    warn_about_augmentation(config.dataset, config.augment)  # the trials' warnings stay in their workers
    configure_ray_environment()
    ensure_ray(config.address)
    print(describe_runtime(config.address), flush=True)
    check_resources_fit(trial_resources(config), cluster=config.address is not None)
    if not config.resume:
        config, directory = prepare_experiment(config)
    return config, directory, dataset, space


def _open_outputs(config: SearchConfig, directory: Path, dataset: Dataset) -> SearchOutputs:
    tracking, search_run = _open_tracking(config, directory)
    # described once, here where the data is loaded: every trial run logs it as its input
    dataset_description = search_run.log_dataset(dataset) if search_run else None
    store_path, store_journal = _open_store(config, directory)
    outbox = Outbox(directory / "results.jsonl")
    writer = _open_writer(
        config, directory, tracking, search_run, dataset_description, store_path, store_journal, outbox
    )
    return SearchOutputs(tracking, search_run, store_path, store_journal, outbox, writer)


def _driver_answers(config: SearchConfig, outputs: SearchOutputs) -> DriverAnswers:
    """The duplicates and replays the driver answers before any trial is launched."""
    return DriverAnswers(
        store_path=outputs.store_path,
        store_journal=outputs.store_journal,
        replay_path=_replay_path(config),
        dataset=config.dataset,
        budget=config.epochs,
        seed=config.seed,
        objectives=tuple(config.objectives),
    )


def _abandon(outputs: SearchOutputs) -> None:
    """A search stopped by an error (or Ctrl-C): what was finished is written, the run FAILED."""
    with contextlib.suppress(Exception):  # the error that stopped the search is the one to show
        outputs.writer.close(interrupted=True)
    if outputs.search_run is not None:
        outputs.search_run.end("FAILED")


def _finish(
    config: SearchConfig,
    directory: Path,
    study: Any,
    after: dict[str, Any],
    started: float,
    dataset: Dataset,
    outputs: SearchOutputs,
) -> SearchSummary:
    """Write what is left, summarise, export the best and close the MLflow run."""
    interrupted = after["finished"] < config.trials
    outputs.writer.close(interrupted=interrupted)  # every run and row written before the summary reads them
    search_run = outputs.search_run
    seconds = time.perf_counter() - started
    summary = summarise(config, directory, study, after, interrupted, seconds, search_run)
    summary.exported = export_best(config, directory, summary, dataset, outputs.tracking, search_run)
    if search_run is not None:
        search_run.log_summary(
            {
                "trials_finished": summary.finished,
                "trials_complete": summary.complete,
                "trials_pruned": summary.pruned,
                "trials_failed": summary.failed,
                "trials_deduplicated": summary.deduplicated,
                "search_seconds": summary.seconds,
            },
            [table_row(row) for row in summary.best],
            table_name="pareto_front" if summary.pareto else "best_architectures",
        )
        search_run.end("KILLED" if interrupted else "FINISHED")
    _log(directory, {"event": "end", **{k: v for k, v in summary.to_dict().items() if k != "best"}})
    return summary


def _open_store(config: SearchConfig, directory: Path) -> tuple[str, str]:
    """The benchmark store's path and journal mode; its schema created now."""
    from nasbench.store import Benchmark, journal_mode_for

    store_path = str(Path(config.store).expanduser().resolve()) if config.store else str(directory / "benchmark.db")
    store_journal = journal_mode_for(Path(store_path))
    Benchmark(store_path, journal_mode=store_journal).close()
    return store_path, store_journal


def _open_writer(
    config: SearchConfig,
    directory: Path,
    tracking,
    search_run,
    dataset_description,
    store_path: str,
    store_journal: str,
    outbox: Outbox,
) -> TrialWriter:
    """The driver's single writer of trial runs and store rows (a replay records no rows)."""
    identity = {"dataset": config.dataset, "budget": config.epochs, "seed": config.seed, "space": config.space}
    return TrialWriter(
        tracking=tracking,
        parent_run_id=search_run.run_id if search_run else None,
        dataset=dataset_description,
        train_config=config.train_config().model_dump(),
        store_path=store_path if config.replay is None else None,
        store_journal=store_journal,
        checkpoints_dir=directory / "checkpoints",
        outbox=outbox,
        identity=identity,
    )


def _replay_path(config: SearchConfig) -> str | None:
    return str(Path(config.replay).resolve()) if config.replay else None


def _trial_context(config: SearchConfig, evaluate, extra) -> TrialContext:
    """What every trial gets besides its architecture: plain data, no store, no MLflow."""
    from nasbench.data import absolute_dataset_name
    from nasbench.strategies.fidelity import fidelity_ladder

    return TrialContext(
        dataset=config.dataset,
        dataset_path=absolute_dataset_name(config.dataset),
        data_dir=str(Path(config.data_dir).expanduser().resolve()),
        val_fraction=config.val_fraction,
        seed=config.seed,
        space=config.space,
        train=config.train_config().model_dump(),
        objectives=tuple(config.objectives),
        robust=RobustConfig(config.robust_attack, config.robust_eps, config.robust_steps, config.robust_samples)
        if "robust_acc" in config.objectives
        else None,
        corruption=CorruptionConfig(tuple(config.corruption_subset), config.corruption_samples)
        if "corruption_acc" in config.objectives
        else None,
        **fidelity_ladder(config),
        augment=tuple(config.augment),
        evaluate=evaluate,
        extra=dict(extra or {}),
    )


def _check_inputs(config: SearchConfig):
    """The dataset and the search space of ``config``; its replay benchmark and store checked."""
    from nasbench.data import load_dataset
    from search_spaces import InvalidArchitecture, get_space

    dataset = _load_dataset(config, load_dataset)
    try:
        space = get_space(config.space, dataset.input_shape, **config.space_options)
    except (InvalidArchitecture, ValueError) as error:
        raise UserError(f"search space {config.space}: {error}") from None
    if config.replay is not None and not Path(config.replay).is_file():
        raise UserError(f"replay benchmark {config.replay} does not exist")
    if config.store is not None:  # another program's file, a newer schema ...: BenchmarkError
        from nasbench.store import Benchmark

        Benchmark(Path(config.store).expanduser()).close()
    return dataset, space


def _load_dataset(config: SearchConfig, load_dataset):
    try:
        return load_dataset(
            config.dataset,
            data_dir=config.data_dir,
            download=config.download,
            seed=config.seed,
            val_fraction=config.val_fraction,
        )
    except UserError:
        raise
    except (ValueError, OSError) as error:
        raise UserError(f"dataset {config.dataset}: {short_error(error)}") from None


def _open_tracking(config: SearchConfig, directory: Path):
    from nasbench.tracking import SearchRun, TrackingConfig, default_tracking_uri

    tracking = TrackingConfig(
        tracking_uri=config.tracking_uri or default_tracking_uri(directory), experiment_name=directory.name
    )
    if config.tracking_uri is None:
        _write_ahead_log(tracking.tracking_uri)
    run_id_file = directory / "mlflow_run_id"
    resume_id = run_id_file.read_text().strip() if run_id_file.is_file() else None
    search_config = json.loads(config.model_dump_json())
    try:
        run = SearchRun(tracking, search_config, run_name=f"search-{directory.name}", resume_run_id=resume_id)
    except ValueError as error:
        raise UserError(str(error)) from None
    if resume_id is None:
        tmp = run_id_file.with_suffix(".tmp")
        tmp.write_text(run.run_id)
        os.replace(tmp, run_id_file)
    return tracking, run


def _write_ahead_log(tracking_uri: str) -> None:
    """Put the experiment's own MLflow SQLite database in WAL mode.

    Every trial writes its child run from a worker (three transactions); in SQLite's
    default rollback-journal mode each commit syncs the journal, the database and the
    folder (about 9 ms here), in WAL mode one append to the log (about 3 ms), and the
    workers' readers no longer block the writer. The mode is stored in the file, so
    every later connection uses it. Only for the embedded default inside the
    experiment folder: WAL needs a local disk, which a user's own URI may not be on (and
    the experiment folder may not be either, on a cluster).
    """
    import sqlite3

    from nasbench.store import journal_mode_for
    from nasbench.tracking import tracking_client

    tracking_client(tracking_uri)  # MLflow creates its tables first
    path = tracking_uri.removeprefix("sqlite:///")
    if journal_mode_for(Path(path)) != "wal":  # a network file system: see nasbench.store
        return
    connection = sqlite3.connect(path, timeout=10)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError:  # busy: only slower, never wrong, in the old mode
        pass
    except sqlite3.DatabaseError as error:
        raise UserError(f"cannot open the MLflow store {tracking_uri}: {error}") from None
    finally:
        connection.close()


def _log(directory: Path, entry: dict) -> None:
    with open(directory / "search.log", "a") as handle:
        handle.write(json.dumps({"time": time.time(), **entry}, default=str) + "\n")
