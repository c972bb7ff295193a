"""MLflow tracking: one experiment per search, a parent run per search, a child run per trial.

Layout in MLflow (the UI nests children under their parent through the
``mlflow.parentRunId`` tag)::

    experiment <name>                       one per search
    ├── run "search"        tags nasbench.role=search; params: the search config (flattened);
    │                       metrics: totals; artifacts: config.json, best_architectures.json/.csv;
    │                       dataset input
    │   ├── run "trial-7"   tags nasbench.role=trial, nasbench.trial_id, nasbench.arch_hash,
    │   │                   nasbench.status (+ nasbench.reason); params arch.* and train.*;
    │   │                   artifact arch.json; per-epoch metrics (step=epoch); final metrics
    │   │                   (params, macs, latency_ms, ...) at the last epoch's step;
    │   │                   dataset input (name, digest, schema, profile)
    │   └── ...
    └── run "attack ..."    tags nasbench.role=evaluation, nasbench.model_run_id=<trial run id>;
                            metrics robust_acc.<attack>.<norm>.eps_<eps> and robust_acc.worst...

Everything goes through :class:`mlflow.MlflowClient` with explicit run ids and an
explicit tracking URI, never through the fluent "active run". That is what makes it
work inside Ray Tune trainables: Ray's own ``MLflowLoggerCallback`` drops the tracking
URI inside trainables and cannot nest runs, and the fluent active run is per process,
so an actor reused across trials would write into the previous trial's run.

Batching. A trial logs a handful of metrics per epoch; one HTTP request or SQLite
transaction per value would cost more than the epoch on small datasets. Metrics, params
and tags are buffered and written with ``log_batch`` (up to MLflow's 1000 entities per
call) at the end of the trial, on status changes and every ``flush_seconds`` so the UI
still shows live curves (``benchmarks/tracking_overhead.py`` measures the difference).

Models without pickle. ``mlflow.pytorch.log_model`` pickles the whole module by default
in older MLflow releases, and unpickling runs arbitrary code. MLflow 3 offers
``serialization_format="pt2"``: a ``torch.export`` program (a graph in JSON plus tensors)
that MLflow checks for pickle payloads before loading. :func:`log_model` logs that
format with a tensor signature, and puts next to it (as the model's ``extra_files``) the
platform's own checkpoint: ``model.safetensors`` + ``arch.json`` + ``meta.json``.
:func:`load_logged_model` rebuilds the architecture from ``arch.json`` and loads the
weights from safetensors, so the model it returns is an ordinary eager ``nn.Module``
(trainable, attackable) and nothing is ever unpickled. Registered models get one name
per experiment (:func:`registered_model_name`) and aliases such as ``best-val`` and
``best-robust``.

Which store. A search records its ``--tracking-uri`` in ``<experiment>/config.yaml``;
later commands on the experiment (attack, report, ui) follow it through
:func:`experiment_tracking_uri`, and none of them opens a local store that does not
exist (:func:`missing_local_store`): MLflow would create an empty one.

Quiet. MLflow prints progress bars, "Successfully registered model" lines and
store-creation notices around model logging, downloads and new stores; those calls run
under :func:`_quiet_mlflow`, so a search shows nasbench's own progress display only.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from nasbench.errors import UserError

# Tag keys: the nasbench ones join MLflow runs to the benchmark store and the reports.
TAG_PARENT_RUN = "mlflow.parentRunId"  # MLflow's own key: makes the UI nest the run
TAG_ROLE = "nasbench.role"  # "search" | "trial" | "evaluation" (an attack) | "report"
TAG_TRIAL_ID = "nasbench.trial_id"
TAG_ARCH_HASH = "nasbench.arch_hash"
TAG_STATUS = "nasbench.status"
TAG_REASON = "nasbench.reason"
TAG_MODEL_RUN = "nasbench.model_run_id"

TRIAL_STATUSES = ("ok", "failed", "pruned", "deduplicated")
# How a trial's own status maps onto MLflow's run status.
# "interrupted" is set only by the driver, for trials a Ctrl-C left running.
_RUN_STATUS = {"ok": "FINISHED", "deduplicated": "FINISHED", "pruned": "KILLED", "failed": "FAILED",
               "interrupted": "KILLED"}
RUN_STATUSES = ("FINISHED", "FAILED", "KILLED")

# MLflow's limits (mlflow.utils.validation): values past them are rejected, not cut.
_MAX_PARAM_VALUE = 6000
_MAX_TAG_VALUE = 8000
_MAX_PARAMS_OR_TAGS_PER_BATCH = 100
# A batch holds at most 1000 entities in all: 800 metrics leave room for 100 params + 100 tags.
_METRICS_PER_BATCH = 800


@dataclass(frozen=True)
class TrackingConfig:
    """Where to track: plain strings, so it pickles into Ray workers unchanged."""

    tracking_uri: str
    experiment_name: str


def default_tracking_uri(experiment_dir: str | Path) -> str:
    """The embedded default: MLflow's SQLite store inside the experiment directory.

    >>> default_tracking_uri("/runs/exp1")
    'sqlite:////runs/exp1/mlflow.db'
    """
    return f"sqlite:///{Path(experiment_dir).expanduser().resolve() / 'mlflow.db'}"


def registered_model_name(cfg: TrackingConfig) -> str:
    """The model-registry name of an experiment's models (one name per experiment)."""
    return f"nasbench-{cfg.experiment_name}"


def recorded_tracking_uri(experiment_dir: str | Path) -> str | None:
    """The ``--tracking-uri`` the search of ``experiment_dir`` recorded in its config.yaml."""
    import yaml

    try:
        values = yaml.safe_load((Path(experiment_dir) / "config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return None
    uri = values.get("tracking_uri") if isinstance(values, dict) else None
    return uri if isinstance(uri, str) and uri.strip() else None


def experiment_tracking_uri(experiment_dir: str | Path, given: str | None = None) -> str:
    """Where an experiment is tracked: ``given`` (a --tracking-uri flag), else the URI its
    search recorded, else the embedded default inside the experiment directory."""
    return given or recorded_tracking_uri(experiment_dir) or default_tracking_uri(experiment_dir)


def missing_local_store(tracking_uri: str) -> Path | None:
    """The file of a local SQLite store that does not exist: opening it would create an
    empty store (MLflow builds one on first contact). None for existing or remote stores."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    path = Path(tracking_uri.removeprefix("sqlite:///"))
    return None if path.is_file() else path


# --------------------------------------------------------------------------------------
# Plumbing shared by every run kind
# --------------------------------------------------------------------------------------


@contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """Silence MLflow's chatter for the duration: tqdm "Downloading artifacts" bars (the
    user's own MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR wins), and MLflow's event log --
    "Successfully registered model" / "Created version" (printed, not logged), "Creating
    initial MLflow database tables" and log_model's "Failed to resolve installed pip
    version" (a venv without pip; the requirements are given, the conda.yaml still asks).
    Failures still raise."""
    from contextlib import nullcontext

    try:  # MLflow's own switch: reference-counted, so it nests with MLflow's internal uses
        from mlflow.utils.autologging_utils.logging_and_warnings import (
            MlflowEventsAndWarningsBehaviorGlobally as EventLogs,
        )
        muted = EventLogs(disable_event_logs=True, disable_warnings=False, reroute_warnings=False)
    except ImportError:  # pragma: no cover - a future MLflow without it: only noisier
        muted = nullcontext()
    variable = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    user_setting = os.environ.get(variable)
    os.environ.setdefault(variable, "false")
    try:
        with muted:
            yield
    finally:
        if user_setting is None:
            os.environ.pop(variable, None)


@lru_cache(maxsize=8)
def _client(tracking_uri: str):
    """One client per URI and process: a SQLite store opens its engine once. A store
    that cannot be opened (a corrupt file, an unknown scheme) is a UserError."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import SQLAlchemyError

    _seed_new_store(tracking_uri)
    try:
        with _quiet_mlflow():  # a store without the cached template is built here, with notices
            client = MlflowClient(tracking_uri=tracking_uri)
            client._tracking_client.store  # opened now, not at the first run: one clear error here
    except (MlflowException, SQLAlchemyError) as error:
        message = (str(getattr(error, "message", "")) or str(error)).strip().splitlines()
        raise UserError(f"cannot open the MLflow store {tracking_uri}: "
                        f"{message[0][:300] if message else type(error).__name__}") from None
    return client


def _seed_new_store(tracking_uri: str) -> None:
    """Start a new local SQLite store as a copy of an empty one of this MLflow version.

    MLflow builds a new database by running its whole chain of Alembic migrations,
    2-3 s of CPU (the largest part of a search's set-up). The result is the same empty
    schema every time, so it is built once per MLflow version in the user's cache
    (:func:`_empty_store_template`) and copied. An existing store is never touched;
    without a usable cache MLflow simply builds the database itself.
    """
    if not tracking_uri.startswith("sqlite:///"):
        return
    path = Path(tracking_uri.removeprefix("sqlite:///"))
    if path.exists() or not path.parent.is_dir():
        return
    template = _empty_store_template()
    if template is None:
        return
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        shutil.copyfile(template, partial)
        os.link(partial, path)  # atomic, and fails rather than replace a store another process made
    except OSError:
        pass
    finally:
        partial.unlink(missing_ok=True)


def cache_dir() -> Path:
    """nasbench's cache: ``$NASBENCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/nasbench`` (~/.cache/nasbench)."""
    if os.environ.get("NASBENCH_CACHE_DIR"):
        return Path(os.environ["NASBENCH_CACHE_DIR"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "nasbench"


def _empty_store_template() -> Path | None:
    """An empty, fully migrated MLflow SQLite store for this MLflow version (built on first use).

    The default experiment is removed from it: MLflow recreates experiment 0 on the first
    open of each copy, with that copy's own artifact location.
    """
    import sqlite3

    import mlflow

    template = cache_dir() / f"mlflow-{mlflow.__version__}-empty.db"
    if template.is_file():
        return template
    try:
        template.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=template.parent) as tmp:
            built = Path(tmp) / "mlflow.db"
            from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

            SqlAlchemyStore(f"sqlite:///{built}", Path(tmp).as_uri())._dispose_engine()
            connection = sqlite3.connect(built)
            try:
                with connection:
                    connection.execute("DELETE FROM experiment_tags")
                    connection.execute("DELETE FROM experiments")
                connection.execute("VACUUM")
            finally:
                connection.close()
            os.replace(built, template)
    except Exception:  # noqa: BLE001 - only a shortcut: without it MLflow builds each store itself
        return None
    return template


def tracking_client(tracking_uri: str):
    """The process's shared :class:`mlflow.MlflowClient` for ``tracking_uri``."""
    return _client(tracking_uri)


def _local_artifact_root(tracking_uri: str) -> str | None:
    """Artifacts of a local SQLite store live next to it, not in the working directory.

    MLflow would otherwise put them in ``./mlruns`` of whichever process created the
    experiment; a remote server (http) chooses its own artifact store.
    """
    if not tracking_uri.startswith("sqlite:///"):
        return None
    db_path = Path(tracking_uri.removeprefix("sqlite:///"))
    return (db_path.parent.resolve() / "mlartifacts").as_uri()


def ensure_experiment(cfg: TrackingConfig) -> str:
    """The id of ``cfg.experiment_name``, created (or restored from deletion) if needed.

    Safe when several processes race to create it: the loser reads the winner's id.
    """
    from mlflow.exceptions import MlflowException

    client = _client(cfg.tracking_uri)
    experiment = client.get_experiment_by_name(cfg.experiment_name)
    if experiment is None:
        try:
            return client.create_experiment(
                cfg.experiment_name,
                artifact_location=_local_artifact_root(cfg.tracking_uri),
                # MLflow 3 UIs without the GenAI / model-training switch read this tag to
                # open the runs table; 3.17's UI follows that per-browser switch (GenAI by
                # default) instead, which the runs link `nasbench ui` prints sets.
                tags={"nasbench.experiment": cfg.experiment_name,
                      "mlflow.experimentKind": "custom_model_development"},
            )
        except MlflowException:
            experiment = client.get_experiment_by_name(cfg.experiment_name)
            if experiment is None:
                raise
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment.experiment_id)
    return experiment.experiment_id


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested dicts/lists -> ``{"layers.0.kernel_h": "3", ...}``: readable param names.

    Lists of scalars stay one value (``"[3, 5]"``); lists of mappings are indexed.
    """
    flat: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, (list, tuple)) and any(isinstance(item, Mapping) for item in value):
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    flat.update(flatten(item, f"{name}.{index}."))
                else:
                    flat[f"{name}.{index}"] = _text(item)
        else:
            flat[name] = _text(value)
    return flat


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Path):
        return str(value)
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return str(value)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _as_float(value: Any) -> float | None:
    """A metric value, or None for what is not a number (None, strings, lists)."""
    if isinstance(value, bool):
        return float(value)
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy/torch scalars
        value = value.item()
    if isinstance(value, (int, float)):
        return float(value)
    return None


def _now_ms() -> int:
    return int(time.time() * 1000)


class _BatchWriter:
    """Buffers metrics, params and tags of one run and writes them with ``log_batch``."""

    def __init__(self, client, run_id: str, flush_seconds: float):
        self.client = client
        self.run_id = run_id
        self.flush_seconds = flush_seconds
        self.metrics: list = []
        self.params: dict[str, str] = {}
        self.tags: dict[str, str] = {}
        self.last_flush = time.monotonic()
        self.batches_written = 0

    def metric(self, key: str, value: Any, step: int = 0) -> bool:
        """Buffer one value; False (and nothing buffered) for what is not a number."""
        from mlflow.entities import Metric

        number = _as_float(value)
        if number is None:
            return False
        self.metrics.append(Metric(key, number, _now_ms(), int(step)))
        return True

    def metrics_from(self, values: Mapping[str, Any], step: int = 0, prefix: str = "") -> list[str]:
        """Buffer every number of ``values``; returns the keys buffered."""
        return [key for key, value in values.items() if self.metric(f"{prefix}{key}", value, step)]

    def param(self, key: str, value: str) -> None:
        self.params[key] = _clip(value, _MAX_PARAM_VALUE)

    def tag(self, key: str, value: str) -> None:
        self.tags[key] = _clip(value, _MAX_TAG_VALUE)

    def maybe_flush(self) -> None:
        if time.monotonic() - self.last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        from mlflow.entities import Param, RunTag

        metrics, self.metrics = self.metrics, []
        params = [Param(k, v) for k, v in self.params.items()]
        tags = [RunTag(k, v) for k, v in self.tags.items()]
        self.params, self.tags = {}, {}
        self.last_flush = time.monotonic()
        while metrics or params or tags:
            chunk_metrics, metrics = metrics[:_METRICS_PER_BATCH], metrics[_METRICS_PER_BATCH:]
            chunk_params, params = params[:_MAX_PARAMS_OR_TAGS_PER_BATCH], params[_MAX_PARAMS_OR_TAGS_PER_BATCH:]
            chunk_tags, tags = tags[:_MAX_PARAMS_OR_TAGS_PER_BATCH], tags[_MAX_PARAMS_OR_TAGS_PER_BATCH:]
            self.client.log_batch(self.run_id, metrics=chunk_metrics, params=chunk_params,
                                  tags=chunk_tags, synchronous=True)
            self.batches_written += 1


def _missing_params(client, run_id: str, params: Mapping[str, str]) -> dict[str, str]:
    """Params not yet on the run: MLflow params are write-once, a resumed run keeps its own."""
    logged = client.get_run(run_id).data.params
    return {key: value for key, value in params.items() if key not in logged}


def _log_json(client, run_id: str, data: Any, artifact_file: str) -> None:
    client.log_text(run_id, json.dumps(data, indent=2, sort_keys=True, default=str), artifact_file)


# --------------------------------------------------------------------------------------
# The parent run of a search
# --------------------------------------------------------------------------------------


class SearchRun:
    """The parent run of a search, on the driver.

    Args:
        cfg: where to track.
        config: the whole search config (space, sampler, budgets, ...); logged flattened as
            params and whole as ``config.json``.
        run_name: shown in the UI (default ``"search"``).
        resume_run_id: continue this run (a resumed search) instead of starting a new one.

    Usable as a context manager: the run ends FINISHED, FAILED on an exception, KILLED
    on Ctrl-C.
    """

    def __init__(self, cfg: TrackingConfig, config: dict, run_name: str | None = None,
                 resume_run_id: str | None = None):
        from mlflow.exceptions import MlflowException

        self.cfg = cfg
        self.client = _client(cfg.tracking_uri)
        experiment_id = ensure_experiment(cfg)
        if resume_run_id is not None:
            try:
                run = self.client.get_run(resume_run_id)
            except MlflowException as error:
                raise ValueError(f"cannot resume MLflow run {resume_run_id}: "
                                 f"{error.message}") from None
            if run.info.experiment_id != experiment_id:
                raise ValueError(f"MLflow run {resume_run_id} belongs to another experiment "
                                 f"than '{cfg.experiment_name}'")
            self.run_id = resume_run_id
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            run = self.client.create_run(
                experiment_id, run_name=run_name or "search", tags={TAG_ROLE: "search"})
            self.run_id = run.info.run_id
            _log_json(self.client, self.run_id, config, "config.json")
        writer = _BatchWriter(self.client, self.run_id, flush_seconds=math.inf)
        for key, value in _missing_params(self.client, self.run_id, flatten(config)).items():
            writer.param(key, value)
        writer.flush()
        self.experiment_id = experiment_id
        self._ended = False

    def log_dataset(self, dataset) -> DatasetDescription:
        """The search's dataset as the run's input; returns its description for the trials.

        Logged before any trial starts, so the experiment's dataset row exists and the
        trials' runs only link to it: workers racing to create that row would collide on
        MLflow's unique (experiment, name, digest). Logging it again (a resumed search)
        changes nothing.
        """
        described = describe_dataset(dataset)
        self.client.log_inputs(self.run_id, datasets=[dataset_input(described)])
        return described

    def log_summary(self, metrics: dict, table_rows: list[dict],
                    table_name: str = "best_architectures") -> None:
        """Totals as metrics; the best/Pareto table as ``<table_name>.json`` (MLflow's table
        format, shown in the UI's artifact view) and ``.csv``."""
        writer = _BatchWriter(self.client, self.run_id, flush_seconds=math.inf)
        writer.metrics_from(metrics)
        writer.flush()
        columns = _table_columns(table_rows)
        cells = [[_cell(row.get(column)) for column in columns] for row in table_rows]
        _log_json(self.client, self.run_id, {"columns": columns, "data": cells},
                  f"{table_name}.json")
        self.client.log_text(self.run_id, _csv(columns, cells), f"{table_name}.csv")

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(local_path), artifact_path)

    def end(self, status: str = "FINISHED") -> None:
        if status not in RUN_STATUSES:
            raise ValueError(f"run status must be one of {', '.join(RUN_STATUSES)}, not {status!r}")
        self.client.set_terminated(self.run_id, status=status)
        self._ended = True

    def __enter__(self) -> SearchRun:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._ended:
            return
        if exc_type is None:
            self.end("FINISHED")
        else:
            self.end("KILLED" if issubclass(exc_type, KeyboardInterrupt) else "FAILED")


def _table_columns(rows: list[dict]) -> list[str]:
    columns: list[str] = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    return columns


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return _text(value)


def _csv(columns: list[str], cells: list[list[Any]]) -> str:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    writer.writerows(["" if cell is None else cell for cell in row] for row in cells)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------
# One child run per trial
# --------------------------------------------------------------------------------------


class TrialRecorder:
    """What a trial logs into its child run. Created by :func:`trial_run`."""

    def __init__(self, client, run_id: str, flush_seconds: float):
        self.client = client
        self.run_id = run_id
        self.status: str | None = None
        self.reason: str | None = None
        self._writer = _BatchWriter(client, run_id, flush_seconds)
        self._curve_step: dict[str, int] = {}  # metric key -> the last epoch it was logged at

    def log_epoch(self, epoch: int, metrics: dict) -> None:
        """Per-epoch metrics with ``step=epoch`` (the key ``"epoch"`` itself is skipped)."""
        logged = self._writer.metrics_from({k: v for k, v in metrics.items() if k != "epoch"}, step=epoch)
        self._curve_step.update(dict.fromkeys(logged, int(epoch)))
        self._writer.maybe_flush()

    def log_metrics(self, metrics: dict, step: int = 0) -> None:
        """Final metrics (params, macs, latency_ms, test_acc, robust_acc, ...) at ``step``.

        Give the trial's last epoch: a final value logged at step 0 would be the first
        point of its per-epoch curve (val_acc would read final, epoch 1, epoch 2, ...).
        A key whose curve already has its point at ``step`` is not logged twice; the other
        keys (a replay's last epoch, a deduplicated trial) get theirs here. Non-numbers such
        as None are skipped.
        """
        self._writer.metrics_from({k: v for k, v in metrics.items() if self._curve_step.get(k) != step},
                                  step=step)

    def set_status(self, status: str, reason: str | None = None) -> None:
        if status not in TRIAL_STATUSES:
            raise ValueError(f"trial status must be one of {', '.join(TRIAL_STATUSES)}, "
                             f"not {status!r}")
        self.status, self.reason = status, reason
        self._writer.tag(TAG_STATUS, status)
        if reason:  # an empty tag would show as a bare "nasbench.reason" on every ok run
            self._writer.tag(TAG_REASON, reason)
        self._writer.maybe_flush()  # the run's exit writes it in any case

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(local_path), artifact_path)

    def flush(self) -> None:
        self._writer.flush()


@lru_cache(maxsize=64)
def _experiment_of(tracking_uri: str, run_id: str) -> str:
    """A run's experiment id, looked up once per process (a trial's parent never moves)."""
    return _client(tracking_uri).get_run(run_id).info.experiment_id


def _write_json_artifact(tracking_uri: str, artifact_uri: str, data: Any, artifact_file: str) -> None:
    """``client.log_text`` without its ``get_run``: the caller already knows where the run's
    artifacts live (``create_run`` returned it). A server's proxied ``mlflow-artifacts:``
    location resolves against the global tracking URI, so that is set for the call."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    with tempfile.TemporaryDirectory() as tmp, _global_tracking_uri(tracking_uri):
        path = Path(tmp) / artifact_file
        path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
        get_artifact_repository(artifact_uri).log_artifact(str(path))


@contextmanager
def trial_run(cfg: TrackingConfig, parent_run_id: str, trial_id: str, *, arch: dict,
              arch_hash: str, train_config: dict, dataset,
              flush_seconds: float = 10.0, find_existing: bool = True) -> Iterator[TrialRecorder]:
    """A nested child run of ``parent_run_id`` for one trial.

    Works in any process that has nothing but ``cfg`` (a Ray worker with no MLflow
    environment variables). If the parent already has a child for ``trial_id`` (a
    resumed search), that run is reused instead of creating a duplicate; a caller that
    knows the trial is new (``find_existing=False``) skips that search.

    ``dataset`` is a loaded dataset or its :class:`DatasetDescription` (either becomes
    the run's dataset input; with concurrent trials the parent logs it first,
    :meth:`SearchRun.log_dataset`), just its name (a ``dataset`` param only), or None.

    Cost per trial: three store transactions -- ``create_run`` (with every tag), one
    ``log_batch`` on exit (params, metrics and the final status together; long trials
    flush earlier, every ``flush_seconds``) and ``set_terminated`` -- plus ``arch.json``
    written straight to the artifact store and, with a dataset to describe, a fourth
    (``log_inputs``; MLflow has no batch call that takes inputs). Each SQLite
    transaction costs milliseconds to tens of milliseconds, as much as a short trial's
    orchestration budget.

    On exit the buffered metrics are written and the run ends FINISHED (status ok or
    deduplicated; ok is assumed if none was set), KILLED (pruned) or FAILED (failed, or
    an exception escaped, which is re-raised after its message is recorded as the reason).
    """
    client = _client(cfg.tracking_uri)
    experiment_id = _experiment_of(cfg.tracking_uri, parent_run_id)
    trial_id = str(trial_id)
    existing = _child_run(client, experiment_id, parent_run_id, trial_id) if find_existing else None
    if existing:
        run_id = existing.info.run_id
        client.update_run(run_id, status="RUNNING")
        if TAG_REASON in existing.data.tags:  # why the earlier attempt ended; this one starts clean
            client.delete_tag(run_id, TAG_REASON)
        fresh = False
    else:
        run = client.create_run(
            experiment_id, run_name=f"trial-{trial_id}",
            tags={TAG_PARENT_RUN: parent_run_id, TAG_ROLE: "trial", TAG_TRIAL_ID: trial_id,
                  TAG_ARCH_HASH: arch_hash, TAG_STATUS: "running"})
        run_id = run.info.run_id
        fresh = True

    recorder = TrialRecorder(client, run_id, flush_seconds)
    params = {**flatten(arch, "arch."), **flatten(train_config, "train.")}
    if dataset is not None:
        params["dataset"] = str(getattr(dataset, "name", dataset))
    if not fresh:
        params = _missing_params(client, run_id, params)
    # buffered: written with the first batch of metrics, not in a transaction of their own
    for key, value in params.items():
        recorder._writer.param(key, value)
    if fresh:
        _write_json_artifact(cfg.tracking_uri, run.info.artifact_uri, arch, "arch.json")
        if isinstance(dataset, DatasetDescription) or hasattr(dataset, "train"):
            client.log_inputs(run_id, datasets=[dataset_input(dataset)])
    else:
        recorder._writer.tag(TAG_ARCH_HASH, arch_hash)
        recorder._writer.tag(TAG_STATUS, "running")
        recorder._writer.flush()

    try:
        yield recorder
    except BaseException as error:
        status = "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED"
        if recorder.status in (None, "ok"):
            recorder.status = "failed"
        if recorder.status == "pruned":  # an early stop that escaped as an exception
            status = "KILLED"
        recorder._writer.tag(TAG_STATUS, recorder.status)
        recorder._writer.tag(TAG_REASON, recorder.reason or f"{type(error).__name__}: {error}")
        _finish(client, recorder, status)
        raise
    else:
        if recorder.status is None:
            recorder.status = "ok"
            recorder._writer.tag(TAG_STATUS, "ok")
        _finish(client, recorder, _RUN_STATUS[recorder.status])


def _finish(client, recorder: TrialRecorder, status: str) -> None:
    recorder._writer.flush()
    client.set_terminated(recorder.run_id, status=status)


def _child_run(client, experiment_id: str, parent_run_id: str, trial_id: str):
    """The child run (:class:`mlflow.entities.Run`) of ``trial_id`` under ``parent_run_id``,
    if one was created."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=(f"tags.`{TAG_PARENT_RUN}` = '{parent_run_id}' "
                       f"and tags.`{TAG_TRIAL_ID}` = '{_quote(str(trial_id))}'"),
        max_results=1)
    return runs[0] if runs else None


def find_trial_run(cfg: TrackingConfig, parent_run_id: str, trial_id: str | int) -> str | None:
    """The child run a trial made, looked up from the driver (its worker may have died)."""
    run = _child_run(_client(cfg.tracking_uri), _experiment_of(cfg.tracking_uri, parent_run_id),
                     parent_run_id, str(trial_id))
    return run.info.run_id if run else None


def end_trial_run(cfg: TrackingConfig, run_id: str, status: str, reason: str | None) -> None:
    """End a trial's child run from the driver, when its worker could not."""
    client = _client(cfg.tracking_uri)
    client.set_tag(run_id, TAG_STATUS, status)
    if reason:
        client.set_tag(run_id, TAG_REASON, reason[:5000])
    client.set_terminated(run_id, status=_RUN_STATUS.get(status, "FINISHED"))


def _quote(text: str) -> str:
    return text.replace("'", "\\'")


# --------------------------------------------------------------------------------------
# Datasets: logged by name and digest, not by content
# --------------------------------------------------------------------------------------

_DIGEST_SAMPLE_ROWS = 4096


def dataset_digest(dataset) -> str:
    """A short content digest of a dataset's training split.

    Hashes the shapes, every label and up to 4096 evenly spaced images: enough to tell
    datasets and splits apart (a different seed or validation fraction changes it)
    while staying cheap on CIFAR-sized data. Like MLflow's own pandas digests, it is a
    fingerprint, not a checksum of every byte.
    """
    import numpy as np

    x = dataset.train.x.detach().cpu()
    y = dataset.train.y.detach().cpu()
    rows = np.linspace(0, len(x) - 1, num=min(len(x), _DIGEST_SAMPLE_ROWS)).astype(np.int64)
    sha = hashlib.sha256()
    sha.update(repr((tuple(x.shape), str(x.dtype), tuple(y.shape))).encode())
    sha.update(y.numpy().tobytes())
    if len(x):
        sha.update(np.ascontiguousarray(x[rows].numpy()).tobytes())
    return sha.hexdigest()[:12]


@dataclass(frozen=True)
class DatasetDescription:
    """What a run's dataset input records, as plain strings (source, schema and profile
    are JSON). A search computes it once on the driver and ships it to the trials, so no
    worker loads the data just to log it (replayed and deduplicated trials never do)."""

    name: str
    digest: str
    source: str
    schema: str
    profile: str


def describe_dataset(dataset) -> DatasetDescription:
    """The :class:`DatasetDescription` of a loaded dataset (no data is copied)."""

    def size(split_name: str) -> int:
        split = getattr(dataset, split_name, None)
        return int(len(split.y)) if split is not None else 0

    source = {"name": dataset.name, "input_shape": list(getattr(dataset, "input_shape", ())),
              "num_classes": getattr(dataset, "num_classes", None)}
    profile = {"num_train": size("train"), "num_val": size("val"), "num_test": size("test")}
    schema = {"x": {"dtype": str(dataset.train.x.dtype), "shape": [-1, *dataset.train.x.shape[1:]]},
              "y": {"dtype": str(dataset.train.y.dtype), "shape": [-1]}}
    return DatasetDescription(name=dataset.name, digest=dataset_digest(dataset), source=json.dumps(source),
                              schema=json.dumps(schema), profile=json.dumps(profile))


def dataset_input(dataset, context: str = "train"):
    """A :class:`mlflow.entities.DatasetInput` for a loaded dataset or its description."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    described = dataset if isinstance(dataset, DatasetDescription) else describe_dataset(dataset)
    entity = Dataset(name=described.name, digest=described.digest, source_type="nasbench",
                     source=described.source, schema=described.schema, profile=described.profile)
    return DatasetInput(entity, tags=[InputTag("mlflow.data.context", context)])


# --------------------------------------------------------------------------------------
# Models: pt2 + safetensors, registered with aliases
# --------------------------------------------------------------------------------------


@contextmanager
def _global_tracking_uri(uri: str):
    """``mlflow.pytorch.log_model`` resolves the store from the global tracking URI."""
    import mlflow

    try:  # restores exactly what was set before (possibly nothing)
        from mlflow.tracking._tracking_service.utils import _use_tracking_uri
    except ImportError:  # pragma: no cover - a future MLflow without the private helper
        previous = mlflow.get_tracking_uri()
        mlflow.set_tracking_uri(uri)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(previous)
        return
    with _use_tracking_uri(uri):
        yield


def log_model(cfg: TrackingConfig, run_id: str, model, input_example,
              registered_name: str | None, aliases: list[str] | Iterable[str] = (), *,
              arch: dict | None = None, meta: dict | None = None, name: str = "model") -> str:
    """Log ``model`` to ``run_id`` safely and optionally register it; returns the model URI.

    The model is logged with ``mlflow.pytorch`` in the ``pt2`` format (a ``torch.export``
    program, no pickled Python objects) with a signature inferred from ``input_example``
    (a batch of inputs; use at least two rows so the batch dimension stays dynamic), and
    the platform checkpoint (``model.safetensors``, ``arch.json``, ``meta.json``, written
    by ``nasbench.checkpoint.save_checkpoint``) travels with it as extra files.
    ``model`` is the normalised model (``wrap_normalized``); ``arch`` is its model spec
    and defaults to the run's ``arch.json`` artifact (trial runs have one); ``meta`` must
    hold the dataset's ``mean`` and ``std`` (input shape and class count are read from
    the example and the output).

    With ``registered_name`` a new registry version is created and each of ``aliases``
    (e.g. ``"best-val"``, ``"best-robust"``) is pointed at it.
    """
    import mlflow.pytorch
    import torch
    from mlflow.models import infer_signature

    client = _client(cfg.tracking_uri)
    if arch is None:
        with tempfile.TemporaryDirectory() as tmp, _quiet_mlflow():
            arch = json.loads(Path(client.download_artifacts(run_id, "arch.json", tmp)).read_text())
    example = input_example.detach().cpu() if isinstance(input_example, torch.Tensor) \
        else torch.as_tensor(input_example)
    was_training = model.training
    model = model.eval()
    try:
        with torch.no_grad():
            output = model(example)
        meta = {"input_shape": list(example.shape[1:]), "num_classes": int(output.shape[-1]),
                **(meta or {})}
        signature = infer_signature(example.numpy(), output.detach().cpu().numpy())
        # Created here, in the run's experiment: left to itself, MLflow would file the model
        # under the process-global experiment (the Default one, in ./mlruns of the cwd).
        run = client.get_run(run_id)
        logged = client.create_logged_model(run.info.experiment_id, name=name, source_run_id=run_id,
                                            params=dict(run.data.params))
        with tempfile.TemporaryDirectory() as tmp:
            extra_files = _write_checkpoint(Path(tmp), model, arch, meta)
            with _global_tracking_uri(cfg.tracking_uri), _quiet_mlflow():
                info = mlflow.pytorch.log_model(
                    model, name=name, model_id=logged.model_id, run_id=run_id, signature=signature,
                    input_example=example.numpy(), serialization_format="pt2",
                    extra_files=[str(path) for path in extra_files],
                    registered_model_name=registered_name, await_registration_for=0,
                    pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
                )
    finally:
        model.train(was_training)
    if registered_name is not None:
        set_aliases(cfg, registered_name, str(info.registered_model_version), aliases)
    client.set_tag(run_id, "nasbench.model_uri", info.model_uri)
    return info.model_uri


def registered_version(cfg: TrackingConfig, registered_name: str, run_id: str) -> str | None:
    """The registry version of ``registered_name`` logged from ``run_id``, if there is one."""
    versions = _client(cfg.tracking_uri).search_model_versions(
        f"name = '{registered_name}' and run_id = '{run_id}'")
    return str(max(int(v.version) for v in versions)) if versions else None


def set_aliases(cfg: TrackingConfig, registered_name: str, version: str, aliases: Iterable[str]) -> None:
    client = _client(cfg.tracking_uri)
    for alias in aliases:
        client.set_registered_model_alias(registered_name, alias, version)


def _write_checkpoint(directory: Path, model, arch: dict, meta: dict) -> list[Path]:
    """The platform checkpoint files (the same ones ``nasbench train`` writes)."""
    from nasbench.checkpoint import save_checkpoint

    save_checkpoint(directory, model, arch, meta)
    return sorted(path for path in directory.iterdir() if path.is_file())


def download_logged_model(model_uri: str, tracking_uri: str, dst: str | Path) -> Path:
    """Download a logged model (``models:/m-...``, ``models:/<name>@<alias>``) into ``dst``."""
    import mlflow.artifacts

    # the registry client behind models:/ URIs uses the global URI
    with _global_tracking_uri(tracking_uri), _quiet_mlflow():
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(dst),
                                                        tracking_uri=tracking_uri))


def download_logged_checkpoint(model_uri: str, tracking_uri: str, dst: str | Path) -> Path:
    """Download a logged model's checkpoint files; returns the folder holding them."""
    folder = download_logged_model(model_uri, tracking_uri, dst) / "extra_files"
    if not (folder / "model.safetensors").is_file():
        raise ValueError(f"{model_uri} has no nasbench checkpoint (extra_files/model.safetensors); "
                         "was it logged with nasbench.tracking.log_model?")
    return folder


def load_logged_model(model_uri: str, tracking_uri: str | None = None):
    """Rebuild a model logged by :func:`log_model` from arch JSON + safetensors.

    ``model_uri`` is what :func:`log_model` returned, or a registry URI such as
    ``models:/nasbench-exp1@best-val``. Nothing is unpickled: the weights come from
    safetensors and the architecture is rebuilt by ``nasbench.checkpoint.load_checkpoint``.
    Returns the model in eval mode.
    """
    import mlflow
    from nasbench.checkpoint import load_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        folder = download_logged_checkpoint(model_uri, tracking_uri or mlflow.get_tracking_uri(), tmp)
        model, _arch, _meta = load_checkpoint(folder)
    return model.eval()


# --------------------------------------------------------------------------------------
# Attack and report runs
# --------------------------------------------------------------------------------------

_NORM_NAMES = {"linf": "linf", "inf": "linf", "l_inf": "linf", "l2": "l2", "2": "l2",
               "l1": "l1", "1": "l1", "l0": "l0", "0": "l0"}


def robust_metric_name(attack: str, norm: str, eps: float) -> str:
    """``robust_acc.<attack>.<norm>.eps_<eps:.4f>``, e.g. ``robust_acc.pgd.linf.eps_0.0314``.

    Fixed decimals make the UI's alphabetical metric list sort by eps within an attack
    and norm, and the same eps always maps to the same name across runs.
    """
    attack_name = re.sub(r"[^a-z0-9_-]+", "_", str(attack).strip().lower()).strip("_")
    if not attack_name:
        raise ValueError(f"attack name {attack!r} has no usable characters")
    eps = float(eps)
    if not math.isfinite(eps) or eps < 0:
        raise ValueError(f"eps must be a finite number >= 0, not {eps}")
    return f"robust_acc.{attack_name}.{norm_name(norm)}.eps_{eps:.4f}"


def norm_name(norm: str) -> str:
    """``"Linf"``, ``"inf"``, ``"L_inf"`` -> ``"linf"``; ``"L2"`` -> ``"l2"``."""
    key = str(norm).strip().lower().replace("-", "_")
    if key not in _NORM_NAMES:
        raise ValueError(f"unknown norm {norm!r}: use one of linf, l2, l1, l0")
    return _NORM_NAMES[key]


class EvaluationRecorder:
    """What an attack or report run logs. Created by :func:`evaluation_run`."""

    def __init__(self, client, run_id: str):
        self.client = client
        self.run_id = run_id
        self._writer = _BatchWriter(client, run_id, flush_seconds=math.inf)

    def log_robustness(self, results: list[dict]) -> dict[str, float]:
        """One metric per attack and eps, plus per norm and eps the worst case over attacks.

        ``results`` holds dicts with ``attack``, ``norm``, ``eps``, ``accuracy``. Returns the
        metrics it logged.
        """
        logged: dict[str, float] = {}
        worst: dict[tuple[str, float], float] = {}
        for result in results:
            accuracy = _as_float(result["accuracy"])
            if accuracy is None:
                continue
            logged[robust_metric_name(result["attack"], result["norm"], result["eps"])] = accuracy
            key = (norm_name(result["norm"]), round(float(result["eps"]), 4))
            worst[key] = min(worst.get(key, accuracy), accuracy)
        for (norm, eps), accuracy in worst.items():
            logged[robust_metric_name("worst", norm, eps)] = accuracy
        self._writer.metrics_from(logged)
        self._writer.flush()
        return logged

    def log_metrics(self, metrics: dict, step: int = 0) -> None:
        self._writer.metrics_from(metrics, step=step)
        self._writer.flush()

    def set_tag(self, key: str, value: str) -> None:
        self.client.set_tag(self.run_id, key, _clip(str(value), _MAX_TAG_VALUE))

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(local_path), artifact_path)


@contextmanager
def evaluation_run(cfg: TrackingConfig, *, model_run_id: str | None, name: str,
                   params: dict, role: str = "evaluation") -> Iterator[EvaluationRecorder]:
    """A run for an attack (``role`` "evaluation") or a report (``role`` "report"),
    linked to the run of the model it evaluated.

    The link is the tag ``nasbench.model_run_id``; search the evaluations of a model
    with ``tags.`nasbench.model_run_id` = '<run id>'``. Ends FINISHED, or FAILED (KILLED
    on Ctrl-C) when an exception escapes.
    """
    client = _client(cfg.tracking_uri)
    experiment_id = ensure_experiment(cfg)
    tags = {TAG_ROLE: role}
    if model_run_id is not None:
        tags[TAG_MODEL_RUN] = model_run_id
    run_id = client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
    recorder = EvaluationRecorder(client, run_id)
    for key, value in flatten(params).items():
        recorder._writer.param(key, value)
    recorder._writer.flush()
    try:
        yield recorder
    except BaseException as error:
        recorder._writer.tag(TAG_REASON, f"{type(error).__name__}: {error}")
        recorder._writer.flush()
        client.set_terminated(run_id, "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")
        raise
    else:
        recorder._writer.flush()
        client.set_terminated(run_id, "FINISHED")
