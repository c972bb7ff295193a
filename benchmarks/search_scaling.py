"""Scaling of `nasbench search` with concurrency on CPU-bound trials.

The same architectures (random sampler, same seed) are trained with one trial at a
time and with two at a time, each trial given one CPU (torch threads follow). Prints
trials per hour of both and their ratio (goal: at least 1.8x with 2 CPUs), for the
whole search and for its steady state (from the first finished trial to the last, from
``search.log``): a short search is dominated by its fixed costs (set-up, worker
start-up), which concurrency cannot divide. The pair is measured ``--repeat`` times,
alternating, and the medians are printed: on these machines one pair's ratio varies by
about +-0.2 from run to run on the same code. The machine's load average is printed:
on a shared 2-core machine other processes take the second core and no speed-up can
show.

    python benchmarks/search_scaling.py [--trials 40] [--epochs 3] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Rates:
    """Trials per hour of one search: over its whole wall time and in its steady state."""

    whole: float
    steady: float


def measure(experiments_dir: Path, name: str, concurrency: int, trials: int, epochs: int) -> Rates:
    """Run one search and time it."""
    from nasbench.search import SearchConfig, run_search

    config = SearchConfig(
        experiments_dir=experiments_dir,
        experiment=name,
        trials=trials,
        concurrency=concurrency,
        cpus_per_trial=1,
        sampler="random",
        epochs=epochs,
        progress=False,
        export_top=0,
    )
    started = time.perf_counter()
    summary = run_search(config)
    wall = time.perf_counter() - started
    log = [json.loads(line) for line in (summary.experiment_dir / "search.log").read_text().splitlines()]
    finished = sorted(e["time"] for e in log if "trial" in e)
    steady = (len(finished) - 1) / (finished[-1] - finished[0]) * 3600
    rates = Rates(whole=summary.complete / wall * 3600, steady=steady)
    print(
        f"concurrency {concurrency}: {summary.complete} trials in {wall:.1f} s = "
        f"{rates.whole:.0f} trials/hour; steady state {rates.steady:.0f} trials/hour"
    )
    return rates


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3, help="pairs of searches measured, alternating")
    args = parser.parse_args()

    from nasbench.ray_runtime import configure_ray_environment, ensure_ray

    print(f"load average: {load_average()}")
    configure_ray_environment()
    ensure_ray(None, num_cpus=2)
    whole, steady = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeat):
            one, two = (measure(Path(tmp), f"c{c}-{repeat}", c, args.trials, args.epochs) for c in (1, 2))
            whole.append(two.whole / one.whole)
            steady.append(two.steady / one.steady)
            print(f"speed-up 2 vs 1: {whole[-1]:.2f}x whole search, {steady[-1]:.2f}x steady state")
    print(
        f"median of {args.repeat}: {statistics.median(whole):.2f}x whole search, "
        f"{statistics.median(steady):.2f}x steady state (goal >= 1.8x)"
    )
    print(f"load average: {load_average()}")


if __name__ == "__main__":
    main()
