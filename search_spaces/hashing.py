"""Canonical hashing: equivalent architectures share one hash.

NAS-Bench users drown in isomorphic duplicates (Dong & Yang 2020 find 6,466 unique
cells among NAS-Bench-201's 15,625), so
the store and the search deduplicate on :func:`arch_hash`, which hashes a canonical
form that forgets everything that does not change the computed function.
"""

from __future__ import annotations

import hashlib
import json

from search_spaces.arch import Arch, check_structure
from search_spaces.cell import CellArch


def _canonical_pool(pool) -> dict | None:
    if pool is None:
        return None
    stride = pool.effective_stride
    if pool.size == 1 and stride == 1 and pool.padding == 0:
        return None  # a 1x1 window with stride 1 is the identity, max or average
    return {"kind": pool.kind, "size": pool.size, "stride": stride, "padding": pool.padding}


def _keeps_size(layer, with_pool: bool) -> bool:
    """The layer maps every input size to itself: a stride-1 convolution padded by
    (f - 1) / 2 on each side and, when ``with_pool``, no pooling after it."""
    (ph, pw), (fh, fw) = layer.padding_hw, (layer.filter_height, layer.filter_width)
    same = layer.stride == 1 and 2 * ph == fh - 1 and 2 * pw == fw - 1
    return same and (not with_pool or _canonical_pool(layer.pool) is None)


def _shortcut_matters(layers, i: int, skips: list[int]) -> bool:
    """Whether an added skip into layer ``i`` needs its shortcut (projection or zero
    padding): only where some source's shape differs from the layer's convolution output.
    Decided without an input shape, so only where the layers in between keep every size."""
    for j in skips:
        between_keep_size = all(_keeps_size(layers[k], with_pool=True) for k in range(j + 1, i))
        if not (layers[j].filters == layers[i].filters and between_keep_size
                and _keeps_size(layers[i], with_pool=False)):
            return True
    return False


def canonical_form(arch) -> dict:
    """A JSON-ready dict that is equal for equivalent architectures.

    Macro: defaults resolved (``"same"`` padding, bias), skips sorted and deduplicated,
    a concatenated skip from the previous layer (already the main input) dropped,
    irrelevant fields (combine/shortcut without skips, the shortcut of added skips whose
    shapes already match, head activation without hidden layers, trivial pooling)
    blanked, the name left out. Cell: NAS-Bench-201's
    ``to_unique_str(consider_zero=True)`` plus the skeleton size.
    """
    if isinstance(arch, CellArch):
        return {"kind": "cell", "cell": arch.unique_str(), "cells_per_stage": arch.cells_per_stage,
                "channels": arch.channels}
    if not isinstance(arch, Arch):
        raise TypeError(f"not an architecture: {type(arch).__name__}")
    check_structure(arch)
    layers = []
    for i, layer in enumerate(arch.layers):
        skips = sorted(set(layer.skips))
        if layer.combine == "concat":
            skips = [j for j in skips if j != i - 1]
        layers.append({
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
            "shortcut": layer.shortcut if skips and layer.combine == "add" and
            _shortcut_matters(arch.layers, i, skips) else None,
        })
    head = arch.head
    return {
        "kind": "macro",
        "layers": layers,
        "head": {"pool": head.pool, "dense": list(head.dense), "dropout": float(head.dropout),
                 "activation": head.activation if head.dense else None},
    }


def arch_hash(arch) -> str:
    """SHA-256 (hex) of :func:`canonical_form`: equal for equivalent architectures."""
    text = json.dumps(canonical_form(arch), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
