"""Scaling of `nasbench search` with concurrency on CPU-bound trials.

The same architectures (random sampler, same seed) are trained twice on digits: one
trial at a time, then two at a time, each trial given one CPU (torch threads follow).
Prints trials per hour of both and their ratio (goal: at least 1.8x with 2 CPUs).

    python benchmarks/search_scaling.py [--trials 8] [--epochs 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()

    from nasbench.search import SearchConfig, _configure_ray_environment, ensure_ray, run_search

    _configure_ray_environment()
    ensure_ray(None, num_cpus=2)
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        for concurrency in (1, 2):
            config = SearchConfig(experiments_dir=Path(tmp), experiment=f"c{concurrency}", trials=args.trials,
                                  concurrency=concurrency, cpus_per_trial=1, sampler="random",
                                  epochs=args.epochs, progress=False, export_top=0)
            started = time.perf_counter()
            summary = run_search(config)
            wall = time.perf_counter() - started
            rates[concurrency] = summary.complete / wall * 3600
            print(f"concurrency {concurrency}: {summary.complete} trials in {wall:.1f} s = "
                  f"{rates[concurrency]:.0f} trials/hour")
    print(f"speed-up 2 vs 1: {rates[2] / rates[1]:.2f}x (goal >= 1.8x)")


if __name__ == "__main__":
    main()
