"""Building an :class:`~attacks.registry.AttackSpec` into a torchattacks object.

One small builder per attack, looked up by name in ``BUILDERS``. Models take images
in [0, 1] and carry their own normalisation, so no built attack has a normalisation
set. torchattacks loads only when an attack is built: it is slow to import.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch
import torch.nn as nn

from attacks.errors import AttackConfigError
from attacks.registry import AttackSpec

__all__ = ["BUILDERS", "TorchAttack", "autoattack_configuration", "build_attack", "build_autoattack", "default_alpha"]


class TorchAttack(Protocol):
    """What the platform uses of a torchattacks attack (torchattacks ships no types)."""

    def __call__(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor: ...

    def set_mode_targeted_by_label(self, quiet: bool = False) -> None: ...


Builder = Callable[[AttackSpec, nn.Module, float, int, int], TorchAttack]
"""``builder(spec, model, eps, n_classes, seed)``: the attack at radius ``eps``."""


def default_alpha(spec: AttackSpec, eps: float) -> float:
    """Step size of the iterative gradient attacks.

    An explicit ``alpha`` option wins; otherwise 2.5 * eps / steps, the rule of
    Madry et al. 2018 that lets a walk of ``steps`` steps cross the ball and back.
    """
    alpha = spec.option("alpha")
    if alpha is not None:
        return float(alpha)
    return 2.5 * eps / max(spec.steps or 1, 1)


def _steps(spec: AttackSpec) -> int:
    if spec.steps is None:  # pragma: no cover - the registry gives every iterative attack steps
        raise AttackConfigError(f"attack {spec.name!r} needs steps")
    return spec.steps


def _gaussian(spec: AttackSpec, model: nn.Module, eps: float, n_classes: int, seed: int) -> TorchAttack:
    import torchattacks

    attack: TorchAttack = torchattacks.GN(model, std=eps)
    return attack


def _fgsm(spec: AttackSpec, model: nn.Module, eps: float, n_classes: int, seed: int) -> TorchAttack:
    import torchattacks

    attack: TorchAttack = torchattacks.FGSM(model, eps=eps)
    return attack


def _bim(spec: AttackSpec, model: nn.Module, eps: float, n_classes: int, seed: int) -> TorchAttack:
    import torchattacks

    attack: TorchAttack = torchattacks.BIM(model, eps=eps, alpha=default_alpha(spec, eps), steps=spec.steps)
    return attack


def _pgd(spec: AttackSpec, model: nn.Module, eps: float, n_classes: int, seed: int) -> TorchAttack:
    import torchattacks

    attack_class = torchattacks.PGD if spec.name == "pgd" else torchattacks.PGDL2
    attack: TorchAttack = attack_class(
        model,
        eps=eps,
        alpha=default_alpha(spec, eps),
        steps=spec.steps,
        random_start=bool(spec.options["random_start"]),
    )
    return attack


def _mifgsm(spec: AttackSpec, model: nn.Module, eps: float, n_classes: int, seed: int) -> TorchAttack:
    import torchattacks

    attack: TorchAttack = torchattacks.MIFGSM(
        model, eps=eps, alpha=default_alpha(spec, eps), steps=spec.steps, decay=float(spec.options["decay"])
    )
    return attack


def _cw(spec: AttackSpec, model: nn.Module, eps: float, n_classes: int, seed: int) -> TorchAttack:
    import torchattacks

    o = spec.options
    attack: TorchAttack = torchattacks.CW(
        model, c=float(o["c"]), kappa=float(o["kappa"]), steps=spec.steps, lr=float(o["lr"])
    )
    return attack


def _deepfool(spec: AttackSpec, model: nn.Module, eps: float, n_classes: int, seed: int) -> TorchAttack:
    from attacks.deepfool import DeepFool

    attack: TorchAttack = DeepFool(model, steps=spec.steps, overshoot=float(spec.options["overshoot"]))
    return attack


def _square(spec: AttackSpec, model: nn.Module, eps: float, n_classes: int, seed: int) -> TorchAttack:
    import torchattacks

    o = spec.options
    attack: TorchAttack = torchattacks.Square(
        model,
        norm=spec.norm,
        eps=eps,
        n_queries=int(o["queries"]),
        n_restarts=spec.restarts,
        p_init=float(o["p_init"]),
        loss=o["loss"],
        seed=seed,
    )
    return attack


def _apgd(spec: AttackSpec, model: nn.Module, eps: float, n_classes: int, seed: int) -> TorchAttack:
    import torchattacks

    common = {"norm": spec.norm, "eps": eps, "steps": spec.steps, "n_restarts": spec.restarts, "seed": seed}
    rho = float(spec.options["rho"])
    attack: TorchAttack = (
        torchattacks.APGD(model, **common, loss=spec.options["loss"], rho=rho)
        if spec.name == "apgd"
        else torchattacks.APGDT(model, **common, rho=rho, n_classes=n_classes)
    )
    return attack


def _fab(spec: AttackSpec, model: nn.Module, eps: float, n_classes: int, seed: int) -> TorchAttack:
    import torchattacks

    o = spec.options
    attack: TorchAttack = torchattacks.FAB(
        model,
        norm=spec.norm,
        eps=eps,
        steps=spec.steps,
        n_restarts=spec.restarts,
        alpha_max=float(o["alpha_max"]),
        eta=float(o["eta"]),
        beta=float(o["beta"]),
        seed=seed,
        multi_targeted=False,
        n_classes=n_classes,
    )
    return attack


def _autoattack(spec: AttackSpec, model: nn.Module, eps: float, n_classes: int, seed: int) -> TorchAttack:
    queries = int(spec.options["queries"])
    return build_autoattack(
        model, norm=spec.norm, eps=eps, n_classes=n_classes, seed=seed, steps=_steps(spec), queries=queries
    )


BUILDERS: dict[str, Builder] = {
    "gaussian": _gaussian,
    "fgsm": _fgsm,
    "bim": _bim,
    "pgd": _pgd,
    "pgdl2": _pgd,
    "mifgsm": _mifgsm,
    "cw": _cw,
    "deepfool": _deepfool,
    "square": _square,
    "apgd": _apgd,
    "apgd-t": _apgd,
    "fab": _fab,
    "autoattack": _autoattack,
}


def build_attack(
    spec: AttackSpec, model: nn.Module, eps: float | None = None, *, n_classes: int = 10, seed: int = 0
) -> TorchAttack:
    """Build the torchattacks object for ``spec`` at radius ``eps``.

    Targeted attacks are put in "targeted by label" mode: the caller passes the
    target classes in place of the labels. The returned object never has a
    normalisation set (models normalise inside).
    """
    radius = spec.eps if eps is None else eps
    if radius is None:
        if spec.info.kind != "min-norm":
            raise AttackConfigError(f"attack {spec.name!r} needs an eps")
        radius = float("inf")  # min-norm attacks take no radius
    builder = BUILDERS.get(spec.name)
    if builder is None:  # pragma: no cover - the registry and this table are kept in step
        raise AttackConfigError(f"attack {spec.name!r} has no builder")
    attack = builder(spec, model, radius, n_classes, seed)
    if spec.targeted:
        attack.set_mode_targeted_by_label(quiet=True)
    return attack


def build_autoattack(
    model: nn.Module, *, norm: str, eps: float, n_classes: int, seed: int = 0, steps: int = 100, queries: int = 5000
) -> TorchAttack:
    """Standard AutoAttack (Croce & Hein 2020) with the original iteration counts.

    torchattacks' ``AutoAttack(version="standard")`` builds APGD-CE, APGD-T, FAB-T and
    Square, but with torchattacks' default of 10 steps for the three gradient
    attacks; the original runs 100. We build it and raise ``steps`` on each
    sub-attack, so what runs is APGD-CE-100, APGD-T-100 (9 target classes),
    FAB-T-100 (9 target classes) and Square-5000.
    """
    import torchattacks

    attack = torchattacks.AutoAttack(model, norm=norm, eps=eps, version="standard", n_classes=n_classes, seed=seed)
    for sub in attack._autoattack.attacks:
        if isinstance(sub, torchattacks.Square):
            sub.n_queries = queries
        else:
            sub.steps = steps
    built: TorchAttack = attack
    return built


def autoattack_configuration(attack: Any) -> list[dict[str, Any]]:
    """The sub-attacks of a built AutoAttack with their iteration budgets (for reports and tests).

    ``attack`` is torchattacks' ``AutoAttack``; its sub-attacks are read from its internals.
    """
    rows = []
    for sub in attack._autoattack.attacks:
        row = {"attack": type(sub).__name__, "norm": sub.norm, "eps": sub.eps}
        if hasattr(sub, "n_queries"):
            row["queries"] = sub.n_queries
        else:
            row["steps"] = sub.steps
        if getattr(sub, "n_target_classes", None) is not None and type(sub).__name__ != "APGD":
            row["target_classes"] = sub.n_target_classes
        rows.append(row)
    return rows
