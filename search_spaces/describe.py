"""Per-layer profile of a real module: output shape, parameters, MACs, receptive field.

Everything is measured on the module itself, with one forward pass of a single
example: forward hooks give each layer's output shape and parameters, and a
``TorchFunctionMode`` follows every tensor through the functional glue between
modules (concatenations, residual additions, padding) so that the receptive field is
right on branching graphs too (the largest over all paths).

Multiply-accumulates are counted where nearly all the work is, exactly:
a convolution costs ``H_out * W_out * C_out * k_h * k_w * C_in / groups`` and a
dense layer ``in * out`` (bias additions, pooling, normalisation and activations are
not counted). The seed's Inception example comes out as in the lecture: 32 5x5
filters on 28x28x192 cost 120,422,400; a 16-filter 1x1 bottleneck first costs
2,408,448 + 10,035,200.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from search_spaces.arch import InvalidArchitecture, check_input_shape

_POOLS = (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd,
          nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd)


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
class Latency:
    """Inference time of one batch (``torch.inference_mode``) on ``device``."""

    device: str
    batch_size: int
    repeats: int
    mean_ms: float
    std_ms: float
    min_ms: float

    @property
    def per_image_ms(self) -> float:
        return self.mean_ms / self.batch_size

    @property
    def images_per_s(self) -> float:
        return 1000.0 * self.batch_size / self.mean_ms

    def to_dict(self) -> dict:
        return {**asdict(self), "per_image_ms": self.per_image_ms, "images_per_s": self.images_per_s}


@dataclass
class Description:
    name: str
    input_shape: tuple[int, int, int]
    rows: list[LayerProfile]
    totals: dict[str, Any]
    latency: Latency | None = field(default=None)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "rows": [{**asdict(r), "output_shape": list(r.output_shape),
                      "receptive_field": None if r.receptive_field is None else list(r.receptive_field)}
                     for r in self.rows],
            "totals": {k: list(v) if isinstance(v, tuple) else v for k, v in self.totals.items()},
            "latency": None if self.latency is None else self.latency.to_dict(),
        }


# ------------------------------------------------------------ receptive field

# field: (rf_h, rf_w, jump_h, jump_w): the input window one unit sees and the input
# distance between neighbouring units (Araujo et al., "Computing Receptive Fields of
# Convolutional Neural Networks", Distill 2019).
_Field = tuple[int, int, int, int]

_ARG_ORDER = {
    "conv2d": ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
    "max_pool2d": ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
    "max_pool2d_with_indices": ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    "avg_pool2d": ("input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"),
    "adaptive_avg_pool2d": ("input", "output_size"),
    "adaptive_max_pool2d": ("input", "output_size", "return_indices"),
}


def _pair(value) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        return (int(value[0]), int(value[-1]))
    return (int(value), int(value))


def _grow(f: _Field, kernel, stride, dilation=(1, 1)) -> _Field:
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    rh, rw, jh, jw = f
    return (rh + dh * (kh - 1) * jh, rw + dw * (kw - 1) * jw, jh * sh, jw * sw)


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _tensors(item)


class _FieldTracker(TorchFunctionMode):
    """Attach a receptive field to every tensor computed from the input."""

    def __init__(self, image: torch.Tensor) -> None:
        super().__init__()
        self.fields: dict[int, _Field] = {id(image): (1, 1, 1, 1)}
        self._alive = [image]  # keep tensors alive so their ids stay unique

    def field_of(self, tensor: torch.Tensor) -> _Field | None:
        return self.fields.get(id(tensor))

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        inputs = [f for t in _tensors(list(args) + list(kwargs.values())) if (f := self.fields.get(id(t)))]
        if not inputs:
            return out
        f = tuple(max(values) for values in zip(*inputs))
        name = getattr(func, "__name__", "")
        x = next(_tensors(args), None)
        if name in _ARG_ORDER:
            bound = dict(zip(_ARG_ORDER[name], args)) | kwargs
            if name == "conv2d":
                stride = _pair(bound.get("stride", 1))
                f = _grow(f, tuple(bound["weight"].shape[-2:]), stride, _pair(bound.get("dilation", 1)))
            elif name.startswith("adaptive"):
                f = self._adaptive(f, x, _pair(bound["output_size"]))
            else:
                kernel = _pair(bound["kernel_size"])
                stride = bound.get("stride")
                stride = kernel if stride in (None, [], ()) else _pair(stride)
                f = _grow(f, kernel, stride, _pair(bound.get("dilation", 1)) if "max" in name else (1, 1))
        elif name == "flatten" and isinstance(x, torch.Tensor) and x.dim() == 4:
            f = self._adaptive(f, x, (1, 1))  # every feature of the flat vector sees the whole map
        for t in _tensors(out):
            self.fields[id(t)] = f
            self._alive.append(t)
        return out

    @staticmethod
    def _adaptive(f: _Field, x: torch.Tensor, output_size) -> _Field:
        h, w = x.shape[-2:]
        oh, ow = (h if output_size[0] is None else output_size[0]), (w if output_size[1] is None else output_size[1])
        # adaptive pooling windows span ceil(n / out) pixels, stepping by about n / out
        kernel = (math.ceil(h / oh), math.ceil(w / ow))
        stride = (max(1, h // oh), max(1, w // ow))
        return _grow(f, kernel, stride)


# ---------------------------------------------------------------- profiling


def _own_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters(recurse=False))


def _macs(module: nn.Module, inputs, output: torch.Tensor) -> int:
    if isinstance(module, nn.Conv2d):
        c_out, h_out, w_out = output.shape[1:]
        kh, kw = module.kernel_size
        return c_out * h_out * w_out * kh * kw * module.in_channels // module.groups
    if isinstance(module, nn.Linear):
        return (output.numel() // output.shape[0]) * module.in_features
    return 0


def resolve_model(model_or_arch, input_shape, num_classes: int = 10, variant: str = "auto") -> tuple[str, nn.Module]:
    """``(display name, module)`` for a module, an arch (or its dict), a classic model
    name or a NAS-Bench-201 arch string."""
    if isinstance(model_or_arch, nn.Module):
        return type(model_or_arch).__name__, model_or_arch
    from search_spaces.arch import Arch, arch_from_dict
    from search_spaces.builder import build_model
    from search_spaces.cell import CellArch
    from search_spaces.classic import create_model

    arch = model_or_arch
    if isinstance(arch, dict):
        arch = arch_from_dict(arch)
    if isinstance(arch, str):
        if arch.startswith("|"):
            arch = CellArch.from_string(arch)
        else:
            return arch, create_model(arch, input_shape, num_classes, variant)
    if isinstance(arch, (Arch, CellArch)):
        name = getattr(arch, "name", None) or (f"cell {arch.to_string()}" if isinstance(arch, CellArch) else "macro")
        return name, build_model(arch, input_shape, num_classes)
    raise InvalidArchitecture(f"cannot describe a {type(model_or_arch).__name__}")


def describe(model_or_arch, input_shape, num_classes: int = 10, *, name: str | None = None) -> Description:
    """Profile a module, an :class:`~search_spaces.arch.Arch`/``CellArch`` (or its dict),
    a classic model name or a NAS-Bench-201 arch string on ``input_shape`` = (C, H, W)."""
    input_shape = check_input_shape(input_shape)
    default_name, model = resolve_model(model_or_arch, input_shape, num_classes)
    rows: list[LayerProfile] = []
    tracker: _FieldTracker | None = None

    def hook(module, inputs, output, qualified: str):
        if not isinstance(output, torch.Tensor):
            return
        changed = bool(inputs) and isinstance(inputs[0], torch.Tensor) and inputs[0].shape != output.shape
        params = _own_params(module)
        if not (params or changed or isinstance(module, _POOLS)):
            return  # activations, dropout, identities: no parameters, same shape
        f = tracker.field_of(output) if tracker is not None else None
        rows.append(LayerProfile(name=qualified, type=type(module).__name__, output_shape=tuple(output.shape[1:]),
                                 params=params, macs=_macs(module, inputs, output),
                                 receptive_field=None if f is None else (f[0], f[1])))

    handles = [m.register_forward_hook(lambda mod, i, o, q=q: hook(mod, i, o, q))
               for q, m in model.named_modules() if not list(m.children())]
    was_training = model.training
    model.eval()
    try:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        image = torch.rand(1, *input_shape, device=device)
        tracker = _FieldTracker(image)
        with torch.no_grad(), tracker:
            output = model(image)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    params = sum(p.numel() for p in model.parameters())
    totals = {
        "params": params,
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "macs": sum(r.macs for r in rows),
        "output_shape": tuple(output.shape[1:]),
        "layers": len(rows),
    }
    return Description(name=name or default_name, input_shape=input_shape, rows=rows, totals=totals)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def measure_latency(model: nn.Module, input_shape, batch_size: int = 32, device: str | torch.device = "auto",
                    warmup: int = 3, repeats: int = 10) -> Latency:
    """Time ``repeats`` forward passes of a random batch, after ``warmup`` untimed ones.

    Moves ``model`` to ``device`` (``"auto"``: CUDA when available) and leaves it in
    eval mode; CUDA work is synchronised before each clock read.
    """
    if batch_size < 1 or repeats < 1:
        raise ValueError("batch_size and repeats must be >= 1")
    device = resolve_device(device)
    model = model.to(device).eval()
    x = torch.rand(batch_size, *check_input_shape(input_shape), device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        sync()
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            sync()
            times.append((time.perf_counter() - start) * 1000.0)
    return Latency(device=str(device), batch_size=batch_size, repeats=repeats, mean_ms=statistics.fmean(times),
                   std_ms=statistics.stdev(times) if len(times) > 1 else 0.0, min_ms=min(times))
