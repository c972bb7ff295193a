"""Hypervolume of (val_acc, robust_acc) against training budget: FIFO, multi-objective ASHA
and asynchronous Hyperband, replayed on the recorded cell benchmark.

A robustness-aware search spends most of its budget on architectures that are neither
accurate nor robust; successive halving (Li et al. 2020) stops them after an epoch or
three. With two objectives the rung decision is :mod:`nasbench.strategies.mo_asha`'s:
non-dominated rank, then crowding distance, keep the top ``1/eta``; at the rungs the
robust accuracy comes from the cheap attack (FGSM) and the final one from PGD-10 (the
fidelity ladder, :mod:`nasbench.strategies.fidelity`).

The recording (``tests/fixtures/cell_digits.parquet``, built by
``benchmarks/build_cell_benchmark.py --robust-eps 0.1``) holds, for every class of the
cell subspace, the validation accuracy and the FGSM robust accuracy (Linf 0.1, the whole
validation split) after each epoch, and PGD-10 robust accuracy after the last (seed 0):

- ``--epochs 27`` (the default): 27 epochs under ``--schedule rungs`` with its restarts
  at ASHA's rungs 1, 3 and 9 (grace period 1, eta 3), dataset ``digits-rungs``: exactly
  what ``nasbench search --epochs 27 --scheduler asha|hyperband --schedule rungs``
  trains, for FIFO too;
- ``--epochs 6``: 6 epochs (rungs 1 and 3) under ``rungs`` and, ``--schedule onecycle``,
  under one-cycle (dataset ``digits``).

Each search draws classes in a random order (random search, seeded) and runs them one
after another: FIFO trains every trial to the end; ASHA feeds each trial's rung results
to :class:`nasbench.strategies.mo_asha.MultiObjectiveRungs`, exactly the object
``nasbench search --scheduler asha`` runs, and a stopped trial costs the epochs it ran
and contributes no point (it is PRUNED in Optuna); Hyperband does the same with one
bracket per first rung and one without early stopping, trials assigned in turn. Cost is
epochs summed over trials. The hypervolume is that of the finished trials' final
(val_acc, PGD robust_acc), from the worst values of the recording (its nadir). The table
gives, per scheduler, the median over seeds of the budget at which it first reaches
FIFO's hypervolume at the full budget (100 FIFO trials), as a fraction of that budget.

``--ceiling NOISE`` replays the same searches with rungs that see every class's final
values, plus Gaussian noise of NOISE times each objective's spread: how far the rung
decision goes when the rungs predict the end, which no measurement at a rung can beat.

    python benchmarks/mo_asha_hypervolume.py                       # 27 epochs, 50 seeds, 2,700 epochs
    python benchmarks/mo_asha_hypervolume.py --ceiling 0           # the same with perfectly predictive rungs
    python benchmarks/mo_asha_hypervolume.py --epochs 6            # and --schedule onecycle, --against onecycle
    python benchmarks/mo_asha_hypervolume.py --seeds 200 --budget 1350 --plot hv.png

Measured (2 shared cores, 2-3 minutes each at 27 epochs, 1 at 6; 50 seeds)::

    27 epochs, rungs 1, 3, 9           to FIFO HV  reached  HV at budget  trials
    fifo                                    0.80x    50/50       0.00947     100
    asha                                    never    20/50       0.00965     496
    hyperband                               0.66x    36/50       0.00974     205
    --ceiling 0 (rungs see the end)
    asha                                    0.15x    50/50       0.01145     496
    hyperband                               0.48x    47/50       0.01019     199
    --ceiling 1 (a rung's Spearman with the end: 0.69)
    asha                                    0.22x    43/50       0.01027     496
    hyperband                               0.61x    38/50       0.00990     202
    --ceiling 1.5 (Spearman 0.53)
    asha                                    never    25/50       0.00947     496
    hyperband                               0.65x    37/50       0.00984     204

    6 epochs, rungs 1, 3      --schedule rungs                    --schedule onecycle
    scheduler   to FIFO HV  reached  HV      trials     to FIFO HV  reached  HV      trials
    fifo             0.78x   50/50  0.01414    100           0.85x   50/50  0.01486    100
    asha             never   20/50  0.01405  299.5           never   10/50  0.01419    295
    hyperband        0.82x   34/50  0.01449    149           0.95x   26/50  0.01455    147
    --ceiling 0: asha 0.28x 50/50, hyperband 0.55x 49/50; --ceiling 1 (Spearman 0.71):
    asha 0.47x 42/50, hyperband 0.69x 35/50 (both --schedule rungs)

The goal (ASHA at FIFO's final hypervolume with half the budget) is met by the rung
decision when the rungs predict the end, and missed on this recording because they do
not. With perfectly predictive rungs ASHA needs 0.15x of FIFO's budget at 27 epochs
(0.28x at 6); with rungs whose rank correlation with the end is about 0.7 it still
meets the goal (0.22x; 0.47x at 6), at about 0.5 it does not. The recording's rungs
correlate with the final values (Spearman over the 496 classes; val_acc at the rung
against the final val_acc, FGSM against the final PGD-10) at 0.14 and 0.28 after epoch
1, 0.18 and 0.46 after 3, 0.37 and 0.45 after 9; FGSM after the last epoch ranks the
classes against PGD-10 at only 0.72. The classes hardly differ on digits: their final
validation accuracies spread by 0.0068 (standard deviation, mean 0.977) on a 216-image
split, so which class ends on the front is decided late in training, and a wider
fidelity range (27 epochs against 6) does not change that: ASHA, which sees all 496
classes within the budget, reaches FIFO's final hypervolume in only 20 of 50 searches;
Hyperband, whose later brackets skip the first rungs, in 36 of 50 at 0.66x. A recording
on a dataset where architectures separate early (``build_cell_benchmark.py --dataset
cifar10 --data-dir ...``) is what would show the goal met on measured rungs.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "cell_digits.parquet"
SCHEDULERS = ("fifo", "asha", "hyperband")
DIRECTIONS = {"val_acc": "max", "robust_acc": "max"}
# The LR schedules recorded (build_cell_benchmark.py --schedule); rungs, the default of
# ``nasbench search --scheduler asha|hyperband``, is stored under dataset ``digits-rungs``.
LR_SCHEDULES = ("rungs", "onecycle")


@dataclass(frozen=True)
class RecordedCurves:
    """Per class: the rung values ``[(val_acc, fgsm robust_acc)]`` by epoch, and the final point."""

    curves: dict[str, list[tuple[float, float]]]
    final: dict[str, tuple[float, float]]
    budget: int
    eps: float
    reference: tuple[float, float]
    schedule: str = "rungs"


def recorded_dataset(dataset: str, schedule: str) -> str:
    """The ``dataset`` the rows of an LR schedule are stored under (build_cell_benchmark.dataset_label)."""
    return dataset if schedule == "onecycle" else f"{dataset}-{schedule}"


def load_curves(
    bench, dataset: str = "digits", budget: int = 6, seed: int = 0, schedule: str = "rungs"
) -> RecordedCurves:
    """The recorded rows of ``budget`` epochs, ``seed`` and LR ``schedule`` that carry robust
    accuracy per epoch."""
    curves, final, eps = {}, {}, set()
    for row in bench.top(k=100_000, by="val_acc", dataset=recorded_dataset(dataset, schedule)):
        if row["budget"] != budget or row["seed"] != seed or row["status"] != "ok":
            continue
        points = [(e["val_acc"], e.get("robust_acc")) for e in row["curves"]]
        pgd = [r for r in row["robust"] if r["attack"] == "pgd" and r["norm"] == "Linf"]
        if len(points) != budget or any(r is None for _, r in points) or not pgd:
            continue
        curves[row["arch_hash"]] = points
        final[row["arch_hash"]] = (row["val_acc"], pgd[0]["accuracy"])
        eps.add(pgd[0]["eps"])
    if not curves:
        raise ValueError(
            f"no {budget}-epoch {schedule} rows of seed {seed} with robust accuracy per epoch; build them "
            f"with benchmarks/build_cell_benchmark.py --epochs {budget} --robust-eps 0.1 --schedule {schedule}"
        )
    reference = (min(v for v, _ in final.values()), min(r for _, r in final.values()))
    return RecordedCurves(curves, final, budget, min(eps), reference, schedule)


def simulate(
    recorded: RecordedCurves, scheduler: str, seed: int, budget: int, eta: int = 3, grace_period: int = 1
) -> list[tuple[int, float]]:
    """One search until ``budget`` epochs are spent: ``(epochs spent, hypervolume)`` after each trial."""
    from nasbench.strategies.mo_asha import MultiObjectiveRungs, rung_epochs
    from nasbench.strategies.pareto import hypervolume_2d

    order = sorted(recorded.curves)
    np.random.default_rng(seed).shuffle(order)
    # Hyperband: one bracket per first rung and one without early stopping (as nasbench search)
    first_rungs = len(rung_epochs(recorded.budget, grace_period, eta))
    brackets = {"fifo": 0, "asha": 1, "hyperband": first_rungs + 1}[scheduler]
    rungs = MultiObjectiveRungs(DIRECTIONS, recorded.budget, grace_period, eta, brackets) if brackets else None
    spent, finished, trace = 0, [], []
    for number, key in enumerate(order):
        if spent >= budget:
            break
        ran = recorded.budget
        for epoch, (val_acc, robust_acc) in enumerate(recorded.curves[key][:-1], start=1):
            if rungs is not None and not rungs.on_result(
                str(number), epoch, {"val_acc": val_acc, "robust_acc": robust_acc}
            ):
                ran = epoch
                break
        ran = min(ran, budget - spent)  # the budget ends mid-trial: it does not finish
        spent += ran
        if ran == recorded.budget:
            finished.append(recorded.final[key])
        trace.append((spent, hypervolume_2d(finished, recorded.reference)))
    return trace


def hypervolume_at(trace: list[tuple[int, float]], budget: int) -> float:
    return max([hv for spent, hv in trace if spent <= budget], default=0.0)


def _fraction(value: float) -> str:
    return f"{value:.2f}x" if math.isfinite(value) else "never"


def budget_to_reach(trace: list[tuple[int, float]], target: float) -> float:
    """Epochs spent when the hypervolume first reached ``target`` (inf: never)."""
    return next((spent for spent, hv in trace if hv >= target - 1e-12), math.inf)


def compare(
    recorded: RecordedCurves,
    seeds,
    budget: int,
    eta: int = 3,
    schedulers=SCHEDULERS,
    against: RecordedCurves | None = None,
    grace_period: int = 1,
) -> tuple[dict, list[dict]]:
    """Per scheduler, one value per seed (the same class order for every scheduler): the
    budget fraction needed to reach FIFO's hypervolume at the full budget, the hypervolume
    at the full budget and the trials started; and every search's trace.

    ``against``: another schedule's recording of the same classes (with the same
    reference point): also the budget fraction to reach *its* FIFO's final hypervolume
    (``against`` in the results), the same classes drawn in the same order."""
    results: dict[str, dict[str, list[float]]] = {
        name: {"fraction": [], "hypervolume": [], "trials": [], "against": []} for name in schedulers
    }
    all_traces = []
    for seed in seeds:
        traces = {name: simulate(recorded, name, seed, budget, eta, grace_period) for name in schedulers}
        target = hypervolume_at(traces["fifo"], budget)
        other = None if against is None else hypervolume_at(simulate(against, "fifo", seed, budget), budget)
        for name, trace in traces.items():
            results[name]["fraction"].append(budget_to_reach(trace, target) / budget)
            results[name]["hypervolume"].append(hypervolume_at(trace, budget))
            results[name]["trials"].append(len(trace))
            if other is not None:
                results[name]["against"].append(budget_to_reach(trace, other) / budget)
        all_traces.append(traces)
    return results, all_traces


def predictive_rungs(recorded: RecordedCurves, noise: float = 0.0, seed: int = 0) -> tuple[RecordedCurves, float]:
    """The recording with every epoch's rung values replaced by the class's *final*
    (val_acc, PGD robust_acc), plus independent Gaussian noise of ``noise`` times each
    objective's spread over the classes: what successive halving would do if its rungs
    predicted the end (``noise=0``: perfectly) -- the ceiling of any rung measurement.
    Also the Spearman correlation of the first epoch's noisy robust accuracy with the final one."""
    from scipy.stats import spearmanr

    rng = np.random.default_rng(seed)
    keys = sorted(recorded.final)
    finals = np.array([recorded.final[key] for key in keys])
    spread = finals.std(axis=0)
    curves = {
        key: [tuple(final + rng.normal(0.0, 1.0, 2) * noise * spread) for _ in range(recorded.budget)]
        for key, final in zip(keys, finals, strict=True)
    }
    rho = float(spearmanr([curves[key][0][1] for key in keys], finals[:, 1])[0]) if noise else 1.0
    return dataclasses.replace(recorded, curves=curves), rho


def common_reference(*recordings: RecordedCurves) -> list[RecordedCurves]:
    """The recordings with one reference point, the worst values of them all."""
    reference = (min(r.reference[0] for r in recordings), min(r.reference[1] for r in recordings))
    return [dataclasses.replace(r, reference=reference) for r in recordings]


def format_table(
    recorded: RecordedCurves,
    results: dict,
    budget: int,
    seeds: int,
    eta: int,
    against: str | None = None,
    grace_period: int = 1,
) -> str:
    """The results as a table of at most 80 columns, its header and notes wrapped to fit."""
    from nasbench.strategies.mo_asha import rung_epochs

    rungs = ", ".join(map(str, rung_epochs(recorded.budget, grace_period, eta)))
    header = (
        f"{len(recorded.curves)} recorded classes ({recorded.budget} epochs, LR schedule {recorded.schedule}; "
        f"rungs: FGSM, final: PGD-10, Linf {recorded.eps:g}); budget {budget} epochs; ASHA rungs at "
        f"epochs {rungs} (eta {eta}); median over {seeds} seeds"
    )
    rows = [
        f"{'scheduler':<10} {'to FIFO HV':>11} {'reached':>8} {'HV at budget':>13} {'trials':>7}"
        + ("" if against is None else f" {'to ' + against:>12} {'reached':>8}")
    ]
    for name, result in results.items():
        reached = sum(math.isfinite(f) for f in result["fraction"])
        line = (
            f"{name:<10} {_fraction(statistics.median(result['fraction'])):>11} {reached:>4}/{seeds:<3} "
            f"{statistics.median(result['hypervolume']):>13.5f} {statistics.median(result['trials']):>7g}"
        )
        if against is not None:
            other = sum(math.isfinite(f) for f in result["against"])
            line += f" {_fraction(statistics.median(result['against'])):>12} {other:>4}/{seeds:<3}"
        rows.append(line)
    nadir = "the recording's nadir" if against is None else "the nadir of both recordings"
    notes = [
        "to FIFO HV: fraction of the budget at which the scheduler first matches FIFO's hypervolume "
        f"at the full budget (never: not within it); HV from {nadir} "
        f"({recorded.reference[0]:.4f}, {recorded.reference[1]:.4f})"
    ]
    if against is not None:
        notes.append(
            f"to {against}: the same, against FIFO's final hypervolume on the {against} "
            "recording (the same classes in the same order)"
        )
    return "\n".join([textwrap.fill(header, 80), *rows, *(textwrap.fill(note, 80) for note in notes)])


def plot(traces: list[dict], budget: int, path: Path) -> None:
    """Median hypervolume against epochs spent, one line per scheduler."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.linspace(0, budget, 61)
    figure, axis = plt.subplots(figsize=(6, 4))
    for name in traces[0]:
        curves = [[hypervolume_at(search[name], b) for b in grid] for search in traces]
        axis.plot(grid, np.median(curves, axis=0), label=name)
    axis.set_xlabel("epochs spent (summed over trials)")
    axis.set_ylabel("hypervolume of (val_acc, PGD robust_acc)")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--parquet", type=Path, default=FIXTURE, help="recorded benchmark (Parquet export)")
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument(
        "--epochs",
        type=int,
        default=27,
        help="the recording to replay, by its epochs per trial: 27 (rungs only) or 6 (both schedules)",
    )
    parser.add_argument("--budget", type=int, default=None, help="epochs summed over trials (default: 100 FIFO trials)")
    parser.add_argument("--eta", type=int, default=3, help="reduction factor")
    parser.add_argument(
        "--grace-period",
        type=int,
        default=1,
        help="the first rung, in epochs (default 1; the rungs recording restarts its LR at grace "
        "period 1's rungs, so another one replays it approximately)",
    )
    parser.add_argument(
        "--dataset", default="digits", help="the recording's dataset (build_cell_benchmark.py --dataset)"
    )
    parser.add_argument(
        "--ceiling",
        type=float,
        default=None,
        metavar="NOISE",
        help="replay instead with rungs that see each class's final values plus Gaussian noise of NOISE "
        "times their spread (0: a perfect predictor): what any rung measurement could reach",
    )
    parser.add_argument("--plot", type=Path, default=None, help="write the median hypervolume curves here (PNG)")
    parser.add_argument(
        "--schedule",
        choices=LR_SCHEDULES,
        default="rungs",
        help="the recorded LR schedule to replay: rungs (warm restarts at the rungs, what nasbench search "
        "uses with asha/hyperband) or onecycle",
    )
    parser.add_argument(
        "--against",
        choices=LR_SCHEDULES,
        default=None,
        help="also the budget to reach FIFO's final hypervolume on this schedule's recording",
    )
    args = parser.parse_args(argv)

    from nasbench.store import Benchmark

    with tempfile.TemporaryDirectory() as tmp, Benchmark(Path(tmp) / "replay.db") as bench:
        bench.import_parquet(args.parquet)
        try:
            recorded = load_curves(bench, args.dataset, args.epochs, schedule=args.schedule)
            against = None
            if args.against is not None:
                against = load_curves(bench, args.dataset, args.epochs, schedule=args.against)
        except ValueError as error:
            parser.error(str(error))
    if against is not None:
        recorded, against = common_reference(recorded, against)
    if args.ceiling is not None:
        recorded, rho = predictive_rungs(recorded, args.ceiling)
        print(
            textwrap.fill(
                f"rungs see the final values plus noise {args.ceiling:g}x their spread "
                f"(Spearman of a rung's robust accuracy with the final one: {rho:.2f})",
                80,
            )
        )
    budget = args.budget or 100 * args.epochs
    if len(recorded.curves) * args.epochs < budget:
        print(
            textwrap.fill(
                f"warning: {len(recorded.curves)} recorded classes, fewer than the {budget // args.epochs} "
                "trials FIFO would run: the searches run out of classes and the comparison says little",
                80,
            ),
            file=sys.stderr,
        )
    results, traces = compare(
        recorded, range(args.seeds), budget, args.eta, against=against, grace_period=args.grace_period
    )
    print(format_table(recorded, results, budget, args.seeds, args.eta, args.against, args.grace_period))
    if args.plot is not None:
        plot(traces, budget, args.plot)
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
