"""What runs inside one search trial, in a Ray worker: pure compute.

A trial receives an architecture (sampled on the driver by Optuna, define-by-run), builds
and trains the model, reporting validation accuracy after every epoch through
``tune.report`` so ASHA/HyperBand can stop it early, then measures params, MACs, latency
and (when it is an objective) robust accuracy under a cheap attack on the validation
split. Its final result goes through ``tune.report`` too, with its weights as a Ray Tune
checkpoint (``model.safetensors`` + ``arch.json`` + ``meta.json``) persisted into the
run's storage path (a local folder, or a shared/cloud URI on a cluster).

A trial imports torch, Ray and the project's model and training code only: no MLflow,
no benchmark store, no Optuna. The driver is the single writer of all persistent state
(``nasbench.trial_writer``): it answers duplicates and replays from the store before any
trial is launched, and writes each trial's MLflow child run and store row from what the
trial reported. So a trial actor starts fast, and a cluster node never writes a shared
SQLite file.

A trial that raises (an invalid architecture, a diverging loss, a collapse to chance,
out of memory) reports ``status="failed"`` with its reason: the worker stays alive (its
actor is reused) and the driver tells Optuna FAIL. A trial stopped by the scheduler
leaves through ``SystemExit`` raised inside ``tune.report``.

Result keys reported to Ray Tune: ``epoch``, ``val_acc``, ``train_acc``, ``train_loss``
after each epoch; the final result adds ``trial_complete=True``, ``status`` (ok/failed,
``reason``), the objectives (``robust_acc``, ``params``, ``macs``, ``latency_ms``), the
per-epoch ``curves`` and the ``robust`` results (for the store row).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from nasbench.trial_context import CorruptionConfig, RobustConfig, TrialContext


@lru_cache(maxsize=4)
def _dataset(name: str, data_dir: str, seed: int, val_fraction: float):
    """One load per worker process: reused actors run many trials on the same data."""
    from nasbench.data import load_dataset

    return load_dataset(name, data_dir=data_dir, download=False, seed=seed, val_fraction=val_fraction)


def _report(metrics: dict, checkpoint_dir: str | None = None) -> None:
    from ray import tune

    checkpoint = tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
    tune.report(metrics, checkpoint=checkpoint)


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}"[:500] if text else type(error).__name__


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def run_trial(config: dict, context: TrialContext) -> None:
    """The Ray Tune function trainable: one architecture, start to finish."""
    evaluate_trial(config["arch"], config["arch_hash"], int(config["trial_number"]), context, _report)


def evaluate_trial(arch: dict, arch_hash: str, number: int, context: TrialContext, report: Callable[..., None]) -> None:
    """Train and measure one architecture, telling ``report(metrics, checkpoint_dir=None)``
    each epoch and then the final result: ``ok`` with the weights' folder, or ``failed``
    with the reason. Any callable works outside Ray (a test, the Python API)."""
    import shutil
    import tempfile

    base = {"trial_number": number, "arch_hash": arch_hash}
    weights = tempfile.mkdtemp(prefix="nasbench-weights-") if context.save_weights else None
    try:
        try:
            final = _evaluate(arch, arch_hash, context, report, base, weights)
        except SystemExit:  # stopped by the scheduler inside tune.report: pruned
            raise
        except Exception as error:  # noqa: BLE001 - any failure of the trial is its result
            report({**base, "status": "failed", "reason": _reason(error), "trial_complete": True})
            return
        saved = weights is not None and (Path(weights) / "model.safetensors").is_file()
        # Tune persists the checkpoint into the run's storage before report returns
        report({**base, **final, "trial_complete": True}, checkpoint_dir=weights if saved else None)
    finally:
        if weights is not None:
            shutil.rmtree(weights, ignore_errors=True)


def _evaluate(arch: dict, arch_hash: str, context: TrialContext, report, base: dict, weights_dir: str | None) -> dict:
    """The trial's final metrics; raises on failure."""
    if context.evaluate is not None:  # a stand-in evaluation (benchmarks, fault injection)

        def report_epoch(metrics: dict) -> None:
            report({**base, **metrics})

        metrics = dict(context.evaluate(arch, context, report_epoch))
        metrics.setdefault("epoch", context.budget)
        return {**metrics, "status": "ok"}
    return _train(arch, arch_hash, context, report, base, weights_dir)


def _train(arch_dict: dict, arch_hash: str, context: TrialContext, report, base: dict, weights_dir: str | None) -> dict:
    import torch

    from nasbench.config import TrainConfig
    from nasbench.models import wrap_normalized
    from nasbench.train import train_model
    from search_spaces import arch_from_dict, build_model, validate

    if context.train.get("threads"):  # here, not per trial: stand-in trials never import torch
        torch.set_num_threads(int(context.train["threads"]))
    dataset = _dataset(context.dataset_path or context.dataset, context.data_dir, context.seed, context.val_fraction)
    arch = arch_from_dict(arch_dict)
    validate(arch, dataset.input_shape)  # raises InvalidArchitecture with the reason
    torch.manual_seed(context.seed)
    network = build_model(arch, dataset.input_shape, dataset.num_classes)
    model = wrap_normalized(network, dataset)
    cfg = TrainConfig(**{**context.train, "device": trial_device(context.train.get("device", "auto"))})

    def on_epoch(metrics: dict) -> None:
        if not all(_finite(metrics.get(k)) for k in ("train_loss", "val_acc")):
            raise FloatingPointError(
                f"training diverged at epoch {metrics.get('epoch')} (train loss {metrics.get('train_loss')})"
            )
        if metrics["epoch"] < cfg.epochs:  # the last epoch comes with the final result
            from nasbench.strategies.fidelity import rung_metrics

            report({**base, **metrics, **rung_metrics(context, model, network, dataset, metrics["epoch"])})

    result = train_model(
        model,
        dataset,
        cfg,
        on_epoch=on_epoch,
        evaluate_test=True,
        seed=context.seed,
        augment=list(context.augment) or None,
    )
    result.raise_if_collapsed()  # ended at chance: a failed trial with the reason, like any other failure
    metrics, robust = _measure(result, network, dataset, context, cfg.epochs)
    if weights_dir is not None:
        _save_checkpoint(weights_dir, context, result.model, arch_dict, arch_hash, dataset, metrics)
    curves = [{k: v for k, v in entry.items() if k == "epoch" or _finite(v)} for entry in result.history]
    return {**metrics, "status": "ok", "curves": curves, "robust": robust}


def _measure(result, network, dataset, context: TrialContext, epochs: int) -> tuple[dict[str, Any], list[dict]]:
    """The final metrics of a trained model, and its robustness rows (for the store)."""
    from search_spaces import describe

    model = result.model
    totals = describe(network, dataset.input_shape, dataset.num_classes).totals
    last = result.history[-1] if result.history else {}
    metrics: dict[str, Any] = {
        **{k: v for k, v in last.items() if _finite(v)},
        "val_acc": float(result.val_acc),
        "test_acc": None if result.test_acc is None else float(result.test_acc),
        "params": int(totals["params"]),
        "macs": int(totals["macs"]),
        "train_seconds": float(result.train_seconds),
        "device": str(result.device),
        "epoch": epochs,
    }
    metrics["latency_ms"] = _latency_ms(model, dataset.input_shape, result.device)
    robust = []
    if context.robust is not None:
        robust = _robust(model, dataset, context.robust, context.seed)
        metrics["robust_acc"] = robust[0]["accuracy"]
    if context.corruption is not None:
        corrupted = _corruption(model, dataset, context.corruption, context.seed)
        metrics["corruption_acc"] = corrupted[-1]["accuracy"]
        robust += corrupted
    return metrics, robust


def trial_device(requested: str) -> str:
    """The device of a trial: ``"auto"`` means the GPUs Ray gave it, and without any, the CPU.

    Ray leaves CUDA visible to a trial that asked for no GPU: on its own, ``"auto"``
    would put every such trial on GPU 0, outside Ray's accounting.
    """
    if requested != "auto":
        return requested
    import ray

    if not ray.is_initialized():  # called outside a Ray worker (a test, the Python API)
        return requested
    return "cuda" if ray.get_gpu_ids() else "cpu"


def _latency_ms(model, input_shape, device: str) -> float:
    """Single-image inference latency on the training device, best of 20 timed passes
    after 2 warm-up ones: the quantity ``nasbench attack`` reports (ms/image, best of 20),
    so the store's latency_ms means one thing. 22 forward passes of one image: a few
    milliseconds for a search's networks, next to seconds of training."""
    import torch

    from search_spaces import measure_latency

    with torch.random.fork_rng():  # random inputs: leave the trial's RNG (the attack's) alone
        latency = measure_latency(model, input_shape, batch_size=1, device=device, warmup=2, repeats=20)
    return float(latency.min_ms)


def _robust(model, dataset, robust: RobustConfig, seed: int) -> list[dict]:
    """Robust accuracy on (a fixed subset of) the validation split under one cheap attack."""
    import torch

    from attacks import evaluate

    n = min(robust.samples, len(dataset.val))
    index = torch.randperm(len(dataset.val), generator=torch.Generator().manual_seed(seed))[:n]
    x, y = dataset.val.x[index].cpu(), dataset.val.y[index].cpu()
    report = evaluate(model, x, y, robust.spec(), [robust.eps], checks=False, keep_examples=0, seed=seed)
    return [
        {
            "attack": robust.attack,
            "norm": "Linf",
            "eps": float(robust.eps),
            "accuracy": float(report.robust_accuracy(robust.eps)),
        }
    ]


def _corruption(model, dataset, corruption: CorruptionConfig, seed: int) -> list[dict]:
    """Accuracy under each corruption of the subset on (a fixed subset of) the validation
    split, as robustness rows of norm ``corruption`` (eps = severity), their mean last
    (``mean`` at 0: the store's corruption_acc)."""
    import torch

    from attacks import subset_accuracies

    n = min(corruption.samples, len(dataset.val))
    index = torch.randperm(len(dataset.val), generator=torch.Generator().manual_seed(seed))[:n]
    accuracies = subset_accuracies(
        model, dataset.val.x[index].cpu(), dataset.val.y[index].cpu(), list(corruption.subset), seed=seed
    )
    rows = [
        {"attack": name, "norm": "corruption", "eps": float(severity), "accuracy": float(accuracy)}
        for (name, severity), accuracy in accuracies.items()
    ]
    return rows + [
        {"attack": "mean", "norm": "corruption", "eps": 0.0, "accuracy": sum(accuracies.values()) / len(accuracies)}
    ]


def _save_checkpoint(
    directory: str, context: TrialContext, model, arch: dict, arch_hash: str, dataset, metrics: dict
) -> None:
    from nasbench.checkpoint import dataset_meta, save_checkpoint

    # The store key: an attack on this checkpoint adds its robust accuracies to the trial's
    # benchmark row (the driver adds the trial's MLflow run id when it files the weights).
    meta = {
        "input_shape": list(dataset.input_shape),
        "num_classes": dataset.num_classes,
        "mean": list(dataset.mean),
        "std": list(dataset.std),
        **dataset_meta(dataset),
        "dataset": context.dataset,
        "arch_hash": arch_hash,
        "budget": context.budget,
        "seed": context.seed,
        "metrics": {k: v for k, v in metrics.items() if _finite(v)},
    }
    save_checkpoint(directory, model, arch, meta)


def worker_pid() -> int:
    """The worker's process id (tests check actor reuse with it)."""
    return os.getpid()


def sleep_evaluate(arch: dict, context: TrialContext, report: Callable[[dict], None]) -> dict:
    """A stand-in trial that sleeps ``context.extra['sleep']`` seconds: measures orchestration."""
    time.sleep(float(context.extra.get("sleep", 0.5)))
    layers = len(arch.get("layers", ())) or 1
    return {"val_acc": 1.0 / (1.0 + layers), "params": 1000 * layers, "macs": 10_000 * layers}
