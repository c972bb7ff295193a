"""Hypervolume of (val_acc, robust_acc) against training budget: FIFO, multi-objective ASHA
and asynchronous Hyperband, replayed on the recorded cell benchmark.

A robustness-aware search spends most of its budget on architectures that are neither
accurate nor robust; successive halving (Li et al. 2020) stops them after an epoch or
three. With two objectives the rung decision is :mod:`nasbench.strategies.mo_asha`'s:
non-dominated rank, then crowding distance, keep the top ``1/eta``; at the rungs the
robust accuracy comes from the cheap attack (FGSM) and the final one from PGD-10 (the
fidelity ladder, :mod:`nasbench.strategies.fidelity`).

The recording (``tests/fixtures/cell_digits.parquet``, rows of budget 6, built by
``benchmarks/build_cell_benchmark.py --epochs 6 --robust-eps 0.1``) holds, for every
class of the cell subspace and for two LR schedules (``--schedule``), the validation
accuracy and the FGSM robust accuracy (Linf 0.1, the whole validation split) after each
of 6 epochs, and PGD-10 robust accuracy after the last: ``rungs`` (dataset
``digits-rungs``; the LR anneals to its floor at epochs 1 and 3 and restarts after
them, what ``nasbench search --scheduler asha|hyperband`` trains with) and ``onecycle``
(dataset ``digits``; one cycle over the 6 epochs). Each search draws classes in a random
order (random search, seeded) and runs them one after another:

- FIFO trains every trial for 6 epochs;
- ASHA (grace period 1, eta 3: rungs at epochs 1 and 3) feeds each trial's rung
  results to :class:`nasbench.strategies.mo_asha.MultiObjectiveRungs`, exactly the
  object ``nasbench search --scheduler asha`` runs, and a stopped trial costs the
  epochs it ran and contributes no point (it is PRUNED in Optuna);
- Hyperband: the same with three brackets (first rung 1, 3, or none), trials assigned
  in turn.

Cost is epochs summed over trials. The hypervolume is that of the finished trials'
final (val_acc, PGD robust_acc), measured from the worst values of the recording (its
nadir). The table gives, per scheduler, the median over seeds of the budget at which
it first reaches FIFO's hypervolume at the full budget, as a fraction of that budget.
``--against SCHEDULE`` adds the budget to reach FIFO's final hypervolume on the other
schedule's recording (the same classes in the same order, one nadir for both).

    python benchmarks/mo_asha_hypervolume.py                       # rungs: 50 seeds, 600 epochs (100 FIFO trials)
    python benchmarks/mo_asha_hypervolume.py --schedule onecycle
    python benchmarks/mo_asha_hypervolume.py --against onecycle    # both schedules, one nadir
    python benchmarks/mo_asha_hypervolume.py --seeds 200 --budget 300 --plot hv.png

Measured (2 shared cores, about 1 minute each; 50 seeds, 600 epochs)::

    --schedule rungs (the default)                  --schedule onecycle
    scheduler   to FIFO HV reached  HV      trials  to FIFO HV reached  HV      trials
    fifo             0.78x   50/50  0.01414    100       0.85x   50/50  0.01486    100
    asha             never   20/50  0.01405  299.5       never   10/50  0.01419    295
    hyperband        0.82x   34/50  0.01449    149       0.95x   26/50  0.01455    147

    --against, one nadir (0.9398, 0.2037): median HV at the budget, and the searches that
    reach FIFO's final hypervolume under one-cycle
    rungs:     fifo 0.01456 (22/50), asha 0.01448 (17/50), hyperband 0.01492 (25/50)
    onecycle:  fifo 0.01486 (50/50), asha 0.01419 (10/50), hyperband 0.01455 (26/50)

The goal (ASHA at FIFO's final hypervolume with half the budget) is still missed. With
the rung-aligned schedule ASHA reaches its FIFO's final hypervolume twice as often (20
of 50 searches against 10) and Hyperband in 34 of 50 at 0.82x (26 at 0.95x); Hyperband
under it ends with the highest hypervolume of the six (0.01492 on the common nadir,
FIFO under one-cycle 0.01486). What it fixes is the epoch-3 rung: the Spearman rank
correlation of FGSM robust accuracy there with the final PGD-10 rises from 0.35 to 0.58
over the 496 classes (``build_cell_benchmark.py``'s docstring has the table). What it
cannot fix is the epoch-1 rung, where ASHA stops two trials in three: after 10 steps the
ranking is near noise under any schedule (0.20 for val_acc, 0.35 for FGSM against
PGD-10; 0.14 and 0.30 under one-cycle), and recomputing batch norm's statistics before
the rung does not help either. The final validation accuracy itself differs between
classes by less than the noise of the 216-image validation split, so only robust
accuracy can be ranked early. Successive halving pays here from a later first rung:
replayed with grace period 3 (one rung, at epoch 3, where this recording's LR has
annealed; a search with ``--grace-period 3`` would restart there only, not at epoch 1
too), ASHA reaches FIFO's final hypervolume in 44 of 50 searches at a median 0.62x of
the budget, against 16 of 50 on the one-cycle recording; close to the goal, not at it.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import sys
import tempfile
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
            f"with benchmarks/build_cell_benchmark.py --epochs 6 --robust-eps 0.1 --schedule {schedule}"
        )
    reference = (min(v for v, _ in final.values()), min(r for _, r in final.values()))
    return RecordedCurves(curves, final, budget, min(eps), reference, schedule)


def simulate(recorded: RecordedCurves, scheduler: str, seed: int, budget: int, eta: int = 3) -> list[tuple[int, float]]:
    """One search until ``budget`` epochs are spent: ``(epochs spent, hypervolume)`` after each trial."""
    from nasbench.strategies.mo_asha import MultiObjectiveRungs, rung_epochs
    from nasbench.strategies.pareto import hypervolume_2d

    order = sorted(recorded.curves)
    np.random.default_rng(seed).shuffle(order)
    # Hyperband: one bracket per first rung and one without early stopping (as nasbench search)
    brackets = {"fifo": 0, "asha": 1, "hyperband": len(rung_epochs(recorded.budget, 1, eta)) + 1}[scheduler]
    rungs = MultiObjectiveRungs(DIRECTIONS, recorded.budget, 1, eta, brackets) if brackets else None
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
        traces = {name: simulate(recorded, name, seed, budget, eta) for name in schedulers}
        target = hypervolume_at(traces["fifo"], budget)
        other = None if against is None else hypervolume_at(simulate(against, "fifo", seed, budget, eta), budget)
        for name, trace in traces.items():
            results[name]["fraction"].append(budget_to_reach(trace, target) / budget)
            results[name]["hypervolume"].append(hypervolume_at(trace, budget))
            results[name]["trials"].append(len(trace))
            if other is not None:
                results[name]["against"].append(budget_to_reach(trace, other) / budget)
        all_traces.append(traces)
    return results, all_traces


def common_reference(*recordings: RecordedCurves) -> list[RecordedCurves]:
    """The recordings with one reference point, the worst values of them all."""
    reference = (min(r.reference[0] for r in recordings), min(r.reference[1] for r in recordings))
    return [dataclasses.replace(r, reference=reference) for r in recordings]


def format_table(
    recorded: RecordedCurves, results: dict, budget: int, seeds: int, eta: int, against: str | None = None
) -> str:
    lines = [
        f"{len(recorded.curves)} recorded classes ({recorded.budget} epochs, LR schedule {recorded.schedule}; "
        "rungs: FGSM, final: PGD-10, "
        f"Linf {recorded.eps:g}); budget {budget} epochs; eta {eta}; median over {seeds} seeds",
        f"{'scheduler':<10} {'budget to FIFO HV':>18} {'reached':>8} {'HV at budget':>13} {'trials':>7}"
        + ("" if against is None else f" {'to ' + against + ' FIFO HV':>22} {'reached':>8}"),
    ]
    for name, result in results.items():
        reached = sum(math.isfinite(f) for f in result["fraction"])
        line = (
            f"{name:<10} {_fraction(statistics.median(result['fraction'])):>18} {reached:>4}/{seeds:<3} "
            f"{statistics.median(result['hypervolume']):>13.5f} {statistics.median(result['trials']):>7g}"
        )
        if against is not None:
            other = sum(math.isfinite(f) for f in result["against"])
            line += f" {_fraction(statistics.median(result['against'])):>22} {other:>4}/{seeds:<3}"
        lines.append(line)
    lines.append(
        "budget to FIFO HV: fraction of the budget at which the scheduler first matches FIFO's "
        "hypervolume at the full budget (never: not within it); HV from the "
        + ("recording's nadir" if against is None else f"nadir of both recordings ({recorded.schedule}, {against})")
        + f" ({recorded.reference[0]:.4f}, {recorded.reference[1]:.4f})"
    )
    if against is not None:
        lines.append(
            f"to {against} FIFO HV: the same, against FIFO's final hypervolume on the {against} "
            "recording (the same classes in the same order)"
        )
    return "\n".join(lines)


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parquet", type=Path, default=FIXTURE, help="recorded benchmark (Parquet export)")
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--budget", type=int, default=600, help="epochs summed over trials")
    parser.add_argument("--eta", type=int, default=3, help="reduction factor")
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
        recorded = load_curves(bench, schedule=args.schedule)
        against = None if args.against is None else load_curves(bench, schedule=args.against)
    if against is not None:
        recorded, against = common_reference(recorded, against)
    results, traces = compare(recorded, range(args.seeds), args.budget, args.eta, against=against)
    print(format_table(recorded, results, args.budget, args.seeds, args.eta, args.against))
    if args.plot is not None:
        plot(traces, args.budget, args.plot)
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
