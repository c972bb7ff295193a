"""Architecture encodings and model builders.

The vocabulary of nasbench: the macro spec (:class:`Arch`, Zoph & Le 2017), the
NAS-Bench-201 cell (:class:`CellArch`), their JSON form and canonical hash, the search
spaces that sample them from an Optuna trial, classic models by name, and a per-layer
profile (shapes, parameters, MACs, receptive field). Knows nothing of Ray, MLflow or
attacks.

Where things live: :mod:`.kinds` is the registry of architecture kinds and every
operation on a spec (to and from dicts, validate, build, hash); each kind is a package
(:mod:`.macro`, :mod:`.cell`) that registers itself on import; :mod:`.spaces` names the
search spaces; :mod:`.classic` the classic models; :mod:`.describe` profiles a model.
"""

from search_spaces.cell import OPS as CELL_OPS
from search_spaces.cell import CellArch, CellSpace, all_cells
from search_spaces.classic import UnknownModel, classic_arch, create_model, list_models
from search_spaces.describe import Description, LayerProfile, describe
from search_spaces.errors import InvalidArchitecture, NotAnArchitecture
from search_spaces.kinds import (
    SPEC_VERSION,
    arch_from_dict,
    arch_from_json,
    arch_hash,
    arch_to_dict,
    arch_to_json,
    build,
    build_model,
    canonical_form,
    validate,
)
from search_spaces.latency import Latency, measure_latency
from search_spaces.layers import Normalize
from search_spaces.macro import Arch, ConvLayer, Head, MacroSpace, Pool, infer_shapes
from search_spaces.spaces import get_space

__all__ = [
    "SPEC_VERSION", "Arch", "ConvLayer", "Head", "Pool", "CellArch", "CELL_OPS", "InvalidArchitecture",
    "NotAnArchitecture", "UnknownModel", "arch_to_dict", "arch_from_dict", "arch_to_json", "arch_from_json",
    "validate", "infer_shapes", "arch_hash", "canonical_form", "build", "build_model", "get_space", "MacroSpace",
    "CellSpace", "all_cells", "create_model", "list_models", "classic_arch", "describe", "Description",
    "LayerProfile", "Latency", "measure_latency", "Normalize",
]  # fmt: skip
