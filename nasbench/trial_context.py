"""What a search trial is given besides its architecture: plain data, no Ray, no torch.

:class:`TrialContext` is built once on the driver and shipped to every trial; the
objectives a trial can measure (:data:`OBJECTIVES`) and the settings of its cheap
robustness measurements (:class:`RobustConfig`, :class:`CorruptionConfig`) are read by
the driver, its strategies and the trials alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Objective name -> (result key, direction). "latency" is reported in milliseconds.
OBJECTIVES: dict[str, tuple[str, str]] = {
    "val_acc": ("val_acc", "max"),
    "robust_acc": ("robust_acc", "max"),
    "params": ("params", "min"),
    "macs": ("macs", "min"),
    "latency": ("latency_ms", "min"),
    "corruption_acc": ("corruption_acc", "max"),
}


@dataclass(frozen=True)
class RobustConfig:
    """The cheap in-the-loop attack: FGSM (one step) or PGD-k at one eps, on at most
    ``samples`` validation images (Goodfellow et al. 2015; Madry et al. 2018)."""

    attack: str = "fgsm"
    eps: float = 0.1
    steps: int = 10
    samples: int = 256

    def spec(self) -> str:
        return "fgsm" if self.attack == "fgsm" else f"pgd:steps={self.steps}"


@dataclass(frozen=True)
class CorruptionConfig:
    """The cheap in-the-loop corruption accuracy: the mean over a fixed subset of
    ``NAME:SEVERITY`` pairs (``attacks.SEARCH_SUBSET`` by default) on at most ``samples``
    validation images (Hendrycks & Dietterich 2019)."""

    subset: tuple[str, ...] = ("gaussian_noise:3", "defocus_blur:3", "fog:3", "jpeg_compression:3")
    samples: int = 256


@dataclass(frozen=True)
class TrialContext:
    """Everything a trial needs besides its architecture; plain data, shipped once to the
    Ray object store with ``tune.with_parameters``."""

    dataset: str  # as the user gave it: the store's key
    data_dir: str
    val_fraction: float
    seed: int
    space: str
    train: dict[str, Any]  # a TrainConfig dump; epochs is the budget
    objectives: tuple[str, ...] = ("val_acc",)
    robust: RobustConfig | None = None
    corruption: CorruptionConfig | None = None
    # the fidelity ladder (nasbench.strategies.fidelity): epochs where a multi-objective
    # scheduler checks the trial, and the cheaper attack measured there
    rung_epochs: tuple[int, ...] = ()
    rung_robust: RobustConfig | None = None
    save_weights: bool = True  # report the trained weights as a Tune checkpoint
    augment: tuple[str, ...] = ()
    # A stand-in for training, ``(arch_dict, context, report) -> final metrics``, where
    # ``report(metrics)`` reports one intermediate epoch (so schedulers can stop it);
    # used by the orchestration benchmark (trials that sleep) and to inject faults.
    evaluate: Callable[[dict, TrialContext, Callable[[dict], None]], dict] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # ``dataset`` with an npz:/imagefolder: path made absolute on the driver: a worker's
    # working folder need not be the driver's, and checkpoints record where the data is
    dataset_path: str = ""

    @property
    def budget(self) -> int:
        return int(self.train["epochs"])
