"""The options of ``nasbench search``: one validated record, saved as the experiment's ``config.yaml``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from nasbench.config import DataConfig, TrackingUri, TrainConfig
from nasbench.strategies import check_sampler_options
from nasbench.strategies.fidelity import schedule_milestones
from nasbench.trial_context import CorruptionConfig

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
        if self.schedule == "rungs":
            schedule_milestones(self)  # a scheduler it cannot follow: ValueError, one line
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
        if values["schedule"] == "rungs" and values["schedule_milestones"] is None:
            values["schedule_milestones"] = list(schedule_milestones(self))
        return TrainConfig(**values)

    def data_config(self) -> DataConfig:
        return DataConfig(**{name: getattr(self, name) for name in DataConfig.model_fields})
