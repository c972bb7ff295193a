"""``build_model``: an architecture spec becomes a ``torch.nn.Module``.

The shapes were already checked by :func:`search_spaces.arch.infer_shapes`, so every
module here is built with its exact input size: a spec that validates never fails
with a shape error in training.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from search_spaces.arch import (
    Arch,
    ConvLayer,
    InvalidArchitecture,
    LayerShapes,
    check_input_shape,
    head_features,
    infer_shapes,
    zero_pad_stride,
)
from search_spaces.layers import Resize, ZeroPadShortcut, activation


def _projection(source: tuple[int, int, int], target: tuple[int, int, int], batch_norm: bool) -> nn.Module:
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


def _pool(pool) -> nn.Module:
    cls = nn.MaxPool2d if pool.kind == "max" else nn.AvgPool2d
    return cls(pool.size, stride=pool.effective_stride, padding=pool.padding)


class MacroLayer(nn.Module):
    """One :class:`~search_spaces.arch.ConvLayer`: conv, BN, added skips, activation, pool."""

    def __init__(self, spec: ConvLayer, index: int, shapes: LayerShapes,
                 main_shape: tuple[int, int, int], skip_shapes: dict[int, tuple[int, int, int]]) -> None:
        super().__init__()
        self.combine = spec.combine
        # a concatenated skip from the previous layer would only duplicate the main input
        skips = [j for j in sorted(skip_shapes) if not (spec.combine == "concat" and j == index - 1)]
        self.skips = skips
        _, h, w = main_shape
        # conv and bn first: parameters then come in torchvision's order (conv, bn, downsample)
        self.conv = nn.Conv2d(shapes.input[0], spec.filters, (spec.filter_height, spec.filter_width),
                              stride=spec.stride, padding=spec.padding_hw, bias=spec.has_bias)
        self.bn = nn.BatchNorm2d(spec.filters) if spec.batch_norm else nn.Identity()
        # one module per skip input: a resize (concat) or a shortcut (add)
        self.merge = nn.ModuleList()
        if spec.combine == "concat":
            for j in skips:
                self.merge.append(nn.Identity() if skip_shapes[j][1:] == (h, w) else Resize((h, w)))
        if spec.combine == "add":
            for j in skips:
                source = skip_shapes[j]
                if source == shapes.conv:
                    self.merge.append(nn.Identity())
                elif spec.shortcut == "zero_pad":
                    stride = (zero_pad_stride(source[1], shapes.conv[1]), zero_pad_stride(source[2], shapes.conv[2]))
                    self.merge.append(ZeroPadShortcut(stride, shapes.conv[0] - source[0]))
                else:
                    self.merge.append(_projection(source, shapes.conv, spec.batch_norm))
        self.act = activation(spec.activation)
        self.pool = _pool(spec.pool) if spec.pool is not None else nn.Identity()

    def forward(self, x: torch.Tensor, skip_inputs: list[torch.Tensor]) -> torch.Tensor:
        if self.combine == "concat" and self.skips:
            x = torch.cat([x] + [resize(s) for resize, s in zip(self.merge, skip_inputs)], dim=1)
        x = self.bn(self.conv(x))
        if self.combine == "add":
            for shortcut, s in zip(self.merge, skip_inputs):
                x = x + shortcut(s)
        return self.pool(self.act(x))


class ClassifierHead(nn.Module):
    """Global average pooling or flatten, hidden dense layers, then the classifier."""

    def __init__(self, in_features: int, pool: str, dense: tuple[int, ...], dropout: float,
                 act: str, num_classes: int) -> None:
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
        return self.mlp(self.flatten(self.pool(x)))


class MacroNet(nn.Module):
    """A network built from an :class:`~search_spaces.arch.Arch` for one input shape."""

    def __init__(self, arch: Arch, input_shape: tuple[int, int, int], num_classes: int) -> None:
        super().__init__()
        shapes = infer_shapes(arch, input_shape)
        outputs = [s.output for s in shapes]
        self.arch = arch
        self.layers = nn.ModuleList()
        for i, (spec, layer_shapes) in enumerate(zip(arch.layers, shapes)):
            main = outputs[i - 1] if i else tuple(input_shape)
            skip_shapes = {j: outputs[j] for j in set(spec.skips)}
            self.layers.append(MacroLayer(spec, i, layer_shapes, main, skip_shapes))
        head = arch.head
        self.head = ClassifierHead(head_features(arch, outputs[-1]), head.pool, head.dense,
                                   head.dropout, head.activation, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs: list[torch.Tensor] = []
        for layer in self.layers:
            x = layer(x, [outputs[j] for j in layer.skips])
            outputs.append(x)
        return self.head(x)


def build_model(arch, input_shape, num_classes: int) -> nn.Module:
    """Build ``arch`` (an :class:`Arch` or a ``CellArch``) for ``input_shape`` = (C, H, W).

    Validates first, so a bad architecture raises :class:`InvalidArchitecture` with
    a reason instead of a shape error later. No input normalisation inside.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise InvalidArchitecture(f"num_classes must be a positive integer, not {num_classes!r}")
    input_shape = check_input_shape(input_shape)
    if isinstance(arch, Arch):
        return MacroNet(arch, input_shape, num_classes)
    from search_spaces.cell import CellArch, CellNet, validate_cell

    if isinstance(arch, CellArch):
        validate_cell(arch, input_shape)
        return CellNet(arch, input_shape, num_classes)
    raise InvalidArchitecture(f"not an architecture: {type(arch).__name__}")


build = build_model  # the short name: ``build(arch, input_shape, num_classes) -> nn.Module``
