"""Receptive fields followed through any forward pass, branches and functional glue included.

A ``TorchFunctionMode`` attaches to every tensor computed from the input the window of
input pixels one of its units sees and the input distance between neighbouring units
(Araujo et al., "Computing Receptive Fields of Convolutional Neural Networks", Distill
2019). Where tensors meet (concatenations, residual additions) the largest field wins,
so the field is right on branching graphs too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

Field = tuple[int, int, int, int]
"""(rf_h, rf_w, jump_h, jump_w): the input window one unit sees, and the input distance
between neighbouring units."""

_ARG_ORDER = {
    "conv2d": ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
    "max_pool2d": ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
    "max_pool2d_with_indices": ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    "avg_pool2d": ("input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"),
    "adaptive_avg_pool2d": ("input", "output_size"),
    "adaptive_max_pool2d": ("input", "output_size", "return_indices"),
}


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        return (int(value[0]), int(value[-1]))
    return (int(value), int(value))


def grow(f: Field, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int] = (1, 1)) -> Field:
    """The field after a window of ``kernel`` pixels moved by ``stride`` (Araujo et al., eq. 2)."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    rh, rw, jh, jw = f
    return (rh + dh * (kh - 1) * jh, rw + dw * (kw - 1) * jw, jh * sh, jw * sw)


def _tensors(obj: Any) -> Iterator[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _tensors(item)


def adaptive(f: Field, x: torch.Tensor, output_size: Sequence[int | None]) -> Field:
    """The field after adaptive pooling of ``x`` to ``output_size``."""
    h, w = x.shape[-2:]
    oh = h if output_size[0] is None else output_size[0]
    ow = w if output_size[1] is None else output_size[1]
    # adaptive pooling windows span ceil(n / out) pixels, stepping by about n / out
    kernel = (math.ceil(h / oh), math.ceil(w / ow))
    stride = (max(1, h // oh), max(1, w // ow))
    return grow(f, kernel, stride)


def _windowed(name: str, f: Field, x: torch.Tensor | None, bound: dict[str, Any]) -> Field:
    """The field after the convolution or pooling ``name`` called with ``bound`` arguments."""
    if name == "conv2d":
        kernel = tuple(bound["weight"].shape[-2:])
        return grow(f, (kernel[0], kernel[1]), _pair(bound.get("stride", 1)), _pair(bound.get("dilation", 1)))
    if name.startswith("adaptive"):
        assert x is not None
        return adaptive(f, x, _pair(bound["output_size"]))
    kernel = _pair(bound["kernel_size"])
    stride = bound.get("stride")
    stride = kernel if stride in (None, [], ()) else _pair(stride)
    return grow(f, kernel, stride, _pair(bound.get("dilation", 1)) if "max" in name else (1, 1))


class FieldTracker(TorchFunctionMode):
    """Attach a receptive field to every tensor computed from the input."""

    def __init__(self, image: torch.Tensor) -> None:
        super().__init__()
        self.fields: dict[int, Field] = {id(image): (1, 1, 1, 1)}
        self._alive = [image]  # keep tensors alive so their ids stay unique

    def field_of(self, tensor: torch.Tensor) -> Field | None:
        """The receptive field of ``tensor``, if it was computed from the input."""
        return self.fields.get(id(tensor))

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Sequence[type],
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        inputs = [known for t in _tensors(list(args) + list(kwargs.values())) if (known := self.fields.get(id(t)))]
        if not inputs:
            return out
        rh, rw, jh, jw = (max(values) for values in zip(*inputs, strict=True))  # where branches meet, the largest
        f: Field = (rh, rw, jh, jw)
        name = getattr(func, "__name__", "")
        x = next(_tensors(args), None)
        if name in _ARG_ORDER:
            f = _windowed(name, f, x, dict(zip(_ARG_ORDER[name], args, strict=False)) | kwargs)
        elif name == "flatten" and isinstance(x, torch.Tensor) and x.dim() == 4:
            f = adaptive(f, x, (1, 1))  # every feature of the flat vector sees the whole map
        for t in _tensors(out):
            self.fields[id(t)] = f
            self._alive.append(t)
        return out
