"""Models logged as ``pt2`` + safetensors (nothing unpickled), registered with aliases."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from pathlib import Path

from nasbench.tracking.client import _client, _global_tracking_uri, _quiet_mlflow
from nasbench.tracking.names import TrackingConfig


def log_model(
    cfg: TrackingConfig,
    run_id: str,
    model,
    input_example,
    registered_name: str | None,
    aliases: list[str] | Iterable[str] = (),
    *,
    arch: dict | None = None,
    meta: dict | None = None,
    name: str = "model",
) -> str:
    """Log ``model`` to ``run_id`` safely and optionally register it; returns the model URI.

    The model is logged with ``mlflow.pytorch`` in the ``pt2`` format (a ``torch.export``
    program, no pickled Python objects) with a signature inferred from ``input_example``
    (a batch of inputs; use at least two rows so the batch dimension stays dynamic), and
    the platform checkpoint (``model.safetensors``, ``arch.json``, ``meta.json``, written
    by ``nasbench.checkpoint.save_checkpoint``) travels with it as extra files.
    ``model`` is the normalised model (``wrap_normalized``); ``arch`` is its model spec
    and defaults to the run's ``arch.json`` artifact (trial runs have one); ``meta`` must
    hold the dataset's ``mean`` and ``std`` (input shape and class count are read from
    the example and the output).

    With ``registered_name`` a new registry version is created and each of ``aliases``
    (e.g. ``"best-val"``, ``"best-robust"``) is pointed at it.
    """
    import mlflow.pytorch
    import torch
    from mlflow.models import infer_signature

    client = _client(cfg.tracking_uri)
    if arch is None:
        with tempfile.TemporaryDirectory() as tmp, _quiet_mlflow():
            arch = json.loads(Path(client.download_artifacts(run_id, "arch.json", tmp)).read_text())
    example = (
        input_example.detach().cpu() if isinstance(input_example, torch.Tensor) else torch.as_tensor(input_example)
    )
    was_training = model.training
    model = model.eval()
    try:
        with torch.no_grad():
            output = model(example)
        meta = {"input_shape": list(example.shape[1:]), "num_classes": int(output.shape[-1]), **(meta or {})}
        signature = infer_signature(example.numpy(), output.detach().cpu().numpy())
        # Created here, in the run's experiment: left to itself, MLflow would file the model
        # under the process-global experiment (the Default one, in ./mlruns of the cwd).
        run = client.get_run(run_id)
        logged = client.create_logged_model(
            run.info.experiment_id, name=name, source_run_id=run_id, params=dict(run.data.params)
        )
        with tempfile.TemporaryDirectory() as tmp:
            extra_files = _write_checkpoint(Path(tmp), model, arch, meta)
            with _global_tracking_uri(cfg.tracking_uri), _quiet_mlflow():
                info = mlflow.pytorch.log_model(
                    model,
                    name=name,
                    model_id=logged.model_id,
                    run_id=run_id,
                    signature=signature,
                    input_example=example.numpy(),
                    serialization_format="pt2",
                    extra_files=[str(path) for path in extra_files],
                    registered_model_name=registered_name,
                    await_registration_for=0,
                    pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
                )
    finally:
        model.train(was_training)
    if registered_name is not None:
        set_aliases(cfg, registered_name, str(info.registered_model_version), aliases)
    client.set_tag(run_id, "nasbench.model_uri", info.model_uri)
    return info.model_uri


def registered_version(cfg: TrackingConfig, registered_name: str, run_id: str) -> str | None:
    """The registry version of ``registered_name`` logged from ``run_id``, if there is one."""
    versions = _client(cfg.tracking_uri).search_model_versions(f"name = '{registered_name}' and run_id = '{run_id}'")
    return str(max(int(v.version) for v in versions)) if versions else None


def set_aliases(cfg: TrackingConfig, registered_name: str, version: str, aliases: Iterable[str]) -> None:
    client = _client(cfg.tracking_uri)
    for alias in aliases:
        client.set_registered_model_alias(registered_name, alias, version)


def _write_checkpoint(directory: Path, model, arch: dict, meta: dict) -> list[Path]:
    """The platform checkpoint files (the same ones ``nasbench train`` writes)."""
    from nasbench.checkpoint import save_checkpoint

    save_checkpoint(directory, model, arch, meta)
    return sorted(path for path in directory.iterdir() if path.is_file())


def download_logged_model(model_uri: str, tracking_uri: str, dst: str | Path) -> Path:
    """Download a logged model (``models:/m-...``, ``models:/<name>@<alias>``) into ``dst``."""
    import mlflow.artifacts

    # the registry client behind models:/ URIs uses the global URI
    with _global_tracking_uri(tracking_uri), _quiet_mlflow():
        return Path(
            mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(dst), tracking_uri=tracking_uri)
        )


def download_logged_checkpoint(model_uri: str, tracking_uri: str, dst: str | Path) -> Path:
    """Download a logged model's checkpoint files; returns the folder holding them."""
    folder = download_logged_model(model_uri, tracking_uri, dst) / "extra_files"
    if not (folder / "model.safetensors").is_file():
        raise ValueError(
            f"{model_uri} has no nasbench checkpoint (extra_files/model.safetensors); "
            "was it logged with nasbench.tracking.log_model?"
        )
    return folder


def load_logged_model(model_uri: str, tracking_uri: str | None = None):
    """Rebuild a model logged by :func:`log_model` from arch JSON + safetensors.

    ``model_uri`` is what :func:`log_model` returned, or a registry URI such as
    ``models:/nasbench-exp1@best-val``. Nothing is unpickled: the weights come from
    safetensors and the architecture is rebuilt by ``nasbench.checkpoint.load_checkpoint``.
    Returns the model in eval mode.
    """
    import mlflow

    from nasbench.checkpoint import load_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        folder = download_logged_checkpoint(model_uri, tracking_uri or mlflow.get_tracking_uri(), tmp)
        model, _arch, _meta = load_checkpoint(folder)
    return model.eval()
