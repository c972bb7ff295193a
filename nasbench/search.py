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
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, model_validator

from nasbench.config import DataConfig, TrackingUri, TrainConfig
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
from nasbench.strategies import check_sampler_options, make_sampler, make_scheduler
from nasbench.strategies.fidelity import fidelity_ladder
from nasbench.tracking import find_trial_run
from nasbench.trial import OBJECTIVES, CorruptionConfig, RobustConfig, TrialContext
from nasbench.trial_writer import Outbox, TrialWriter, recover

SPACES = ("macro", "cell")
# Flags that only say how to run, not what to search: a resumed search takes them anew.
RUNTIME_FIELDS = (
    "trials",
    "concurrency",
    "cpus_per_trial",
    "gpus_per_trial",
    "address",
    "resume",
    "checkpoint_storage",
    "progress",
    "threads",
    "device",
    "amp",
    "channels_last",
)
STUDY_NAME = "search"


class SearchConfig(DataConfig, TrainConfig):
    """Every option of ``nasbench search`` (data and training options included)."""

    space: Literal["macro", "cell"] = "macro"
    # Keyword arguments of the space's class: search_spaces.MacroSpace (min_layers,
    # max_layers, filter_sizes, strides, filters, pools, ...) or CellSpace
    # (cells_per_stage, channels, ops), e.g. {"ops": ["skip_connect", "nor_conv_3x3"]}.
    space_options: dict[str, Any] = {}
    epochs: int = Field(3, ge=1, le=10_000)
    trials: int = Field(20, ge=1, le=1_000_000)
    concurrency: int = Field(2, ge=1, le=4096)
    sampler: Literal["tpe", "random", "nsga2", "gp", "qmc", "evolution", "reinforce"] = "tpe"
    # keyword arguments of the evolution / reinforce sampler (nasbench.strategies)
    sampler_options: dict[str, Any] = {}
    objectives: list[Literal["val_acc", "robust_acc", "params", "macs", "latency", "corruption_acc"]] = ["val_acc"]
    scheduler: Literal["fifo", "asha", "hyperband"] = "fifo"
    grace_period: int = Field(1, ge=1)
    reduction_factor: int = Field(3, ge=2)
    cpus_per_trial: float = Field(1.0, gt=0.0)
    gpus_per_trial: float = Field(0.0, ge=0.0)
    address: str | None = None
    experiment: str | None = None
    experiments_dir: Path = Path("experiments")
    resume: bool = False
    store: Path | None = None
    tracking_uri: TrackingUri = None
    # Where Ray Tune persists the trials' checkpoints: a folder every node mounts, or a
    # cloud URI (s3://, gs://); by default <experiment>/ray on the driver's disk.
    checkpoint_storage: str | None = None
    replay: Path | None = None
    robust_attack: Literal["fgsm", "pgd"] = "fgsm"
    # the attack at the rungs of a multi-objective asha/hyperband (nasbench.strategies.fidelity)
    rung_attack: Literal["fgsm", "pgd"] = "fgsm"
    robust_eps: float = Field(0.1, gt=0.0, le=1.0)
    robust_steps: int = Field(10, ge=1, le=1000)
    robust_samples: int = Field(256, ge=1)
    # objective corruption_acc: NAME:SEVERITY pairs of attacks.corruptions on the validation split
    corruption_subset: list[str] = list(CorruptionConfig.subset)
    corruption_samples: int = Field(256, ge=1)
    export_top: int = Field(5, ge=0)
    register_models: bool = True
    progress: bool = True

    @model_validator(mode="after")
    def _check(self) -> SearchConfig:
        if not self.objectives:
            raise ValueError("give at least one objective")
        if len(set(self.objectives)) != len(self.objectives):
            raise ValueError("an objective is listed twice")
        check_sampler_options(self.sampler, self.sampler_options)
        from attacks.corruption_eval import parse_subset

        parse_subset(self.corruption_subset)  # a bad name or severity: ValueError, one line
        if self.experiment is not None and (
            not self.experiment.strip() or "/" in self.experiment or self.experiment in (".", "..")
        ):
            raise ValueError("experiment must be a plain folder name")
        return self

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    def train_config(self) -> TrainConfig:
        values = {name: getattr(self, name) for name in TrainConfig.model_fields}
        if values["threads"] is None:  # torch threads follow the CPUs given to a trial
            values["threads"] = max(1, int(self.cpus_per_trial))
        return TrainConfig(**values)

    def data_config(self) -> DataConfig:
        return DataConfig(**{name: getattr(self, name) for name in DataConfig.model_fields})


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


# --------------------------------------------------------------------------- experiment dir


def experiment_dir(config: SearchConfig) -> Path:
    name = config.experiment or f"{config.space}-{config.dataset}-{datetime.now():%Y%m%d-%H%M%S}"
    return Path(config.experiments_dir).expanduser().resolve() / name


def _config_to_yaml(config: SearchConfig) -> str:
    return yaml.safe_dump(json.loads(config.model_dump_json()), sort_keys=True)


def prepare_experiment(config: SearchConfig) -> tuple[SearchConfig, Path]:
    """Create (or, with ``resume``, reopen) the experiment directory; the config to use.

    A resumed search takes what it searches from ``config.yaml`` and only the runtime
    options (trials, concurrency, resources, address) from ``config``.
    """
    directory = experiment_dir(config)
    saved = directory / "config.yaml"
    if config.resume:
        if not saved.is_file():
            raise UserError(
                f"nothing to resume: {directory} holds no config.yaml (give the --experiment NAME of an earlier search)"
            )
        from nasbench.config import read_yaml, validate

        values = read_yaml(saved)
        given = config.model_dump(include=set(RUNTIME_FIELDS), exclude_unset=True)
        values.update(given)
        values["resume"] = True
        values["experiment"] = directory.name
        values["experiments_dir"] = str(directory.parent)
        return validate(SearchConfig, values, source=str(saved)), directory
    if saved.exists():
        raise UserError(
            f"experiment {directory.name!r} exists in {directory.parent}; "
            "add --resume to continue it or choose another --experiment"
        )
    directory.mkdir(parents=True, exist_ok=True)
    config = config.model_copy(update={"experiment": directory.name})
    tmp = saved.with_suffix(".tmp")
    tmp.write_text(_config_to_yaml(config))
    os.replace(tmp, saved)
    return config, directory


def repair_journal(path: Path) -> None:
    """Make a journal left by a killed process readable again.

    Optuna appends one JSON line per operation; a process killed mid-write can leave a
    partial last line, which a later append would glue to a valid one. Cut it off, and
    drop the lock a killed writer may have left.
    """
    lock = Path(f"{path}.lock")
    if lock.is_symlink() or lock.exists():
        lock.unlink()
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as handle:
            handle.truncate(data.rfind(b"\n") + 1)


def first_unreadable_line(journal: Path) -> int | None:
    """The number of the journal's first line that is not JSON, or None."""
    if not journal.is_file():
        return None
    with open(journal, "rb") as lines:
        for number, line in enumerate(lines, 1):
            try:
                json.loads(line)
            except ValueError:
                return number
    return None


def optuna_storage(directory: Path):
    import optuna

    from nasbench.study_journal import DriverJournalFile

    path = directory / "optuna.journal"
    repair_journal(path)
    return optuna.storages.JournalStorage(DriverJournalFile(str(path)))


# --------------------------------------------------------------------------- the study


def study_progress(study) -> dict:
    """Counts of a study's trials by how they ended, plus those left RUNNING."""
    from optuna.trial import TrialState

    counts = {"complete": 0, "pruned": 0, "failed": 0, "deduplicated": 0, "running": []}
    for trial in study.get_trials(deepcopy=False):
        if trial.state == TrialState.COMPLETE:
            counts["complete"] += 1
            counts["deduplicated"] += trial.user_attrs.get("status") == "deduplicated"
        elif trial.state == TrialState.PRUNED:
            counts["pruned"] += 1
        elif trial.state == TrialState.FAIL:
            counts["failed"] += 1
        else:  # RUNNING/WAITING: left by a driver that died; run again as the same trial
            counts["running"].append(trial.number)
    counts["finished"] = counts["complete"] + counts["pruned"] + counts["failed"]
    return counts


# --------------------------------------------------------------------------- the search


def run_search(
    config: SearchConfig,
    *,
    evaluate: Callable[..., dict] | None = None,
    extra: dict | None = None,
    callbacks: list | None = None,
    console=None,
) -> SearchSummary:
    """Run (or resume) a search; returns its summary.

    ``evaluate`` replaces training in every trial (``(arch, context, report) -> metrics``,
    see :class:`nasbench.trial.TrialContext`): the orchestration benchmark uses trials
    that sleep; ``extra`` reaches it as ``context.extra``. ``callbacks`` are extra Ray Tune
    callbacks on the driver.
    """
    started = time.perf_counter()
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

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    metrics = [OBJECTIVES[name][0] for name in config.objectives]
    modes = [OBJECTIVES[name][1] for name in config.objectives]
    study, storage = _open_study(config, directory, modes, space)
    tracking, search_run = _open_tracking(config, directory)
    # described once, here where the data is loaded: every trial run logs it as its input
    dataset_description = search_run.log_dataset(dataset) if search_run else None
    store_path, store_journal = _open_store(config, directory)
    outbox = Outbox(directory / "results.jsonl")
    writer = _open_writer(
        config, directory, tracking, search_run, dataset_description, store_path, store_journal, outbox
    )
    # what a killed driver finished but had not written: written now, told to Optuna if need be
    recovered = recover(outbox, writer, study, metrics)
    before = study_progress(study)
    remaining = max(0, config.trials - before["finished"])
    resume_numbers = before["running"][:remaining]
    answers = DriverAnswers(
        store_path=store_path,
        store_journal=store_journal,
        replay_path=_replay_path(config),
        dataset=config.dataset,
        budget=config.epochs,
        seed=config.seed,
        objectives=tuple(config.objectives),
    )
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
            _run_tune(
                config,
                directory,
                study,
                storage,
                space,
                context,
                remaining,
                resume_numbers,
                metrics,
                modes,
                callbacks,
                before,
                console,
                outbox,
                writer,
                answers,
            )
    except BaseException:
        try:
            writer.close(interrupted=True)
        except Exception:  # noqa: BLE001 - the error that stopped the search is the one to show
            pass
        if search_run is not None:
            search_run.end("FAILED")
        raise
    finally:
        answers.close()
    after = study_progress(optuna.load_study(study_name=STUDY_NAME, storage=storage))
    interrupted = after["finished"] < config.trials
    writer.close(interrupted=interrupted)  # every run and row written before the summary reads them
    summary = _summarise(config, directory, study, after, interrupted, time.perf_counter() - started, search_run)
    summary.exported = _export_best(config, directory, summary, dataset, tracking, search_run)
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
            [_table_row(row) for row in summary.best],
            table_name="pareto_front" if summary.pareto else "best_architectures",
        )
        search_run.end("KILLED" if interrupted else "FINISHED")
    _log(directory, {"event": "end", **{k: v for k, v in summary.to_dict().items() if k != "best"}})
    return summary


def _open_study(config: SearchConfig, directory: Path, modes: list[str], space=None):
    """The search's Optuna study (created, or reopened on resume) and its storage."""
    import optuna

    sampler = make_sampler(config.sampler, config.seed, config.multi_objective, space=space, **config.sampler_options)
    try:
        storage = optuna_storage(directory)
        study = optuna.create_study(
            storage=storage,
            study_name=STUDY_NAME,
            sampler=sampler,
            load_if_exists=True,
            directions=["maximize" if m == "max" else "minimize" for m in modes],
        )
    except ValueError:  # json.JSONDecodeError is one: a damaged journal, or something else
        bad_line = first_unreadable_line(directory / "optuna.journal")
        if bad_line is None:
            raise
        raise UserError(
            f"experiment {directory.name}: line {bad_line} of {directory / 'optuna.journal'} is not "
            "JSON; keep a copy, and remove it to start the search over"
        ) from None
    return study, storage


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


def _run_tune(
    config,
    directory,
    study,
    storage,
    space,
    context,
    remaining,
    resume_numbers,
    metrics,
    modes,
    callbacks,
    before,
    console,
    outbox,
    writer,
    answers,
) -> None:
    from ray import tune

    from nasbench.ledger import TrialLedger
    from nasbench.progress import SearchProgress
    from nasbench.searcher import NasOptunaSearch
    from nasbench.silent_reporter import SilentReporter
    from nasbench.trial import run_trial
    from search_spaces import arch_hash, arch_to_dict

    def define_by_run(trial):
        arch = space.sample(trial)
        as_dict, digest = arch_to_dict(arch), arch_hash(arch)
        trial.set_user_attr("arch", as_dict)
        trial.set_user_attr("arch_hash", digest)
        return {"arch": as_dict, "arch_hash": digest}

    progress = SearchProgress(
        total=config.trials, already=before, objectives=config.objectives, enabled=config.progress, console=console
    )
    ledger = TrialLedger(directory, outbox, writer, answers, config.scheduler, config.epochs, progress)
    searcher = NasOptunaSearch(
        define_by_run,
        metric=metrics if len(metrics) > 1 else metrics[0],
        mode=modes if len(modes) > 1 else modes[0],
        sampler=study.sampler,
        study_name=STUDY_NAME,
        storage=storage,
        resume_numbers=resume_numbers,
        budget=remaining,
        answer=answers.answer,
        ledger=ledger,
    )
    trainable = tune.with_resources(tune.with_parameters(run_trial, context=context), trial_resources(config))
    storage_path = config.checkpoint_storage or str(directory / "ray")
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=make_scheduler(config),
            num_samples=remaining,
            max_concurrent_trials=config.concurrency,
            reuse_actors=True,
            trial_dirname_creator=_trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=_run_name(config, directory),
            storage_path=storage_path,
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


def _reported_its_end(trial_id: str, result: dict) -> bool:
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


# --------------------------------------------------------------------------- results


def _summarise(config, directory, study, counts, interrupted, seconds, search_run) -> SearchSummary:
    from optuna.trial import TrialState

    trials = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    failures = {
        t.number: t.user_attrs.get("reason", "") for t in study.get_trials(deepcopy=False) if t.state == TrialState.FAIL
    }
    rows = []
    for t in trials:
        row = {
            "rank": 0,
            "trial": t.number,
            "arch_hash": t.user_attrs.get("arch_hash"),
            "status": t.user_attrs.get("status", "ok"),
            "arch": t.user_attrs.get("arch"),
        }
        for name, value in zip(config.objectives, t.values):
            row[name] = value
        rows.append(row)
    pareto = config.multi_objective
    if pareto:
        front = {t.number for t in study.best_trials}
        best = [row for row in rows if row["trial"] in front]
        best.sort(
            key=lambda r: (
                -r[config.objectives[0]] if OBJECTIVES[config.objectives[0]][1] == "max" else r[config.objectives[0]]
            )
        )
    else:
        sign = -1 if OBJECTIVES[config.objectives[0]][1] == "max" else 1
        best = sorted(rows, key=lambda r: (sign * r[config.objectives[0]], r["trial"]))
    unique, seen = [], set()
    for row in best:  # duplicates answered from the store share a hash
        if row["arch_hash"] not in seen:
            seen.add(row["arch_hash"])
            unique.append(row)
    for rank, row in enumerate(unique, start=1):
        row["rank"] = rank
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
        best=unique if pareto else unique[: max(config.export_top, 10)],
        pareto=pareto,
        mlflow_run_id=search_run.run_id if search_run else None,
        failures=failures,
    )


def _table_row(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "arch"}


def _export_best(config, directory, summary, dataset, tracking, search_run) -> list[Path]:
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
        (target / "metrics.json").write_text(json.dumps(_table_row(row), indent=2, default=str))
        exported.append(target)
    if tracking is not None and search_run is not None and config.register_models and config.replay is None:
        _register_best(config, summary, dataset, tracking, search_run, directory)
    return exported


def _register_best(config, summary, dataset, tracking, search_run, directory) -> None:
    """Log every exported best/Pareto member that has weights (and each alias winner) as an
    MLflow model of its trial run, registered under the experiment's name in rank order;
    the winners also get the aliases ``best-val`` / ``best-robust``."""
    from nasbench.checkpoint import load_checkpoint
    from nasbench.tracking import log_model, registered_model_name, registered_version, set_aliases

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


def _aliases(config, rows: list[dict]) -> dict[int, list[str]]:
    """Trial number -> its registry aliases: the best row per objective that has one."""
    aliases: dict[int, list[str]] = {}
    for objective, alias in (("val_acc", "best-val"), ("robust_acc", "best-robust")):
        candidates = [r for r in rows if r.get(objective) is not None]
        if objective in config.objectives and candidates:
            top = max(candidates, key=lambda r: r[objective])
            aliases.setdefault(top["trial"], []).append(alias)
    return aliases
