"""Accuracy under common corruptions: per corruption and severity, their mean, and the mCE.

Hendrycks & Dietterich 2019 ("Benchmarking Neural Network Robustness to Common
Corruptions and Perturbations", ICLR 2019, section 3) summarise a classifier f by its
error E(f, c, s) under corruption c at severity s, normalised by a baseline's errors:

- corruption error ``CE_c = sum_s E(f, c, s) / sum_s E(base, c, s)`` and its mean over
  the corruptions, the mCE (the paper's baseline is AlexNet; here it is a model of the
  same evaluation, named in every result);
- relative corruption error ``rCE_c = sum_s (E(f, c, s) - E(f, clean)) /
  sum_s (E(base, c, s) - E(base, clean))``, the degradation beyond the clean error;
- mean corruption accuracy (RobustBench's corruptions leaderboard ranks by it) and its
  ratio to clean accuracy.

:func:`evaluate_corruptions` corrupts each batch on the model's device with
:func:`attacks.corruptions.corrupt` (randomness seeded per corruption and severity) and
counts correct predictions; nothing is stored in between. :func:`corruption_accuracy` is
the cheap version for a search's inner loop: a small fixed subset of (corruption,
severity) pairs on a few validation images.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch import nn

from attacks.corruptions import (
    SEVERITIES,
    CorruptionConfigError,
    corrupt,
    corruption_generator,
    parse_corruptions,
    parse_severities,
    resolve_corruption,
)
from attacks.progress import Budget, Progress

__all__ = [
    "SEARCH_SUBSET",
    "CorruptionReport",
    "corruption_accuracy",
    "corruption_errors",
    "evaluate_corruptions",
    "parse_subset",
    "subset_accuracies",
]

# The search objective's pairs: one corruption of each family at the middle severity, each
# cheap on a CPU (no glass blur, motion blur, snow or elastic transform).
SEARCH_SUBSET: tuple[str, ...] = ("gaussian_noise:3", "defocus_blur:3", "fog:3", "jpeg_compression:3")


@dataclass
class CorruptionReport:
    """Accuracy of one model under every evaluated (corruption, severity) pair.

    ``accuracy[corruption][severity]``; ``n`` images, the same for every pair, judged
    against their true labels. JSON-able through :meth:`to_dict`.
    """

    n: int
    seed: int
    clean_accuracy: float
    corruptions: list[str]
    severities: list[int]
    accuracy: dict[str, dict[int, float]]
    seconds: float = 0.0
    device: str = "cpu"
    images_per_second: float = 0.0
    errors: dict[str, Any] = field(default_factory=dict)  # filled by corruption_errors()

    def pairs(self) -> list[tuple[str, int, float]]:
        return [(c, s, self.accuracy[c][s]) for c in self.corruptions for s in self.severities]

    @property
    def mean_accuracy(self) -> float:
        """Mean corruption accuracy over every evaluated pair."""
        values = [acc for _, _, acc in self.pairs()]
        return sum(values) / len(values)

    @property
    def relative_accuracy(self) -> float | None:
        """Mean corruption accuracy over clean accuracy (None for a model never right)."""
        return self.mean_accuracy / self.clean_accuracy if self.clean_accuracy > 0 else None

    def corruption_mean(self, corruption: str) -> float:
        return sum(self.accuracy[corruption][s] for s in self.severities) / len(self.severities)

    def severity_mean(self, severity: int) -> float:
        return sum(self.accuracy[c][severity] for c in self.corruptions) / len(self.corruptions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "seed": self.seed,
            "clean_accuracy": self.clean_accuracy,
            "corruptions": list(self.corruptions),
            "severities": list(self.severities),
            "accuracy": {c: {str(s): a for s, a in row.items()} for c, row in self.accuracy.items()},
            "mean_accuracy": self.mean_accuracy,
            "relative_accuracy": self.relative_accuracy,
            "corruption_mean": {c: self.corruption_mean(c) for c in self.corruptions},
            "severity_mean": {str(s): self.severity_mean(s) for s in self.severities},
            "errors": self.errors,
            "seconds": self.seconds,
            "device": self.device,
            "images_per_second": self.images_per_second,
            "reference": "Hendrycks & Dietterich 2019, CIFAR-10-C constants; frost texture procedural",
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CorruptionReport:
        return cls(
            n=int(data["n"]),
            seed=int(data["seed"]),
            clean_accuracy=float(data["clean_accuracy"]),
            corruptions=list(data["corruptions"]),
            severities=[int(s) for s in data["severities"]],
            accuracy={c: {int(s): float(a) for s, a in row.items()} for c, row in data["accuracy"].items()},
            seconds=float(data.get("seconds", 0.0)),
            device=str(data.get("device", "cpu")),
            images_per_second=float(data.get("images_per_second", 0.0)),
            errors=dict(data.get("errors") or {}),
        )


def corruption_errors(report: CorruptionReport, baseline: CorruptionReport, baseline_name: str) -> dict[str, Any]:
    """CE, mCE, relative CE and relative mCE of ``report`` against ``baseline`` (same pairs).

    A corruption whose baseline errors sum to zero (or, for the relative CE, whose
    baseline loses nothing to it) has no CE: None, and it is left out of the mean.
    """
    missing = [(c, s) for c in report.corruptions for s in report.severities if s not in baseline.accuracy.get(c, {})]
    if missing:
        raise ValueError(f"baseline {baseline_name} was not evaluated on {missing[0][0]} severity {missing[0][1]}")
    ce: dict[str, float | None] = {}
    relative: dict[str, float | None] = {}
    for c in report.corruptions:
        errors = [1 - report.accuracy[c][s] for s in report.severities]
        base = [1 - baseline.accuracy[c][s] for s in report.severities]
        ce[c] = sum(errors) / sum(base) if sum(base) > 0 else None
        lost = sum(e - (1 - report.clean_accuracy) for e in errors)
        base_lost = sum(e - (1 - baseline.clean_accuracy) for e in base)
        relative[c] = lost / base_lost if base_lost > 0 else None

    return {
        "baseline": baseline_name,
        "ce": ce,
        "mce": _mean_defined(ce),
        "relative_ce": relative,
        "relative_mce": _mean_defined(relative),
        "definition": "CE_c = sum_s E(model, c, s) / sum_s E(baseline, c, s); mCE = mean over corruptions; "
        "relative CE subtracts each model's clean error (Hendrycks & Dietterich 2019)",
    }


def _mean_defined(values: dict[str, float | None]) -> float | None:
    """The mean of the values that are not None (None when none is)."""
    defined = [v for v in values.values() if v is not None]
    return sum(defined) / len(defined) if defined else None


def _resolve_device(model: nn.Module, device: torch.device | str | None) -> torch.device:
    if device not in (None, "auto"):
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _count_correct(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    device: torch.device,
    name: str | None,
    severity: int,
    seed: int,
    step: Callable[[], None],
) -> int:
    """Correct predictions on ``x`` corrupted by ``name`` at ``severity`` (None: clean)."""
    generator = corruption_generator(seed, name, device) if name else None
    correct = 0
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size].to(device, non_blocking=True)
        if name:
            xb = corrupt(xb, name, severity, generator=generator)
        if device.type == "cuda":
            xb = xb.contiguous(memory_format=torch.channels_last)
        correct += int((model(xb).argmax(1).cpu() == y[start : start + batch_size]).sum())
        step()
    return correct


def evaluate_corruptions(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    corruptions: str | Sequence[str] = "all",
    severities: str | Sequence[int] = SEVERITIES,
    *,
    seed: int = 0,
    batch_size: int = 256,
    device: torch.device | str | None = None,
    progress: Progress | None = None,
) -> CorruptionReport:
    """Accuracy of ``model`` on ``(x, y)`` under each corruption at each severity.

    ``x`` holds images in [0, 1] (the model normalises inside); ``corruptions`` is
    ``"all"``, names, or a comma-separated string; ``severities`` 1-5. Each batch is
    corrupted on ``device`` (default: CUDA when there is one, else the model's device);
    the randomness of a corruption depends only on ``seed``, the corruption and the
    batch size (the same draws at every severity). ``progress(done, total, description)`` is called per batch. The
    model is put back in its previous mode afterwards.
    """
    names = parse_corruptions(corruptions)
    levels = parse_severities(severities) if isinstance(severities, str) else parse_severities(list(severities))
    if x.dim() != 4 or len(x) != len(y) or len(x) == 0:
        raise ValueError(f"x must be a non-empty (N, C, H, W) batch with one label each, got {tuple(x.shape)}")
    if x.min() < 0 or x.max() > 1:
        raise ValueError("images must lie in [0, 1]; the model should carry its own normalisation")
    x, y = x.detach().float().cpu(), y.detach().long().cpu()
    device = _resolve_device(model, device)
    if device.type == "cuda":
        x = x.pin_memory()
    batches = -(-len(x) // batch_size)
    budget = Budget(progress, batches * (1 + len(names) * len(levels)))
    was_training = model.training
    model.to(device).eval()
    started = time.perf_counter()
    accuracy: dict[str, dict[int, float]] = {}
    try:
        with torch.no_grad():
            clean = _count_correct(model, x, y, batch_size, device, None, 0, seed, partial(budget.step, "clean"))
            for name in names:
                accuracy[name] = {}
                for severity in levels:
                    step = partial(budget.step, f"{name} severity {severity}")
                    hits = _count_correct(model, x, y, batch_size, device, name, severity, seed, step)
                    accuracy[name][severity] = hits / len(x)
    finally:
        model.train(was_training)
    seconds = time.perf_counter() - started
    return CorruptionReport(
        n=len(x),
        seed=seed,
        clean_accuracy=clean / len(x),
        corruptions=names,
        severities=levels,
        accuracy=accuracy,
        seconds=seconds,
        device=str(device),
        images_per_second=len(x) * len(names) * len(levels) / max(seconds, 1e-9),
    )


def parse_subset(items: str | Sequence[str]) -> list[tuple[str, int]]:
    """``"gaussian_noise:3,fog:3"`` (or a list of such) into (corruption, severity) pairs."""
    texts = [t.strip() for t in (items.split(",") if isinstance(items, str) else items) if str(t).strip()]
    if not texts:
        raise CorruptionConfigError("the corruption subset is empty; give pairs like gaussian_noise:3")
    pairs = []
    for text in texts:
        name, sep, level = str(text).partition(":")
        if not sep:
            raise CorruptionConfigError(f"corruption subset entry {text!r} must read NAME:SEVERITY, e.g. fog:3")
        pairs.append((resolve_corruption(name), parse_severities(level)[0]))
    return pairs


def subset_accuracies(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    subset: str | Sequence[str] = SEARCH_SUBSET,
    *,
    seed: int = 0,
    batch_size: int = 256,
    device: torch.device | str | None = None,
) -> dict[tuple[str, int], float]:
    """Accuracy under each (corruption, severity) pair of ``subset`` (default :data:`SEARCH_SUBSET`)."""
    pairs = parse_subset(subset)
    device = _resolve_device(model, device)
    was_training = model.training
    model.to(device).eval()
    x, y = x.detach().float().cpu(), y.detach().long().cpu()
    try:
        with torch.no_grad():
            return {
                (name, severity): _count_correct(model, x, y, batch_size, device, name, severity, seed, lambda: None)
                / len(x)
                for name, severity in pairs
            }
    finally:
        model.train(was_training)


def corruption_accuracy(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    subset: str | Sequence[str] = SEARCH_SUBSET,
    *,
    seed: int = 0,
    batch_size: int = 256,
    device: torch.device | str | None = None,
) -> float:
    """Mean accuracy over a fixed subset of (corruption, severity) pairs: the cheap objective
    a search can trade against clean and adversarial accuracy (default :data:`SEARCH_SUBSET`)."""
    accuracies = subset_accuracies(model, x, y, subset, seed=seed, batch_size=batch_size, device=device)
    return sum(accuracies.values()) / len(accuracies)
