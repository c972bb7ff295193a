"""A macro spec becomes a ``torch.nn.Module``.

The shapes were already checked by :func:`~search_spaces.macro.shapes.infer_shapes`,
so every module here is built with its exact input size: a spec that validates never
fails with a shape error in training.
"""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import nn

from search_spaces.fields import Shape
from search_spaces.layers import Resize, ZeroPadShortcut, activation
from search_spaces.macro.shapes import LayerShapes, head_features, infer_shapes, zero_pad_stride
from search_spaces.macro.spec import Arch, ConvLayer, Pool


def projection(source: Shape, target: Shape, batch_norm: bool) -> nn.Module:
    """1x1 convolution (+ BN) from ``source`` onto ``target`` (He et al. 2016, option B).

    The stride is ``ceil(source / target)``, torchvision's ``downsample`` for ResNet;
    if that still misses the target size (odd sizes, growing maps) a parameter-free
    resize finishes the job.
    """
    sc, sh, sw = source
    tc, th, tw = target
    stride = (max(1, math.ceil(sh / th)), max(1, math.ceil(sw / tw)))
    modules: list[nn.Module] = [nn.Conv2d(sc, tc, 1, stride=stride, bias=not batch_norm)]
    if batch_norm:
        modules.append(nn.BatchNorm2d(tc))
    if ((sh - 1) // stride[0] + 1, (sw - 1) // stride[1] + 1) != (th, tw):
        modules.append(Resize((th, tw)))
    return nn.Sequential(*modules)


def pooling(pool: Pool) -> nn.Module:
    """The torch module of a :class:`~search_spaces.macro.spec.Pool`."""
    if pool.kind == "max":
        return nn.MaxPool2d(pool.size, stride=pool.effective_stride, padding=pool.padding)
    return nn.AvgPool2d(pool.size, stride=pool.effective_stride, padding=pool.padding)


def _merge(spec: ConvLayer, source: Shape, main: Shape, conv: Shape) -> nn.Module:
    """What one skip input goes through: a resize onto ``main`` (concat) or a shortcut onto ``conv`` (add)."""
    if spec.combine == "concat":
        return nn.Identity() if source[1:] == main[1:] else Resize((main[1], main[2]))
    if source == conv:
        return nn.Identity()
    if spec.shortcut == "zero_pad":
        stride = (zero_pad_stride(source[1], conv[1]), zero_pad_stride(source[2], conv[2]))
        assert stride[0] is not None and stride[1] is not None  # infer_shapes checked it
        return ZeroPadShortcut((stride[0], stride[1]), conv[0] - source[0])
    return projection(source, conv, spec.batch_norm)


class MacroLayer(nn.Module):
    """One :class:`~search_spaces.macro.spec.ConvLayer`: conv, BN, added skips, activation, pool."""

    def __init__(
        self, spec: ConvLayer, index: int, shapes: LayerShapes, main_shape: Shape, skip_shapes: dict[int, Shape]
    ) -> None:
        super().__init__()
        self.combine = spec.combine
        # a concatenated skip from the previous layer would only duplicate the main input
        self.skips = [j for j in sorted(skip_shapes) if not (spec.combine == "concat" and j == index - 1)]
        # conv and bn first: parameters then come in torchvision's order (conv, bn, downsample)
        self.conv = nn.Conv2d(
            shapes.input[0],
            spec.filters,
            (spec.filter_height, spec.filter_width),
            stride=spec.stride,
            padding=spec.padding_hw,
            bias=spec.has_bias,
        )
        self.bn = nn.BatchNorm2d(spec.filters) if spec.batch_norm else nn.Identity()
        # one module per skip input: a resize (concat) or a shortcut (add)
        self.merge = nn.ModuleList(_merge(spec, skip_shapes[j], main_shape, shapes.conv) for j in self.skips)
        self.act = activation(spec.activation)
        self.pool = pooling(spec.pool) if spec.pool is not None else nn.Identity()

    def forward(self, x: torch.Tensor, skip_inputs: list[torch.Tensor]) -> torch.Tensor:
        if self.combine == "concat" and self.skips:
            x = torch.cat([x] + [resize(s) for resize, s in zip(self.merge, skip_inputs, strict=True)], dim=1)
        x = self.bn(self.conv(x))
        if self.combine == "add":
            for shortcut, s in zip(self.merge, skip_inputs, strict=True):
                x = x + shortcut(s)
        out: torch.Tensor = self.pool(self.act(x))
        return out


class ClassifierHead(nn.Module):
    """Global average pooling or flatten, hidden dense layers, then the classifier."""

    def __init__(
        self, in_features: int, pool: str, dense: tuple[int, ...], dropout: float, act: str, num_classes: int
    ) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1) if pool == "avg" else nn.Identity()
        self.flatten = nn.Flatten(1)
        layers: list[nn.Module] = []
        width = in_features
        for hidden in dense:
            layers += [nn.Linear(width, hidden), activation(act)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = hidden
        if dropout > 0 and not dense:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(width, num_classes))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.mlp(self.flatten(self.pool(x)))
        return out


class MacroNet(nn.Module):
    """A network built from an :class:`~search_spaces.macro.spec.Arch` for one input shape."""

    def __init__(self, arch: Arch, input_shape: Shape, num_classes: int) -> None:
        super().__init__()
        shapes = infer_shapes(arch, input_shape)
        outputs = [s.output for s in shapes]
        self.arch = arch
        self.layers = nn.ModuleList()
        for i, (spec, layer_shapes) in enumerate(zip(arch.layers, shapes, strict=True)):
            main = outputs[i - 1] if i else input_shape
            skip_shapes = {j: outputs[j] for j in set(spec.skips)}
            self.layers.append(MacroLayer(spec, i, layer_shapes, main, skip_shapes))
        head = arch.head
        self.head = ClassifierHead(
            head_features(arch, outputs[-1]), head.pool, head.dense, head.dropout, head.activation, num_classes
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs: list[torch.Tensor] = []
        for layer in self.layers:
            x = layer(x, [outputs[j] for j in cast(MacroLayer, layer).skips])
            outputs.append(x)
        out: torch.Tensor = self.head(x)
        return out


def build_macro(arch: Arch, input_shape: Shape, num_classes: int) -> nn.Module:
    """:class:`MacroNet` of ``arch``; validates the shapes first."""
    return MacroNet(arch, input_shape, num_classes)
