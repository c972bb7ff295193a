"""Robustness evaluation of trained models: evaluation bundles, MLflow runs and store rows.

The Python API behind ``nasbench attack`` and the demo. :func:`load_model` turns what a
user names (a checkpoint directory, a classic model name, ``runs:/ID`` or
``models:/NAME@ALIAS``) into a model and a :class:`ModelInfo`; :func:`evaluate_models`
attacks every model with :func:`attacks.evaluate` on the same seeded test subset and
writes one *evaluation bundle* per model::

    <experiment_dir>/evaluations/<label>/evaluation.json     the numbers (schema below)
    <experiment_dir>/evaluations/<label>/examples.safetensors clean/adversarial tensors
    <experiment_dir>/evaluations/<label>/grid.png             clean / adversarial / amplified perturbation
    <experiment_dir>/evaluations/transfer.json                transferability matrix (two or more models)

``evaluation.json`` holds ``{"model": {label, spec, source, kind, params, macs,
latency_ms, clean_acc, ...}, "dataset", "n", "seed", "targeted", "report":
RobustnessReport.to_dict(), "corruptions": CorruptionReport.to_dict() or None,
"command", "versions", "git_commit", ...}``; ``nasbench report`` reads nothing else.
With common corruptions asked for (Hendrycks & Dietterich 2019), every model is
evaluated under them on the same points and its corruption errors are computed against
one baseline model of the same evaluation (the mCE); without attacks, ``report`` holds
the clean accuracy alone. The number to report is the per-example worst case over all
attacks (Carlini et al. 2019, "On Evaluating Adversarial Robustness", section 4), which
the engine computes.

When tracking is on, every evaluation is an MLflow run linked to the evaluated model's
run; a model that came out of a search (its checkpoint meta holds ``arch_hash``,
``dataset``, ``budget``, ``seed``) also gets its robust accuracies written to the
experiment's benchmark store.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from nasbench.errors import UserError

if TYPE_CHECKING:
    from nasbench.data import Dataset

__all__ = [
    "EVALUATIONS_DIR",
    "DataChoice",
    "ModelEvaluation",
    "ModelInfo",
    "check_fits",
    "choose_dataset",
    "default_eps",
    "evaluate_models",
    "experiment_path",
    "load_chosen_dataset",
    "load_model",
    "load_models",
    "load_saved_models",
    "read_evaluations",
    "select_examples",
]

EVALUATIONS_DIR = "evaluations"
BUNDLE_FILES = ("evaluation.json", "examples.safetensors", "grid.png")
TRANSFER_FILE = "transfer.json"
BENCHMARK_FILE = "benchmark.db"
MODEL_URI_PREFIXES = ("runs:/", "models:/")

# Sweeps that reach zero robust accuracy. On digits (8x8, 17 grey levels) an undefended
# CNN keeps ~94% under PGD-20 at Linf 8/255, so the CIFAR-style sweep says nothing there:
# greyscale sets get MNIST-style radii (Madry et al. 2018 use 0.3).
GREYSCALE_EPS = "0,0.05,0.1,0.2,0.3"
NATURAL_IMAGE_EPS = "0,1/255,2/255,4/255,8/255"

# Progress of one model's attack batches: (label, batches done, batches in all, what runs).
Progress = Callable[[str, int, int, str], None]


def default_eps(dataset: Dataset) -> str:
    """The default Linf sweep for a dataset: MNIST-style radii for greyscale images (the
    digits, MNIST, Fashion-MNIST, and a user's own greyscale npz or image folder), the
    CIFAR-style sweep for colour images."""
    return GREYSCALE_EPS if dataset.input_shape[0] == 1 else NATURAL_IMAGE_EPS


def parse_one_eps(text: str, option: str) -> float:
    """One radius such as ``8/255`` or ``0.1`` (any norm's range) for ``option``; bad ones are UserErrors."""
    from attacks import AttackConfigError, parse_eps

    try:
        return float(parse_eps(text, "L2"))
    except (AttackConfigError, TypeError) as error:
        raise UserError(f"{option}: {error}") from None


def experiment_path(name: str, root: str | Path = "experiments") -> Path:
    """``<root>/<name>``; the name must be a plain folder name."""
    if not name or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise UserError(f"experiment name {name!r} must be a plain folder name (letters, digits, '.', '_', '-')")
    return Path(root) / name


def safe_label(text: str) -> str:
    """A label usable as a folder name: anything but letters, digits, '.', '_', '-' becomes '_'."""
    label = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._") or "model"
    return label[:80]


# ------------------------------------------------------------------------ models


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


def check_fits(model_meta: dict, dataset, source: str) -> None:
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


def load_chosen_dataset(choice: DataChoice, *, download: bool = False, seed: int = 0, val_fraction: float = 0.15):
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


def _load_checkpoint_dir(directory: Path, dataset) -> tuple[nn.Module, ModelInfo]:
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


def _load_logged(uri: str, dataset, tracking_uri: str) -> tuple[nn.Module, ModelInfo]:
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
    dataset,
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
    dataset,
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
    sources: list[str], dataset, *, loaded: dict[str, tuple[nn.Module, ModelInfo]] | None = None, **kwargs
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


# ------------------------------------------------------------------------ evaluation


@dataclass
class ModelEvaluation:
    """One model's evaluation: the engine's report, where its bundle went, where it was logged."""

    label: str
    info: ModelInfo
    report: Any  # attacks.RobustnessReport
    directory: Path
    record: dict
    mlflow_run_id: str | None = None
    store_status: str | None = None

    @property
    def json_path(self) -> Path:
        return self.directory / "evaluation.json"


def select_examples(split, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A seeded random subset of ``n`` points of ``split`` (all of it when smaller), in index order.

    Every model of an evaluation sees the same points, so their numbers compare.
    """
    if n < 1:
        raise UserError(f"--n must be at least 1, got {n}")
    total = len(split.y)
    if n >= total:
        index = torch.arange(total)
    else:
        generator = torch.Generator().manual_seed(seed)
        index = torch.randperm(total, generator=generator)[:n].sort().values
    return split.x[index], split.y[index], index


def _versions() -> dict[str, Any]:
    from nasbench.store import collect_provenance

    return collect_provenance()


def command_line(argv: list[str] | None = None) -> str | None:
    """The command as typed: ``argv`` when given, else this process's own when it is the
    ``nasbench`` CLI; None when neither is known (a call from Python)."""
    if argv is not None:
        return shlex.join(["nasbench", *argv])
    program = Path(sys.argv[0]).name if sys.argv else ""
    if program in ("nasbench", "__main__.py", "cli.py"):
        return shlex.join(["nasbench", *sys.argv[1:]])
    return None


def _profile(model: nn.Module, dataset, device: str) -> dict[str, Any]:
    """Parameters, MACs (search_spaces.describe) and single-image latency (ms, best of 20) of ``model``."""
    from search_spaces import describe, measure_latency

    with torch.random.fork_rng():  # profiling draws random inputs: leave the caller's RNG alone
        totals = describe(model.to("cpu"), dataset.input_shape, dataset.num_classes).totals
        latency = measure_latency(model, dataset.input_shape, batch_size=1, device=device, repeats=20)
    model.to("cpu")
    # Best of 20, as timeit advises: on a shared machine the mean mostly measures the neighbours.
    return {
        "params": int(totals["params"]),
        "macs": int(totals["macs"]),
        "latency_ms": latency.min_ms,
        "latency_mean_ms": latency.mean_ms,
        "latency_device": latency.device,
    }


def _robust_rows(report) -> list[dict[str, Any]]:
    """``{"attack", "norm", "eps", "accuracy"}`` per bounded attack and eps, plus the worst case."""
    rows = [
        {"attack": r.attack, "norm": r.norm, "eps": r.eps, "accuracy": r.robust_accuracy}
        for r in report.results
        if r.kind not in ("noise", "min-norm") and math.isfinite(r.eps)
    ]
    rows += [
        {"attack": "worst", "norm": w.norm, "eps": w.eps, "accuracy": w.robust_accuracy} for w in report.worst_case
    ]
    return rows


def _write_json(path: Path, data: Any) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(data, indent=2, sort_keys=False, default=str))
    os.replace(temporary, path)


GRID_EXAMPLES = 8  # columns of an evaluation's example grid


def _write_bundle(directory: Path, report, class_names) -> dict[str, Any]:
    from attacks import save_example_grid

    directory.mkdir(parents=True, exist_ok=True)
    for name in BUNDLE_FILES:  # a re-run replaces the whole bundle, never mixes two runs
        (directory / name).unlink(missing_ok=True)
    files: dict[str, Any] = {"examples": None, "grid": None, "grid_shows": None}
    if report.examples:
        files["examples"] = report.save_examples(directory / "examples.safetensors")
        # The engine keeps each example at the smallest sweep eps that broke it; the set of
        # the largest eps of the first norm holds them all.
        shown = max((e for e in report.examples if e.norm == report.examples[0].norm), key=lambda e: e.eps)
        grid = save_example_grid(
            {
                "clean": shown.clean,
                "adversarial": shown.adversarial,
                "labels": shown.labels,
                "clean_pred": shown.clean_pred,
                "adv_pred": shown.adv_pred,
                "title": f"{shown.norm} eps <= {shown.eps:.4g} (each at the smallest sweep eps that broke it)",
            },
            directory / "grid.png",
            class_names=class_names,
            max_examples=GRID_EXAMPLES,
        )
        files["grid"] = str(grid)
        # what the grid's columns are, for the report's caption
        files["grid_shows"] = {"norm": shown.norm, "eps": shown.eps, "attacks": list(shown.attacks)[:GRID_EXAMPLES]}
    return files


def _record_in_store(store_path: Path, info: ModelInfo, report, corruption=None) -> str:
    """Write robust accuracies (and accuracies under common corruptions) to the benchmark
    row of a model from a search; say what happened."""
    key = info.store_key
    if key is None:
        return "not a search result (no arch_hash/dataset/budget/seed in its meta)"
    if not store_path.is_file():
        return f"no benchmark store at {store_path}"
    from nasbench.store import Benchmark, BenchmarkError

    try:
        with Benchmark(store_path, create=False) as bench:
            bench.record_robustness(*key, _robust_rows(report))
            if corruption is not None:
                bench.record_corruption(*key, corruption.accuracy)
    except BenchmarkError as error:
        return f"not recorded: {error}"
    return "recorded"


def _log_to_mlflow(tracking, info: ModelInfo, record: dict, report, directory: Path) -> str:
    from nasbench.tracking import evaluation_run

    params = {
        "model": info.label,
        "model_kind": info.kind,
        "source": info.source,
        "dataset": record["dataset"],
        "n": record["n"],
        "seed": record["seed"],
        "targeted": record["targeted"],
        "attacks": ",".join(
            a["name"] + (f"-{a['steps']}" if a.get("steps") else "")
            for a in record["report"]["threat_model"]["attacks"]
        ),
        "eps": json.dumps(record["report"]["threat_model"]["eps"]),
    }
    if record.get("corruptions"):
        corruptions = record["corruptions"]
        params.update(
            {
                "corruptions": ",".join(corruptions["corruptions"]),
                "severities": ",".join(map(str, corruptions["severities"])),
                "corruption_baseline": (corruptions.get("errors") or {}).get("baseline"),
            }
        )
    with evaluation_run(tracking, model_run_id=info.run_id, name=f"attack {info.label}", params=params) as run:
        run.log_robustness(_robust_rows(report))
        extra: dict[str, float] = {
            "clean_acc": report.clean_accuracy,
            "params": record["model"]["params"],
            "macs": record["model"]["macs"],
            "latency_ms": record["model"]["latency_ms"],
            "seconds": report.seconds,
            "checks_failed": float(len(report.failed_checks)),
        }
        for r in report.results:
            if r.kind == "noise":
                extra[f"noise_acc.{safe_label(r.attack)}.std_{r.eps:.4f}"] = r.robust_accuracy
            elif not math.isfinite(r.eps):  # unbounded CW / DeepFool: success and distance
                extra[f"success_rate.{safe_label(r.attack)}.{r.norm.lower()}"] = r.success_rate
                if r.median_l2 is not None:
                    extra[f"median_l2.{safe_label(r.attack)}"] = r.median_l2
        run.log_metrics(extra)
        if record.get("corruptions"):
            run.log_metrics(corruption_metrics(record["corruptions"]))
        record["mlflow_run_id"] = run.run_id
        _write_json(directory / "evaluation.json", record)
        for name in BUNDLE_FILES:
            if (directory / name).is_file():
                run.log_artifact(directory / name, "evaluation")
        return run.run_id


def corruption_metrics(corruptions: dict) -> dict[str, float]:
    """MLflow metrics of an evaluation's ``corruptions`` record: ``corruption_acc`` (the mean),
    ``corruption_acc_relative``, ``mce`` and ``relative_mce`` (against the named baseline),
    ``corruption_acc.NAME.sSEVERITY`` per pair and ``corruption_ce.NAME`` per corruption."""
    metrics = {"corruption_acc": corruptions["mean_accuracy"]}
    if corruptions.get("relative_accuracy") is not None:
        metrics["corruption_acc_relative"] = corruptions["relative_accuracy"]
    errors = corruptions.get("errors") or {}
    for key in ("mce", "relative_mce"):
        if errors.get(key) is not None:
            metrics[key] = errors[key]
    for name, by_severity in corruptions["accuracy"].items():
        for severity, value in by_severity.items():
            metrics[f"corruption_acc.{name}.s{severity}"] = value
        if (errors.get("ce") or {}).get(name) is not None:
            metrics[f"corruption_ce.{name}"] = errors["ce"][name]
    return metrics


def _corruption_reports(
    models: dict,
    x: torch.Tensor,
    y: torch.Tensor,
    corruptions,
    severities,
    baseline: str | None,
    *,
    seed: int,
    batch_size: int,
    device,
    progress: Progress | None,
) -> dict[str, Any]:
    """Every model under every corruption and severity, on the same points, then each one's
    corruption errors against ``baseline`` (a model label; default the first model)."""
    from attacks import CorruptionConfigError, corruption_errors, evaluate_corruptions

    labels = [safe_label(label) for label in models]
    baseline = safe_label(baseline) if baseline else labels[0]
    if baseline not in labels:
        raise UserError(f"corruption baseline {baseline!r} is not one of the evaluated models: {', '.join(labels)}")
    reports = {}
    for label, (model, _) in zip(labels, models.values(), strict=True):

        def report_progress(done: int, total: int, description: str, _label=label) -> None:
            if progress is not None:
                progress(_label, done, total, f"corruptions: {description}")

        try:
            reports[label] = evaluate_corruptions(
                model,
                x,
                y,
                corruptions,
                severities,
                seed=seed,
                batch_size=batch_size,
                device=device,
                progress=report_progress,
            )
        except CorruptionConfigError as error:
            raise UserError(str(error)) from None
        model.to("cpu")
    for report in reports.values():
        report.errors = corruption_errors(report, reports[baseline], baseline)
    return reports


def _clean_only_report(corruption, n_classes: int, batch_size: int):
    """The robustness report of an evaluation without attacks: the clean accuracy alone."""
    from attacks import RobustnessReport

    threat_model = {
        "n": corruption.n,
        "targeted": False,
        "target_selection": None,
        "eps": {},
        "attacks": [],
        "seed": corruption.seed,
        "batch_size": batch_size,
        "early_stop": [],
        "cascade": [],
    }
    return RobustnessReport(
        n=corruption.n,
        n_classes=n_classes,
        clean_accuracy=corruption.clean_accuracy,
        targeted=False,
        threat_model=threat_model,
        results=[],
        worst_case=[],
        device=corruption.device,
    )


def _transfer_setting(evaluations: list[ModelEvaluation], attack: str | None, eps: float | None):
    """The attack and eps of the transfer matrix.

    Default: the first white-box attack of the run (cheapest first) at the sweep eps
    where the models' mean worst-case robust accuracy is nearest half their mean clean
    accuracy. At a much larger eps every source breaks every target and the matrix
    is all zeros; at a much smaller one nothing breaks and it is all clean accuracy.
    """
    from attacks import parse_attacks

    threat = evaluations[0].report.threat_model
    if attack is None:
        gradient = [
            a for a in threat["attacks"] if a["name"] in ("fgsm", "bim", "pgd", "mifgsm", "pgdl2", "apgd", "apgd-t")
        ]
        chosen = next((a for a in gradient if a["name"] != "fgsm"), gradient[0] if gradient else None)
        if chosen is None:
            return None, None, "no white-box attack in this run"
        spec = parse_attacks([f"{chosen['name']}:steps={chosen['steps']}" if chosen.get("steps") else chosen["name"]])[
            0
        ]
    else:
        spec = parse_attacks(attack)[0]
    norm = spec.norm
    if eps is not None:
        return spec, float(eps), "given"
    sweep = sorted({w.eps for e in evaluations for w in e.report.worst_case if w.norm == norm and w.eps > 0})
    if not sweep:
        return None, None, f"no {norm} eps > 0 in the sweep"
    clean = sum(e.report.clean_accuracy for e in evaluations) / len(evaluations)

    def mean_robust(value: float) -> float:
        accs = [
            w.robust_accuracy
            for e in evaluations
            for w in e.report.worst_case
            if w.norm == norm and abs(w.eps - value) < 1e-12
        ]
        return sum(accs) / max(len(accs), 1)

    chosen_eps = min(sweep, key=lambda value: (abs(mean_robust(value) - clean / 2), value))
    return spec, chosen_eps, "the sweep eps where mean worst-case robust accuracy is nearest half the clean accuracy"


def evaluate_models(
    models: dict[str, tuple[nn.Module, ModelInfo | dict]],
    dataset,
    attacks: str | list,
    eps,
    n: int,
    targeted: bool,
    seed: int,
    out_dir: str | Path,
    tracking=None,
    *,
    batch_size: int = 256,
    device: str | None = None,
    keep_examples: int = 16,
    checks: bool = True,
    command: str | None = None,
    transfer: bool = True,
    transfer_attack: str | None = None,
    transfer_eps: float | None = None,
    progress: Progress | None = None,
    corruptions: str | list[str] | None = None,
    severities: str | list[int] = (1, 2, 3, 4, 5),
    corruption_baseline: str | None = None,
) -> list[ModelEvaluation]:
    """Attack every model on the same ``n`` test points and write their evaluation bundles.

    Args:
        models: ``{label: (model, info)}``; ``info`` is a :class:`ModelInfo` (or its
            fields as a dict). Models take [0, 1] images and normalise inside.
        dataset: a ``nasbench.data.Dataset``; its test split is attacked.
        attacks: ``"fgsm,pgd,square"`` or attack specs (``attacks.parse_attacks``); None or
            empty runs no attack (then ``corruptions`` must be given).
        eps: a list of radii, ``"0,0.1,0.2"``, or ``{"Linf": [...], "L2": [...]}``.
        n: points of the test split (a seeded random subset; all of it when smaller).
        targeted: aim every targeted-capable attack at one random wrong class per point.
        out_dir: the experiment directory: bundles go to ``out_dir/evaluations/<label>/``,
            the transfer matrix to ``out_dir/evaluations/transfer.json``, and robust
            accuracies of search results to the store ``out_dir/benchmark.db``.
        tracking: a ``nasbench.tracking.TrackingConfig``; None tracks nothing.
        transfer: with two or more models, also compute the transferability matrix
            (``transfer_attack``/``transfer_eps`` default as in :func:`_transfer_setting`).
        progress: called as ``progress(label, done, total, description)`` over attack batches.
        corruptions, severities: common corruptions (``"all"`` or names, see
            ``attacks.corruptions``) at these severities, on the same points; each model's
            corruption errors (CE, mCE) are computed against ``corruption_baseline``, a
            model label (default: the first model).

    Bad attacks or eps raise :class:`UserError`. Returns one :class:`ModelEvaluation` per model.
    """
    from attacks import AttackConfigError, evaluate, transfer_matrix

    out_dir = Path(out_dir)
    root = out_dir / EVALUATIONS_DIR
    x, y, index = select_examples(dataset.test, n, seed)
    provenance = _versions()
    command = command or command_line() or "python: nasbench.evaluation.evaluate_models(...)"
    run_device = None if device in (None, "auto") else device
    if not attacks and not corruptions:
        raise UserError("nothing to evaluate: give attacks, corruptions or both")
    corruption_reports = (
        _corruption_reports(
            models,
            x,
            y,
            corruptions,
            severities,
            corruption_baseline,
            seed=seed,
            batch_size=batch_size,
            device=run_device,
            progress=progress,
        )
        if corruptions
        else {}
    )
    evaluations: list[ModelEvaluation] = []
    for label, (model, info) in models.items():
        if isinstance(info, dict):
            info = ModelInfo(**{"label": label, **info})
        info.label = label = safe_label(label)
        model.eval()
        profile = _profile(model, dataset, device or "auto")

        def report_progress(done: int, total: int, description: str, _label=label) -> None:
            if progress is not None:
                progress(_label, done, total, description)

        try:
            report = (
                evaluate(
                    model,
                    x,
                    y,
                    attacks,
                    eps,
                    batch_size=batch_size,
                    device=run_device,
                    seed=seed,
                    targeted=targeted,
                    keep_examples=keep_examples,
                    progress=report_progress,
                    checks=checks,
                )
                if attacks
                else _clean_only_report(corruption_reports[label], dataset.num_classes, batch_size)
            )
        except AttackConfigError as error:
            raise UserError(str(error)) from None
        model.to("cpu")
        directory = root / label
        files = _write_bundle(directory, report, dataset.class_names)
        record = {
            "model": {
                "label": label,
                "spec": info.spec,
                "source": info.source,
                "kind": info.kind,
                "params": profile["params"],
                "macs": profile["macs"],
                "latency_ms": profile["latency_ms"],
                "latency_mean_ms": profile["latency_mean_ms"],
                "latency_device": profile["latency_device"],
                "clean_acc": report.clean_accuracy,
                "trained_test_acc": info.meta.get("test_acc"),
                "budget": info.meta.get("budget"),
                "training_collapse": info.meta.get("collapse"),  # why its training ended at chance
                "run_id": info.run_id,
                "store_key": list(info.store_key) if info.store_key else None,
            },
            "dataset": dataset.name,
            "split": "test",
            "n": len(y),
            "indices": index.tolist(),
            "seed": seed,
            "targeted": targeted,
            "report": report.to_dict(),
            "corruptions": corruption_reports[label].to_dict() if label in corruption_reports else None,
            "files": {
                "examples": "examples.safetensors" if files["examples"] else None,
                "grid": "grid.png" if files["grid"] else None,
                "grid_shows": files["grid_shows"],
            },
            "command": command,
            "versions": {k: v for k, v in provenance.items() if k != "git_commit"},
            "git_commit": provenance.get("git_commit"),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "mlflow_run_id": None,
            "store": None,
        }
        store_status = _record_in_store(out_dir / BENCHMARK_FILE, info, report, corruption_reports.get(label))
        record["store"] = {"path": str(out_dir / BENCHMARK_FILE), "status": store_status}
        _write_json(directory / "evaluation.json", record)
        run_id = _log_to_mlflow(tracking, info, record, report, directory) if tracking is not None else None
        evaluations.append(
            ModelEvaluation(
                label=label,
                info=info,
                report=report,
                directory=directory,
                record=record,
                mlflow_run_id=run_id,
                store_status=store_status,
            )
        )

    transfer_path = root / TRANSFER_FILE
    if transfer and len(evaluations) > 1:
        spec, chosen_eps, why = _transfer_setting(evaluations, transfer_attack, transfer_eps)
        if spec is not None:
            try:
                matrix = transfer_matrix(
                    {label: model for label, (model, _) in models.items()},
                    x,
                    y,
                    spec,
                    chosen_eps,
                    batch_size=batch_size,
                    seed=seed,
                )
            except AttackConfigError as error:
                raise UserError(f"transfer attack: {error}") from None
            matrix.update(
                {
                    "norm": spec.norm,
                    "attack_label": spec.label,
                    "eps_choice": why,
                    "seed": seed,
                    "dataset": dataset.name,
                    "command": command,
                    "evaluations": {e.label: e.mlflow_run_id for e in evaluations},
                }
            )
            _write_json(transfer_path, matrix)
            if tracking is not None:
                _log_transfer(tracking, matrix, transfer_path)
    return evaluations


def _log_transfer(tracking, matrix: dict, path: Path) -> None:
    from nasbench.tracking import evaluation_run

    params = {
        "attack": matrix["attack_label"],
        "norm": matrix["norm"],
        "eps": matrix["eps"],
        "n": matrix["n"],
        "models": ",".join(matrix["sources"]),
    }
    with evaluation_run(tracking, model_run_id=None, name="transfer", params=params) as run:
        run.log_metrics(
            {
                f"transfer_acc.{safe_label(s)}.to.{safe_label(t)}": acc
                for s, row in matrix["robust_accuracy"].items()
                for t, acc in row.items()
            }
        )
        run.set_tag("nasbench.evaluation_runs", ",".join(v for v in matrix["evaluations"].values() if v))
        run.log_artifact(path, "evaluation")


# ------------------------------------------------------------------------ reading bundles


def read_evaluations(experiment_dir: str | Path) -> list[dict]:
    """Every ``evaluation.json`` under ``<experiment_dir>/evaluations``, sorted by label.

    Each dict gets ``"_dir"``: the bundle's folder. Unreadable bundles raise UserError.
    """
    root = Path(experiment_dir) / EVALUATIONS_DIR
    records = []
    for path in sorted(root.glob("*/evaluation.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise UserError(f"evaluation bundle {path} is not readable JSON ({error})") from None
        if not isinstance(record, dict) or "model" not in record or "report" not in record:
            raise UserError(f"evaluation bundle {path} is not an evaluation (no 'model'/'report')")
        record["_dir"] = str(path.parent)
        records.append(record)
    return records
