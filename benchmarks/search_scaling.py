"""Scaling of `nasbench search` with concurrency on CPU-bound trials.

The same architectures (random sampler, same seed) are trained twice on digits: one
trial at a time, then two at a time, each trial given one CPU (torch threads follow).
Prints trials per hour of both and their ratio (goal: at least 1.8x with 2 CPUs), for
the whole search and for its steady state (from the first finished trial to the last,
from ``search.log``): a short search is dominated by its fixed costs (set-up, worker
start-up), which concurrency cannot divide. The machine's load average is printed: on a
shared 2-core machine other processes take the second core and no speed-up can show.

    python benchmarks/search_scaling.py [--trials 16] [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()

    from nasbench.ray_runtime import configure_ray_environment, ensure_ray
    from nasbench.search import SearchConfig, run_search

    print(f"load average: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    configure_ray_environment()
    ensure_ray(None, num_cpus=2)
    rates, steady = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for concurrency in (1, 2):
            config = SearchConfig(
                experiments_dir=Path(tmp),
                experiment=f"c{concurrency}",
                trials=args.trials,
                concurrency=concurrency,
                cpus_per_trial=1,
                sampler="random",
                epochs=args.epochs,
                progress=False,
                export_top=0,
            )
            started = time.perf_counter()
            summary = run_search(config)
            wall = time.perf_counter() - started
            rates[concurrency] = summary.complete / wall * 3600
            log = [json.loads(line) for line in (summary.experiment_dir / "search.log").read_text().splitlines()]
            finished = sorted(e["time"] for e in log if "trial" in e)
            steady[concurrency] = (len(finished) - 1) / (finished[-1] - finished[0]) * 3600
            print(
                f"concurrency {concurrency}: {summary.complete} trials in {wall:.1f} s = "
                f"{rates[concurrency]:.0f} trials/hour; steady state {steady[concurrency]:.0f} trials/hour"
            )
    print(
        f"speed-up 2 vs 1: {rates[2] / rates[1]:.2f}x whole search, {steady[2] / steady[1]:.2f}x steady "
        f"state (goal >= 1.8x)"
    )
    print(f"load average: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")


if __name__ == "__main__":
    main()
