"""The macro kind: Zoph & Le's (ICLR 2017) chain of conv layers with skips, and a head.

Behind this face: :mod:`.spec` (the frozen dataclasses), :mod:`.serialize` (to and
from dicts), :mod:`.shapes` (validity by shape arithmetic), :mod:`.network` (the torch
module), :mod:`.canonical` (the form that equivalent specs share) and :mod:`.space`
(the define-by-run search space). Importing it registers the kind ``"macro"``.
"""

from __future__ import annotations

from search_spaces.kinds import ArchKind, register_kind
from search_spaces.macro.canonical import macro_canonical_form
from search_spaces.macro.network import MacroNet, build_macro
from search_spaces.macro.serialize import head_from_dict, macro_from_dict, macro_to_dict
from search_spaces.macro.shapes import (
    LayerShapes,
    check_structure,
    conv_output_size,
    head_features,
    infer_shapes,
    validate_macro,
    zero_pad_stride,
)
from search_spaces.macro.space import MacroSpace
from search_spaces.macro.spec import (
    ACTIVATIONS,
    COMBINE_MODES,
    HEAD_POOLS,
    POOL_KINDS,
    SHORTCUTS,
    Arch,
    ConvLayer,
    Head,
    Pool,
)

__all__ = [
    "ACTIVATIONS", "COMBINE_MODES", "HEAD_POOLS", "POOL_KINDS", "SHORTCUTS", "Arch", "ConvLayer", "Head", "Pool",
    "LayerShapes", "MacroNet", "MacroSpace", "check_structure", "conv_output_size", "head_features",
    "head_from_dict", "infer_shapes", "zero_pad_stride",
]  # fmt: skip


def _display_name(arch: Arch) -> str:
    return arch.name or "macro"


MACRO = register_kind(
    ArchKind(
        name="macro",
        spec_type=Arch,
        to_dict=macro_to_dict,
        from_dict=macro_from_dict,
        validate=validate_macro,
        build=build_macro,
        canonical_form=macro_canonical_form,
        display_name=_display_name,
    )
)
