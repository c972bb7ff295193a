"""FGSM, BIM, PGD (Linf, L2) and MI-FGSM in one batched loop with per-example early stop.

The loop follows torchattacks' updates and random start, drawn in the same order, so
with the same seed every example walks torchattacks' trajectory until it is
misclassified; there it stops and is kept instead of being walked on (and maybe back
to a correct prediction, which the plain torchattacks loop does).
"""

from __future__ import annotations

import functools

import torch
import torch.nn as nn
import torch.nn.functional as F

from attacks.builders import default_alpha
from attacks.errors import AttackConfigError
from attacks.registry import AttackSpec

__all__ = ["EARLY_STOP_ATTACKS", "is_adversarial", "iterative_attack", "random_start_delta", "run_early_stop_attack"]

# Attacks the engine runs in its own early-stopping loop (same updates as torchattacks).
EARLY_STOP_ATTACKS = ("fgsm", "bim", "pgd", "mifgsm", "pgdl2")


def is_adversarial(logits: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
    """Untargeted: the prediction is wrong. Targeted: the prediction is the target."""
    pred = logits.argmax(dim=1)
    return pred == targets if targets is not None else pred != labels


def _per_example(x: torch.Tensor) -> tuple[int, ...]:
    """The shape that broadcasts one value per example over a batch like ``x``."""
    return (-1, *([1] * (x.dim() - 1)))


def _project(adv: torch.Tensor, x: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    if norm == "Linf":
        delta = torch.clamp(adv - x, min=-eps, max=eps)
    else:
        delta = adv - x
        norms = delta.flatten(1).norm(p=2, dim=1)
        factor = torch.clamp(eps / norms, max=1.0)  # torchattacks PGDL2's rescaling
        delta = delta * factor.view(_per_example(x))
    return torch.clamp(x + delta, min=0, max=1)


def random_start_delta(x: torch.Tensor, norm: str, eps: float) -> torch.Tensor:
    """torchattacks' random start, drawn from the global RNG in the same order.

    Linf (PGD): uniform in [-eps, eps]^d. L2 (PGDL2): a Gaussian direction scaled to a
    radius uniform in [0, eps].
    """
    if norm == "Linf":
        uniform: torch.Tensor = torch.empty_like(x).uniform_(-eps, eps)
        return uniform
    delta: torch.Tensor = torch.empty_like(x).normal_()
    n: torch.Tensor = delta.flatten(1).norm(p=2, dim=1).view(_per_example(x))
    r: torch.Tensor = torch.zeros_like(n).uniform_(0, 1)
    return delta * r / n * eps


def _starting_point(
    x: torch.Tensor, norm: str, eps: float, random_start: bool, start: torch.Tensor | None
) -> torch.Tensor:
    if start is not None:
        return torch.clamp(x + start.to(x.device, x.dtype), 0, 1)
    if random_start:
        return torch.clamp(x + random_start_delta(x, norm, eps), 0, 1)
    return x.clone()


def _ascent_step(grad: torch.Tensor, norm: str, alpha: float) -> torch.Tensor:
    """Linf: a sign step; L2: a step along the L2-normalised gradient."""
    if norm == "Linf":
        return grad.sign() * alpha
    grad_norm: torch.Tensor = grad.flatten(1).norm(p=2, dim=1).view(_per_example(grad)) + 1e-10
    return grad * alpha / grad_norm


def _loss(logits: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
    """Cross-entropy summed per example: away from the label, or (negated) towards the target."""
    if targets is not None:
        return -F.cross_entropy(logits, targets, reduction="sum")
    return F.cross_entropy(logits, labels, reduction="sum")


def _gradient_of_active(
    model: nn.Module,
    adv: torch.Tensor,
    active: torch.Tensor,
    y: torch.Tensor,
    targets: torch.Tensor | None,
    early_stop: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward pass over the active examples: with ``early_stop``, drop those already
    adversarial; return the examples left active and the loss gradient at each of them."""
    xa = adv[active].clone().requires_grad_(True)
    logits = model(xa)
    ya = y[active]
    ta = targets[active] if targets is not None else None
    keep = ~is_adversarial(logits.detach(), ya, ta) if early_stop else None
    if keep is None or bool(keep.all()):
        return active, torch.autograd.grad(_loss(logits, ya, ta), xa)[0]
    active = active[keep]
    if len(active) == 0:
        return active, xa[:0]
    loss = _loss(logits[keep], ya[keep], ta[keep] if ta is not None else None)
    return active, torch.autograd.grad(loss, xa)[0][keep]


def iterative_attack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    norm: str,
    eps: float,
    alpha: float,
    steps: int,
    random_start: bool = False,
    decay: float | None = None,
    targets: torch.Tensor | None = None,
    early_stop: bool = True,
    start: torch.Tensor | None = None,
) -> torch.Tensor:
    """FGSM / BIM / PGD / MI-FGSM / PGD-L2 with per-example early stop.

    The update is torchattacks' (sign step for Linf, L2-normalised step for L2,
    momentum on the mean-|grad|-normalised gradient for MI-FGSM, the same random
    start drawn in the same order), so with the same seed every example follows
    torchattacks' trajectory until it is misclassified; there it stops and is
    kept, rather than being walked on. ``start`` is an explicit initial
    perturbation (it overrides ``random_start``). Loss: cross-entropy summed per example (the
    mean torchattacks uses only rescales the gradient, which the sign and the
    normalisations remove). ``x``: (N, ...) images in [0, 1]; returns the adversarial
    batch of the same shape (detached).
    """
    x = x.detach()
    adv = _starting_point(x, norm, eps, random_start, start)
    active = torch.arange(len(x), device=x.device)
    momentum = torch.zeros_like(x) if decay is not None else None
    for _ in range(steps):
        active, grad = _gradient_of_active(model, adv, active, y, targets, early_stop)
        if len(active) == 0:
            break
        if momentum is not None and decay is not None:
            grad = grad / torch.mean(torch.abs(grad), dim=tuple(range(1, x.dim())), keepdim=True)
            grad = grad + momentum[active] * decay
            momentum[active] = grad
        adv[active] = _project(adv[active] + _ascent_step(grad, norm, alpha), x[active], eps, norm).detach()
    return adv.detach()


def _steps(spec: AttackSpec) -> int:
    if spec.steps is None:  # pragma: no cover - the registry gives every iterative attack steps
        raise AttackConfigError(f"attack {spec.name!r} needs steps")
    return spec.steps


def run_early_stop_attack(
    spec: AttackSpec,
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    targets: torch.Tensor | None,
    eps: float,
    start: torch.Tensor | None = None,
) -> torch.Tensor:
    """``spec`` (one of ``EARLY_STOP_ATTACKS``) at ``eps`` on the batch, with its restarts.

    ``start``: the random start of each example (drawn once for the whole sweep);
    further restarts run only on the points the earlier tries left standing.
    """
    if spec.name == "fgsm":
        return iterative_attack(model, x, y, norm="Linf", eps=eps, alpha=eps, steps=1, targets=targets)
    random_start = bool(spec.option("random_start", False))
    walk = functools.partial(
        iterative_attack,
        model,
        norm=spec.norm,
        eps=eps,
        alpha=default_alpha(spec, eps),
        steps=_steps(spec),
        decay=float(spec.option("decay")) if spec.name == "mifgsm" else None,
    )
    adv = walk(x, y, random_start=random_start, targets=targets, start=start if random_start else None)
    for _ in range(spec.restarts - 1 if random_start else 0):
        with torch.no_grad():
            standing = ~is_adversarial(model(adv), y, targets)
        if not standing.any():
            break
        idx = standing.nonzero().squeeze(1)
        restart_targets = None if targets is None else targets[idx]
        adv[idx] = walk(x[idx], y[idx], random_start=True, targets=restart_targets)
    return adv
