"""Per-layer profile of a real module: output shape, parameters, MACs, receptive field.

Everything is measured on the module itself, with one forward pass of a single
example: forward hooks give each layer's output shape and parameters, and a
:class:`~search_spaces.receptive_field.FieldTracker` follows every tensor through the
functional glue between modules (concatenations, residual additions, padding) so that
the receptive field is right on branching graphs too (the largest over all paths).

Multiply-accumulates are counted where nearly all the work is, exactly:
a convolution costs ``H_out * W_out * C_out * k_h * k_w * C_in / groups`` and a
dense layer ``in * out`` (bias additions, pooling, normalisation and activations are
not counted). The seed's Inception example comes out as in the lecture: 32 5x5
filters on 28x28x192 cost 120,422,400; a 16-filter 1x1 bottleneck first costs
2,408,448 + 10,035,200.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from search_spaces import fields
from search_spaces.cell.spec import CellArch
from search_spaces.classic import create_model
from search_spaces.errors import InvalidArchitecture, NotAnArchitecture
from search_spaces.fields import Shape
from search_spaces.kinds import arch_from_dict, build_model, display_name
from search_spaces.latency import Latency
from search_spaces.receptive_field import FieldTracker

_POOLS = (
    nn.modules.pooling._MaxPoolNd,
    nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._AdaptiveAvgPoolNd,
    nn.modules.pooling._AdaptiveMaxPoolNd,
)


@dataclass
class LayerProfile:
    """One row: a leaf module that has parameters, pools, or changes the shape."""

    name: str
    type: str
    output_shape: tuple[int, ...]
    params: int
    macs: int
    receptive_field: tuple[int, int] | None


@dataclass
class Description:
    """The profile of one model on one input shape: its rows, totals and (when measured) latency."""

    name: str
    input_shape: Shape
    rows: list[LayerProfile]
    totals: dict[str, Any]
    latency: Latency | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "rows": [
                {
                    **asdict(r),
                    "output_shape": list(r.output_shape),
                    "receptive_field": None if r.receptive_field is None else list(r.receptive_field),
                }
                for r in self.rows
            ],
            "totals": {k: list(v) if isinstance(v, tuple) else v for k, v in self.totals.items()},
            "latency": None if self.latency is None else self.latency.to_dict(),
        }


def _own_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters(recurse=False))


def _macs(module: nn.Module, output: torch.Tensor) -> int:
    if isinstance(module, nn.Conv2d):
        c_out, h_out, w_out = output.shape[1:]
        kh, kw = module.kernel_size
        return int(c_out * h_out * w_out * kh * kw * module.in_channels // module.groups)
    if isinstance(module, nn.Linear):
        return (output.numel() // output.shape[0]) * module.in_features
    return 0


def resolve_model(
    model_or_arch: Any, input_shape: Any, num_classes: int = 10, variant: str = "auto"
) -> tuple[str, nn.Module]:
    """``(display name, module)`` for a module, an arch (or its dict), a classic model
    name or a NAS-Bench-201 arch string."""
    if isinstance(model_or_arch, nn.Module):
        return type(model_or_arch).__name__, model_or_arch
    arch = model_or_arch
    if isinstance(arch, dict):
        arch = arch_from_dict(arch)
    elif isinstance(arch, str) and arch.startswith("|"):
        arch = CellArch.from_string(arch)
    elif isinstance(arch, str):
        return arch, create_model(arch, input_shape, num_classes, variant)
    try:
        return display_name(arch), build_model(arch, input_shape, num_classes)
    except NotAnArchitecture:
        raise InvalidArchitecture(f"cannot describe a {type(model_or_arch).__name__}") from None


class _Profiler:
    """Forward hooks on every leaf module that record a :class:`LayerProfile` per call."""

    def __init__(self, model: nn.Module) -> None:
        self.rows: list[LayerProfile] = []
        self.tracker: FieldTracker | None = None
        self.handles = [
            module.register_forward_hook(self._hook_for(qualified))
            for qualified, module in model.named_modules()
            if not list(module.children())
        ]

    def _hook_for(self, qualified: str) -> Any:
        def hook(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
            self.record(qualified, module, inputs, output)

        return hook

    def record(self, qualified: str, module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        """One row for ``module`` unless it neither has parameters, pools nor changes the shape."""
        if not isinstance(output, torch.Tensor):
            return
        changed = bool(inputs) and isinstance(inputs[0], torch.Tensor) and inputs[0].shape != output.shape
        params = _own_params(module)
        if not (params or changed or isinstance(module, _POOLS)):
            return  # activations, dropout, identities: no parameters, same shape
        f = self.tracker.field_of(output) if self.tracker is not None else None
        self.rows.append(
            LayerProfile(
                name=qualified,
                type=type(module).__name__,
                output_shape=tuple(output.shape[1:]),
                params=params,
                macs=_macs(module, output),
                receptive_field=None if f is None else (f[0], f[1]),
            )
        )

    def run(self, model: nn.Module, input_shape: Shape) -> torch.Tensor:
        """One forward pass of a random image in eval mode; the hooks are removed after it."""
        was_training = model.training
        model.eval()
        try:
            device = next((p.device for p in model.parameters()), torch.device("cpu"))
            image = torch.rand(1, *input_shape, device=device)
            self.tracker = FieldTracker(image)
            with torch.no_grad(), self.tracker:
                output: torch.Tensor = model(image)
        finally:
            for handle in self.handles:
                handle.remove()
            model.train(was_training)
        return output


def describe(model_or_arch: Any, input_shape: Any, num_classes: int = 10, *, name: str | None = None) -> Description:
    """Profile a module, an :class:`~search_spaces.macro.spec.Arch`/``CellArch`` (or its dict),
    a classic model name or a NAS-Bench-201 arch string on ``input_shape`` = (C, H, W)."""
    shape = fields.input_shape(input_shape)
    default_name, model = resolve_model(model_or_arch, shape, num_classes)
    profiler = _Profiler(model)
    output = profiler.run(model, shape)
    rows = profiler.rows
    totals = {
        "params": sum(p.numel() for p in model.parameters()),
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "macs": sum(r.macs for r in rows),
        "output_shape": tuple(output.shape[1:]),
        "layers": len(rows),
    }
    return Description(name=name or default_name, input_shape=shape, rows=rows, totals=totals)
