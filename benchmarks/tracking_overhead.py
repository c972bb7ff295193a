"""Per-trial MLflow logging cost: nasbench's batched writes vs one call per value.

Each simulated trial logs what a search trial logs: its architecture and training config
as params, ``--epochs`` epochs of four curves, six final metrics and a status tag, into a
child run of one search run. The naive variant does the same with MLflow's one-value
calls (``log_param`` / ``log_metric`` / ``set_tag``), as a hand-written trainable
typically would. Both write to the same kind of store (a fresh SQLite file each, or
``--tracking-uri``), side by side in one process.

    python benchmarks/tracking_overhead.py --trials 10 --epochs 20
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from nasbench.tracking import (
    TAG_PARENT_RUN,
    SearchRun,
    TrackingConfig,
    default_tracking_uri,
    flatten,
    trial_run,
)

ARCH = {
    "kind": "macro",
    "layers": [{"kernel_h": 3, "kernel_w": 3, "stride": s, "filters": 16 * s, "skip": []} for s in (1, 2, 1, 2)],
    "head": {"pool": "avg"},
}
TRAIN = {
    "epochs": 20,
    "batch_size": 128,
    "optimizer": "adamw",
    "lr": 0.003,
    "weight_decay": 5e-4,
    "schedule": "onecycle",
}
FINAL = {"params": 12345, "macs": 678901, "latency_ms": 0.8, "train_acc": 0.99, "val_acc": 0.97, "test_acc": 0.96}


def epoch_metrics(epoch: int) -> dict:
    return {"train_loss": 1.0 / epoch, "train_acc": 1 - 0.5 / epoch, "val_acc": 1 - 0.6 / epoch, "epoch_seconds": 0.5}


def batched_trial(cfg: TrackingConfig, parent: str, trial: int, epochs: int) -> None:
    with trial_run(
        cfg, parent, str(trial), arch=ARCH, arch_hash=f"h{trial}", train_config=TRAIN, dataset=None
    ) as recorder:
        for epoch in range(1, epochs + 1):
            recorder.log_epoch(epoch, epoch_metrics(epoch))
        recorder.log_metrics(FINAL, step=epochs)  # as a trial does: at its last epoch
        recorder.set_status("ok")


def naive_trial(cfg: TrackingConfig, parent: str, trial: int, epochs: int) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(cfg.tracking_uri)
    experiment_id = client.get_run(parent).info.experiment_id
    run_id = client.create_run(experiment_id, run_name=f"trial-{trial}", tags={TAG_PARENT_RUN: parent}).info.run_id
    for key, param in {**flatten(ARCH, "arch."), **flatten(TRAIN, "train.")}.items():
        client.log_param(run_id, key, param)
    client.log_text(run_id, "{}", "arch.json")
    for epoch in range(1, epochs + 1):
        for key, value in epoch_metrics(epoch).items():
            client.log_metric(run_id, key, value, step=epoch)
    for key, value in FINAL.items():
        client.log_metric(run_id, key, value, step=epochs)
    client.set_tag(run_id, "nasbench.status", "ok")
    client.set_terminated(run_id, "FINISHED")


def measure(trial_fn, uri: str, name: str, trials: int, epochs: int) -> float:
    cfg = TrackingConfig(uri, name)
    with SearchRun(cfg, {"trials": trials}) as search:
        trial_fn(cfg, search.run_id, -1, epochs)  # warm-up: imports, engine, experiment
        start = time.perf_counter()
        for trial in range(trials):
            trial_fn(cfg, search.run_id, trial, epochs)
        return (time.perf_counter() - start) / trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--tracking-uri", help="default: a fresh SQLite store per variant")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for label, trial_fn in (("batched", batched_trial), ("naive", naive_trial)):
            uri = args.tracking_uri or default_tracking_uri(Path(tmp) / label)
            results[label] = measure(trial_fn, uri, f"overhead-{label}-{time.time_ns()}", args.trials, args.epochs)
    values = 4 * args.epochs + len(FINAL)
    print(
        f"per trial ({args.epochs} epochs, {values} metric values): "
        f"batched {results['batched'] * 1000:.0f} ms, naive {results['naive'] * 1000:.0f} ms, "
        f"naive/batched = {results['naive'] / results['batched']:.1f}x"
    )


if __name__ == "__main__":
    main()
