"""The one door to MLflow: every :class:`mlflow.MlflowClient` of the process comes from
:func:`tracking_client` (one per tracking URI), with MLflow's chatter muted.

Only the search driver, the attack/report commands and the UI open it; a search trial
never does (``nasbench.trial`` imports no MLflow).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from nasbench.errors import UserError
from nasbench.tracking.names import TrackingConfig


@contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """Silence MLflow's chatter for the duration: tqdm "Downloading artifacts" bars (the
    user's own MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR wins), and MLflow's event log --
    "Successfully registered model" / "Created version" (printed, not logged), "Creating
    initial MLflow database tables" and log_model's "Failed to resolve installed pip
    version" (a venv without pip; the requirements are given, the conda.yaml still asks).
    Failures still raise."""
    from contextlib import AbstractContextManager, nullcontext

    try:  # MLflow's own switch: reference-counted, so it nests with MLflow's internal uses
        from mlflow.utils.autologging_utils.logging_and_warnings import (
            MlflowEventsAndWarningsBehaviorGlobally as EventLogs,
        )

        muted: AbstractContextManager = EventLogs(
            disable_event_logs=True, disable_warnings=False, reroute_warnings=False
        )
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
            _ = client._tracking_client.store  # opened now, not at the first run: one clear error here
    except (MlflowException, SQLAlchemyError) as error:
        message = (str(getattr(error, "message", "")) or str(error)).strip().splitlines()
        raise UserError(
            f"cannot open the MLflow store {tracking_uri}: {message[0][:300] if message else type(error).__name__}"
        ) from None
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
                tags={"nasbench.experiment": cfg.experiment_name, "mlflow.experimentKind": "custom_model_development"},
            )
        except MlflowException:
            experiment = client.get_experiment_by_name(cfg.experiment_name)
            if experiment is None:
                raise
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment.experiment_id)
    return experiment.experiment_id


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
