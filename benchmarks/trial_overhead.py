"""Orchestration overhead of `nasbench search`: trials that only sleep.

40 trials that each sleep 0.5 s, 2 at a time, through the real orchestration: Ray Tune
with NasOptunaSearch (TPE, journal storage), one MLflow child run per trial created in
the worker, a benchmark-store row per trial, the driver's ledger and progress callback.
The ideal is 40 x 0.5 s / 2 = 10 s; the ratio printed is wall time over that ideal
(Ray's start-up is measured apart: it is paid once per driver or cluster).

The wall time is split with the timestamps of ``search.log`` into

- set-up: experiment folder, MLflow database and parent run, dataset, Optuna study;
- warm-up: until the first trial has finished (worker processes start and import
  Ray Tune and MLflow: paid once per worker, since actors are reused);
- steady state: the remaining trials; its overhead per trial is what every further
  trial costs on top of its own work;
- wrap-up: summary, parent-run totals.

``--searches 2`` runs a second search in the same driver, as a test session or a
notebook would: its driver imports are already paid.

    python benchmarks/trial_overhead.py [--trials 40] [--sleep 0.5] [--concurrency 2] [--searches 1]
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
    begin = next(e["time"] for e in entries if e.get("event") == "start")
    finished = sorted(e["time"] for e in entries if "trial" in e)
    end = next(e["time"] for e in entries if e.get("event") == "end")
    steady_trials = len(finished) - 1
    steady = finished[-1] - finished[0]
    per_trial = steady * concurrency / steady_trials - sleep if steady_trials > 0 else float("nan")
    return {"setup": begin - started, "warmup": finished[0] - begin, "steady": steady,
            "steady_trials": steady_trials, "steady_overhead": per_trial,
            "wrapup": ended - finished[-1], "end_event": end - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--sleep", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--searches", type=int, default=1, help="searches run one after the other")
    args = parser.parse_args()

    from nasbench.search import SearchConfig, _configure_ray_environment, ensure_ray, run_search
    from nasbench.trial import sleep_evaluate

    print(f"load average:        {' '.join(Path('/proc/loadavg').read_text().split()[:3])} "
          f"({os.cpu_count()} CPUs)")
    _configure_ray_environment()
    started = time.perf_counter()
    ensure_ray(None, num_cpus=args.concurrency)
    print(f"ray start-up:        {time.perf_counter() - started:6.1f} s (once per driver)")

    with tempfile.TemporaryDirectory() as tmp:
        for index in range(args.searches):
            config = SearchConfig(experiments_dir=Path(tmp), experiment=f"overhead-{index}",
                                  trials=args.trials, concurrency=args.concurrency, sampler="tpe",
                                  epochs=1, progress=False, export_top=0)
            wall_started, started = time.time(), time.perf_counter()
            summary = run_search(config, evaluate=sleep_evaluate, extra={"sleep": args.sleep})
            wall = time.perf_counter() - started
            phases = _phases(summary.experiment_dir / "search.log", wall_started, wall_started + wall,
                             args.concurrency, args.sleep)
            slept = (summary.complete - summary.deduplicated) * args.sleep
            ideal = slept / args.concurrency
            print(f"-- search {index + 1} of {args.searches}")
            print(f"trials:              {summary.finished} finished ({summary.deduplicated} answered "
                  f"from the store)")
            print(f"wall time:           {wall:6.1f} s")
            print(f"  set-up:            {phases['setup']:6.1f} s (MLflow db + parent run, dataset, study)")
            print(f"  warm-up:           {phases['warmup']:6.1f} s (until the first trial finished)")
            print(f"  steady state:      {phases['steady']:6.1f} s ({phases['steady_trials']} trials, "
                  f"{phases['steady_overhead']:.3f} s overhead per trial)")
            print(f"  wrap-up:           {phases['wrapup']:6.1f} s")
            print(f"ideal:               {ideal:6.1f} s ({args.sleep} s x {summary.complete - summary.deduplicated}"
                  f" / {args.concurrency})")
            print(f"overhead per trial:  {(wall - ideal) * args.concurrency / max(1, summary.finished):6.2f} s")
            print(f"ratio to ideal:      {wall / ideal if ideal else float('nan'):6.2f}x (goal <= 1.4x)")
    print(f"load average:        {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")


if __name__ == "__main__":
    main()
