"""The parent run of a search and the nested child run of each trial."""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from nasbench.tracking.batch import _BatchWriter, _log_json, _missing_params, _text, flatten
from nasbench.tracking.client import _client, _global_tracking_uri, ensure_experiment
from nasbench.tracking.datasets import DatasetDescription, dataset_input, describe_dataset
from nasbench.tracking.names import (
    _RUN_STATUS,
    RUN_STATUSES,
    TAG_ARCH_HASH,
    TAG_PARENT_RUN,
    TAG_REASON,
    TAG_ROLE,
    TAG_STATUS,
    TAG_TRIAL_ID,
    TRIAL_STATUSES,
    TrackingConfig,
)

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

    def __init__(
        self, cfg: TrackingConfig, config: dict, run_name: str | None = None, resume_run_id: str | None = None
    ):
        from mlflow.exceptions import MlflowException

        self.cfg = cfg
        self.client = _client(cfg.tracking_uri)
        experiment_id = ensure_experiment(cfg)
        if resume_run_id is not None:
            try:
                run = self.client.get_run(resume_run_id)
            except MlflowException as error:
                raise ValueError(f"cannot resume MLflow run {resume_run_id}: {error.message}") from None
            if run.info.experiment_id != experiment_id:
                raise ValueError(
                    f"MLflow run {resume_run_id} belongs to another experiment than '{cfg.experiment_name}'"
                )
            self.run_id = resume_run_id
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            run = self.client.create_run(experiment_id, run_name=run_name or "search", tags={TAG_ROLE: "search"})
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

    def log_summary(self, metrics: dict, table_rows: list[dict], table_name: str = "best_architectures") -> None:
        """Totals as metrics; the best/Pareto table as ``<table_name>.json`` (MLflow's table
        format, shown in the UI's artifact view) and ``.csv``."""
        writer = _BatchWriter(self.client, self.run_id, flush_seconds=math.inf)
        writer.metrics_from(metrics)
        writer.flush()
        columns = _table_columns(table_rows)
        cells = [[_cell(row.get(column)) for column in columns] for row in table_rows]
        _log_json(self.client, self.run_id, {"columns": columns, "data": cells}, f"{table_name}.json")
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
    """What is logged into a trial's child run. Created by :func:`open_trial_run`."""

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
        self._writer.metrics_from({k: v for k, v in metrics.items() if self._curve_step.get(k) != step}, step=step)

    def set_status(self, status: str, reason: str | None = None) -> None:
        if status not in TRIAL_STATUSES:
            raise ValueError(f"trial status must be one of {', '.join(TRIAL_STATUSES)}, not {status!r}")
        self.status, self.reason = status, reason
        self._writer.tag(TAG_STATUS, status)
        if reason:  # an empty tag would show as a bare "nasbench.reason" on every ok run
            self._writer.tag(TAG_REASON, reason)
        self._writer.maybe_flush()  # the run's exit writes it in any case

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(local_path), artifact_path)

    def flush(self) -> None:
        self._writer.flush()

    def flush_if_due(self) -> None:
        """Write what is buffered if the last write is ``flush_seconds`` old."""
        self._writer.maybe_flush()

    def log_missing_epochs(self, curve: list[dict]) -> None:
        """Log the epochs of ``curve`` that the run does not hold yet (its ``val_acc`` has no
        point at their step): a resumed search restores what a killed driver never wrote,
        without doubling what it did."""
        logged = {metric.step for metric in self.client.get_metric_history(self.run_id, "val_acc")}
        for entry in curve:
            if "epoch" in entry and int(entry["epoch"]) not in logged:
                self.log_epoch(int(entry["epoch"]), entry)

    def finish(self, status: str, reason: str | None = None, run_status: str | None = None) -> None:
        """Write what is buffered with the final status, and end the run: FINISHED (ok,
        deduplicated), KILLED (pruned, interrupted) or FAILED, unless ``run_status`` says."""
        if status != "interrupted":
            self.set_status(status, reason)
        else:
            self.status, self.reason = status, reason
            self._writer.tag(TAG_STATUS, status)
            if reason:
                self._writer.tag(TAG_REASON, reason)
        self._writer.flush()
        self.client.set_terminated(self.run_id, status=run_status or _RUN_STATUS[status])


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


def open_trial_run(
    cfg: TrackingConfig,
    parent_run_id: str,
    trial_id: str | int,
    *,
    arch: dict,
    arch_hash: str,
    train_config: dict,
    dataset,
    flush_seconds: float = math.inf,
    find_existing: bool = True,
) -> TrialRecorder:
    """Open the nested child run of ``parent_run_id`` for one trial; end it with
    :meth:`TrialRecorder.finish`.

    The search driver opens one per trial (trials themselves never touch MLflow). If the
    parent already has a child for ``trial_id`` (a resumed search), that run is reused
    instead of creating a duplicate; a caller that knows the trial is new
    (``find_existing=False``) skips that search.

    ``dataset`` is a loaded dataset or its :class:`DatasetDescription` (either becomes
    the run's dataset input; the parent logs it first, :meth:`SearchRun.log_dataset`),
    just its name (a ``dataset`` param only), or None.

    Cost per trial: ``create_run`` (with every tag), ``arch.json`` written straight to the
    artifact store, ``log_inputs`` (MLflow has no batch call that takes inputs), then one
    ``log_batch`` per flush (params, metrics and the final status together) and
    ``set_terminated``.
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
    else:
        run = client.create_run(
            experiment_id,
            run_name=f"trial-{trial_id}",
            tags={
                TAG_PARENT_RUN: parent_run_id,
                TAG_ROLE: "trial",
                TAG_TRIAL_ID: trial_id,
                TAG_ARCH_HASH: arch_hash,
                TAG_STATUS: "running",
            },
        )
        run_id = run.info.run_id

    recorder = TrialRecorder(client, run_id, flush_seconds)
    params = {**flatten(arch, "arch."), **flatten(train_config, "train.")}
    if dataset is not None:
        params["dataset"] = str(getattr(dataset, "name", dataset))
    if existing:
        params = _missing_params(client, run_id, params)
    # buffered: written with the first batch of metrics, not in a transaction of their own
    for key, value in params.items():
        recorder._writer.param(key, value)
    if not existing:
        _write_json_artifact(cfg.tracking_uri, run.info.artifact_uri, arch, "arch.json")
        if isinstance(dataset, DatasetDescription) or hasattr(dataset, "train"):
            client.log_inputs(run_id, datasets=[dataset_input(dataset)])
    else:
        recorder._writer.tag(TAG_ARCH_HASH, arch_hash)
        recorder._writer.tag(TAG_STATUS, "running")
        recorder._writer.flush()
    return recorder


@contextmanager
def trial_run(
    cfg: TrackingConfig,
    parent_run_id: str,
    trial_id: str,
    *,
    arch: dict,
    arch_hash: str,
    train_config: dict,
    dataset,
    flush_seconds: float = 10.0,
    find_existing: bool = True,
) -> Iterator[TrialRecorder]:
    """:func:`open_trial_run` as a context manager.

    On exit the buffered metrics are written and the run ends FINISHED (status ok or
    deduplicated; ok is assumed if none was set), KILLED (pruned) or FAILED (failed, or
    an exception escaped, which is re-raised after its message is recorded as the reason).
    """
    recorder = open_trial_run(
        cfg,
        parent_run_id,
        trial_id,
        arch=arch,
        arch_hash=arch_hash,
        train_config=train_config,
        dataset=dataset,
        flush_seconds=flush_seconds,
        find_existing=find_existing,
    )
    try:
        yield recorder
    except BaseException as error:
        status = recorder.status if recorder.status not in (None, "ok") else "failed"
        recorder.finish(
            status,
            recorder.reason or f"{type(error).__name__}: {error}",
            run_status="KILLED" if isinstance(error, KeyboardInterrupt) or status == "pruned" else "FAILED",
        )
        raise
    else:
        recorder.finish(recorder.status or "ok", recorder.reason)


def _child_run(client, experiment_id: str, parent_run_id: str, trial_id: str):
    """The child run (:class:`mlflow.entities.Run`) of ``trial_id`` under ``parent_run_id``,
    if one was created."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=(
            f"tags.`{TAG_PARENT_RUN}` = '{parent_run_id}' and tags.`{TAG_TRIAL_ID}` = '{_quote(str(trial_id))}'"
        ),
        max_results=1,
    )
    return runs[0] if runs else None


def find_trial_run(cfg: TrackingConfig, parent_run_id: str, trial_id: str | int) -> str | None:
    """The child run a trial made, looked up from the driver (its worker may have died)."""
    run = _child_run(
        _client(cfg.tracking_uri), _experiment_of(cfg.tracking_uri, parent_run_id), parent_run_id, str(trial_id)
    )
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
