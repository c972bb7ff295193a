"""Orchestration overhead of `nasbench search`: trials that only sleep.

40 trials that each sleep 0.5 s, 2 at a time, through the real orchestration: Ray Tune
with NasOptunaSearch (TPE, journal storage), one MLflow child run per trial created in
the worker, a benchmark-store row per trial, the driver's ledger and progress callback.
The ideal is 40 x 0.5 s / 2 = 10 s; the ratio printed is wall time over that ideal
(Ray's start-up is measured apart: it is paid once per driver or cluster).

    python benchmarks/trial_overhead.py [--trials 40] [--sleep 0.5] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--sleep", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()

    from nasbench.search import SearchConfig, _configure_ray_environment, ensure_ray, run_search
    from nasbench.trial import sleep_evaluate

    _configure_ray_environment()
    started = time.perf_counter()
    ensure_ray(None, num_cpus=args.concurrency)
    ray_seconds = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as tmp:
        config = SearchConfig(experiments_dir=Path(tmp), experiment="overhead", trials=args.trials,
                              concurrency=args.concurrency, sampler="tpe", epochs=1, progress=False,
                              export_top=0)
        started = time.perf_counter()
        summary = run_search(config, evaluate=sleep_evaluate, extra={"sleep": args.sleep})
        wall = time.perf_counter() - started
    slept = (summary.complete - summary.deduplicated) * args.sleep
    ideal = slept / args.concurrency
    print(f"ray start-up:        {ray_seconds:6.1f} s (once per driver)")
    print(f"trials:              {summary.finished} finished ({summary.deduplicated} answered from the store)")
    print(f"wall time:           {wall:6.1f} s")
    print(f"ideal:               {ideal:6.1f} s ({args.sleep} s x {summary.complete - summary.deduplicated} / "
          f"{args.concurrency})")
    print(f"overhead per trial:  {(wall - ideal) * args.concurrency / max(1, summary.finished):6.2f} s")
    print(f"ratio to ideal:      {wall / ideal if ideal else float('nan'):6.2f}x (goal <= 1.4x)")


if __name__ == "__main__":
    main()
