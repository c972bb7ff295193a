"""Tag keys, trial statuses, MLflow's size limits and where an experiment is tracked.

No MLflow import here: trials and commands that only need a name or a URI stay light.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
_RUN_STATUS = {
    "ok": "FINISHED",
    "deduplicated": "FINISHED",
    "pruned": "KILLED",
    "failed": "FAILED",
    "interrupted": "KILLED",
}
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
