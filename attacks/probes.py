"""Small extra attacks the sanity checks need (Carlini et al. 2019, section 5).

On at most ``PROBE_POINTS`` clean-correct points, at the sweep eps where the worst
case is nearest half the clean accuracy: a single-step attack, the first iterative
attack of the run and the same with four times the steps; and the iterative attack
at a large eps (Linf 0.5, or L2 0.5 * sqrt(d)), at which every image can be turned
into plain grey, so accuracy must fall to chance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from attacks.devices import to_device
from attacks.early_stop import run_early_stop_attack
from attacks.registry import AttackSpec
from attacks.results import RobustnessReport

__all__ = ["LARGE_LINF_EPS", "PROBE_POINTS", "run_probes"]

PROBE_POINTS = 256
LARGE_LINF_EPS = 0.5
PROBE_ITERATIVE = ("pgd", "bim", "mifgsm", "pgdl2")


@dataclass(frozen=True)
class _ProbePoints:
    """The probes' points on the device, and the seed every probe starts from."""

    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    seed: int


def _probe(points: _ProbePoints, spec: AttackSpec, eps: float) -> tuple[dict[str, Any], torch.Tensor]:
    """``spec`` at ``eps`` on the probe points: its counts and its per-example outcome."""
    # Same seed for every probe: attacks with a random start start from the same point.
    torch.manual_seed(points.seed)
    adv = run_early_stop_attack(spec, points.model, points.x, points.y, None, eps)
    with torch.no_grad():
        robust = (points.model(adv).argmax(1) == points.y).cpu()
    n_robust = int(robust.sum())
    return {"attack": spec.label, "robust": n_robust / len(points.y), "n_robust": n_robust}, robust


def _probe_norm(specs: list[AttackSpec]) -> str | None:
    """Linf when some attack of the run is Linf, else L2; ``None`` when no attack can be probed."""
    norms = [s.norm for s in specs if s.info.kind in ("gradient", "black-box", "ensemble")]
    if not norms:
        return None
    return "Linf" if "Linf" in norms else "L2"


def _base_attack(specs: list[AttackSpec], norm: str) -> AttackSpec:
    """The run's first iterative attack of ``norm`` (PGD when none), its step settings only."""
    base = next((s for s in specs if s.name in PROBE_ITERATIVE and s.norm == norm), None)
    if base is None:
        base = AttackSpec("pgd" if norm == "Linf" else "pgdl2")
    options = {k: v for k, v in base.options.items() if k in ("alpha", "decay", "random_start")}
    return AttackSpec(base.name, steps=base.steps, options=options)


def _probe_eps(report: RobustnessReport, norm: str) -> float | None:
    """The sweep eps > 0 where the worst case is nearest half the clean accuracy (the smaller on ties)."""
    candidates = [w for w in report.worst_case if w.norm == norm and w.eps > 0]
    if not candidates:
        return None
    target = report.clean_accuracy / 2
    return min(candidates, key=lambda w: (abs(w.robust_accuracy - target), w.eps)).eps


def run_probes(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    correct: torch.Tensor,
    specs: list[AttackSpec],
    report: RobustnessReport,
    *,
    device: torch.device,
    seed: int,
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Run the probes after the sweep in ``report``.

    Returns the probes' description and counts (JSON-able), and each probe's
    per-example outcome on the same points, by role (``single_step``, ``iterative``,
    ``more_steps``, ``large_eps``): the checks compare them point by point.
    """
    norm = _probe_norm(specs)
    if norm is None:
        return {}, {}
    base = _base_attack(specs, norm)
    idx = correct.nonzero().squeeze(1)[:PROBE_POINTS]
    if len(idx) == 0:
        return {}, {}
    points = _ProbePoints(model, to_device(x[idx], device), y[idx].to(device), seed)
    probes: dict[str, Any] = {"norm": norm, "n": len(idx), "attack": base.label}
    outcomes: dict[str, torch.Tensor] = {}
    probe_eps = _probe_eps(report, norm)
    if probe_eps is not None:
        probes["eps"] = probe_eps
        if norm == "Linf":
            single = AttackSpec("fgsm")
        else:  # one full-size L2 gradient step, no random start (fast gradient method)
            single = AttackSpec("pgdl2", steps=1, options={"alpha": probe_eps, "random_start": False})
        more = AttackSpec(base.name, steps=min((base.steps or 1) * 4, 1000), options=dict(base.options))
        for role, spec in (("single_step", single), ("iterative", base), ("more_steps", more)):
            probes[role], outcomes[role] = _probe(points, spec, probe_eps)
    large = LARGE_LINF_EPS if norm == "Linf" else LARGE_LINF_EPS * math.sqrt(x[0].numel())
    strong = AttackSpec(base.name, steps=max(base.steps or 1, 20), options=dict(base.options))
    counts, outcomes["large_eps"] = _probe(points, strong, large)
    probes["large_eps"] = {**counts, "eps": large}
    return probes, outcomes
