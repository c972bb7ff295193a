"""What runs inside one search trial, in a Ray worker.

A trial receives an architecture (sampled on the driver by Optuna, define-by-run) and:

1. opens its MLflow child run (:func:`nasbench.tracking.trial_run`, created here in the
   worker with the explicit tracking URI and the parent run id);
2. answers from the benchmark store when the same (architecture hash, dataset,
   budget, seed) was already trained -- isomorphic architectures share a hash, so
   duplicates are never retrained (NAS-Bench-101 found that most proposals of a
   search are repeats);
3. or, in replay mode, answers from a recorded benchmark with simulated training time
   (NAS-Bench-201's ``simulate_train_eval``: strategies compared in seconds);
4. otherwise builds and trains the model, reporting validation accuracy after every
   epoch so ASHA/HyperBand can stop it early, then measures params, MACs, latency and
   (when it is an objective) robust accuracy under a cheap attack on the validation
   split, writes the store row and a safetensors checkpoint.

A trial that raises (an invalid architecture, a diverging loss, out of memory) is
recorded as ``failed`` with its reason in the store and MLflow and reported to the
driver as a result with ``status="failed"``: the worker stays alive (its actor is
reused) and the searcher tells Optuna FAIL. A trial stopped by the scheduler leaves
through ``SystemExit`` raised inside ``tune.report``; it is marked ``pruned`` here when
the worker gets that far and, in any case, by the driver (``nasbench.search``).

Result keys reported to Ray Tune: ``epoch``, ``val_acc``, ``train_acc``, ``train_loss``
after each epoch; the final result adds ``trial_complete=True``, ``status``
(ok/deduplicated/failed), the objectives (``robust_acc``, ``params``, ``macs``,
``latency_ms``), ``mlflow_run_id`` and ``simulated_seconds`` (replay).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

# Objective name -> (result key, direction). "latency" is reported in milliseconds.
OBJECTIVES: dict[str, tuple[str, str]] = {
    "val_acc": ("val_acc", "max"),
    "robust_acc": ("robust_acc", "max"),
    "params": ("params", "min"),
    "macs": ("macs", "min"),
    "latency": ("latency_ms", "min"),
}


@dataclass(frozen=True)
class RobustConfig:
    """The cheap in-the-loop attack: FGSM (one step) or PGD-k at one eps, on at most
    ``samples`` validation images (Goodfellow et al. 2015; Madry et al. 2018)."""

    attack: str = "fgsm"
    eps: float = 0.1
    steps: int = 10
    samples: int = 256

    def spec(self) -> str:
        return "fgsm" if self.attack == "fgsm" else f"pgd:steps={self.steps}"


@dataclass(frozen=True)
class TrialContext:
    """Everything a trial needs besides its architecture; plain data, shipped once to the
    Ray object store with ``tune.with_parameters``."""

    dataset: str
    data_dir: str
    val_fraction: float
    seed: int
    space: str
    train: dict[str, Any]                     # a TrainConfig dump; epochs is the budget
    objectives: tuple[str, ...] = ("val_acc",)
    store_path: str | None = None
    store_journal: str | None = None          # chosen by the driver (nasbench.store.journal_mode_for)
    replay_path: str | None = None
    tracking: Any = None                      # nasbench.tracking.TrackingConfig or None
    parent_run_id: str | None = None
    # nasbench.tracking.DatasetDescription: every trial run's dataset input, described once
    # on the driver (a replayed or deduplicated trial never loads the data)
    dataset_description: Any = None
    robust: RobustConfig | None = None
    checkpoint_dir: str | None = None         # where ok trials leave model.safetensors
    augment: tuple[str, ...] = ()
    # A stand-in for training, ``(arch_dict, context, report) -> final metrics``, where
    # ``report(metrics)`` reports one intermediate epoch (so schedulers can stop it);
    # used by the orchestration benchmark (trials that sleep) and to inject faults.
    evaluate: Callable[[dict, "TrialContext", Callable[[dict], None]], dict] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def budget(self) -> int:
        return int(self.train["epochs"])


@lru_cache(maxsize=4)
def _dataset(name: str, data_dir: str, seed: int, val_fraction: float):
    """One load per worker process: reused actors run many trials on the same data."""
    from nasbench.data import load_dataset

    return load_dataset(name, data_dir=data_dir, download=False, seed=seed, val_fraction=val_fraction)


@lru_cache(maxsize=4)
def _benchmark(path: str, journal_mode: str | None = None):
    from nasbench.store import Benchmark

    return Benchmark(path, journal_mode=journal_mode)


def _report(metrics: dict) -> None:
    from ray import tune

    tune.report(metrics)


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}"[:500] if text else type(error).__name__


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def run_trial(config: dict, context: TrialContext) -> None:
    """The Ray Tune function trainable: one architecture, start to finish."""
    from contextlib import nullcontext

    arch = config["arch"]
    arch_hash = config["arch_hash"]
    number = int(config["trial_number"])

    recording = None
    if context.tracking is not None and context.parent_run_id is not None:
        from nasbench.tracking import trial_run

        # only a trial rerun after a killed driver can already own a child run: a new
        # trial skips that search (one store query less per trial)
        recording = trial_run(context.tracking, context.parent_run_id, str(number), arch=arch,
                              arch_hash=arch_hash, train_config=context.train,
                              dataset=context.dataset_description or context.dataset,
                              find_existing=bool(config.get("rerun")))
    with recording if recording is not None else nullcontext() as recorder:
        run_id = getattr(recorder, "run_id", None)
        base = {"trial_number": number, "arch_hash": arch_hash, "mlflow_run_id": run_id}
        try:
            final = _evaluate(arch, arch_hash, context, recorder, base)
        except SystemExit:  # stopped by the scheduler inside tune.report: pruned
            if recorder is not None:
                recorder.set_status("pruned", "stopped early by the trial scheduler")
            raise
        except Exception as error:  # noqa: BLE001 - any failure of the trial is its result
            reason = _reason(error)
            _record_failure(context, arch, arch_hash, reason, run_id)
            if recorder is not None:
                recorder.set_status("failed", reason)
            _report({**base, "status": "failed", "reason": reason, "trial_complete": True})
            return
        if recorder is not None:  # at the last epoch's step: the curves start at epoch 1
            recorder.log_metrics({k: v for k, v in final.items()
                                  if k in ("val_acc", "train_acc", "test_acc", "robust_acc", "params",
                                           "macs", "latency_ms", "train_seconds")
                                  and _finite(v)}, step=int(final.get("epoch") or context.budget))
            recorder.set_status("deduplicated" if final["status"] == "deduplicated" else "ok")
        _report({**base, **final, "trial_complete": True})


def _row_metrics(row: dict) -> dict:
    metrics = {key: row.get(key) for key in ("val_acc", "train_acc", "test_acc", "params", "macs",
                                             "latency_ms", "train_seconds")}
    robust = [r["accuracy"] for r in row.get("robust") or []]
    if robust:
        metrics["robust_acc"] = min(robust)
    curves = row.get("curves") or []
    metrics["epoch"] = curves[-1]["epoch"] if curves else row.get("budget")
    return metrics


def _evaluate(arch: dict, arch_hash: str, context: TrialContext, recorder, base: dict) -> dict:
    """The trial's final metrics; raises on failure."""
    # 1. the store already knows this (hash, dataset, budget, seed): answer from it
    if context.store_path is not None:
        row = _benchmark(context.store_path, context.store_journal).lookup(arch_hash, context.dataset,
                                                                           context.budget, context.seed)
        if row is not None and row["status"] == "ok" and _has_objectives(row, context):
            return {**_row_metrics(row), "status": "deduplicated"}
    # 2. replay a recorded benchmark: per-epoch curve, simulated time, no training
    if context.replay_path is not None:
        return _replay(arch_hash, context, recorder, base)
    # 3. a stand-in evaluation (benchmarks, fault injection)
    if context.evaluate is not None:
        def report_epoch(metrics: dict) -> None:
            if recorder is not None:
                recorder.log_epoch(int(metrics["epoch"]), metrics)
            _report({**base, **metrics})

        metrics = dict(context.evaluate(arch, context, report_epoch))
        metrics.setdefault("epoch", context.budget)
        _record_ok(context, arch, arch_hash, metrics, base.get("mlflow_run_id"), curves=[])
        return {**metrics, "status": "ok"}
    return _train(arch, arch_hash, context, recorder, base)


def _has_objectives(row: dict, context: TrialContext) -> bool:
    """A stored row answers a trial only if it holds every objective the search asks for."""
    metrics = _row_metrics(row)
    return all(_finite(metrics.get(OBJECTIVES[name][0])) for name in context.objectives)


def _replay(arch_hash: str, context: TrialContext, recorder, base: dict) -> dict:
    row = _benchmark(context.replay_path).lookup(arch_hash, context.dataset, context.budget, context.seed)
    if row is None or row["status"] != "ok":
        raise LookupError(f"architecture {arch_hash[:12]} is not recorded in the replay benchmark "
                          f"{context.replay_path} for {context.dataset}, {context.budget} epochs, "
                          f"seed {context.seed}")
    curves = row.get("curves") or []
    per_epoch = (row.get("train_seconds") or 0.0) / max(1, len(curves) or context.budget)
    simulated = 0.0
    for entry in curves[:-1]:  # the last epoch comes with the final result
        simulated += per_epoch
        metrics = {k: v for k, v in entry.items() if _finite(v)}
        if recorder is not None:
            recorder.log_epoch(int(entry["epoch"]), metrics)
        _report({**base, **metrics, "simulated_seconds": simulated})
    return {**_row_metrics(row), "simulated_seconds": (row.get("train_seconds") or 0.0), "status": "ok"}


def _train(arch_dict: dict, arch_hash: str, context: TrialContext, recorder, base: dict) -> dict:
    import torch

    from nasbench.config import TrainConfig
    from nasbench.models import wrap_normalized
    from nasbench.train import train_model
    from search_spaces import arch_from_dict, build_model, describe, validate

    if context.train.get("threads"):  # here, not per trial: stand-in trials never import torch
        torch.set_num_threads(int(context.train["threads"]))
    dataset = _dataset(context.dataset, context.data_dir, context.seed, context.val_fraction)
    arch = arch_from_dict(arch_dict)
    validate(arch, dataset.input_shape)  # raises InvalidArchitecture with the reason
    torch.manual_seed(context.seed)
    network = build_model(arch, dataset.input_shape, dataset.num_classes)
    model = wrap_normalized(network, dataset)
    cfg = TrainConfig(**{**context.train, "device": trial_device(context.train.get("device", "auto"))})

    def on_epoch(metrics: dict) -> None:
        if not all(_finite(metrics.get(k)) for k in ("train_loss", "val_acc")):
            raise FloatingPointError(f"training diverged at epoch {metrics.get('epoch')} "
                                     f"(train loss {metrics.get('train_loss')})")
        if recorder is not None:
            recorder.log_epoch(int(metrics["epoch"]), metrics)
        if metrics["epoch"] < cfg.epochs:  # the last epoch comes with the final result
            _report({**base, **metrics})

    result = train_model(model, dataset, cfg, on_epoch=on_epoch, evaluate_test=True,
                         seed=context.seed, augment=list(context.augment) or None)
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
        "epoch": cfg.epochs,
    }
    metrics["latency_ms"] = _latency_ms(model, dataset.input_shape, result.device)
    robust = []
    if context.robust is not None:
        robust = _robust(model, dataset, context.robust, context.seed)
        metrics["robust_acc"] = robust[0]["accuracy"]
    checkpoint = _save_checkpoint(context, model, arch_dict, arch_hash, dataset, metrics, base.get("mlflow_run_id"))
    if checkpoint is not None:
        metrics["checkpoint"] = checkpoint
    _record_ok(context, arch_dict, arch_hash, metrics, base.get("mlflow_run_id"),
               curves=result.history, robust=robust)
    return {**metrics, "status": "ok"}


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
    return [{"attack": robust.attack, "norm": "Linf", "eps": float(robust.eps),
             "accuracy": float(report.robust_accuracy(robust.eps))}]


def _save_checkpoint(context: TrialContext, model, arch: dict, arch_hash: str, dataset,
                     metrics: dict, run_id: str | None) -> str | None:
    if context.checkpoint_dir is None:
        return None
    from nasbench.checkpoint import save_checkpoint

    directory = Path(context.checkpoint_dir) / arch_hash[:16]
    # The store key and the trial's MLflow run: an attack on this checkpoint adds its
    # robust accuracies to the trial's benchmark row and links its run to the trial's.
    meta = {"input_shape": list(dataset.input_shape), "num_classes": dataset.num_classes,
            "mean": list(dataset.mean), "std": list(dataset.std), "dataset": dataset.name,
            "arch_hash": arch_hash, "budget": context.budget, "seed": context.seed, "mlflow_run_id": run_id,
            "metrics": {k: v for k, v in metrics.items() if _finite(v)}}
    save_checkpoint(directory, model, arch, meta)
    return str(directory)


def _store_row(context: TrialContext, arch: dict, arch_hash: str, status: str, **values) -> dict:
    row = {"arch_hash": arch_hash, "dataset": context.dataset, "budget": context.budget,
           "seed": context.seed, "space": context.space, "arch": arch, "status": status}
    row.update({k: v for k, v in values.items() if v is not None})
    return row


def _record_ok(context, arch, arch_hash, metrics, run_id, curves, robust=()) -> None:
    if context.store_path is None:
        return
    clean_curves = [{k: v for k, v in entry.items() if k == "epoch" or _finite(v)} for entry in curves]
    _benchmark(context.store_path, context.store_journal).record(_store_row(
        context, arch, arch_hash, "ok", curves=clean_curves,
        train_acc=metrics.get("train_acc"), val_acc=metrics.get("val_acc"), test_acc=metrics.get("test_acc"),
        params=metrics.get("params"), macs=metrics.get("macs"), latency_ms=metrics.get("latency_ms"),
        device=metrics.get("device"), train_seconds=metrics.get("train_seconds"),
        mlflow_run_id=run_id, robust=list(robust) or None))


def _record_failure(context, arch, arch_hash, reason, run_id) -> None:
    if context.store_path is None:
        return
    try:
        _benchmark(context.store_path, context.store_journal).record(_store_row(
            context, arch, arch_hash, "failed", reason=reason, mlflow_run_id=run_id))
    except Exception:  # noqa: BLE001 - the store refusing the row must not hide the failure
        pass


def worker_pid() -> int:
    """The worker's process id (tests check actor reuse with it)."""
    return os.getpid()


def sleep_evaluate(arch: dict, context: TrialContext, report: Callable[[dict], None]) -> dict:
    """A stand-in trial that sleeps ``context.extra['sleep']`` seconds: measures orchestration."""
    time.sleep(float(context.extra.get("sleep", 0.5)))
    layers = len(arch.get("layers", ())) or 1
    return {"val_acc": 1.0 / (1.0 + layers), "params": 1000 * layers, "macs": 10_000 * layers}
