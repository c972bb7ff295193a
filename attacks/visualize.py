"""PNG grids of adversarial examples: clean / adversarial / amplified perturbation.

One column per example; row 1 the clean image with its predicted label, row 2
the adversarial image with its predicted label, row 3 the perturbation rescaled
so its largest entry fills the grey range (mid-grey is zero), since an 8/255
perturbation is invisible at its true scale.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["save_example_grid", "amplify_perturbation"]


def amplify_perturbation(delta: torch.Tensor) -> torch.Tensor:
    """Map a perturbation to [0, 1] per example: 0.5 + delta / (2 max|delta|)."""
    scale = delta.flatten(1).abs().amax(1).clamp_min(1e-12).view(-1, *([1] * (delta.dim() - 1)))
    return (0.5 + delta / (2 * scale)).clamp(0, 1)


def _as_examples(source: Any) -> dict[str, Any]:
    # A RobustnessReport: its example set at the largest eps of the first norm.
    if hasattr(source, "examples") and isinstance(source.examples, list):
        if not source.examples:
            raise ValueError("the report kept no adversarial examples (no attack succeeded)")
        first_norm = source.examples[0].norm
        source = max((e for e in source.examples if e.norm == first_norm), key=lambda e: e.eps)
    if hasattr(source, "adversarial"):
        return {
            "clean": source.clean,
            "adversarial": source.adversarial,
            "labels": source.labels,
            "clean_pred": source.clean_pred,
            "adv_pred": source.adv_pred,
            "title": f"{source.norm} eps={source.eps:.4g}",
        }
    if isinstance(source, dict):
        return dict(source)
    if isinstance(source, (tuple, list)) and len(source) >= 2:
        keys = ("clean", "adversarial", "clean_pred", "adv_pred", "labels")
        return dict(zip(keys, source, strict=False))  # the predictions may be left out
    raise TypeError(
        "save_example_grid takes a RobustnessReport, AdversarialExamples, a dict with 'clean' and "
        "'adversarial' tensors, or a (clean, adversarial[, clean_pred, adv_pred]) tuple"
    )


def _image(t: torch.Tensor) -> np.ndarray[Any, np.dtype[np.float32]]:
    t = t.detach().float().cpu().clamp(0, 1)
    if t.dim() == 3 and t.shape[0] in (1, 3):
        t = t.permute(1, 2, 0)
    if t.dim() == 3 and t.shape[2] == 1:
        t = t[:, :, 0]
    image: np.ndarray[Any, np.dtype[np.float32]] = t.numpy()
    return image


def _class_name(label: int | torch.Tensor, class_names: Sequence[str] | None) -> str:
    index = int(label)
    return class_names[index] if class_names is not None and index < len(class_names) else str(index)


def _prediction_title(
    pred: int | torch.Tensor, label: int | torch.Tensor | None, class_names: Sequence[str] | None
) -> str:
    """``pred 3``, with ``true 5`` above it when the label is given."""
    title = f"pred {_class_name(pred, class_names)}"
    return title if label is None else f"true {_class_name(label, class_names)}\n" + title


def save_example_grid(
    report_or_tensors: Any,
    path: str | os.PathLike[str],
    class_names: Sequence[str] | None = None,
    max_examples: int = 8,
) -> Path:
    """Save a PNG grid (clean / adversarial / amplified perturbation) and return its path.

    ``report_or_tensors``: a ``RobustnessReport`` (its kept examples at the largest
    eps), an ``AdversarialExamples``, a dict with ``clean`` and ``adversarial``
    (optionally ``clean_pred``, ``adv_pred``, ``labels``, ``title``), or a tuple
    ``(clean, adversarial[, clean_pred, adv_pred])``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = _as_examples(report_or_tensors)
    clean, adv = data["clean"][:max_examples], data["adversarial"][:max_examples]
    if clean.shape != adv.shape or clean.dim() != 4:
        raise ValueError(
            f"clean and adversarial must be matching (N, C, H, W) batches, got "
            f"{tuple(clean.shape)} and {tuple(adv.shape)}"
        )
    n = len(clean)
    if n == 0:
        raise ValueError("no examples to draw")
    fig, axes = plt.subplots(3, n, figsize=(1.6 * n + 0.8, 5.2), squeeze=False)
    rows = [
        ("clean", clean, data.get("clean_pred")),
        ("adversarial", adv, data.get("adv_pred")),
        ("perturbation (amplified)", amplify_perturbation(adv.float() - clean.float()), None),
    ]
    for r, (row_name, images, preds) in enumerate(rows):
        for c in range(n):
            ax = axes[r][c]
            ax.imshow(
                _image(images[c]), cmap="gray" if clean.shape[1] == 1 else None, vmin=0, vmax=1, interpolation="nearest"
            )
            ax.set_xticks([])
            ax.set_yticks([])
            if preds is not None:
                truth = data.get("labels") if r == 0 else None
                title = _prediction_title(preds[c], None if truth is None else truth[c], class_names)
                ax.set_title(title, fontsize=8, color="red" if r == 1 else "black")
            elif r == 2:
                delta = (adv[c].float() - clean[c].float()).abs().max()
                ax.set_title(f"max {float(delta):.3f}", fontsize=8)
        axes[r][0].set_ylabel(row_name, fontsize=8)
    if data.get("title"):
        fig.suptitle(str(data["title"]), fontsize=10)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
