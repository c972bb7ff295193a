"""Build a recorded cell-space benchmark by training every class of a cell subspace.

NAS-Bench-201 (Dong & Yang, ICLR 2020, arXiv:2001.00326) trained all 15,625 cells
(6,466 unique up to isomorphism) so that search strategies can be compared by table
look-up. This does the same at laptop scale: the cells whose six edges each carry one
of ``--ops`` form a product subspace (``skip_connect``, ``nor_conv_1x1``,
``nor_conv_3x3``: 3**6 = 729 cells, 496 canonical classes of at most 12 cells each);
one representative of every class is trained on ``digits`` in the small skeleton (one
cell per stage, C = 8) for a short budget (2 epochs of batch 128: 20 AdamW steps,
one-cycle), with one torch thread, once per seed (0-4 by default, each seed on its own
train/validation split), and recorded as a full benchmark row (per-epoch curves,
params, MACs, train/val/test accuracy, training seconds, status). Like NAS-Bench-201, the
benchmark reports the mean over seeds: at this budget two seeds of one cell agree only
loosely (their validation accuracies correlate at about 0.5 across the classes), so a
single seed's top 1% is largely a lottery. The budget is set by the machine it was
built on (2 cores shared with other jobs: 0.9 s of training per cell, 8 minutes per
seed and core for all 496 classes).

Why no ``none``: with it (``none``, ``nor_conv_1x1``, ``nor_conv_3x3``: 321 classes)
isomorphism collapses a few cells into huge classes -- the cell whose only live edge
is a 3x3 conv from input to output stands for 45 of the 729 cells -- and that small
cell ties for the best accuracy in a short budget, so the top 1% of classes holds 6.6%
of all cells and any search, random included, finds it in about 10 trials.

Because the recorded classes cover *every* cell of the subspace, a sampler that picks
the six edges from ``--ops`` only ever proposes recorded architectures: the subspace
is a complete, structure-aware search space (``benchmarks/search_efficiency.py``).

Robust accuracy (``--robust-eps EPS``): after every epoch the cell is attacked with
FGSM (Goodfellow et al. 2015) at Linf ``EPS`` on the whole validation split, recorded in
the curves as ``robust_acc``, and after the last epoch with PGD-10 (Madry et al. 2018)
as well; the row's ``robust`` list holds both final figures, so a multi-objective search
over (val_acc, robust_acc) replays from it: cheap FGSM at the rungs of a scheduler,
PGD for the final objective (a replayed trial takes the lowest robust accuracy of its
row). The shipped fixture holds, next to the 2-epoch rows above, every class at a
6-epoch budget for seed 0 with robust accuracy at eps 0.1 (2.6 CPU-seconds per cell
with its attacks, 21.5 CPU minutes in all, run as two shards; one seed only, to keep
the build within that budget)::

    python benchmarks/build_cell_benchmark.py --db r0.db --parquet r0.parquet --seeds 0 \
        --epochs 6 --robust-eps 0.1 --shard 0/2        # and --shard 1/2 beside it
    nasbench bench import --db cell_digits.db tests/fixtures/cell_digits.parquet r0.parquet r1.parquet
    python benchmarks/build_cell_benchmark.py --db cell_digits.db --export-only

LR schedule (``--schedule``): the rows above are trained with one-cycle over all their
epochs (dataset ``digits``). ``--schedule rungs`` trains with ``nasbench.train.make_schedule``'s
``rungs`` (``nasbench search --schedule rungs``): cosine annealing
to the floor at each rung of ASHA with grace period 1 and eta 3 (epochs 1 and 3 of 6) and a
warm restart after it (SGDR, Loshchilov & Hutter, ICLR 2017, with its restarts where the
rungs are, as in "Budgeted Training", Li, Yumer & Ramanan, ICLR 2020). The store keys a
row by (hash, dataset, budget, seed) alone, so these rows go under dataset
``digits-rungs`` (as NAS-Bench-201's ``cifar10-valid`` names a training protocol) and
record their schedule in ``provenance["train"]`` (schedule, milestones, epochs, batch
size, optimizer, lr, weight decay). The shipped fixture holds them for every class: seed
0, 6 epochs, FGSM per epoch and PGD-10 at the end at eps 0.1, exactly as the one-cycle
6-epoch rows (one process, OMP_NUM_THREADS=1: 23 minutes on 2 cores shared with other jobs)::

    python benchmarks/build_cell_benchmark.py --db rungs.db --parquet rungs.parquet --seeds 0 \\
        --epochs 6 --robust-eps 0.1 --schedule rungs
    nasbench bench import --db cell_digits.db tests/fixtures/cell_digits.parquet rungs.parquet
    python benchmarks/build_cell_benchmark.py --db cell_digits.db --export-only

and once more at 27 epochs, where the rungs of grace period 1 and eta 3 are epochs 1, 3
and 9 (the widest fidelity range of the recording: 6.6 CPU-seconds per class with its
attacks, 27.5 minutes as two shards on 2 idle cores)::

    python benchmarks/build_cell_benchmark.py --db r27_0.db --parquet r27_0.parquet --seeds 0 \\
        --epochs 27 --robust-eps 0.1 --schedule rungs --shard 0/2      # and --shard 1/2 beside it

``--dataset`` records another dataset than digits (a torchvision one, read from
``--data-dir``; rows under its name, or ``NAME-rungs``), e.g. CIFAR-10 as NAS-Bench-201
does, on a machine that holds its files.

Why: under one-cycle the rankings after the rungs barely predict the final ones, so
successive halving stops the wrong trials (``benchmarks/mo_asha_hypervolume.py``). Spearman
rank correlation of each rung's value with the final one, and the final accuracies, over
the 496 classes (seed 0, 6 epochs; val_acc at the rung against the final val_acc, FGSM
robust accuracy at the rung against the final PGD-10)::

                 val_acc at epoch                FGSM at epoch vs final PGD-10    final (mean, best)
    schedule     1     2     3     4     5  |   1     2     3     4     5  | val_acc        PGD-10         HV
    onecycle  0.14  0.17  0.13  0.32  0.79  | 0.30  0.48  0.35  0.54  0.69  | 0.9686 0.9861  0.4168 0.5602  0.0160
    rungs     0.20  0.17  0.23  0.08  0.58  | 0.35  0.52  0.58  0.32  0.67  | 0.9688 0.9907  0.3956 0.5602  0.0168

The rungs are epochs 1 and 3 (epoch 4 follows the restart). HV: the hypervolume of all
496 final (val_acc, PGD-10) points from the worst values of both recordings. Paired over
the classes, the rung-aligned schedule leaves the final validation accuracy as it was
(+0.0002 +- 0.0005) and costs 0.021 +- 0.0025 of mean PGD-10 robust accuracy, while its
best classes are as robust and its front is wider: it trains no worse where a search looks.

The final validation accuracy cannot be ranked from a rung under any schedule: its
spread across classes (standard deviation 0.0085) is below the binomial noise of the
216-image validation split (0.012 at 97%). After one epoch (10 steps) batch norm's
running statistics lag behind the weights (median val_acc 0.19 at epoch 1 against a
training accuracy of 0.62); recomputing them over the training split before every
evaluation (precise BN, 60 classes) lifts the epoch-1 median to 0.81 but not its rank
correlation (0.09): one epoch is too short to rank by, whatever the schedule. The robust
accuracy spreads wider (0.061 against 0.034 of noise), and there the rung-aligned
schedule makes the epoch-3 rung predictive.
On a first sample of 60 classes, linear decay per rung segment (Li et al.'s linear
schedule) and SGDR with a 25% warm-up per segment predicted less (epoch-3 FGSM against
PGD 0.57 and 0.62) and lost more robust accuracy (-0.030 and -0.045 mean PGD-10).

Resumable: rows already in ``--db`` are skipped, so an interrupted build continues
where it stopped. Classes are trained in a fixed shuffled order, so a partial build
is a uniform sample of the classes. At the end every row is exported to Parquet.

    python benchmarks/build_cell_benchmark.py --db cell_digits.db \\
        --parquet tests/fixtures/cell_digits.parquet       # 40-75 min on one core, by load
    # or one process per seed (and core), each into its own store, then merge:
    python benchmarks/build_cell_benchmark.py --db s1.db --parquet s1.parquet --seeds 1
    nasbench bench import --db cell_digits.db s0.parquet s1.parquet s2.parquet ...
    python benchmarks/build_cell_benchmark.py --db cell_digits.db --export-only
"""

from __future__ import annotations

import argparse
import itertools
import math
import random
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from search_spaces import CellArch

DEFAULT_OPS = ("skip_connect", "nor_conv_1x1", "nor_conv_3x3")
DATASET = "digits"
SCHEDULES = ("onecycle", "rungs")


def dataset_label(schedule: str = "onecycle", dataset: str = DATASET) -> str:
    """The ``dataset`` a row is stored under: the store keys rows by (hash, dataset, budget,
    seed), so rows of another LR schedule go under their own label (as NAS-Bench-201's
    ``cifar10-valid`` names a protocol): ``digits`` (one-cycle), ``digits-rungs``."""
    return dataset if schedule == "onecycle" else f"{dataset}-{schedule}"


def schedule_record(cfg) -> dict:
    """The training protocol a row records in its provenance (``train``)."""
    from nasbench.strategies.mo_asha import rung_epochs

    record = {key: getattr(cfg, key) for key in ("epochs", "batch_size", "optimizer", "lr", "weight_decay", "schedule")}
    if cfg.schedule == "rungs":
        record["milestones"] = rung_epochs(cfg.epochs)  # make_schedule's default: grace period 1, eta 3
    return record


def subspace_classes(ops, cells_per_stage: int = 1, channels: int = 8) -> dict[str, CellArch]:
    """``arch_hash -> representative cell`` for every canonical class of the subspace.

    The representative is the class's first cell in NAS-Bench-201's enumeration order
    (last edge fastest), so the choice does not depend on anything but ``ops``.
    """
    from search_spaces import CellArch, arch_hash
    from search_spaces.cell import EDGES

    classes: dict[str, CellArch] = {}
    for edge_ops in itertools.product(ops, repeat=len(EDGES)):
        cell = CellArch(edge_ops, cells_per_stage=cells_per_stage, channels=channels)
        classes.setdefault(arch_hash(cell), cell)
    return classes


def robust_accuracy(model, dataset, attack: str, eps: float, seed: int) -> float:
    """Accuracy on the whole validation split under ``attack`` at Linf ``eps``."""
    from attacks import evaluate

    report = evaluate(
        model, dataset.val.x.cpu(), dataset.val.y.cpu(), attack, [eps], checks=False, keep_examples=0, seed=seed
    )
    return float(report.robust_accuracy(eps))


def _provenance() -> dict:
    """What the store records by itself in a row's provenance (versions, git commit)."""
    try:
        from nasbench.store import collect_provenance  # type: ignore[attr-defined, unused-ignore]
    except ImportError:  # the store as a package: provenance is its own module
        from nasbench.provenance import collect_provenance  # type: ignore[import-not-found, unused-ignore]
    return collect_provenance()


def train_row(cell, dataset, cfg, seed: int, robust_eps: float | None = None) -> dict:
    """Train one cell and return its benchmark row (``failed`` with the reason on error).

    With ``robust_eps``: FGSM robust accuracy after every epoch (``robust_acc`` in the
    curves) and FGSM and PGD-10 after the last one (the row's ``robust`` list). A row of
    another schedule than one-cycle is stored under :func:`dataset_label` and records its
    schedule in ``provenance["train"]``."""
    import torch

    from nasbench.models import wrap_normalized
    from nasbench.train import train_model
    from search_spaces import arch_hash, arch_to_dict, build_model, describe

    row = {
        "arch_hash": arch_hash(cell),
        "dataset": dataset_label(cfg.schedule, dataset.name),
        "budget": cfg.epochs,
        "seed": seed,
        "space": "cell",
        "arch": arch_to_dict(cell),
    }
    if cfg.schedule != "onecycle":
        row["provenance"] = {**_provenance(), "train": schedule_record(cfg)}
    robust_curve: dict[int, float] = {}
    try:
        torch.manual_seed(seed)
        network = build_model(cell, dataset.input_shape, dataset.num_classes)
        model = wrap_normalized(network, dataset)

        def on_epoch(metrics: dict) -> None:
            if robust_eps is not None:  # the attack leaves the training RNG and mode as they were
                robust_curve[metrics["epoch"]] = robust_accuracy(model, dataset, "fgsm", robust_eps, seed)

        result = train_model(model, dataset, cfg, seed=seed, on_epoch=on_epoch)
        totals = describe(network, dataset.input_shape, dataset.num_classes).totals
        robust = (
            []
            if robust_eps is None
            else [
                {"attack": "fgsm", "norm": "Linf", "eps": robust_eps, "accuracy": robust_curve[cfg.epochs]},
                {
                    "attack": "pgd",
                    "norm": "Linf",
                    "eps": robust_eps,
                    "accuracy": robust_accuracy(result.model, dataset, "pgd:steps=10", robust_eps, seed),
                },
            ]
        )
    except Exception as error:  # noqa: BLE001 - a failed cell is a row too
        return {**row, "status": "failed", "reason": f"{type(error).__name__}: {error}"[:500]}
    curves = [{k: (round(v, 6) if isinstance(v, float) else v) for k, v in entry.items()} for entry in result.history]
    for entry in curves:
        epoch = int(entry["epoch"])
        if epoch in robust_curve:
            entry["robust_acc"] = round(robust_curve[epoch], 6)
    return {
        **row,
        "status": "ok",
        "curves": curves,
        "train_acc": curves[-1]["train_acc"],
        "val_acc": float(result.val_acc if result.val_acc is not None else math.nan),
        "test_acc": float(result.test_acc if result.test_acc is not None else math.nan),
        "params": int(totals["params"]),
        "macs": int(totals["macs"]),
        "device": result.device,
        "train_seconds": round(float(result.train_seconds), 3),
        "robust": robust or None,
    }


def build(
    db: Path,
    ops=DEFAULT_OPS,
    epochs: int = 2,
    channels: int = 8,
    batch_size: int = 128,
    seeds=(0,),
    limit: int | None = None,
    log=print,
    robust_eps: float | None = None,
    shard: tuple[int, int] = (0, 1),
    schedule: str = "onecycle",
    dataset_name: str = DATASET,
    data_dir: Path = Path("data"),
) -> int:
    """Train the (class, seed) pairs of the subspace not yet in ``db``; the number trained now.

    Each seed trains every class once, on that seed's own train/validation split.
    ``shard = (k, n)`` trains only every n-th class of the fixed order, from the k-th:
    n processes, each with its own store, share the work. ``schedule``: the LR schedule
    (``nasbench.train.make_schedule``); ``rungs`` rows go under :func:`dataset_label`.
    ``dataset_name``: ``digits`` or a torchvision dataset read from ``data_dir``.
    """
    import torch

    from nasbench.config import TrainConfig
    from nasbench.data import load_dataset
    from nasbench.store import Benchmark

    torch.set_num_threads(1)  # tiny models: one thread is fastest and leaves cores to others
    classes = subspace_classes(ops, cells_per_stage=1, channels=channels)
    order = sorted(classes)  # hashes: a fixed shuffle independent of enumeration order
    random.Random(0).shuffle(order)
    order = order[shard[0] :: shard[1]]
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, threads=1, device="cpu", schedule=schedule)
    label = dataset_label(schedule, dataset_name)
    trained = 0
    with Benchmark(db) as bench:
        for seed in seeds:
            dataset = load_dataset(dataset_name, data_dir=data_dir, seed=seed)
            missing = [h for h in order if bench.lookup(h, label, epochs, seed) is None]
            todo = missing if limit is None else missing[: max(0, limit - trained)]
            log(
                f"seed {seed}, {schedule}: {len(order)} of {len(classes)} canonical classes among "
                f"{len(ops)}**6 cells over {', '.join(ops)}; "
                f"{len(order) - len(missing)} already recorded, {len(todo)} to train now; {dataset.summary()}"
            )
            started = time.perf_counter()
            best = 0.0
            for done, key in enumerate(todo, start=1):
                row = train_row(classes[key], dataset, cfg, seed, robust_eps)
                bench.record(row)
                trained += 1
                best = max(best, row.get("val_acc") or 0.0)
                elapsed = time.perf_counter() - started
                eta = elapsed / done * (len(todo) - done)
                robust = f" robust {row['robust'][-1]['accuracy']:.4f}" if row.get("robust") else ""
                log(
                    f"[seed {seed} {done}/{len(todo)}] {row['status']} val {row.get('val_acc', math.nan):.4f}{robust} "
                    f"{row.get('train_seconds', 0.0):.1f}s  best {best:.4f}  ETA {eta / 60:.1f} min  "
                    f"{classes[key]}",
                    flush=True,
                )
    return trained


def export(db: Path, parquet: Path) -> int:
    from nasbench.store import Benchmark

    with Benchmark(db, create=False) as bench:
        return bench.export_parquet(parquet)


def main(argv=None) -> int:
    from nasbench.data import BUILTIN_DATASETS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=Path("cell_digits.db"), help="benchmark store to fill")
    parser.add_argument(
        "--parquet",
        type=Path,
        default=Path("tests/fixtures/cell_digits.parquet"),
        help="Parquet export written at the end",
    )
    parser.add_argument("--ops", default=",".join(DEFAULT_OPS), help="operations every edge may carry")
    parser.add_argument(
        "--dataset",
        choices=BUILTIN_DATASETS,
        default=DATASET,
        help="digits (built in) or a torchvision dataset already in --data-dir (default digits)",
    )
    parser.add_argument("--data-dir", type=Path, default=Path("data"), help="where torchvision datasets live")
    parser.add_argument("--epochs", type=int, default=2, help="training budget per cell")
    parser.add_argument("--channels", type=int, default=8, help="skeleton width C (C, 2C, 4C)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument(
        "--seeds", default="0,1,2,3,4", help="training seeds, each on its own split (default 0,1,2,3,4)"
    )
    parser.add_argument("--limit", type=int, default=None, help="train at most this many rows now")
    parser.add_argument(
        "--robust-eps",
        type=float,
        default=None,
        help="also record robust accuracy at this Linf eps: FGSM after every epoch, PGD-10 after the last",
    )
    parser.add_argument("--shard", default="0/1", help="K/N: train only every N-th class, from the K-th")
    parser.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default="onecycle",
        help="LR schedule: onecycle (rows of dataset digits) or rungs, warm restarts at ASHA's rungs "
        "with grace period 1 and eta 3 (rows of dataset digits-rungs)",
    )
    parser.add_argument("--export-only", action="store_true", help="only export --db to --parquet")
    args = parser.parse_args(argv)
    ops = tuple(op.strip() for op in args.ops.split(",") if op.strip())
    from search_spaces import CELL_OPS

    unknown = [op for op in ops if op not in CELL_OPS]
    if unknown or not ops:
        parser.error(f"--ops takes operations from {', '.join(CELL_OPS)} (got {args.ops!r})")
    if not args.export_only:
        seeds = [int(seed) for seed in args.seeds.split(",") if seed.strip()]
        k, _, n = args.shard.partition("/")
        if not (k.isdigit() and n.isdigit() and int(k) < int(n)):
            parser.error(f"--shard takes K/N with 0 <= K < N (got {args.shard!r})")
        build(
            args.db,
            ops,
            args.epochs,
            args.channels,
            args.batch_size,
            seeds,
            args.limit,
            robust_eps=args.robust_eps,
            shard=(int(k), int(n)),
            schedule=args.schedule,
            dataset_name=args.dataset,
            data_dir=args.data_dir,
        )
    rows = export(args.db, args.parquet)
    size = args.parquet.stat().st_size
    print(f"exported {rows} rows to {args.parquet} ({size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
