"""Validity of a macro spec, decided before any module is built.

:func:`check_structure` checks what needs no input shape (field values, skip
indices); :func:`infer_shapes` runs the output-size arithmetic ``(n + 2p - f) // s + 1``
layer by layer and rejects an architecture whose feature map would collapse, with the
layer and the numbers that made it collapse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from search_spaces import fields
from search_spaces.errors import InvalidArchitecture
from search_spaces.fields import (
    MAX_DENSE,
    MAX_FILTER_SIZE,
    MAX_FILTERS,
    MAX_LAYERS,
    MAX_PADDING,
    MAX_STRIDE,
    Shape,
    choice,
    integer,
)
from search_spaces.macro.spec import (
    ACTIVATIONS,
    COMBINE_MODES,
    HEAD_POOLS,
    PADDINGS,
    POOL_KINDS,
    SHORTCUTS,
    Arch,
    ConvLayer,
    Head,
)


@dataclass(frozen=True)
class LayerShapes:
    """Shapes around one layer, as (channels, height, width)."""

    input: Shape  # after concatenating skips, the conv's input
    conv: Shape  # after the convolution
    output: Shape  # after pooling: what later layers see


def conv_output_size(n: int, f: int, s: int, p: int) -> int:
    """``(n + 2p - f) // s + 1``: the output size of a convolution or pooling window."""
    return (n + 2 * p - f) // s + 1


def zero_pad_stride(source: int, target: int) -> int | None:
    """The stride whose subsampling ``x[::s]`` maps ``source`` pixels to ``target``, if any."""
    if target > source:
        return None
    stride = math.ceil(source / target)
    return stride if math.ceil(source / stride) == target else None


# ------------------------------------------------------------------ structure


def _check_layer(layer: ConvLayer, i: int) -> None:
    where = f"layer {i}"
    for name, maximum in (
        ("filter_height", MAX_FILTER_SIZE),
        ("filter_width", MAX_FILTER_SIZE),
        ("stride", MAX_STRIDE),
        ("filters", MAX_FILTERS),
    ):
        integer(getattr(layer, name), f"{where}.{name}", 1, maximum)
    if isinstance(layer.padding, str):
        choice(layer.padding, PADDINGS, f"{where}.padding")
    else:
        integer(layer.padding, f"{where}.padding", 0, MAX_PADDING)
    choice(layer.activation, ACTIVATIONS, f"{where}.activation")
    choice(layer.combine, COMBINE_MODES, f"{where}.combine")
    choice(layer.shortcut, SHORTCUTS, f"{where}.shortcut")
    if layer.pool is not None:
        choice(layer.pool.kind, POOL_KINDS, f"{where}.pool.kind")
        if layer.pool.padding > layer.pool.size // 2:
            raise InvalidArchitecture(
                f"{where}: pool padding {layer.pool.padding} must be at most half the pool size {layer.pool.size}"
            )
    for j in layer.skips:
        if not 0 <= j < i:
            raise InvalidArchitecture(
                f"{where}: skip from layer {j} must come from an earlier layer (0..{i - 1})"
                if i
                else f"{where}: the first layer cannot take skip connections"
            )


def _check_head(head: Head) -> None:
    choice(head.pool, HEAD_POOLS, "head.pool")
    choice(head.activation, ACTIVATIONS, "head.activation")
    for k, width in enumerate(head.dense):
        integer(width, f"head.dense[{k}]", 1, MAX_DENSE)
    if not 0.0 <= head.dropout < 1.0:
        raise InvalidArchitecture(f"head.dropout must be in [0, 1), not {head.dropout}")


def check_structure(arch: Arch) -> None:
    """Checks that need no input shape: field values and skip indices."""
    if not 1 <= len(arch.layers) <= MAX_LAYERS:
        raise InvalidArchitecture(f"an architecture needs 1..{MAX_LAYERS} layers, not {len(arch.layers)}")
    for i, layer in enumerate(arch.layers):
        _check_layer(layer, i)
    _check_head(arch.head)


# --------------------------------------------------------------------- shapes


def _conv_shape(layer: ConvLayer, i: int, h: int, w: int) -> Shape:
    ph, pw = layer.padding_hw
    oh = conv_output_size(h, layer.filter_height, layer.stride, ph)
    ow = conv_output_size(w, layer.filter_width, layer.stride, pw)
    if oh < 1 or ow < 1:
        raise InvalidArchitecture(
            f"layer {i}: feature map collapses to {max(oh, 0)}x{max(ow, 0)} ({h}x{w} input, "
            f"{layer.filter_height}x{layer.filter_width} filter, stride {layer.stride}, "
            f"padding {ph if ph == pw else f'{ph}x{pw}'})"
        )
    return layer.filters, oh, ow


def _check_zero_pad_shortcuts(layer: ConvLayer, i: int, skips: list[int], outputs: list[Shape], conv: Shape) -> None:
    """Option A shortcuts need a subsampling stride and no fewer channels at the target."""
    _, oh, ow = conv
    if layer.shortcut != "zero_pad":
        return
    for j in (j for j in skips if outputs[j] != conv):
        sc, sh, sw = outputs[j]
        if sc > layer.filters or zero_pad_stride(sh, oh) is None or zero_pad_stride(sw, ow) is None:
            raise InvalidArchitecture(
                f"layer {i}: a zero-padding shortcut cannot map layer {j}'s {sc}x{sh}x{sw} "
                f"output onto {layer.filters}x{oh}x{ow}; use shortcut 'projection'"
            )


def _pooled_shape(layer: ConvLayer, i: int, conv: Shape) -> Shape:
    pool = layer.pool
    if pool is None:
        return conv
    c, oh, ow = conv
    qh = conv_output_size(oh, pool.size, pool.effective_stride, pool.padding)
    qw = conv_output_size(ow, pool.size, pool.effective_stride, pool.padding)
    if qh < 1 or qw < 1:
        raise InvalidArchitecture(
            f"layer {i}: pooling collapses the feature map to {max(qh, 0)}x{max(qw, 0)} "
            f"({oh}x{ow} input, {pool.size}x{pool.size} {pool.kind} pool, "
            f"stride {pool.effective_stride}, padding {pool.padding})"
        )
    return c, qh, qw


def infer_shapes(arch: Arch, input_shape: Any) -> list[LayerShapes]:
    """Run the shape arithmetic through every layer; raise on the first collapse."""
    check_structure(arch)
    shape = fields.input_shape(input_shape)
    outputs: list[Shape] = []
    result = []
    for i, layer in enumerate(arch.layers):
        c, h, w = shape
        skips = sorted(set(layer.skips))
        if layer.combine == "concat":
            c += sum(outputs[j][0] for j in skips if j != i - 1)
        conv = _conv_shape(layer, i, h, w)
        if layer.combine == "add":
            _check_zero_pad_shortcuts(layer, i, skips, outputs, conv)
        out = _pooled_shape(layer, i, conv)
        result.append(LayerShapes(input=(c, h, w), conv=conv, output=out))
        outputs.append(out)
        shape = out
    return result


def head_features(arch: Arch, last_shape: Shape) -> int:
    """Inputs of the head's first dense layer: channels after average pooling, or all units flattened."""
    c, h, w = last_shape
    return c if arch.head.pool == "avg" else c * h * w


def validate_macro(arch: Arch, shape: Shape) -> None:
    """Raise :class:`InvalidArchitecture` if ``arch`` cannot run on ``shape``."""
    infer_shapes(arch, shape)
