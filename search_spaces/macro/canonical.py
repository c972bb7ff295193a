"""The canonical form of a macro spec: what is left once everything that does not
change the computed function is forgotten, so that equivalent specs hash alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from search_spaces.macro.shapes import check_structure
from search_spaces.macro.spec import Arch, ConvLayer, Pool


def _canonical_pool(pool: Pool | None) -> dict[str, Any] | None:
    if pool is None:
        return None
    stride = pool.effective_stride
    if pool.size == 1 and stride == 1 and pool.padding == 0:
        return None  # a 1x1 window with stride 1 is the identity, max or average
    return {"kind": pool.kind, "size": pool.size, "stride": stride, "padding": pool.padding}


def _keeps_size(layer: ConvLayer, with_pool: bool) -> bool:
    """The layer maps every input size to itself: a stride-1 convolution padded by
    (f - 1) / 2 on each side and, when ``with_pool``, no pooling after it."""
    (ph, pw), (fh, fw) = layer.padding_hw, (layer.filter_height, layer.filter_width)
    same = layer.stride == 1 and 2 * ph == fh - 1 and 2 * pw == fw - 1
    return same and (not with_pool or _canonical_pool(layer.pool) is None)


def _shortcut_matters(layers: Sequence[ConvLayer], i: int, skips: list[int]) -> bool:
    """Whether an added skip into layer ``i`` needs its shortcut (projection or zero
    padding): only where some source's shape differs from the layer's convolution output.
    Decided without an input shape, so only where the layers in between keep every size."""
    for j in skips:
        between_keep_size = all(_keeps_size(layers[k], with_pool=True) for k in range(j + 1, i))
        same_shape = layers[j].filters == layers[i].filters and between_keep_size
        if not (same_shape and _keeps_size(layers[i], with_pool=False)):
            return True
    return False


def _canonical_layer(layers: Sequence[ConvLayer], i: int) -> dict[str, Any]:
    layer = layers[i]
    skips = sorted(set(layer.skips))
    if layer.combine == "concat":
        skips = [j for j in skips if j != i - 1]  # the previous layer is the main input already
    needs_shortcut = bool(skips) and layer.combine == "add" and _shortcut_matters(layers, i, skips)
    return {
        "filter": [layer.filter_height, layer.filter_width],
        "stride": layer.stride,
        "filters": layer.filters,
        "padding": list(layer.padding_hw),
        "activation": layer.activation,
        "batch_norm": layer.batch_norm,
        "bias": layer.has_bias,
        "pool": _canonical_pool(layer.pool),
        "skips": skips,
        "combine": layer.combine if skips else None,
        "shortcut": layer.shortcut if needs_shortcut else None,
    }


def macro_canonical_form(arch: Arch) -> dict[str, Any]:
    """Defaults resolved (``"same"`` padding, bias), skips sorted and deduplicated, a
    concatenated skip from the previous layer (already the main input) dropped,
    irrelevant fields (combine/shortcut without skips, the shortcut of added skips whose
    shapes already match, head activation without hidden layers, trivial pooling)
    blanked, the name left out."""
    check_structure(arch)
    head = arch.head
    return {
        "layers": [_canonical_layer(arch.layers, i) for i in range(len(arch.layers))],
        "head": {
            "pool": head.pool,
            "dense": list(head.dense),
            "dropout": float(head.dropout),
            "activation": head.activation if head.dense else None,
        },
    }
