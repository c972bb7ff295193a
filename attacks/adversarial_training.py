"""Adversarial examples for adversarial training.

- ``pgd``: PGD adversarial training (Madry et al. 2018, "Towards Deep Learning
  Models Resistant to Adversarial Attacks"): train on PGD examples with a random
  start; defaults 10 steps of 2.5 * eps / steps (the paper's CIFAR-10 recipe is
  7 steps of 2/255 at eps 8/255).
- ``fgsm-rs``: FGSM with a random start (Wong et al. 2020, "Fast is better than
  free"): one step of alpha = 1.25 * eps from a uniform start in the ball, which
  matches PGD-AT's robustness at the cost of one gradient. torchattacks ships it
  as ``FFGSM``.

Eps warm-up: at a large radius (MNIST's 0.3) PGD-AT of a small network can settle on
predicting every class equally often from the first steps and never leave it -- Madry et
al. 2018 (section 4) show robustness at large eps needs capacity. Growing eps linearly
from about 0 over the first part of training (:func:`warmup_eps`) lets the network learn
the clean task first; the interval-bound training of Gowal et al. 2018 ("On the
Effectiveness of Interval Bound Propagation") ramps eps the same way for the same reason.

Model mode: the trainer calls :func:`adversarial_batch` with the model in train
mode. The attack runs in eval mode, so batch-norm layers neither update their
running statistics on adversarial search points nor normalise with the statistics
of a half-built batch; dropout is off so the gradient is that of the model being
evaluated. The previous mode is restored before returning. Parameter gradients
are untouched (the attack differentiates with respect to the input only).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from attacks.eps import validate_eps
from attacks.errors import AttackConfigError

__all__ = ["ADVERSARIAL_TRAINING_METHODS", "adversarial_batch", "warmup_eps"]

ADVERSARIAL_TRAINING_METHODS = ("pgd", "fgsm-rs")
FGSM_RS_ALPHA = 1.25  # x eps, Wong et al. 2020


def warmup_eps(eps: float, step: int, warmup_steps: int) -> float:
    """The radius of training step ``step`` (counted from 0) under a linear warm-up.

    Grows by ``eps / warmup_steps`` per step, from ``eps / warmup_steps`` at the first step
    to ``eps`` at step ``warmup_steps - 1``, and stays there; ``warmup_steps <= 0`` is no
    warm-up.
    """
    if warmup_steps <= 0 or step + 1 >= warmup_steps:
        return float(eps)
    return float(eps) * (step + 1) / warmup_steps


def adversarial_batch(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    method: str = "pgd",
    eps: float = 8 / 255,
    steps: int | None = None,
    alpha: float | None = None,
) -> torch.Tensor:
    """Adversarial version of the training batch ``x`` (images in [0, 1]).

    ``method``: ``"pgd"`` (Madry PGD-AT; ``steps`` default 10, ``alpha`` default
    2.5 * eps / steps) or ``"fgsm-rs"`` (``alpha`` default 1.25 * eps). Returns a
    detached tensor on ``x``'s device; the model is left in the mode it came in.
    """
    import torchattacks

    method = str(method).lower()
    if method not in ADVERSARIAL_TRAINING_METHODS:
        raise AttackConfigError(
            f"unknown adversarial training method {method!r}; choose from: {', '.join(ADVERSARIAL_TRAINING_METHODS)}"
        )
    validate_eps(float(eps), "Linf")
    if eps == 0:
        return x.detach().clone()
    if method == "pgd":
        steps = 10 if steps is None else steps
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise AttackConfigError(f"steps must be a whole number >= 1, got {steps!r}")
        alpha = 2.5 * eps / steps if alpha is None else alpha
        attack = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=True)
    else:
        alpha = FGSM_RS_ALPHA * eps if alpha is None else alpha
        attack = torchattacks.FFGSM(model, eps=eps, alpha=alpha)
    if alpha <= 0:
        raise AttackConfigError(f"alpha must be > 0, got {alpha!r}")
    was_training = model.training
    model.eval()
    try:
        # torchattacks' own mode switching would also end in eval; we make it explicit and
        # restore the caller's mode even when the attack fails.
        attack.set_model_training_mode(model_training=False)
        x_adv: torch.Tensor = attack(x, y)  # torchattacks ships no types
    finally:
        model.train(was_training)
    return x_adv.detach()
