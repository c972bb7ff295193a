"""What ``evaluation.json`` holds: one model's evaluation, as typed records.

:class:`EvaluationRecord` is written by :func:`nasbench.evaluation.evaluate_models`
(:meth:`~EvaluationRecord.to_dict`) and read back by ``nasbench report``
(:func:`read_evaluations`, :meth:`~EvaluationRecord.from_dict`); the file is the dict::

    {"model": ModelRecord, "dataset", "split", "n", "indices", "seed", "targeted",
     "report": attacks.RobustnessReport.to_dict(),
     "corruptions": attacks.CorruptionReport.to_dict() or None,
     "files": BundleFiles, "command", "versions", "git_commit", "created_at",
     "mlflow_run_id", "store": StoreOutcome}

The engine's two reports stay the dicts the ``attacks`` package writes. Reading checks
what the report needs and fills in what older bundles lack, so a malformed or foreign
file is one clear :class:`UserError`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from nasbench.errors import UserError
from nasbench.experiment import EVALUATIONS_DIR

__all__ = [
    "EVALUATION_FILE",
    "BundleFiles",
    "EvaluationRecord",
    "GridShows",
    "ModelRecord",
    "StoreOutcome",
    "read_evaluation",
    "read_evaluations",
]

EVALUATION_FILE = "evaluation.json"
NUMBER = (int, float)
# Entries of the robustness report that the report reads without a default.
REPORT_KEYS: dict[str, type | tuple[type, ...]] = {
    "clean_accuracy": NUMBER,
    "threat_model": dict,
    "results": list,
    "worst_case": list,
    "checks": list,
}
# How a JSON type reads in an error message.
TYPE_NAMES: dict[type | tuple[type, ...], str] = {
    str: "a string",
    int: "an integer",
    bool: "true or false",
    dict: "an object",
    list: "a list",
    NUMBER: "a number",
}


class MalformedRecord(ValueError):
    """A part of ``evaluation.json`` is missing or of the wrong type; says which."""


def _required(data: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise MalformedRecord(f"no {where}{key!r}")
    value = data[key]
    # bool is an int to Python, not to a reader of "n" or "seed"
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise MalformedRecord(f"{where}{key!r} is not {TYPE_NAMES[kind]}")
    return value


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``data`` that are fields of the dataclass ``cls``."""
    names = {f.name for f in fields(cls)}
    return {key: value for key, value in data.items() if key in names}


@dataclass
class ModelRecord:
    """The evaluated model: its spec and source, its size and speed, its accuracies.

    ``params``, ``macs`` and the latencies (ms per image; the best and the mean of 20
    runs on ``latency_device``) come from profiling the model; ``clean_acc`` is measured
    on the evaluation's points, ``trained_test_acc`` on the whole test split at training.
    ``store_key`` is ``[arch_hash, dataset, budget, seed]`` for a search result.
    """

    label: str
    spec: dict[str, Any] | None = None
    source: str | None = None
    kind: str | None = None
    params: int | None = None
    macs: int | None = None
    latency_ms: float | None = None
    latency_mean_ms: float | None = None
    latency_device: str | None = None
    clean_acc: float | None = None
    trained_test_acc: float | None = None
    budget: int | None = None
    training_collapse: str | None = None  # why its training ended at chance
    run_id: str | None = None
    store_key: list[Any] | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelRecord:
        _required(data, "label", str, "model ")
        return cls(**_known(cls, data))


@dataclass
class GridShows:
    """What the example grid's columns are: the examples of one norm and eps, and the
    attack that made each."""

    norm: str | None = None
    eps: float | None = None
    attacks: list[str] = field(default_factory=list)


@dataclass
class BundleFiles:
    """The bundle's files besides ``evaluation.json``, relative to its folder; None when
    no attack succeeded and there is nothing to show."""

    examples: str | None = None
    grid: str | None = None
    grid_shows: GridShows | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BundleFiles:
        shows = data.get("grid_shows")
        return cls(
            examples=data.get("examples"),
            grid=data.get("grid"),
            grid_shows=GridShows(**_known(GridShows, shows)) if isinstance(shows, dict) else None,
        )


@dataclass
class StoreOutcome:
    """The benchmark store the robust accuracies were written to, and what happened."""

    path: str
    status: str


@dataclass(kw_only=True)
class EvaluationRecord:
    """One model's evaluation bundle; the fields in the order ``evaluation.json`` lists them.

    ``n`` points of the ``split`` (their ``indices``, drawn with ``seed``) were attacked,
    aiming at a wrong class when ``targeted``. ``command``, ``versions`` and
    ``git_commit`` say how to make it again. ``directory`` is the bundle's folder when
    read from disk, and is not written.
    """

    model: ModelRecord
    dataset: str
    split: str = "test"
    n: int
    indices: list[int] = field(default_factory=list)
    seed: int
    targeted: bool
    report: dict[str, Any]  # attacks.RobustnessReport.to_dict()
    corruptions: dict[str, Any] | None = None  # attacks.CorruptionReport.to_dict()
    files: BundleFiles = field(default_factory=BundleFiles)
    command: str | None = None
    versions: dict[str, str | None] = field(default_factory=dict)
    git_commit: str | None = None
    created_at: str | None = None
    mlflow_run_id: str | None = None
    store: StoreOutcome | None = None
    directory: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """The content of ``evaluation.json``."""
        record = asdict(self)
        del record["directory"]
        return record

    @classmethod
    def from_dict(cls, data: Any, directory: Path | None = None) -> EvaluationRecord:
        """The record of a parsed ``evaluation.json``; MalformedRecord names what is wrong."""
        if not isinstance(data, dict):
            raise MalformedRecord("not a JSON object")
        report = _required(data, "report", dict, "")
        for key, kind in REPORT_KEYS.items():
            _required(report, key, kind, "report ")
        store = data.get("store")
        return cls(
            model=ModelRecord.from_dict(_required(data, "model", dict, "")),
            dataset=_required(data, "dataset", str, ""),
            split=data.get("split", "test"),
            n=_required(data, "n", int, ""),
            indices=data.get("indices", []),
            seed=_required(data, "seed", int, ""),
            targeted=_required(data, "targeted", bool, ""),
            report=report,
            corruptions=data.get("corruptions"),
            files=BundleFiles.from_dict(data.get("files") or {}),
            command=data.get("command"),
            versions=data.get("versions", {}),
            git_commit=data.get("git_commit"),
            created_at=data.get("created_at"),
            mlflow_run_id=data.get("mlflow_run_id"),
            store=StoreOutcome(**_known(StoreOutcome, store)) if isinstance(store, dict) else None,
            directory=directory,
        )

    @property
    def grid_path(self) -> Path | None:
        """The example grid of a bundle read from disk, if it has one."""
        if self.directory is None or not self.files.grid:
            return None
        return self.directory / self.files.grid


def read_evaluation(path: Path) -> EvaluationRecord:
    """The ``evaluation.json`` at ``path``; a file that is not one is a UserError."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise UserError(f"evaluation bundle {path} is not readable JSON ({error})") from None
    try:
        return EvaluationRecord.from_dict(data, directory=path.parent)
    except (MalformedRecord, TypeError) as error:
        raise UserError(f"evaluation bundle {path} is not an evaluation written by nasbench attack ({error})") from None


def read_evaluations(experiment_dir: str | Path) -> list[EvaluationRecord]:
    """Every ``evaluation.json`` under ``<experiment_dir>/evaluations``, sorted by label."""
    root = Path(experiment_dir) / EVALUATIONS_DIR
    return [read_evaluation(path) for path in sorted(root.glob(f"*/{EVALUATION_FILE}"))]
