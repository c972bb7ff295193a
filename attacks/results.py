"""What a robustness evaluation reports.

:class:`AttackResult` per attack and eps, :class:`WorstCase` per norm and eps,
:class:`AdversarialExamples` kept for grids, :class:`CheckResult` per sanity check,
and :class:`RobustnessReport` holding them all, with its JSON form.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from typing import Any

import torch

__all__ = ["AdversarialExamples", "AttackResult", "CheckResult", "RobustnessReport", "WorstCase"]


@dataclass
class AttackResult:
    """One attack at one eps.

    ``scope="all"``: the attack was judged on every clean-correct point, so
    ``robust_accuracy`` is this attack's own robust accuracy. ``scope="cascade"``:
    an expensive attack that ran only on the points every cheaper attack failed
    on; its ``robust_accuracy`` is that of the ensemble up to and including it,
    and ``n_broken`` counts the points it broke that all cheaper attacks missed.
    ``success_rate`` is ``n_broken / n_attacked_total`` where the denominator is
    the clean-correct points (scope all) or the points it ran on (cascade).
    Perturbation norms are over the examples this attack broke. Unbounded
    (min-norm) attacks have ``eps = inf``. ``robust`` is the per-example outcome
    behind ``robust_accuracy`` (a bool per point, True where the point is classified
    correctly and still stands), for the sanity checks' paired tests; it is not
    written to JSON.
    """

    attack: str
    name: str
    norm: str
    eps: float
    robust_accuracy: float
    success_rate: float
    n_attacked: int
    n_broken: int
    mean_l2: float | None
    median_l2: float | None
    mean_linf: float | None
    median_linf: float | None
    seconds: float
    seconds_per_example: float
    scope: str = "all"
    kind: str = "gradient"
    robust: torch.Tensor | None = field(default=None, repr=False, compare=False)


@dataclass
class WorstCase:
    """Per-example worst case over every attack of one norm at one eps (``robust``: the
    per-example outcome, a bool per point, not written to JSON)."""

    norm: str
    eps: float
    robust_accuracy: float
    n_robust: int
    broken_by: dict[str, int] = field(default_factory=dict)
    robust: torch.Tensor | None = field(default=None, repr=False, compare=False)


@dataclass
class AdversarialExamples:
    """A few clean/adversarial pairs kept for grids and for saving as tensors."""

    norm: str
    eps: float
    index: torch.Tensor
    clean: torch.Tensor
    adversarial: torch.Tensor
    labels: torch.Tensor
    clean_pred: torch.Tensor
    adv_pred: torch.Tensor
    attacks: list[str]

    @property
    def key(self) -> str:
        return f"{self.norm}_eps{self.eps:.6g}"


@dataclass
class CheckResult:
    """One sanity check: its verdict (``None``: not applicable), a one-line detail, and the
    p-value and counts of the test the verdict came from (``None`` / empty when no test ran)."""

    name: str
    passed: bool | None
    detail: str
    p_value: float | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[self.passed]
        return f"[{verdict}] {self.name}: {self.detail}"


@dataclass
class RobustnessReport:
    """Everything an evaluation found; ``to_dict()`` is JSON-able (no tensors).

    ``probe_robust`` holds the per-example outcomes of the checks' probe attacks (a
    bool per probe point, by probe role: ``single_step``, ``iterative`` ...).
    """

    n: int
    n_classes: int
    clean_accuracy: float
    targeted: bool
    threat_model: dict[str, Any]
    results: list[AttackResult]
    worst_case: list[WorstCase]
    checks: list[CheckResult] = field(default_factory=list)
    examples: list[AdversarialExamples] = field(default_factory=list)
    probes: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    device: str = "cpu"
    probe_robust: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    def result(self, attack: str, eps: float, norm: str | None = None) -> AttackResult:
        """The result of ``attack`` (name or label) at ``eps`` (closest match within 1e-9)."""
        for r in self.results:
            if (attack in (r.attack, r.name)) and (norm is None or r.norm == norm) and _same(r.eps, eps):
                return r
        raise KeyError(f"no result for attack {attack!r} at eps {eps!r}")

    def worst(self, eps: float, norm: str = "Linf") -> WorstCase:
        for w in self.worst_case:
            if w.norm == norm and _same(w.eps, eps):
                return w
        raise KeyError(f"no worst case for {norm} eps {eps!r}")

    def robust_accuracy(self, eps: float, norm: str = "Linf") -> float:
        """The number to report: per-example worst case over all attacks."""
        return self.worst(eps, norm).robust_accuracy

    @property
    def failed_checks(self) -> list[CheckResult]:
        return [c for c in self.checks if c.passed is False]

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "n": self.n,
            "n_classes": self.n_classes,
            "clean_accuracy": self.clean_accuracy,
            "targeted": self.targeted,
            "threat_model": self.threat_model,
            "results": [_plain(r) for r in self.results],
            "worst_case": [_plain(w) for w in self.worst_case],
            "checks": [_plain(c) for c in self.checks],
            "probes": self.probes,
            "examples": [_example_dict(e) for e in self.examples],
            "seconds": self.seconds,
            "device": self.device,
        }
        return {key: _json_safe(value) for key, value in record.items()}

    def save_examples(self, path: str | os.PathLike[str]) -> str:
        """Write the kept examples as safetensors (``<norm>_eps<eps>/clean`` etc.)."""
        from safetensors.torch import save_file

        tensors, metadata = {}, {}
        for e in self.examples:
            for name in ("index", "clean", "adversarial", "labels", "clean_pred", "adv_pred"):
                tensors[f"{e.key}/{name}"] = getattr(e, name).detach().cpu().contiguous()
            metadata[f"{e.key}/attacks"] = ",".join(e.attacks)
        save_file(tensors, str(path), metadata=metadata)
        return str(path)


def _example_dict(examples: AdversarialExamples) -> dict[str, Any]:
    """The kept examples' indices, labels, predictions and breakers (the images stay out of JSON)."""
    return {
        "norm": examples.norm,
        "eps": examples.eps,
        "index": examples.index.tolist(),
        "labels": examples.labels.tolist(),
        "clean_pred": examples.clean_pred.tolist(),
        "adv_pred": examples.adv_pred.tolist(),
        "attacks": examples.attacks,
    }


def _json_safe(value: Any) -> Any:
    """``value`` with infinite floats as ``"inf"`` / ``"-inf"`` (JSON has no infinity) and string keys."""
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _plain(record: AttackResult | WorstCase | CheckResult) -> dict[str, Any]:
    """A dataclass's fields without its per-example tensors (their counts are in the record)."""
    return {
        f.name: getattr(record, f.name) for f in fields(record) if not isinstance(getattr(record, f.name), torch.Tensor)
    }


def _same(a: float, b: float) -> bool:
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= 1e-9
