"""Orchestration overhead of `nasbench search`, next to a hand-written Ray Tune peer.

40 trials that each sleep 0.5 s, 2 at a time, through the real orchestration: Ray Tune
with NasOptunaSearch (TPE, journal storage), the driver's ledger and single writer (one
MLflow child run per trial with its params, arch.json, dataset input, metrics and tags;
a benchmark-store row per trial), progress callback. The ideal is 40 x 0.5 s / 2 = 10 s;
the ratio printed is wall time over that ideal.

In the same run, the peer: what a user would write by hand with Ray Tune alone -- a
``Tuner`` with ``OptunaSearch`` (TPE) over the same define-by-run space, Ray's
``MLflowLoggerCallback`` on the same kind of MLflow store (SQLite), ``reuse_actors`` and
one CPU per trial, the same sleeping trials. It records less (flat runs, no store, no
dedup, no nested runs, no dataset inputs). ``vs peer`` is our wall time over the peer's.

Ray's start-up is paid once per driver; it is printed apart, and every ratio is printed
twice: without it, and with it counted on both sides (each side paying one start-up).
The peer runs first and ours second by default (``--ours-first`` swaps them): both pay
their driver imports (MLflow, Optuna) before their clock starts.

The wall time of ours is split with the timestamps of ``search.log`` into set-up
(experiment folder, MLflow database and parent run, dataset, Optuna study), warm-up
(until the first trial finished: actors start and import Ray Tune and torch -- no MLflow,
no store: trials are pure compute), steady state (its overhead per trial is what every
further trial costs on top of its own work) and wrap-up.

    python benchmarks/trial_overhead.py [--trials 40] [--sleep 0.5] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def _phases(log: Path, started: float, ended: float, concurrency: int, sleep: float) -> dict:
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    begin = next(e["time"] for e in entries if e.get("event") in ("start", "resume"))
    finished = sorted(e["time"] for e in entries if "trial" in e)
    steady_trials = len(finished) - 1
    steady = finished[-1] - finished[0]
    per_trial = steady * concurrency / steady_trials - sleep if steady_trials > 0 else float("nan")
    return {
        "setup": begin - started,
        "warmup": finished[0] - begin,
        "steady": steady,
        "steady_trials": steady_trials,
        "steady_overhead": per_trial,
        "wrapup": ended - finished[-1],
    }


def run_ours(tmp: Path, trials: int, concurrency: int, sleep: float) -> tuple[float, dict, int]:
    from nasbench.search import SearchConfig, run_search
    from nasbench.trial import sleep_evaluate

    config = SearchConfig(
        experiments_dir=tmp,
        experiment="ours",
        trials=trials,
        concurrency=concurrency,
        sampler="tpe",
        epochs=1,
        progress=False,
        export_top=0,
    )
    wall_started, started = time.time(), time.perf_counter()
    summary = run_search(config, evaluate=sleep_evaluate, extra={"sleep": sleep})
    wall = time.perf_counter() - started
    phases = _phases(summary.experiment_dir / "search.log", wall_started, wall_started + wall, concurrency, sleep)
    return wall, phases, summary.complete - summary.deduplicated


def _peer_space(trial):
    """The same define-by-run macro space as ours (OptunaSearch calls it on the driver)."""
    from search_spaces import arch_hash, arch_to_dict, get_space

    arch = get_space("macro", (1, 8, 8)).sample(trial)
    return {"arch": arch_to_dict(arch), "arch_hash": arch_hash(arch)}


def _peer_trial(config: dict) -> None:
    from ray import tune

    time.sleep(config["sleep"])
    layers = len(config["arch"]["layers"])
    tune.report({"val_acc": 1.0 / (1.0 + layers), "params": 1000 * layers})


def run_peer(tmp: Path, trials: int, concurrency: int, sleep: float, seed: int = 0) -> float:
    """Ray Tune + OptunaSearch (TPE) + MLflowLoggerCallback, written as its docs show."""
    import optuna
    from ray import tune
    from ray.air.integrations.mlflow import MLflowLoggerCallback
    from ray.tune.search.optuna import OptunaSearch

    from nasbench.silent_reporter import SilentReporter

    started = time.perf_counter()
    searcher = OptunaSearch(
        _peer_space,
        metric="val_acc",
        mode="max",
        sampler=optuna.samplers.TPESampler(
            seed=seed, multivariate=True, group=True, constant_liar=True, n_startup_trials=5
        ),
    )
    tuner = tune.Tuner(
        tune.with_resources(_peer_trial, {"cpu": 1}),
        param_space={"sleep": sleep},
        tune_config=tune.TuneConfig(
            search_alg=searcher, num_samples=trials, max_concurrent_trials=concurrency, reuse_actors=True
        ),
        run_config=tune.RunConfig(
            name="peer",
            storage_path=str(tmp / "peer-ray"),
            verbose=0,
            progress_reporter=SilentReporter(),
            callbacks=[
                MLflowLoggerCallback(
                    tracking_uri=f"sqlite:///{tmp / 'peer-mlflow.db'}", experiment_name="peer", save_artifact=False
                )
            ],
        ),
    )
    grid = tuner.fit()
    wall = time.perf_counter() - started
    assert len(grid) == trials and not grid.errors, grid.errors
    return wall


def _warm_driver(tmp: Path) -> None:
    """Paid before either clock starts: both sides' driver imports, and the peer's MLflow
    database (a new SQLite store runs MLflow's migrations, 2-3 s; ours starts from a cached
    empty one, which a hand-written peer would not have)."""
    import mlflow
    import optuna
    from ray.air.integrations.mlflow import MLflowLoggerCallback  # noqa: F401
    from ray.tune.search.optuna import OptunaSearch  # noqa: F401

    import nasbench.search  # noqa: F401
    import search_spaces  # noqa: F401

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    mlflow.MlflowClient(f"sqlite:///{tmp / 'peer-mlflow.db'}").search_experiments()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--sleep", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--ours-first", action="store_true", help="run ours before the peer")
    args = parser.parse_args()

    from nasbench.ray_runtime import configure_ray_environment, ensure_ray

    print(f"load average:        {' '.join(Path('/proc/loadavg').read_text().split()[:3])} ({os.cpu_count()} CPUs)")
    configure_ray_environment()
    started = time.perf_counter()
    ensure_ray(None, num_cpus=args.concurrency)
    ray_start = time.perf_counter() - started
    print(f"ray start-up:        {ray_start:6.1f} s (once per driver; counted apart below)")

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        _warm_driver(tmp)
        if args.ours_first:
            wall, phases, slept_trials = run_ours(tmp, args.trials, args.concurrency, args.sleep)
            peer = run_peer(tmp, args.trials, args.concurrency, args.sleep)
        else:
            peer = run_peer(tmp, args.trials, args.concurrency, args.sleep)
            wall, phases, slept_trials = run_ours(tmp, args.trials, args.concurrency, args.sleep)
    ideal = slept_trials * args.sleep / args.concurrency
    peer_ideal = args.trials * args.sleep / args.concurrency
    print(
        f"trials:              {args.trials} each side ({args.trials - slept_trials} of ours answered from the "
        f"store as duplicates)"
    )
    print(
        f"ideal:               {ideal:6.1f} s ours, {peer_ideal:.1f} s peer ({args.sleep} s x trials / "
        f"{args.concurrency})"
    )
    print(
        f"peer wall time:      {peer:6.1f} s = {peer / peer_ideal:.2f}x ideal "
        f"(Tuner + OptunaSearch + MLflowLoggerCallback)"
    )
    print(f"our wall time:       {wall:6.1f} s = {wall / ideal:.2f}x ideal")
    print(f"  set-up:            {phases['setup']:6.1f} s (MLflow db + parent run, dataset, study)")
    print(f"  warm-up:           {phases['warmup']:6.1f} s (until the first trial finished)")
    print(
        f"  steady state:      {phases['steady']:6.1f} s ({phases['steady_trials']} trials, "
        f"{phases['steady_overhead']:.3f} s overhead per trial)"
    )
    print(f"  wrap-up:           {phases['wrapup']:6.1f} s")
    print(
        f"ratio to ideal:      {wall / ideal:6.2f}x without Ray's start-up, {(wall + ray_start) / ideal:.2f}x "
        f"with it (goal <= 1.4x)"
    )
    print(
        f"vs peer:             {wall / peer:6.2f} without Ray's start-up, "
        f"{(wall + ray_start) / (peer + ray_start):.2f} with it on both sides (goal <= 1.0)"
    )
    print(f"load average:        {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")


if __name__ == "__main__":
    main()
