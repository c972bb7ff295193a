"""The macro spec to and from its JSON-ready dict, every field checked on the way in."""

from __future__ import annotations

from typing import Any

from search_spaces.errors import InvalidArchitecture
from search_spaces.fields import boolean, check_keys, choice, integer
from search_spaces.macro.shapes import check_structure
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
    Pool,
)

_ARCH_FIELDS = {"kind", "version", "name", "layers", "head"}
_POOL_FIELDS = {"kind", "size", "stride", "padding"}
_LAYER_FIELDS = {
    "filter_height", "filter_width", "stride", "filters", "padding", "activation",
    "batch_norm", "bias", "pool", "skips", "combine", "shortcut",
}  # fmt: skip
_HEAD_FIELDS = {"pool", "dense", "dropout", "activation"}


def macro_to_dict(arch: Arch) -> dict[str, Any]:
    """The fields of ``arch`` as plain JSON values (the registry adds kind and version)."""
    head = arch.head
    return {
        "name": arch.name,
        "layers": [layer_to_dict(layer) for layer in arch.layers],
        "head": {"pool": head.pool, "dense": list(head.dense), "dropout": head.dropout, "activation": head.activation},
    }


def layer_to_dict(layer: ConvLayer) -> dict[str, Any]:
    """One layer as plain JSON values."""
    pool = layer.pool
    return {
        "filter_height": layer.filter_height,
        "filter_width": layer.filter_width,
        "stride": layer.stride,
        "filters": layer.filters,
        "padding": layer.padding,
        "activation": layer.activation,
        "batch_norm": layer.batch_norm,
        "bias": layer.bias,
        "pool": None if pool is None else {"kind": pool.kind, "size": pool.size, "stride": pool.stride,
                                           "padding": pool.padding},
        "skips": list(layer.skips),
        "combine": layer.combine,
        "shortcut": layer.shortcut,
    }  # fmt: skip


def macro_from_dict(data: dict[str, Any]) -> Arch:
    """Inverse of :func:`macro_to_dict`; raises :class:`InvalidArchitecture` on malformed input."""
    data = check_keys(data, _ARCH_FIELDS, "architecture")
    layers = data.get("layers")
    if not isinstance(layers, (list, tuple)) or not layers:
        raise InvalidArchitecture("architecture needs 'layers': a non-empty list of conv layers")
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise InvalidArchitecture(f"name must be a string, not {name!r}")
    arch = Arch(
        layers=tuple(layer_from_dict(layer, f"layer {i}") for i, layer in enumerate(layers)),
        head=head_from_dict(data.get("head")),
        name=name,
    )
    check_structure(arch)
    return arch


def pool_from_dict(data: Any, where: str) -> Pool | None:
    """A layer's ``pool`` field: null or a pooling window."""
    if data is None:
        return None
    data = check_keys(data, _POOL_FIELDS, where)
    stride = data.get("stride")
    return Pool(
        kind=choice(data.get("kind", "max"), POOL_KINDS, f"{where}.kind"),
        size=integer(data.get("size", 2), f"{where}.size", 1),
        stride=None if stride is None else integer(stride, f"{where}.stride", 1),
        padding=integer(data.get("padding", 0), f"{where}.padding", 0),
    )


def _padding(value: Any, where: str) -> int | str:
    if isinstance(value, str):
        return choice(value, PADDINGS, where)
    return integer(value, where, 0)


def layer_from_dict(data: Any, where: str) -> ConvLayer:
    """One layer; fields left out take :class:`ConvLayer`'s defaults."""
    data = check_keys(data, _LAYER_FIELDS, where)
    default = ConvLayer()
    bias = data.get("bias")
    skips = data.get("skips", [])
    if not isinstance(skips, (list, tuple)):
        raise InvalidArchitecture(f"{where}.skips must be a list of layer indices, not {skips!r}")

    def number(key: str, minimum: int) -> int:
        return integer(data.get(key, getattr(default, key)), f"{where}.{key}", minimum)

    def one_of(key: str, choices: tuple[str, ...]) -> str:
        return choice(data.get(key, getattr(default, key)), choices, f"{where}.{key}")

    return ConvLayer(
        filter_height=number("filter_height", 1),
        filter_width=number("filter_width", 1),
        stride=number("stride", 1),
        filters=number("filters", 1),
        padding=_padding(data.get("padding", default.padding), f"{where}.padding"),
        activation=one_of("activation", ACTIVATIONS),
        batch_norm=boolean(data.get("batch_norm", default.batch_norm), f"{where}.batch_norm"),
        bias=None if bias is None else boolean(bias, f"{where}.bias"),
        pool=pool_from_dict(data.get("pool"), f"{where}.pool"),
        skips=tuple(integer(s, f"{where}.skips[{k}]", 0) for k, s in enumerate(skips)),
        combine=one_of("combine", COMBINE_MODES),
        shortcut=one_of("shortcut", SHORTCUTS),
    )


def head_from_dict(data: Any) -> Head:
    """The ``head`` field (also a search space's ``head`` option); null is the default head."""
    if data is None:
        return Head()
    data = check_keys(data, _HEAD_FIELDS, "head")
    dense = data.get("dense", [])
    if not isinstance(dense, (list, tuple)):
        raise InvalidArchitecture(f"head.dense must be a list of layer widths, not {dense!r}")
    dropout = data.get("dropout", 0.0)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise InvalidArchitecture(f"head.dropout must be a number in [0, 1), not {dropout!r}")
    return Head(
        pool=choice(data.get("pool", "avg"), HEAD_POOLS, "head.pool"),
        dense=tuple(integer(w, f"head.dense[{k}]", 1) for k, w in enumerate(dense)),
        dropout=float(dropout),
        activation=choice(data.get("activation", "relu"), ACTIVATIONS, "head.activation"),
    )
