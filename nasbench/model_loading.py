"""Models to evaluate, from what a user names: a classic model name or architecture JSON
(trained once and cached), a checkpoint directory, ``runs:/RUN_ID`` or ``models:/NAME@ALIAS``.

:func:`load_model` turns one source into a model and a :class:`ModelInfo`;
:func:`load_models` loads several under distinct labels. A checkpoint records the data it
was trained on, so checkpoints are loaded before any data (:func:`load_saved_models`),
:func:`choose_dataset` picks the data of the evaluation from them, and :func:`check_fits`
refuses a model that cannot take that data's images or predict its classes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from nasbench.errors import UserError

if TYPE_CHECKING:  # the data module loads torchvision: only when data is loaded
    from nasbench.data import Dataset

__all__ = [
    "MODEL_URI_PREFIXES",
    "DataChoice",
    "ModelInfo",
    "check_fits",
    "choose_dataset",
    "load_chosen_dataset",
    "load_model",
    "load_models",
    "load_saved_models",
    "model_source",
    "safe_label",
]

MODEL_URI_PREFIXES = ("runs:/", "models:/")


def safe_label(text: str) -> str:
    """A label usable as a folder name: anything but letters, digits, '.', '_', '-' becomes '_'."""
    label = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._") or "model"
    return label[:80]


@dataclass
class ModelInfo:
    """Where an evaluated model came from.

    ``spec`` is the model spec (an architecture dict, or ``{"kind": "classic", "name"}``);
    ``source`` the checkpoint directory or MLflow model URI; ``kind`` "found" for an
    architecture from a search space, "classic" for a classic model; ``meta`` the
    checkpoint's metadata; ``run_id`` the MLflow run that produced the model, if known.
    """

    label: str
    spec: dict
    source: str
    kind: str = "found"
    meta: dict = field(default_factory=dict)
    run_id: str | None = None

    @property
    def store_key(self) -> tuple[str, str, int, int] | None:
        """``(arch_hash, dataset, budget, seed)`` of the benchmark row, for models from a search."""
        meta = self.meta
        if not all(key in meta for key in ("arch_hash", "dataset", "budget", "seed")):
            return None
        try:
            return str(meta["arch_hash"]), str(meta["dataset"]), int(meta["budget"]), int(meta["seed"])
        except (TypeError, ValueError):
            return None


def _kind_of(spec: dict) -> str:
    return "classic" if spec.get("kind") == "classic" else "found"


def check_fits(model_meta: dict, dataset: Dataset, source: str) -> None:
    """A checkpoint must take the dataset's images and predict its classes."""
    from nasbench.checkpoint import recorded_dataset

    recorded = recorded_dataset(model_meta)
    trained_on = f" (it was trained on {recorded['dataset']})" if recorded else ""
    shape = model_meta.get("input_shape")
    if shape is not None and tuple(shape) != tuple(dataset.input_shape):
        raise UserError(
            f"model {source} takes {'x'.join(map(str, shape))} inputs but {dataset.name} images are "
            f"{'x'.join(map(str, dataset.input_shape))}{trained_on}"
        )
    classes = model_meta.get("num_classes")
    if classes is not None and int(classes) != dataset.num_classes:
        raise UserError(
            f"model {source} predicts {classes} classes but {dataset.name} has {dataset.num_classes}{trained_on}"
        )


@dataclass
class DataChoice:
    """The dataset an evaluation runs on: ``recorded_by`` names the checkpoint whose own
    dataset it is, None when the user named it or it is the default."""

    dataset: str
    data_dir: Path
    recorded_by: str | None = None


def choose_dataset(dataset: str | None, data_dir: Path | None, infos: list[ModelInfo]) -> DataChoice:
    """The dataset to evaluate ``infos``' models on: ``dataset`` when given (with one
    warning line when a checkpoint was trained on another), else the one the checkpoints
    recorded, else ``digits``. Checkpoints of different datasets cannot share one
    evaluation without ``dataset``: UserError."""
    import warnings

    from nasbench.checkpoint import recorded_dataset
    from nasbench.data import absolute_dataset_name
    from nasbench.errors import DoubtfulInput

    recorded: dict[str, tuple[dict, list[str]]] = {}  # absolute name -> (record, sources)
    for info in infos:
        record = recorded_dataset(info.meta)
        if record is not None:
            recorded.setdefault(absolute_dataset_name(record["dataset"]), (record, []))[1].append(info.source)
    if dataset is not None:
        others = [
            f"{name} ({', '.join(sources)})"
            for name, (_, sources) in recorded.items()
            if name != absolute_dataset_name(dataset)
        ]
        if others:
            warnings.warn(
                f"evaluating on {dataset} as asked, not on the data the model was trained on: {'; '.join(others)}",
                DoubtfulInput,
                stacklevel=2,
            )
        return DataChoice(dataset, data_dir or Path("data"))
    if len(recorded) > 1:
        listed = "; ".join(f"{name} ({', '.join(sources)})" for name, (_, sources) in recorded.items())
        raise UserError(
            f"the models were trained on different datasets ({listed}) and one evaluation attacks "
            "them all on the same points: give --dataset, or attack them separately"
        )
    if not recorded:
        return DataChoice("digits", data_dir or Path("data"))
    record, sources = next(iter(recorded.values()))
    return DataChoice(record["dataset"], data_dir or Path(record["data_dir"] or "data"), recorded_by=sources[0])


def load_chosen_dataset(
    choice: DataChoice, *, download: bool = False, seed: int = 0, val_fraction: float = 0.15
) -> Dataset:
    """Load ``choice``; a checkpoint's recorded dataset that is gone is a UserError saying so."""
    from nasbench.data import load_dataset

    try:
        return load_dataset(choice.dataset, choice.data_dir, download, seed, val_fraction)
    except UserError as error:
        if choice.recorded_by is None:
            raise
        raise UserError(
            f"{choice.recorded_by} was trained on {choice.dataset}, which cannot be loaded now "
            f"({error}); give --dataset (and --data-dir) where that data is now"
        ) from None


def _label_for(spec: dict, fallback: str) -> str:
    from nasbench.models import spec_label

    try:
        return safe_label(spec_label(spec))
    except Exception:  # an arch the current search_spaces cannot hash: name it by its source
        return safe_label(fallback)


def _load_checkpoint_dir(directory: Path, dataset: Dataset | None) -> tuple[nn.Module, ModelInfo]:
    from nasbench.checkpoint import load_checkpoint

    model, spec, meta = load_checkpoint(directory)
    if dataset is not None:
        check_fits(meta, dataset, str(directory))
    label = _label_for(spec, directory.name)
    return model, ModelInfo(
        label=label, spec=spec, source=str(directory), kind=_kind_of(spec), meta=meta, run_id=meta.get("mlflow_run_id")
    )


def _model_run_id(uri: str, tracking_uri: str) -> str | None:
    """The run that logged the model a ``runs:/`` or ``models:/`` URI names."""
    if uri.startswith("runs:/"):
        return uri.removeprefix("runs:/").split("/", 1)[0] or None
    from mlflow import MlflowClient

    reference = uri.removeprefix("models:/")
    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        if "@" in reference:
            name, alias = reference.split("@", 1)
            return client.get_model_version_by_alias(name, alias).run_id
        name, _, version = reference.partition("/")
        return client.get_model_version(name, version).run_id if version.isdigit() else None
    except Exception:  # the link is a nicety; the model itself already loaded
        return None


def _load_logged(uri: str, dataset: Dataset | None, tracking_uri: str) -> tuple[nn.Module, ModelInfo]:
    """A model logged by ``nasbench.tracking.log_model``: rebuilt from arch JSON + safetensors."""
    import tempfile

    from mlflow.exceptions import MlflowException

    from nasbench.checkpoint import load_checkpoint
    from nasbench.tracking import download_logged_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        try:
            folder = download_logged_checkpoint(uri, tracking_uri, tmp)
        except MlflowException as error:
            raise UserError(f"cannot load {uri} from {tracking_uri}: {error.message.splitlines()[0]}") from None
        except (ValueError, OSError) as error:
            raise UserError(f"cannot load {uri}: {str(error).splitlines()[0]}") from None
        model, spec, meta = load_checkpoint(folder)
    if dataset is not None:
        check_fits(meta, dataset, uri)
    run_id = _model_run_id(uri, tracking_uri) or meta.get("mlflow_run_id")
    return model.eval(), ModelInfo(
        label=_label_for(spec, uri), spec=spec, source=uri, kind=_kind_of(spec), meta=meta, run_id=run_id
    )


def _train_and_cache(
    spec: dict,
    dataset: Dataset,
    experiment_dir: Path,
    epochs: int,
    seed: int,
    device: str,
    on_epoch: Callable[[dict], None] | None,
) -> tuple[nn.Module, ModelInfo]:
    """Train a named model once per (model, dataset, epochs, seed); later calls reuse the checkpoint."""
    from nasbench.checkpoint import dataset_meta, save_checkpoint
    from nasbench.config import TrainConfig
    from nasbench.models import build_from_spec, spec_label, wrap_normalized
    from nasbench.train import seed_everything, train_model

    name = spec_label(spec)
    directory = experiment_dir / "models" / safe_label(f"{name}-{dataset.name}-e{epochs}-s{seed}")
    if (directory / "meta.json").is_file():
        model, info = _load_checkpoint_dir(directory, dataset)
        info.label = safe_label(name)
        return model, info
    seed_everything(seed)  # the initial weights too: the cache is keyed by seed
    model = wrap_normalized(build_from_spec(spec, dataset.input_shape, dataset.num_classes), dataset)
    config = TrainConfig(epochs=epochs, device=device)
    result = train_model(model, dataset, config, on_epoch=on_epoch, seed=seed)
    meta = {
        **dataset_meta(dataset),
        "input_shape": list(dataset.input_shape),
        "num_classes": dataset.num_classes,
        "class_names": dataset.class_names,
        "mean": list(dataset.mean),
        "std": list(dataset.std),
        "params": sum(p.numel() for p in model.parameters()),
        "val_acc": result.val_acc,
        "test_acc": result.test_acc,
        "history": result.history,
        "train_seconds": result.train_seconds,
        "device": result.device,
        "seed": seed,
        "train_config": config.model_dump(mode="json"),
        "collapse": result.collapse,
    }
    save_checkpoint(directory, result.model, spec, meta)
    model = result.model.to("cpu").eval()
    return model, ModelInfo(label=safe_label(name), spec=spec, source=str(directory), kind=_kind_of(spec), meta=meta)


def load_model(
    source: str,
    dataset: Dataset | None,
    *,
    experiment_dir: str | Path,
    epochs: int = 10,
    seed: int = 0,
    device: str = "auto",
    tracking_uri: str | None = None,
    on_epoch: Callable[[dict], None] | None = None,
) -> tuple[nn.Module, ModelInfo]:
    """Resolve what the user named into ``(model, info)``; the model takes [0, 1] images.

    ``source`` is a checkpoint directory (``nasbench train`` or a search wrote it), a
    ``runs:/RUN_ID[/model]`` or ``models:/NAME@ALIAS`` URI of a model logged with
    ``nasbench.tracking.log_model`` (loaded from safetensors, never unpickled), or a
    classic model name / architecture ``.json``: that one is trained on ``dataset`` for
    ``epochs`` and checkpointed under ``<experiment_dir>/models/``, and the checkpoint
    is reused on the next call. Anything unusable raises :class:`UserError`.

    ``dataset`` None loads a checkpoint or logged model without checking that it fits any
    data (see :func:`choose_dataset` and :func:`check_fits`).
    """
    kind, resolved = model_source(source)
    if kind == "logged":
        from nasbench.tracking import default_tracking_uri

        return _load_logged(resolved, dataset, tracking_uri or default_tracking_uri(Path(experiment_dir)))
    if kind == "checkpoint":
        return _load_checkpoint_dir(resolved, dataset)
    if dataset is None:
        raise ValueError(f"model {source} is trained first, which needs a dataset")
    return _train_and_cache(resolved, dataset, Path(experiment_dir), epochs, seed, device, on_epoch)


def model_source(source: str) -> tuple[str, Any]:
    """What ``source`` names, checked without loading any data: ``("logged", uri)``,
    ``("checkpoint", directory)`` or ``("spec", model spec)``; UserError otherwise."""
    from nasbench.models import resolve_spec

    source = str(source).strip()
    if source.startswith(MODEL_URI_PREFIXES):
        return "logged", source
    path = Path(source).expanduser()
    if path.is_dir():
        return "checkpoint", path
    if path.suffix.lower() != ".json" and (os.sep in source or "/" in source or path.exists()):
        raise UserError(
            f"no checkpoint directory at {source} (expected a folder with model.safetensors, arch.json and meta.json)"
        )
    return "spec", resolve_spec(source)  # a classic name or an architecture JSON; UserError otherwise


def load_saved_models(
    sources: list[str], *, experiment_dir: str | Path, tracking_uri: str | None = None
) -> dict[str, tuple[nn.Module, ModelInfo]]:
    """The checkpoint directories and logged models among ``sources``, loaded before any
    data (their meta says which data they were trained on): ``{source: (model, info)}``."""
    return {
        source: load_model(source, None, experiment_dir=experiment_dir, tracking_uri=tracking_uri)
        for source in sources
        if model_source(source)[0] != "spec"
    }


def load_models(
    sources: list[str],
    dataset: Dataset,
    *,
    loaded: dict[str, tuple[nn.Module, ModelInfo]] | None = None,
    **kwargs: Any,
) -> dict[str, tuple[nn.Module, ModelInfo]]:
    """:func:`load_model` for each source, keyed by label (duplicates get ``-2``, ``-3`` ...).

    ``loaded`` maps sources already loaded without a dataset to their ``(model, info)``:
    they are checked against ``dataset`` instead of being loaded again.
    """
    models: dict[str, tuple[nn.Module, ModelInfo]] = {}
    for source in sources:
        if loaded and source in loaded:
            model, info = loaded[source]
            check_fits(info.meta, dataset, info.source)
            info = replace(info)  # a source named twice gets two labels
        else:
            model, info = load_model(source, dataset, **kwargs)
        label, suffix = info.label, 2
        while label in models:
            label, suffix = f"{info.label}-{suffix}", suffix + 1
        info.label = label
        models[label] = (model, info)
    return models
