"""Checkpoints as weights plus JSON: nothing in them is ever unpickled.

A checkpoint is a directory holding

- ``model.safetensors``: the state dict of the normalised model (safetensors: a header
  and raw tensors, no code);
- ``arch.json``: the model spec (see ``nasbench.models``);
- ``meta.json``: input shape, classes, normalisation statistics, dataset, metrics.

The dataset is recorded twice (see :func:`dataset_meta`): ``dataset``, the name as given
(the benchmark store's key), and ``data``, what loads it again from any folder. Commands
that evaluate a checkpoint default to that dataset (:func:`recorded_dataset`).

Loading rebuilds the network from ``arch.json`` and loads the weights into it. A
``model.pt`` state dict is accepted too, read with ``torch.load(weights_only=True)``,
which refuses any pickle that would run code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from nasbench.config import read_json
from nasbench.errors import UserError

WEIGHTS = "model.safetensors"
LEGACY_WEIGHTS = "model.pt"


def _write_atomically(path: Path, write) -> None:
    """Write to a temporary sibling and rename, so a crash never leaves half a file."""
    temporary = path.with_name(f".{path.name}.tmp")
    write(temporary)
    os.replace(temporary, path)


def dataset_meta(dataset) -> dict:
    """The meta.json entries naming a ``nasbench.data.Dataset``: ``dataset`` (its name as
    given) and ``data`` (``{"dataset": the name with an absolute path, "data_dir": the
    absolute folder of a torchvision dataset or None}``), which later commands load."""
    from nasbench.data import absolute_dataset_name

    return {
        "dataset": dataset.name,
        "data": {"dataset": absolute_dataset_name(dataset.name), "data_dir": dataset.data_dir},
    }


def recorded_dataset(meta: dict) -> dict | None:
    """``{"dataset", "data_dir"}`` a checkpoint's model was trained on, from its meta; a
    checkpoint written before ``data`` was recorded gives its ``dataset`` name as it was
    typed (a relative path then means one from the current folder). None when unknown."""
    data = meta.get("data")
    if isinstance(data, dict) and isinstance(data.get("dataset"), str) and data["dataset"]:
        data_dir = data.get("data_dir")
        return {"dataset": data["dataset"], "data_dir": data_dir if isinstance(data_dir, str) else None}
    if isinstance(meta.get("dataset"), str) and meta["dataset"]:
        return {"dataset": meta["dataset"], "data_dir": None}
    return None


def save_checkpoint(directory: str | Path, model: nn.Module, arch: dict, meta: dict) -> Path:
    from safetensors.torch import save_model

    for key in ("input_shape", "num_classes", "mean", "std"):
        if key not in meta:
            raise ValueError(f"checkpoint meta needs '{key}'")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model = model.to("cpu")
    _write_atomically(directory / WEIGHTS, lambda p: save_model(model, str(p)))
    for name, data in (("arch.json", arch), ("meta.json", meta)):
        _write_atomically(directory / name, lambda p, d=data: p.write_text(json.dumps(d, indent=2, default=str)))
    return directory


def load_checkpoint(directory: str | Path, device: str = "cpu") -> tuple[nn.Module, dict, dict]:
    """Rebuild a checkpoint's model (in eval mode) -> ``(model, arch, meta)``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    from nasbench.models import build_from_spec
    from search_spaces import Normalize

    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(f"checkpoint {directory} is not a directory (expected {WEIGHTS}, arch.json, meta.json)")
    arch = read_json(directory / "arch.json", "checkpoint file")
    meta = read_json(directory / "meta.json", "checkpoint file")
    try:
        network = build_from_spec(arch, tuple(meta["input_shape"]), int(meta["num_classes"]))
        model = nn.Sequential(Normalize(meta["mean"], meta["std"]), network)
    except (KeyError, TypeError, ValueError) as error:
        raise UserError(f"checkpoint {directory}: meta.json/arch.json do not describe a model ({error})") from None

    weights = directory / WEIGHTS
    try:
        if weights.exists():
            load_model(model, str(weights), strict=True, device=device)
        elif (directory / LEGACY_WEIGHTS).exists():
            state = torch.load(directory / LEGACY_WEIGHTS, map_location=device, weights_only=True)
            model.load_state_dict(state, strict=True)
        else:
            raise UserError(f"checkpoint {directory}: no {WEIGHTS} (or {LEGACY_WEIGHTS})")
    except UserError:
        raise
    except (SafetensorError, OSError, RuntimeError, ValueError, EOFError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(
            f"checkpoint {directory}: weights cannot be loaded safely or do not match "
            f"the architecture ({first_line[:200]})"
        ) from None
    except Exception as error:  # pickle.UnpicklingError and friends from a hostile model.pt
        raise UserError(f"checkpoint {directory}: refused to load weights ({type(error).__name__})") from None
    return model.to(device).eval(), arch, meta
