"""How fast the tabular benchmark answers on 10^5 rows.

NAS-Bench-101's promise is that a lookup replaces a training run; the store must
answer in milliseconds at benchmark scale. This builds a temporary benchmark of
``--rows`` runs (architectures x 2 datasets x 2 budgets x seeds, each with per-epoch
curves and three robust accuracies), then times every kind of question, median of
``--repeat`` runs. Side by side, the same top-10 is timed with SQLite forbidden to
use the index (``NOT INDEXED``), to show what the partial indexes buy.

    python benchmarks/store_query.py            # 100,000 rows
    python benchmarks/store_query.py --rows 20000 --repeat 5
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from nasbench.store import Benchmark

DATASETS = ("digits", "mnist")
BUDGETS = (12, 36)
SEEDS = (0, 1, 2, 3, 4)
ATTACKS = (("fgsm", "Linf", 0.1), ("pgd", "Linf", 0.1), ("pgd", "L2", 1.0))


def synthetic_rows(n_rows: int, rng: random.Random):
    """Plausible runs: accuracy grows with the budget and, noisily, with size."""
    per_arch = len(DATASETS) * len(BUDGETS) * len(SEEDS)
    for arch in range(-(-n_rows // per_arch)):
        arch_hash = f"{rng.getrandbits(64):016x}"
        params = rng.randint(2_000, 2_000_000)
        quality = rng.random()
        for dataset in DATASETS:
            for budget in BUDGETS:
                for seed in SEEDS:
                    pruned = rng.random() < 0.05
                    val_acc = min(1.0, 0.5 + 0.3 * quality + 0.1 * (budget / 36) + rng.gauss(0, 0.02))
                    yield {
                        "arch_hash": arch_hash,
                        "dataset": dataset,
                        "budget": budget,
                        "seed": seed,
                        "space": "macro",
                        "arch": {"id": arch, "layers": [{"filters": 16, "kernel": 3}] * 4},
                        "status": "pruned" if pruned else "ok",
                        "reason": "stopped early by ASHA" if pruned else None,
                        "curves": [
                            {"epoch": e, "train_loss": round(2.0 / e, 4), "val_acc": round(val_acc * e / budget, 4)}
                            for e in range(1, budget + 1)
                        ],
                        "train_acc": min(1.0, val_acc + 0.03),
                        "val_acc": val_acc,
                        "test_acc": val_acc - 0.01,
                        "params": params,
                        "macs": params * 60,
                        "latency_ms": params / 2e5 + rng.random(),
                        "device": "cpu",
                        "train_seconds": budget * params / 1e5,
                        "mlflow_run_id": None,
                        "robust": [
                            {"attack": a, "norm": n, "eps": e, "accuracy": max(0.0, val_acc - rng.random())}
                            for a, n, e in ATTACKS
                        ],
                        "provenance": {"synthetic": True},
                    }


def timed(function, repeat: int) -> float:
    """Median wall time of ``function()`` in milliseconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    return parser.parse_args(argv)


def build(directory: Path, n_rows: int, rng: random.Random) -> tuple[Benchmark, list[dict]]:
    """A store of ``n_rows`` synthetic runs in ``directory``, its build time and size printed."""
    bench = Benchmark(directory / "bench.db")
    rows = list(synthetic_rows(n_rows, rng))[:n_rows]
    start = time.perf_counter()
    bench.record_many(rows)
    build_s = time.perf_counter() - start
    size_mb = sum(p.stat().st_size for p in directory.iterdir()) / 1e6
    print(f"built {len(bench):,} rows in {build_s:.1f} s ({len(bench) / build_s:,.0f} rows/s), {size_mb:.0f} MB")
    return bench, rows


def record_ms(bench: Benchmark, rows: list[dict]) -> float:
    """Mean milliseconds to record one new run (the first 200 rows under new seeds), one transaction each."""
    start = time.perf_counter()
    fresh = [dict(r, seed=r["seed"] + 100) for r in rows[:200]]
    for row in fresh:
        bench.record(row)
    return (time.perf_counter() - start) * 1000 / len(fresh)


def question_timings(bench: Benchmark, key_iter, repeat: int) -> list[tuple[str, float]]:
    """Median milliseconds of each kind of question; ``key_iter`` yields the keys looked up."""
    few = max(3, repeat // 5)
    return [
        ("lookup(hash, dataset, budget, seed)", timed(lambda: bench.lookup(*next(key_iter)), repeat)),
        (
            "query(hash, dataset, epochs): mean of 5 seeds",
            timed(lambda: bench.query(next(key_iter)[0], dataset="digits", epochs=36), repeat),
        ),
        ("query(hash): every dataset and budget", timed(lambda: bench.query(next(key_iter)[0]), repeat)),
        ("top(10, by=val_acc)", timed(lambda: bench.top(10), repeat)),
        (
            "top(10, by=params, dataset=mnist)",
            timed(lambda: bench.top(10, by="params", dataset="mnist"), repeat),
        ),
        (
            "top(10, by=val_acc, where budget=12 & params<=1e5)",
            timed(lambda: bench.top(10, where={"budget": 12, "params": ("<=", 100_000)}), repeat),
        ),
        ("top(10, by=robust:pgd:Linf:0.1)", timed(lambda: bench.top(10, by="robust:pgd:Linf:0.1"), repeat)),
        (
            "top(10, reduce=mean, dataset=digits)",
            timed(lambda: bench.top(10, dataset="digits", reduce="mean"), few),
        ),
        (
            "pareto(val_acc:max, params:min, dataset=digits)",
            timed(lambda: bench.pareto(["val_acc:max", "params:min"], dataset="digits"), few),
        ),
        (
            "pareto(val_acc, robust pgd, latency_ms)",
            timed(lambda: bench.pareto(["val_acc:max", "robust:pgd:Linf:0.1:max", "latency_ms:min"]), few),
        ),
        ("stats()", timed(bench.stats, few)),
    ]


def print_measurements(measurements: list[tuple[str, float]]) -> None:
    width = max(len(name) for name, _ in measurements)
    for name, ms in measurements:
        print(f"  {name:<{width}}  {ms:9.2f} ms")


def compare_index(bench: Benchmark, repeat: int) -> None:
    """What the index buys: the same top-10 SQL with and without it."""
    sql = (
        "SELECT id FROM results {hint} WHERE status = 'ok' AND val_acc IS NOT NULL "
        "ORDER BY val_acc DESC, id DESC LIMIT 10"
    )
    indexed = timed(lambda: bench._db.read(sql.format(hint="")), repeat)
    scanned = timed(lambda: bench._db.read(sql.format(hint="NOT INDEXED")), max(3, repeat // 5))
    print(
        f"top-10 SQL: {indexed:.3f} ms with the partial index vs {scanned:.2f} ms scanning the table "
        f"({scanned / indexed:,.0f}x)"
    )


def parquet_round_trip(bench: Benchmark, directory: Path) -> None:
    """Export the store to Parquet, import it into a new store, then import it again."""
    export_path = directory / "bench.parquet"
    import pyarrow as pa
    import pyarrow.parquet as pq

    # pyarrow's first write imports pandas (seconds): not the store's time.
    pq.write_table(pa.table({"warm": [1]}), directory / "warm.parquet")
    start = time.perf_counter()
    exported = bench.export_parquet(export_path)
    export_s = time.perf_counter() - start
    with Benchmark(directory / "copy.db") as copy:
        start = time.perf_counter()
        copy.import_parquet(export_path)
        import_s = time.perf_counter() - start
        start = time.perf_counter()
        again = copy.import_parquet(export_path)
        reimport_s = time.perf_counter() - start
    print(
        f"export {exported:,} rows: {export_s:.1f} s ({export_path.stat().st_size / 1e6:.0f} MB Parquet); "
        f"import: {import_s:.1f} s; import again: {reimport_s:.1f} s, {again} rows added"
    )


def main() -> None:
    args = parse_args()
    rng = random.Random(0)

    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        bench, rows = build(directory, args.rows, rng)
        keys = [(r["arch_hash"], r["dataset"], r["budget"], r["seed"]) for r in rng.sample(rows, 200)]
        key_iter = iter(keys * (args.repeat + 1))
        measurements = [("record (one transaction each)", record_ms(bench, rows))]
        measurements += question_timings(bench, key_iter, args.repeat)
        print_measurements(measurements)
        compare_index(bench, args.repeat)
        parquet_round_trip(bench, directory)
        bench.close()


if __name__ == "__main__":
    main()
