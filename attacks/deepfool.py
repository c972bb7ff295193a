"""DeepFool (Moosavi-Dezfooli, Fawzi & Frossard, "DeepFool: a simple and accurate method
to fool deep neural networks", CVPR 2016) with the paper's overshoot.

In a module of its own so that torchattacks, slow to import, loads only when an attack
is built (:func:`attacks.registry.build_attack` imports this module there).
"""

from __future__ import annotations

import torch
import torchattacks


class DeepFool(torchattacks.DeepFool):  # type: ignore[misc]  # torchattacks ships no types
    """torchattacks' DeepFool with the paper's overshoot on the *total* perturbation.

    Moosavi-Dezfooli et al. 2016 (Algorithm 2) return x + (1 + overshoot) * r_total;
    torchattacks scales only each step, so on piecewise-linear networks its result
    often lands exactly on the decision boundary (tied logits) and is not
    adversarial once re-evaluated. Scaling the total restores the paper's margin.
    """

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The adversarial images: torchattacks' walk, its total step scaled by ``1 + overshoot``."""
        images = images.clone().detach().to(self.device)
        adv = super().forward(images, labels)
        return torch.clamp(images + (1 + self.overshoot) * (adv - images), 0, 1).detach()
