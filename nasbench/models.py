"""Model specs: what to build, by name or by architecture, and the normalising wrapper.

A *model spec* is a JSON-able dict naming what to build:

- ``{"kind": "classic", "name": "resnet20"}`` for a model of the classic registry;
- an architecture dict from ``search_spaces`` (``{"kind": "macro", ...}`` or
  ``{"kind": "cell", ...}``) for a point of a search space.

Models built here take [0, 1] images: the dataset's normalisation is their first
layer, so attacks perturb pixels, not normalised values.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from nasbench.config import read_json
from nasbench.errors import UserError


def wrap_normalized(model: nn.Module, dataset) -> nn.Sequential:
    """``nn.Sequential(Normalize(mean, std), model)`` with the dataset's statistics."""
    from search_spaces import Normalize

    return nn.Sequential(Normalize(dataset.mean, dataset.std), model)


def resolve_spec(name_or_path: str) -> dict:
    """A classic model name or a path to an architecture JSON file -> a model spec."""
    from search_spaces import InvalidArchitecture, arch_from_dict, arch_to_dict, list_models

    if name_or_path in list_models():
        return {"kind": "classic", "name": name_or_path}
    path = Path(name_or_path)
    if path.suffix != ".json" and not path.exists():
        raise UserError(
            f"unknown model '{name_or_path}' (choose from {', '.join(list_models())}, "
            "or give an architecture .json file)"
        )
    data = read_json(path, "architecture")
    if data.get("kind") == "classic":  # a checkpoint's arch.json for a classic model
        return checked_classic_spec(data, path)
    try:
        return arch_to_dict(arch_from_dict(data))
    except (InvalidArchitecture, TypeError, KeyError, ValueError) as error:
        raise UserError(f"architecture {path}: {error}") from None


def checked_classic_spec(spec: dict, path: Path) -> dict:
    """``{"kind": "classic", "name": ...}`` read from ``path``, its name a registered model."""
    from search_spaces import list_models

    if spec.get("name") not in list_models():
        raise UserError(
            f"architecture {path}: unknown classic model {spec.get('name')!r} (choose from {', '.join(list_models())})"
        )
    return spec


def spec_label(spec: dict) -> str:
    """A short readable name: the classic model's name, or kind + hash for an architecture."""
    if spec.get("kind") == "classic":
        return spec["name"]
    from search_spaces import arch_from_dict, arch_hash

    return f"{spec.get('kind', 'arch')}-{arch_hash(arch_from_dict(spec))[:10]}"


def build_from_spec(spec: dict, input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """Build the (unnormalised) network a spec names; invalid ones raise UserError."""
    from search_spaces import InvalidArchitecture, arch_from_dict, build_model, create_model

    try:
        if spec.get("kind") == "classic":
            return create_model(spec["name"], tuple(input_shape), num_classes, variant=spec.get("variant", "auto"))
        return build_model(arch_from_dict(spec), tuple(input_shape), num_classes)
    except InvalidArchitecture as error:
        raise UserError(f"invalid architecture for input {'x'.join(map(str, input_shape))}: {error}") from None
