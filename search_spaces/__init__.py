"""Architecture encodings and model builders.

The vocabulary of nasbench: the macro spec (:class:`Arch`, Zoph & Le 2017), the
NAS-Bench-201 cell (:class:`CellArch`), their JSON form and canonical hash, the search
spaces that sample them from an Optuna trial, classic models by name, and a per-layer
profile (shapes, parameters, MACs, receptive field). Knows nothing of Ray, MLflow or
attacks.
"""

from search_spaces.arch import (
    SPEC_VERSION,
    Arch,
    ConvLayer,
    Head,
    InvalidArchitecture,
    Pool,
    arch_from_dict,
    arch_from_json,
    arch_to_dict,
    arch_to_json,
    infer_shapes,
    validate,
)
from search_spaces.builder import build, build_model
from search_spaces.cell import OPS as CELL_OPS
from search_spaces.cell import CellArch, all_cells
from search_spaces.classic import UnknownModel, classic_arch, create_model, list_models
from search_spaces.describe import Description, LayerProfile, Latency, describe, measure_latency
from search_spaces.hashing import arch_hash, canonical_form
from search_spaces.layers import Normalize
from search_spaces.macro import CellSpace, MacroSpace, get_space

__all__ = [
    "SPEC_VERSION", "Arch", "ConvLayer", "Head", "Pool", "CellArch", "CELL_OPS", "InvalidArchitecture",
    "UnknownModel", "arch_to_dict", "arch_from_dict", "arch_to_json", "arch_from_json", "validate",
    "infer_shapes", "arch_hash", "canonical_form", "build", "build_model", "get_space", "MacroSpace", "CellSpace",
    "all_cells", "create_model", "list_models", "classic_arch", "describe", "Description", "LayerProfile",
    "Latency", "measure_latency", "Normalize",
]
