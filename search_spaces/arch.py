"""The architecture spec: a plain, versioned, JSON-serialisable description of a CNN.

An :class:`Arch` is the *macro* encoding of Zoph & Le, "Neural Architecture Search
with Reinforcement Learning" (ICLR 2017): a chain of convolutional layers, each with
its filter height and width, stride, number of filters, padding, activation, batch
norm and optional pooling, plus skip connections from earlier layers (concatenated
along the channels, as in the paper, or added, as in He et al.'s ResNet). A
:class:`Head` turns the last feature map into logits.

A :class:`~search_spaces.cell.CellArch` (NAS-Bench-201's cell) is the other kind;
both serialise to a dict carrying ``"kind"`` and ``"version"``.

Validity is decided here, before any module is built: :func:`infer_shapes` runs the
output-size arithmetic ``(n + 2p - f) // s + 1`` layer by layer and rejects an
architecture whose feature map would collapse, with the layer and the numbers that
made it collapse.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

SPEC_VERSION = 1
"""Version of the serialised form; bumped whenever a field changes meaning."""

ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "elu", "leaky_relu", "silu", "identity")
POOL_KINDS = ("max", "avg")
COMBINE_MODES = ("concat", "add")
SHORTCUTS = ("projection", "zero_pad")
HEAD_POOLS = ("avg", "flatten")


class InvalidArchitecture(ValueError):
    """An architecture that is malformed or cannot run on the given input shape."""


# --------------------------------------------------------------------------- spec


@dataclass(frozen=True)
class Pool:
    """Pooling after a layer's activation: ``kind`` over ``size``x``size`` windows.

    ``stride`` defaults to ``size`` (non-overlapping windows, as in LeNet and VGG);
    AlexNet's overlapping pooling is ``Pool("max", 3, 2)``.
    """

    kind: str = "max"
    size: int = 2
    stride: int | None = None
    padding: int = 0

    @property
    def effective_stride(self) -> int:
        return self.size if self.stride is None else self.stride


@dataclass(frozen=True)
class ConvLayer:
    """One layer: conv -> batch norm -> (+ added skips) -> activation -> pooling.

    ``padding`` is ``"same"`` (``(f - 1) // 2`` on each side, which keeps the size of
    odd filters at stride 1), ``"valid"`` (no padding) or a number of pixels.
    ``skips`` are indices of earlier layers whose outputs also feed this layer; the
    previous layer is always the main input. With ``combine="concat"`` (Zoph & Le)
    they are resized to the main input's height and width and concatenated to it
    before the convolution; with ``combine="add"`` (ResNet) they are added after the
    batch norm, through a 1x1 projection (conv + BN, He et al. 2016 option B) or a
    parameter-free subsample-and-zero-pad (option A) where shapes differ.
    ``bias`` defaults to "no bias when batch norm follows".
    """

    filter_height: int = 3
    filter_width: int = 3
    stride: int = 1
    filters: int = 32
    padding: int | str = "same"
    activation: str = "relu"
    batch_norm: bool = True
    bias: bool | None = None
    pool: Pool | None = None
    skips: tuple[int, ...] = ()
    combine: str = "concat"
    shortcut: str = "projection"

    @property
    def has_bias(self) -> bool:
        return (not self.batch_norm) if self.bias is None else self.bias

    @property
    def padding_hw(self) -> tuple[int, int]:
        if self.padding == "same":
            return (self.filter_height - 1) // 2, (self.filter_width - 1) // 2
        if self.padding == "valid":
            return 0, 0
        return int(self.padding), int(self.padding)


@dataclass(frozen=True)
class Head:
    """Classifier: global average pooling or flatten, hidden dense layers, classifier.

    Dropout (when ``dropout > 0``) is applied to the input of the classifier and
    after every hidden layer's activation, as in VGG's classifier.
    """

    pool: str = "avg"
    dense: tuple[int, ...] = ()
    dropout: float = 0.0
    activation: str = "relu"


@dataclass(frozen=True)
class Arch:
    """A macro architecture (Zoph & Le 2017): conv layers with skips, and a head."""

    layers: tuple[ConvLayer, ...]
    head: Head = field(default_factory=Head)
    name: str | None = None

    kind: ClassVar[str] = "macro"


# --------------------------------------------------------------- serialisation


def _check_keys(data: Any, allowed: set[str], where: str) -> dict:
    if not isinstance(data, dict):
        raise InvalidArchitecture(f"{where} must be a JSON object, not {type(data).__name__}")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise InvalidArchitecture(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}; "
                                  f"expected some of {', '.join(sorted(allowed))}")
    return data


def _int(value: Any, where: str, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArchitecture(f"{where} must be an integer, not {value!r}")
    if maximum is None and value < minimum:
        raise InvalidArchitecture(f"{where} must be >= {minimum}, not {value}")
    if maximum is not None and not minimum <= value <= maximum:
        raise InvalidArchitecture(f"{where} must be in {minimum}..{maximum}, not {value}")
    return value


# Upper bounds far beyond any published CNN (AlexNet's 11x11 filters, ResNet's 2,048
# channels, VGG's 4,096-wide dense layers), so that a typo such as 1e8 filters is a
# clear error instead of an attempt to allocate gigabytes.
MAX_LAYERS = 1024
MAX_FILTER_SIZE = 64
MAX_STRIDE = 64
MAX_PADDING = 64
MAX_FILTERS = 16_384
MAX_DENSE = 65_536


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidArchitecture(f"{where} must be true or false, not {value!r}")
    return value


def _choice(value: Any, choices: tuple[str, ...], where: str) -> str:
    if value not in choices:
        raise InvalidArchitecture(f"{where} must be one of {', '.join(choices)}, not {value!r}")
    return value


def _pool_to_dict(pool: Pool) -> dict:
    return {"kind": pool.kind, "size": pool.size, "stride": pool.stride, "padding": pool.padding}


def _pool_from_dict(data: Any, where: str) -> Pool | None:
    if data is None:
        return None
    data = _check_keys(data, {"kind", "size", "stride", "padding"}, where)
    stride = data.get("stride")
    return Pool(
        kind=_choice(data.get("kind", "max"), POOL_KINDS, f"{where}.kind"),
        size=_int(data.get("size", 2), f"{where}.size", 1),
        stride=None if stride is None else _int(stride, f"{where}.stride", 1),
        padding=_int(data.get("padding", 0), f"{where}.padding", 0),
    )


_LAYER_FIELDS = {"filter_height", "filter_width", "stride", "filters", "padding", "activation",
                 "batch_norm", "bias", "pool", "skips", "combine", "shortcut"}


def _layer_to_dict(layer: ConvLayer) -> dict:
    return {
        "filter_height": layer.filter_height, "filter_width": layer.filter_width,
        "stride": layer.stride, "filters": layer.filters, "padding": layer.padding,
        "activation": layer.activation, "batch_norm": layer.batch_norm, "bias": layer.bias,
        "pool": None if layer.pool is None else _pool_to_dict(layer.pool),
        "skips": list(layer.skips), "combine": layer.combine, "shortcut": layer.shortcut,
    }


def _layer_from_dict(data: Any, where: str) -> ConvLayer:
    data = _check_keys(data, _LAYER_FIELDS, where)
    default = ConvLayer()
    padding = data.get("padding", default.padding)
    if isinstance(padding, str):
        _choice(padding, ("same", "valid"), f"{where}.padding")
    else:
        _int(padding, f"{where}.padding", 0)
    bias = data.get("bias")
    skips = data.get("skips", [])
    if not isinstance(skips, (list, tuple)):
        raise InvalidArchitecture(f"{where}.skips must be a list of layer indices, not {skips!r}")
    return ConvLayer(
        filter_height=_int(data.get("filter_height", default.filter_height), f"{where}.filter_height", 1),
        filter_width=_int(data.get("filter_width", default.filter_width), f"{where}.filter_width", 1),
        stride=_int(data.get("stride", default.stride), f"{where}.stride", 1),
        filters=_int(data.get("filters", default.filters), f"{where}.filters", 1),
        padding=padding,
        activation=_choice(data.get("activation", default.activation), ACTIVATIONS, f"{where}.activation"),
        batch_norm=_bool(data.get("batch_norm", default.batch_norm), f"{where}.batch_norm"),
        bias=None if bias is None else _bool(bias, f"{where}.bias"),
        pool=_pool_from_dict(data.get("pool"), f"{where}.pool"),
        skips=tuple(_int(s, f"{where}.skips[{k}]", 0) for k, s in enumerate(skips)),
        combine=_choice(data.get("combine", default.combine), COMBINE_MODES, f"{where}.combine"),
        shortcut=_choice(data.get("shortcut", default.shortcut), SHORTCUTS, f"{where}.shortcut"),
    )


def _head_from_dict(data: Any) -> Head:
    if data is None:
        return Head()
    data = _check_keys(data, {"pool", "dense", "dropout", "activation"}, "head")
    dense = data.get("dense", [])
    if not isinstance(dense, (list, tuple)):
        raise InvalidArchitecture(f"head.dense must be a list of layer widths, not {dense!r}")
    dropout = data.get("dropout", 0.0)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise InvalidArchitecture(f"head.dropout must be a number in [0, 1), not {dropout!r}")
    return Head(
        pool=_choice(data.get("pool", "avg"), HEAD_POOLS, "head.pool"),
        dense=tuple(_int(w, f"head.dense[{k}]", 1) for k, w in enumerate(dense)),
        dropout=float(dropout),
        activation=_choice(data.get("activation", "relu"), ACTIVATIONS, "head.activation"),
    )


def arch_to_dict(arch) -> dict:
    """The JSON-ready dict of an :class:`Arch` or a ``CellArch`` (with kind and version)."""
    if isinstance(arch, Arch):
        return {
            "kind": "macro",
            "version": SPEC_VERSION,
            "name": arch.name,
            "layers": [_layer_to_dict(layer) for layer in arch.layers],
            "head": {"pool": arch.head.pool, "dense": list(arch.head.dense),
                     "dropout": arch.head.dropout, "activation": arch.head.activation},
        }
    from search_spaces.cell import CellArch

    if isinstance(arch, CellArch):
        return {"kind": "cell", "version": SPEC_VERSION, "cell": arch.to_string(),
                "cells_per_stage": arch.cells_per_stage, "channels": arch.channels}
    raise TypeError(f"not an architecture: {type(arch).__name__}")


def arch_from_dict(data: Any):
    """Inverse of :func:`arch_to_dict`; raises :class:`InvalidArchitecture` on malformed input."""
    if not isinstance(data, dict):
        raise InvalidArchitecture(f"an architecture must be a JSON object, not {type(data).__name__}")
    kind = data.get("kind", "cell" if "cell" in data else "macro")
    version = data.get("version", SPEC_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidArchitecture(f"version must be a positive integer, not {version!r}")
    if version > SPEC_VERSION:
        raise InvalidArchitecture(f"architecture spec version {version} is newer than this "
                                  f"nasbench understands (version {SPEC_VERSION})")
    if kind == "cell":
        from search_spaces.cell import CellArch

        data = _check_keys(data, {"kind", "version", "cell", "cells_per_stage", "channels"}, "cell architecture")
        if not isinstance(data.get("cell"), str):
            raise InvalidArchitecture("cell architecture needs 'cell': a NAS-Bench-201 string "
                                      "such as '|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...|'")
        return CellArch.from_string(
            data["cell"],
            cells_per_stage=data.get("cells_per_stage", 5),  # CellArch checks them
            channels=data.get("channels", 16),
        )
    if kind != "macro":
        raise InvalidArchitecture(f"kind must be 'macro' or 'cell', not {kind!r}")
    data = _check_keys(data, {"kind", "version", "name", "layers", "head"}, "architecture")
    layers = data.get("layers")
    if not isinstance(layers, (list, tuple)) or not layers:
        raise InvalidArchitecture("architecture needs 'layers': a non-empty list of conv layers")
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise InvalidArchitecture(f"name must be a string, not {name!r}")
    arch = Arch(
        layers=tuple(_layer_from_dict(layer, f"layer {i}") for i, layer in enumerate(layers)),
        head=_head_from_dict(data.get("head")),
        name=name,
    )
    check_structure(arch)
    return arch


def arch_to_json(arch, indent: int | None = None) -> str:
    return json.dumps(arch_to_dict(arch), indent=indent)


def arch_from_json(text: str):
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidArchitecture(f"not valid JSON (line {error.lineno}, column {error.colno}): {error.msg}") from None
    return arch_from_dict(data)


# ------------------------------------------------------------------ validation


def check_structure(arch: Arch) -> None:
    """Checks that need no input shape: field values and skip indices."""
    if not 1 <= len(arch.layers) <= MAX_LAYERS:
        raise InvalidArchitecture(f"an architecture needs 1..{MAX_LAYERS} layers, not {len(arch.layers)}")
    for i, layer in enumerate(arch.layers):
        where = f"layer {i}"
        for name, maximum in (("filter_height", MAX_FILTER_SIZE), ("filter_width", MAX_FILTER_SIZE),
                              ("stride", MAX_STRIDE), ("filters", MAX_FILTERS)):
            _int(getattr(layer, name), f"{where}.{name}", 1, maximum)
        if isinstance(layer.padding, str):
            _choice(layer.padding, ("same", "valid"), f"{where}.padding")
        else:
            _int(layer.padding, f"{where}.padding", 0, MAX_PADDING)
        _choice(layer.activation, ACTIVATIONS, f"{where}.activation")
        _choice(layer.combine, COMBINE_MODES, f"{where}.combine")
        _choice(layer.shortcut, SHORTCUTS, f"{where}.shortcut")
        if layer.pool is not None:
            _choice(layer.pool.kind, POOL_KINDS, f"{where}.pool.kind")
            if layer.pool.padding > layer.pool.size // 2:
                raise InvalidArchitecture(f"{where}: pool padding {layer.pool.padding} must be at most "
                                          f"half the pool size {layer.pool.size}")
        for j in layer.skips:
            if not 0 <= j < i:
                raise InvalidArchitecture(f"{where}: skip from layer {j} must come from an earlier "
                                          f"layer (0..{i - 1})" if i else f"{where}: the first layer "
                                          "cannot take skip connections")
    head = arch.head
    _choice(head.pool, HEAD_POOLS, "head.pool")
    _choice(head.activation, ACTIVATIONS, "head.activation")
    for k, width in enumerate(head.dense):
        _int(width, f"head.dense[{k}]", 1, MAX_DENSE)
    if not 0.0 <= head.dropout < 1.0:
        raise InvalidArchitecture(f"head.dropout must be in [0, 1), not {head.dropout}")


def conv_output_size(n: int, f: int, s: int, p: int) -> int:
    """``(n + 2p - f) // s + 1``: the output size of a convolution or pooling window."""
    return (n + 2 * p - f) // s + 1


def zero_pad_stride(source: int, target: int) -> int | None:
    """The stride whose subsampling ``x[::s]`` maps ``source`` pixels to ``target``, if any."""
    if target > source:
        return None
    stride = math.ceil(source / target)
    return stride if math.ceil(source / stride) == target else None


@dataclass(frozen=True)
class LayerShapes:
    """Shapes around one layer, as (channels, height, width)."""

    input: tuple[int, int, int]       # after concatenating skips, the conv's input
    conv: tuple[int, int, int]        # after the convolution
    output: tuple[int, int, int]      # after pooling: what later layers see


def check_input_shape(input_shape) -> tuple[int, int, int]:
    try:
        c, h, w = (int(v) for v in input_shape)
    except (TypeError, ValueError):
        raise InvalidArchitecture(f"input shape must be (channels, height, width), not {input_shape!r}") from None
    if min(c, h, w) < 1:
        raise InvalidArchitecture(f"input shape must be positive, not {c}x{h}x{w}")
    return c, h, w


def infer_shapes(arch: Arch, input_shape) -> list[LayerShapes]:
    """Run the shape arithmetic through every layer; raise on the first collapse."""
    check_structure(arch)
    shape = check_input_shape(input_shape)
    outputs: list[tuple[int, int, int]] = []
    result = []
    for i, layer in enumerate(arch.layers):
        c, h, w = shape
        skips = sorted(set(layer.skips))
        if layer.combine == "concat":
            c += sum(outputs[j][0] for j in skips if j != i - 1)
        ph, pw = layer.padding_hw
        oh = conv_output_size(h, layer.filter_height, layer.stride, ph)
        ow = conv_output_size(w, layer.filter_width, layer.stride, pw)
        if oh < 1 or ow < 1:
            raise InvalidArchitecture(
                f"layer {i}: feature map collapses to {max(oh, 0)}x{max(ow, 0)} ({h}x{w} input, "
                f"{layer.filter_height}x{layer.filter_width} filter, stride {layer.stride}, "
                f"padding {ph if ph == pw else f'{ph}x{pw}'})")
        conv = (layer.filters, oh, ow)
        if layer.combine == "add":
            for j in skips:
                sc, sh, sw = outputs[j] if j >= 0 else shape
                if layer.shortcut == "zero_pad" and (sc, sh, sw) != conv:
                    if sc > layer.filters or zero_pad_stride(sh, oh) is None or zero_pad_stride(sw, ow) is None:
                        raise InvalidArchitecture(
                            f"layer {i}: a zero-padding shortcut cannot map layer {j}'s {sc}x{sh}x{sw} "
                            f"output onto {layer.filters}x{oh}x{ow}; use shortcut 'projection'")
        out = conv
        if layer.pool is not None:
            pool = layer.pool
            qh = conv_output_size(oh, pool.size, pool.effective_stride, pool.padding)
            qw = conv_output_size(ow, pool.size, pool.effective_stride, pool.padding)
            if qh < 1 or qw < 1:
                raise InvalidArchitecture(
                    f"layer {i}: pooling collapses the feature map to {max(qh, 0)}x{max(qw, 0)} "
                    f"({oh}x{ow} input, {pool.size}x{pool.size} {pool.kind} pool, "
                    f"stride {pool.effective_stride}, padding {pool.padding})")
            out = (layer.filters, qh, qw)
        result.append(LayerShapes(input=(c, h, w), conv=conv, output=out))
        outputs.append(out)
        shape = out
    return result


def head_features(arch: Arch, last_shape: tuple[int, int, int]) -> int:
    c, h, w = last_shape
    return c if arch.head.pool == "avg" else c * h * w


def validate(arch, input_shape) -> None:
    """Raise :class:`InvalidArchitecture` if ``arch`` cannot run on ``input_shape`` (C, H, W)."""
    if isinstance(arch, Arch):
        infer_shapes(arch, input_shape)
        return
    from search_spaces.cell import CellArch, validate_cell

    if isinstance(arch, CellArch):
        validate_cell(arch, input_shape)
        return
    raise InvalidArchitecture(f"not an architecture: {type(arch).__name__}")
