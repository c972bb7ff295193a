"""Robustness evaluation engine: an eps sweep over many attacks that never redoes work.

The naive evaluation runs every attack at every eps on every point. Most of that
work cannot change the answer, and the engine skips it without weakening any
attack (Carlini et al. 2019 ask for the strongest evaluation, so the engine may
only ever be *stronger* than the naive loop):

1. **eps-sweep reuse.** An example broken at eps_i stays broken at every
   eps_j > eps_i: the same perturbation is still inside the larger ball. Each
   eps is attacked only on the points still robust at the previous one, and
   eps = 0 needs no attack at all (:func:`attacks.sweep.points_to_attack`).
2. **Per-example early stop.** FGSM, BIM, PGD (Linf, L2) and MI-FGSM run in a
   batched loop that drops an example from the batch as soon as it is
   misclassified, instead of walking it on for the remaining steps (and maybe
   walking it back to a correct prediction, which the plain torchattacks loop
   does). With the same random start the loop follows torchattacks' steps
   exactly, so it breaks a superset of the points (tested; :mod:`attacks.early_stop`).
3. **Cheap first, expensive on what stands.** Attacks run cheapest first; the
   expensive ones (APGD, APGD-T, FAB, Square, AutoAttack) run only on the points
   every earlier attack failed on, as AutoAttack itself does.
4. **Per-example worst case** over all attacks of a norm is the number to report.

Everything is batched; on a GPU the model and inputs use channels_last.
:func:`evaluate` is the one door; the steps live in :mod:`attacks.sweep` and
:mod:`attacks.probes`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn

from attacks.checks import run_checks
from attacks.devices import predict, resolve_device, to_device
from attacks.early_stop import EARLY_STOP_ATTACKS, iterative_attack
from attacks.eps import NOISE_GROUP, EpsInput, EpsSweep, parse_eps_sweep
from attacks.errors import AttackConfigError
from attacks.probes import run_probes
from attacks.progress import Budget, Progress
from attacks.registry import AttackSpec, parse_attacks
from attacks.results import AdversarialExamples, AttackResult, RobustnessReport, WorstCase
from attacks.sweep import EvaluationSetup, group_of, radii_of, run_unbounded, sweep_group

__all__ = [
    "AdversarialExamples",
    "AttackResult",
    "RobustnessReport",
    "WorstCase",
    "evaluate",
    "iterative_attack",
]


def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attacks: Sequence[AttackSpec | str] | str,
    eps: EpsInput,
    *,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    seed: int = 0,
    targeted: bool = False,
    keep_examples: int = 16,
    progress: Progress | None = None,
    checks: bool = True,
) -> RobustnessReport:
    """Robust accuracy of ``model`` on ``(x, y)`` under ``attacks`` at every ``eps``.

    ``x`` holds images in [0, 1] (the model normalises inside); ``attacks`` are
    specs or names (``"pgd,square"``); ``eps`` is an :class:`~attacks.eps.EpsSweep`,
    or what :func:`~attacks.eps.parse_eps_sweep` reads: a list (``"0,1/255,8/255"``
    also works) used for every norm, or ``{"Linf": [...], "L2": [...]}``. For the
    Gaussian baseline eps is the noise's standard deviation (the Linf list).
    ``targeted``: every targeted-capable attack aims at one random wrong class per
    example (fixed by ``seed``); a point then counts as broken only when it
    reaches its target. ``checks`` runs the Carlini et al. 2019 sanity checks
    (with small probes on at most 256 points) and stores them in the report.

    The model is moved to ``device`` (default: CUDA when there is one, else the
    model's device; channels_last on CUDA), put in eval mode for the evaluation
    and put back in its previous mode afterwards. The global RNG state is left as
    it was.
    """
    started = time.perf_counter()
    specs = parse_attacks(attacks if isinstance(attacks, str) else list(attacks), targeted=targeted or None)
    _check_points(x, y)
    sweep = parse_eps_sweep(eps)
    x, y = x.detach().float().cpu(), y.detach().long().cpu()
    run_device = resolve_device(model, device)
    was_training = model.training
    model.to(run_device)
    if run_device.type == "cuda" and x.dim() == 4:
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs omit it
    model.eval()
    try:
        with torch.random.fork_rng(devices=[run_device] if run_device.type == "cuda" else []):
            torch.manual_seed(seed)
            setup = _setup(model, x, y, run_device, batch_size, seed, targeted, keep_examples)
            report = _run_attacks(setup, specs, sweep, targeted, progress)
            if checks:
                report.probes, report.probe_robust = run_probes(
                    model, x, y, setup.correct, specs, report, device=run_device, seed=seed
                )
                report.checks = run_checks(report)
    finally:
        model.train(was_training)
    report.seconds = time.perf_counter() - started
    return report


def _check_points(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.dim() < 2 or len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {tuple(x.shape)} and {tuple(y.shape)}")
    if len(x) == 0:
        raise ValueError("no examples to evaluate")
    if x.min() < 0 or x.max() > 1:
        raise ValueError("images must lie in [0, 1]; the model should carry its own normalisation")


def _random_targets(y: torch.Tensor, n_classes: int, seed: int) -> torch.Tensor:
    """A random wrong class per example, fixed by ``seed`` (same target for every attack and eps)."""
    generator = torch.Generator().manual_seed(seed)
    offset = torch.randint(1, n_classes, y.shape, generator=generator)
    return (y + offset) % n_classes


def _setup(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    device: torch.device,
    batch_size: int,
    seed: int,
    targeted: bool,
    keep_examples: int,
) -> EvaluationSetup:
    """The clean predictions, the targets of a targeted run, and the settings, in one record."""
    with torch.no_grad():
        n_classes = int(model(to_device(x[:1], device)).shape[1])
    clean_pred = predict(model, x, batch_size, device)
    return EvaluationSetup(
        model=model,
        x=x,
        y=y,
        clean_pred=clean_pred,
        correct=clean_pred == y,
        targets=_random_targets(y, n_classes, seed) if targeted else None,
        n_classes=n_classes,
        device=device,
        batch_size=batch_size,
        seed=seed,
        keep_examples=keep_examples,
        budget=Budget(None, 0),
    )


def _check_l2_diameter(bounded: list[AttackSpec], sweep: EpsSweep, dim: int) -> None:
    """An L2 radius above sqrt(d), the diameter of [0, 1]^d, is a mistake: refuse it."""
    for spec in bounded:
        for value in radii_of(spec, sweep):
            if spec.norm == "L2" and value > math.sqrt(dim) + 1e-9:
                raise AttackConfigError(
                    f"L2 eps {value:g} exceeds the diameter of the image space ({math.sqrt(dim):.3g} for "
                    f"{dim} values in [0, 1])"
                )


def _run_attacks(
    setup: EvaluationSetup, specs: list[AttackSpec], sweep: EpsSweep, targeted: bool, progress: Progress | None
) -> RobustnessReport:
    """Every norm group's sweep in the order the attacks name them, then the unbounded attacks."""
    bounded = [s for s in specs if s.info.kind != "min-norm"]
    unbounded = [s for s in specs if s.info.kind == "min-norm"]
    needed = [group_of(s) for s in bounded] or ["Linf"]
    sweep.require(group for group in needed if group != NOISE_GROUP)
    _check_l2_diameter(bounded, sweep, setup.x[0].numel())
    units = sum(len(radii_of(s, sweep)) for s in bounded) + len(unbounded)
    setup.budget = Budget(progress, units * setup.batches_per_attack)
    groups = list(dict.fromkeys(group_of(s) for s in bounded))
    results: list[AttackResult] = []
    worst: list[WorstCase] = []
    examples: list[AdversarialExamples] = []
    for group in groups:
        group_results, group_worst, group_examples = sweep_group(
            setup, group, [s for s in bounded if group_of(s) == group], sweep
        )
        results += group_results
        worst += group_worst
        examples += group_examples
    results += [run_unbounded(setup, spec) for spec in unbounded]
    setup.budget.finish()
    return RobustnessReport(
        n=setup.n,
        n_classes=setup.n_classes,
        clean_accuracy=setup.n_correct / setup.n,
        targeted=targeted,
        threat_model=_threat_model(specs, sweep, groups, setup, targeted),
        results=results,
        worst_case=worst,
        examples=examples,
        device=str(setup.device),
    )


def _threat_model(
    specs: list[AttackSpec], sweep: EpsSweep, groups: list[str], setup: EvaluationSetup, targeted: bool
) -> dict[str, Any]:
    """What the evaluation assumed and ran, for the report (JSON-able)."""
    threat_model: dict[str, Any] = {
        "n": setup.n,
        "targeted": targeted,
        "target_selection": "one random wrong class per example (seeded)" if targeted else None,
        "eps": sweep.as_dict(groups),
        "attacks": [spec.to_dict() for spec in specs],
        "seed": setup.seed,
        "batch_size": setup.batch_size,
        "early_stop": list(EARLY_STOP_ATTACKS),
        "cascade": [s.label for s in specs if s.info.cascade],
    }
    for spec in specs:
        if spec.name == "autoattack":
            threat_model["autoattack"] = (
                f"standard version: APGD-CE, APGD-T (9 targets), FAB-T (9 targets) with {spec.steps} iterations "
                f"each and Square with {spec.options['queries']} queries"
            )
    return threat_model
