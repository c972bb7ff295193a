"""The attacks of one evaluation: eps-bounded ones swept norm by norm, unbounded ones once.

Every step works on an :class:`EvaluationSetup` (the model, the points and the
settings one evaluation shares) and returns report records:

- :func:`attack_points`: one attack at one eps on the points still robust;
- :func:`points_to_attack`: which points those are (the sweep's reuse of smaller eps);
- :func:`sweep_group`: one norm group over its eps values, with the per-example worst case;
- :func:`run_unbounded`: a minimum-norm attack on every clean-correct point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from attacks.builders import TorchAttack, build_attack
from attacks.devices import timed, to_device
from attacks.early_stop import EARLY_STOP_ATTACKS, is_adversarial, random_start_delta, run_early_stop_attack
from attacks.eps import NOISE_GROUP, EpsSweep
from attacks.progress import Budget
from attacks.registry import AttackSpec
from attacks.results import AdversarialExamples, AttackResult, WorstCase

__all__ = [
    "EvaluationSetup",
    "attack_points",
    "group_of",
    "points_to_attack",
    "radii_of",
    "run_unbounded",
    "sweep_group",
]

# Slack for floating-point error when checking that an adversarial example is inside its ball.
BALL_TOLERANCE = 1e-5


@dataclass
class EvaluationSetup:
    """The model, the points and the settings every step of one evaluation shares.

    ``x`` (N, ...) images in [0, 1] and ``y`` (N,) labels stay on the CPU; batches move
    to ``device``. ``correct`` marks the points the model classifies correctly, the
    only ones attacked. ``targets`` (N,): one wrong class per point in a targeted run.
    """

    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    clean_pred: torch.Tensor
    correct: torch.Tensor
    targets: torch.Tensor | None
    n_classes: int
    device: torch.device
    batch_size: int
    seed: int
    keep_examples: int
    budget: Budget

    @property
    def n(self) -> int:
        return len(self.x)

    @property
    def n_correct(self) -> int:
        return int(self.correct.sum())

    @property
    def batches_per_attack(self) -> int:
        """Batches of one attack at one eps on every clean-correct point (the progress unit)."""
        return math.ceil(self.n_correct / self.batch_size) if self.n_correct else 0

    def skipped_batches(self, attacked: int) -> int:
        """Batches of the progress unit left undone when only ``attacked`` points were attacked."""
        return self.batches_per_attack - math.ceil(attacked / self.batch_size)


def group_of(spec: AttackSpec) -> str:
    """The sweep group of an attack: its norm, or ``gaussian`` for the noise baseline."""
    return NOISE_GROUP if spec.info.kind == "noise" else spec.norm


def radii_of(spec: AttackSpec, sweep: EpsSweep) -> tuple[float, ...]:
    """The eps values ``spec`` runs at: its own fixed eps, else its group's radii."""
    return (spec.eps,) if spec.eps is not None else sweep.radii(group_of(spec))


# --------------------------------------------------------------------------- one attack at one eps


def attack_points(
    setup: EvaluationSetup, spec: AttackSpec, eps: float, todo: torch.Tensor, description: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attack the points ``todo`` (indices) with ``spec`` at ``eps``, batch by batch.

    Returns, over ``todo``, the mask of the points broken (adversarial, inside the
    ball and inside [0, 1]) and the adversarial images. Each batch is one step of
    progress.
    """
    broken = torch.zeros(len(todo), dtype=torch.bool)
    adv_all = setup.x[todo].clone()
    if len(todo) == 0:
        return broken, adv_all
    torch.manual_seed(setup.seed)
    attack, starts = _prepare_attack(setup, spec, eps, todo)
    for first in range(0, len(todo), setup.batch_size):
        idx = todo[first : first + setup.batch_size]
        xb, yb = to_device(setup.x[idx], setup.device), setup.y[idx].to(setup.device)
        tb = setup.targets[idx].to(setup.device) if setup.targets is not None else None
        if attack is None:
            start = None if starts is None else starts[first : first + len(idx)]
            adv = run_early_stop_attack(spec, setup.model, xb, yb, tb if spec.targeted else None, eps, start=start)
        else:
            adv = attack(xb, tb if spec.targeted and tb is not None else yb)
        broken[first : first + len(idx)] = _breaks(setup.model, spec, eps, xb, adv, yb, tb).cpu()
        adv_all[first : first + len(idx)] = adv.detach().float().cpu()
        setup.budget.step(description)
    return broken, adv_all


def _prepare_attack(
    setup: EvaluationSetup, spec: AttackSpec, eps: float, todo: torch.Tensor
) -> tuple[TorchAttack | None, torch.Tensor | None]:
    """The torchattacks object (``None`` for the early-stop attacks) and the random starts."""
    if spec.name not in EARLY_STOP_ATTACKS:
        return build_attack(spec, setup.model, eps, n_classes=setup.n_classes, seed=setup.seed), None
    if spec.option("random_start", False):
        # One random start per example for the whole set, drawn as torchattacks would draw
        # it for one batch of all points: an example gets the same start whether or not
        # the points around it were dropped, so the sweep is comparable point by point.
        return None, random_start_delta(setup.x, spec.norm, eps)[todo]
    return None, None


@torch.no_grad()
def _breaks(
    model: nn.Module,
    spec: AttackSpec,
    eps: float,
    x: torch.Tensor,
    adv: torch.Tensor,
    y: torch.Tensor,
    targets: torch.Tensor | None,
) -> torch.Tensor:
    """Which of ``adv`` are adversarial and within the threat model (the ball, [0, 1])."""
    # In a targeted run every attack is judged by whether it reached the target.
    hit = is_adversarial(model(adv), y, targets)
    delta = (adv - x).flatten(1)
    if spec.info.kind != "noise" and math.isfinite(eps):
        size = delta.abs().amax(1) if spec.norm == "Linf" else delta.norm(p=2, dim=1)
        hit &= size <= eps + BALL_TOLERANCE
    hit &= (adv >= -BALL_TOLERANCE).flatten(1).all(1) & (adv <= 1 + BALL_TOLERANCE).flatten(1).all(1)
    return hit


def _timed_attack(
    setup: EvaluationSetup, spec: AttackSpec, eps: float, todo: torch.Tensor, description: str
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """:func:`attack_points` with its wall time, then the progress of the skipped batches."""
    (hit, adv), seconds = timed(setup.device, lambda: attack_points(setup, spec, eps, todo, description))
    setup.budget.step(description, setup.skipped_batches(len(todo)))
    return hit, adv, seconds


def _stats(values: torch.Tensor) -> tuple[float | None, float | None]:
    if values.numel() == 0:
        return None, None
    return float(values.mean()), float(values.median())


# --------------------------------------------------------------------------- one norm group over its eps


@dataclass
class _AttackTally:
    """One attack's breaks over a group's sweep: which points, with what perturbation sizes."""

    broken: torch.Tensor
    l2: torch.Tensor
    linf: torch.Tensor

    @classmethod
    def empty(cls, n: int) -> _AttackTally:
        return cls(torch.zeros(n, dtype=torch.bool), torch.full((n,), math.nan), torch.full((n,), math.nan))


@dataclass
class _GroupTally:
    """Every attack of a group together: ``ensemble`` marks the points broken by some attack
    at this or a smaller eps, ``first_breaker`` the attack that broke each first, ``kept``
    the adversarial images kept for grids."""

    ensemble: torch.Tensor
    first_breaker: dict[int, str] = field(default_factory=dict)
    kept: dict[int, torch.Tensor] = field(default_factory=dict)


def points_to_attack(
    correct: torch.Tensor, spec: AttackSpec, eps: float, ensemble: torch.Tensor, broken: torch.Tensor
) -> torch.Tensor:
    """The points ``spec`` must attack at ``eps``: the sweep's reuse of smaller eps.

    An example broken at eps_i stays broken at every eps_j > eps_i: the same
    perturbation is still inside the larger ball. So eps attacks only the points
    still robust at the previous eps: for a cascade (expensive) attack, those every
    attack of the group has failed on (``ensemble``: broken by any); for the others,
    those it has not broken itself (``broken``), so its own robust accuracy stays
    its own. eps = 0 needs no attack at all: a zero perturbation changes nothing.
    """
    if eps == 0:
        return torch.zeros(0, dtype=torch.long)
    if spec.info.cascade:
        return (correct & ~ensemble).nonzero().squeeze(1)
    return (correct & ~broken).nonzero().squeeze(1)


def sweep_group(
    setup: EvaluationSetup, group: str, specs: list[AttackSpec], sweep: EpsSweep
) -> tuple[list[AttackResult], list[WorstCase], list[AdversarialExamples]]:
    """Run the attacks of one norm group (cheapest first) at every eps, ascending.

    Returns a result per attack and eps, and per eps (the noise baseline aside) the
    per-example worst case over the group's attacks and the examples kept so far.
    """
    eps_values = sorted({e for s in specs for e in radii_of(s, sweep)})
    group_tally = _GroupTally(ensemble=torch.zeros(setup.n, dtype=torch.bool))
    tallies = [_AttackTally.empty(setup.n) for _ in specs]
    results: list[AttackResult] = []
    worst: list[WorstCase] = []
    examples: list[AdversarialExamples] = []
    for eps in eps_values:
        for spec, tally in zip(specs, tallies, strict=True):
            if eps in radii_of(spec, sweep):
                results.append(_sweep_step(setup, group, spec, eps, tally, group_tally))
        if group == NOISE_GROUP:
            continue
        worst.append(_worst_case(setup, group, eps, group_tally))
        kept = _kept_examples(setup, group, eps, group_tally)
        if kept is not None:
            examples.append(kept)
    return results, worst, examples


def _sweep_step(
    setup: EvaluationSetup, group: str, spec: AttackSpec, eps: float, tally: _AttackTally, group_tally: _GroupTally
) -> AttackResult:
    """``spec`` at ``eps`` on the points :func:`points_to_attack` leaves; the tallies updated."""
    description = f"{spec.label} {spec.norm if group != NOISE_GROUP else 'std'} eps={eps:.4g}"
    todo = points_to_attack(setup.correct, spec, eps, group_tally.ensemble, tally.broken)
    before = group_tally.ensemble.clone()
    hit, adv, seconds = _timed_attack(setup, spec, eps, todo, description)
    _record_breaks(setup, group, spec, todo[hit], adv[hit], tally, group_tally)
    if spec.info.cascade:
        newly = group_tally.ensemble & ~before
        n_broken, broken = int(newly.sum()), newly
        still_robust = setup.correct & ~group_tally.ensemble
        success = n_broken / len(todo) if len(todo) else 0.0
    else:
        n_broken, broken = int(tally.broken.sum()), tally.broken
        still_robust = setup.correct & ~tally.broken
        success = n_broken / setup.n_correct if setup.n_correct else 0.0
    mean_l2, median_l2 = _stats(tally.l2[broken & ~tally.l2.isnan()])
    mean_linf, median_linf = _stats(tally.linf[broken & ~tally.linf.isnan()])
    return AttackResult(
        attack=spec.label,
        name=spec.name,
        norm=group,
        eps=eps,
        robust_accuracy=float(still_robust.sum()) / setup.n,
        success_rate=success,
        n_attacked=len(todo),
        n_broken=n_broken,
        mean_l2=mean_l2,
        median_l2=median_l2,
        mean_linf=mean_linf,
        median_linf=median_linf,
        seconds=seconds,
        seconds_per_example=seconds / len(todo) if len(todo) else 0.0,
        scope="cascade" if spec.info.cascade else "all",
        kind=spec.info.kind,
        robust=still_robust,
    )


def _record_breaks(
    setup: EvaluationSetup,
    group: str,
    spec: AttackSpec,
    new: torch.Tensor,
    adv: torch.Tensor,
    tally: _AttackTally,
    group_tally: _GroupTally,
) -> None:
    """Mark the points ``new`` as broken by ``spec`` with the adversarial images ``adv``."""
    if len(new) == 0:
        return
    delta = (adv - setup.x[new]).flatten(1)
    tally.l2[new] = delta.norm(p=2, dim=1)
    tally.linf[new] = delta.abs().amax(1)
    tally.broken[new] = True
    if group == NOISE_GROUP:  # noise is a baseline: it takes no part in the worst case
        return
    group_tally.ensemble[new] = True
    for i, image in zip(new.tolist(), adv, strict=True):
        group_tally.first_breaker.setdefault(i, spec.label)
        if i not in group_tally.kept and len(group_tally.kept) < setup.keep_examples:
            group_tally.kept[i] = image


def _worst_case(setup: EvaluationSetup, group: str, eps: float, group_tally: _GroupTally) -> WorstCase:
    """The points no attack of the group broke at ``eps`` or below, and who broke the rest first."""
    standing = setup.correct & ~group_tally.ensemble
    broken_by: dict[str, int] = {}
    for i in group_tally.ensemble.nonzero().squeeze(1).tolist():
        breaker = group_tally.first_breaker[i]
        broken_by[breaker] = broken_by.get(breaker, 0) + 1
    n_robust = int(standing.sum())
    return WorstCase(group, eps, float(standing.sum()) / setup.n, n_robust, broken_by, robust=standing)


def _kept_examples(
    setup: EvaluationSetup, group: str, eps: float, group_tally: _GroupTally
) -> AdversarialExamples | None:
    """The examples kept so far, each at the smallest eps that broke it, with their predictions."""
    if not group_tally.kept:
        return None
    index = torch.tensor(sorted(group_tally.kept))
    adv_kept = torch.stack([group_tally.kept[i] for i in index.tolist()])
    with torch.no_grad():
        adv_pred = setup.model(to_device(adv_kept, setup.device)).argmax(1).cpu()
    return AdversarialExamples(
        norm=group,
        eps=eps,
        index=index,
        clean=setup.x[index],
        adversarial=adv_kept,
        labels=setup.y[index],
        clean_pred=setup.clean_pred[index],
        adv_pred=adv_pred,
        attacks=[group_tally.first_breaker[i] for i in index.tolist()],
    )


# --------------------------------------------------------------------------- unbounded attacks


def run_unbounded(setup: EvaluationSetup, spec: AttackSpec) -> AttackResult:
    """A minimum-norm attack (CW, DeepFool) once on every clean-correct point.

    Its result has ``eps = inf``, or the attack's own L2 limit when it has one (then
    only the examples within the limit count as broken).
    """
    todo = setup.correct.nonzero().squeeze(1)
    hit, adv, seconds = _timed_attack(setup, spec, math.inf, todo, f"{spec.label} unbounded")
    delta = (adv[hit] - setup.x[todo[hit]]).flatten(1)
    l2, linf = delta.norm(p=2, dim=1), delta.abs().amax(1)
    limit = spec.eps if spec.eps is not None else math.inf
    if math.isfinite(limit):
        inside = l2 <= limit + BALL_TOLERANCE
        hit = hit.clone()
        hit[hit.clone()] = inside
        l2, linf = l2[inside], linf[inside]
    n_broken = int(hit.sum())
    broken = torch.zeros(setup.n, dtype=torch.bool)
    broken[todo[hit]] = True
    mean_l2, median_l2 = _stats(l2)
    mean_linf, median_linf = _stats(linf)
    return AttackResult(
        attack=spec.label,
        name=spec.name,
        norm=spec.norm,
        eps=limit,
        robust_accuracy=(setup.n_correct - n_broken) / setup.n,
        success_rate=n_broken / setup.n_correct if setup.n_correct else 0.0,
        n_attacked=len(todo),
        n_broken=n_broken,
        mean_l2=mean_l2,
        median_l2=median_l2,
        mean_linf=mean_linf,
        median_linf=median_linf,
        seconds=seconds,
        seconds_per_example=seconds / len(todo) if len(todo) else 0.0,
        scope="all",
        kind=spec.info.kind,
        robust=setup.correct & ~broken,
    )
