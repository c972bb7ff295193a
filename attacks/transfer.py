"""Transferability of adversarial examples between models.

Adversarial examples crafted on a source model are fed to every target model
(Papernot et al. 2016, "Transferability in Machine Learning"; Tramer et al. 2017,
"The Space of Transferable Adversarial Examples"). The diagonal is the white-box
robust accuracy; off the diagonal, high accuracy means poor transfer.

The examples are crafted with torchattacks as is (every step on every point, no
early stop): stopping right at the decision boundary gives low-confidence examples
that transfer badly.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from attacks.builders import build_attack
from attacks.eps import validate_eps
from attacks.errors import AttackConfigError
from attacks.registry import AttackSpec, parse_attacks

__all__ = ["transfer_matrix"]


def _device_of(model: nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


@torch.no_grad()
def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    device = _device_of(model)
    correct = 0
    for i in range(0, len(x), batch_size):
        correct += int((model(x[i : i + batch_size].to(device)).argmax(1).cpu() == y[i : i + batch_size]).sum())
    return correct / len(x)


def transfer_matrix(
    models: dict[str, nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    attack: AttackSpec | str,
    eps: float,
    *,
    batch_size: int = 256,
    seed: int = 0,
) -> dict[str, Any]:
    """Accuracy of every target model on adversarial examples crafted on every source model.

    Returns ``{"sources", "targets", "attack", "eps", "n", "clean_accuracy": {target: acc},
    "robust_accuracy": {source: {target: acc}}}``. Models are used in eval mode on
    their own device and put back in their previous mode.
    """
    if not models:
        raise ValueError("transfer_matrix needs at least one model")
    spec = parse_attacks([attack])[0] if not isinstance(attack, AttackSpec) else attack
    validate_eps(float(eps), spec.norm)
    if spec.targeted:
        raise AttackConfigError("transfer_matrix measures untargeted transfer; pass an untargeted attack")
    x, y = x.detach().float().cpu(), y.detach().long().cpu()
    modes = {name: m.training for name, m in models.items()}
    for m in models.values():
        m.eval()
    try:
        with torch.random.fork_rng():
            n_classes = int(next(iter(models.values()))(x[:1].to(_device_of(next(iter(models.values()))))).shape[1])
            clean = {name: _accuracy(m, x, y, batch_size) for name, m in models.items()}
            matrix: dict[str, dict[str, float]] = {}
            for source_name, source in models.items():
                torch.manual_seed(seed)
                atk = build_attack(spec, source, eps, n_classes=n_classes, seed=seed)
                device = _device_of(source)
                adv = torch.cat(
                    [
                        atk(x[i : i + batch_size].to(device), y[i : i + batch_size].to(device)).cpu()
                        for i in range(0, len(x), batch_size)
                    ]
                )
                matrix[source_name] = {t: _accuracy(target, adv, y, batch_size) for t, target in models.items()}
    finally:
        for name, m in models.items():
            m.train(modes[name])
    return {
        "sources": list(models),
        "targets": list(models),
        "attack": spec.to_dict(),
        "eps": float(eps),
        "n": len(x),
        "clean_accuracy": clean,
        "robust_accuracy": matrix,
    }
