"""What the commands print about results: evaluation, corruption and transfer tables, a
search's summary, and the progress bars of an attack run.

``nasbench attack`` and ``nasbench demo`` print evaluations alike, and ``nasbench
search`` and the demo print a search's summary alike: one rendering each, here. Every
table fits the console's width, 80 columns and up (see :mod:`nasbench.tables`); a
missing rate reads "-".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

from nasbench.formatting import eps_text, pct
from nasbench.tables import compact_table, print_fitted

if TYPE_CHECKING:  # rich and torch load when something is printed, not at `nasbench --help`
    from rich.console import Console
    from rich.table import Table

    from attacks import RobustnessReport
    from nasbench.evaluation import ModelEvaluation
    from nasbench.search import SearchSummary

__all__ = [
    "CASCADE_LEGEND",
    "DETAILS_LEGEND",
    "attack_progress",
    "print_corruptions",
    "print_evaluation",
    "print_evaluations",
    "print_summary",
    "print_transfer",
]

# Legends printed under the tables: the abbreviations and marks they use.
CASCADE_LEGEND = (
    "* cascade: ran only on the points every cheaper attack left standing; its robust accuracy is the ensemble's"
)
DETAILS_LEGEND = (
    "success: points broken / points attacked (cascade*: / points it ran on); broken: at this eps or "
    "a smaller one; L2, Linf: mean/median size of the perturbations that broke a point; ms: per "
    "attacked point"
)


# ---------------------------------------------------------------------- evaluation


def print_evaluations(console: Console, evaluations: list[ModelEvaluation]) -> None:
    """Each model's evaluation, and its accuracy under common corruptions where measured."""
    for evaluation in evaluations:
        print_evaluation(console, evaluation)
        if evaluation.record.get("corruptions"):
            print_corruptions(console, evaluation.record["corruptions"])


def print_evaluation(console: Console, evaluation: ModelEvaluation) -> None:
    """Robust accuracy per attack x eps with the worst case, the details, and the checks;
    every table fits the console's width (80 columns and up)."""
    report = evaluation.report
    model = evaluation.record["model"]
    console.print(
        f"\n[bold]{evaluation.label}[/] ({model['kind']}, {model['params']:,} params, "
        f"{model['macs']:,} MACs, {model['latency_ms']:.2f} ms/image best of 20): clean accuracy "
        f"[bold]{pct(report.clean_accuracy)}[/] on {report.n} test points"
    )
    norms = list(dict.fromkeys(r.norm for r in report.results))
    for norm in norms:
        eps_values = sorted({r.eps for r in report.results if r.norm == norm})
        print_fitted(console, partial(_robust_table, report, norm), eps_values)
    if any(r.scope == "cascade" for r in report.results):
        console.print(f"[dim]{CASCADE_LEGEND}[/]", highlight=False)
    for norm in norms:  # an evaluation of corruptions alone has no attack to detail
        console.print(_details_table(report, norm))
    if norms:
        console.print(f"[dim]{DETAILS_LEGEND}[/]", highlight=False)
    if report.checks:
        console.print(_checks_table(report))
        if report.failed_checks:
            console.print(
                f"[bold red]{len(report.failed_checks)} sanity check(s) FAILED[/]: the evaluation may "
                "be too weak (see the details above)"
            )


def _radius_kind(norm: str) -> str:
    return "noise std" if norm == "gaussian" else f"{norm} eps"


def _robust_table(report: RobustnessReport, norm: str, eps_values: list[float]) -> Table:
    """Robust accuracy of one norm: an attack per row, an eps per column, the worst case last."""
    rows = [r for r in report.results if r.norm == norm]
    table = compact_table(f"robust accuracy, {_radius_kind(norm)}")
    table.add_column("attack", no_wrap=True)
    for value in eps_values:
        table.add_column(eps_text(value), justify="right", no_wrap=True)
    for attack in dict.fromkeys(r.attack for r in rows):
        cells = {r.eps: r for r in rows if r.attack == attack}
        mark = "*" if any(r.scope == "cascade" for r in cells.values()) else ""
        table.add_row(attack + mark, *[pct(cells[v].robust_accuracy) if v in cells else "" for v in eps_values])
    worst = {w.eps: w for w in report.worst_case if w.norm == norm}
    if worst:
        table.add_row(
            "[bold]worst case[/]",
            *[f"[bold]{pct(worst[v].robust_accuracy)}[/]" if v in worst else "" for v in eps_values],
        )
    return table


def _milliseconds(seconds: float) -> str:
    ms = 1000 * seconds
    return f"{ms:.2f}" if ms < 10 else f"{ms:.1f}" if ms < 100 else f"{ms:.0f}"


def _mean_median(mean: float | None, median: float | None) -> str:
    return "-" if mean is None or median is None else f"{mean:.3f}/{median:.3f}"


def _details_table(report: RobustnessReport, norm: str) -> Table:
    """Per attack and eps of one norm: success, points broken, perturbation sizes, time."""
    table = compact_table(f"per attack and {_radius_kind(norm)}")
    for column in ("attack", "eps", "success", "broken", "L2\nmean/med", "Linf\nmean/med", "ms"):
        table.add_column(column, justify="left" if column == "attack" else "right", overflow="fold")
    for r in report.results:
        if r.norm != norm or r.eps == 0:
            continue
        mark = "*" if r.scope == "cascade" else ""
        table.add_row(
            r.attack + mark,
            eps_text(r.eps),
            pct(r.success_rate),
            str(r.n_broken),
            _mean_median(r.mean_l2, r.median_l2),
            _mean_median(r.mean_linf, r.median_linf),
            _milliseconds(r.seconds_per_example),
        )
    return table


def _checks_table(report: RobustnessReport) -> Table:
    """A verdict per check, its name over its detail (counts and the test's p-value)."""
    from attacks.checks import ALPHA

    table = compact_table(
        "sanity checks (Carlini et al. 2019): exact one-sided tests on the same points; a check "
        f"fails when p < {ALPHA:g} (Bonferroni-adjusted over its comparisons)"
    )
    table.add_column("verdict", no_wrap=True)
    table.add_column("check", overflow="fold")
    for check in report.checks:
        verdict = {True: "[green]PASS[/]", False: "[bold red]FAIL[/]", None: "[dim]n/a[/]"}[check.passed]
        detail = f"[red]{check.detail}[/]" if check.passed is False else check.detail
        table.add_row(verdict, f"[bold]{check.name}[/]\n{detail}")
    return table


# ------------------------------------------------------------------ transferability


def print_transfer(console: Console, matrix: dict[str, Any]) -> None:
    """Accuracy of each target model on the examples made on each source model."""
    print_fitted(console, partial(_transfer_table, matrix), list(matrix["targets"]))


def _transfer_table(matrix: dict[str, Any], targets: list[str]) -> Table:
    table = compact_table(
        f"transfer: accuracy of target (column) on {matrix['attack_label']} examples made on "
        f"source (row), {matrix['norm']} eps {eps_text(matrix['eps'])}"
    )
    table.add_column("source \\ target", no_wrap=True)
    for target in targets:
        table.add_column(target, justify="right", no_wrap=True)
    table.add_row("[dim]clean[/]", *[f"[dim]{pct(matrix['clean_accuracy'][t])}[/]" for t in targets])
    for source in matrix["sources"]:
        table.add_row(source, *[pct(matrix["robust_accuracy"][source][t]) for t in targets])
    return table


# ------------------------------------------------------------------ common corruptions


def _error_text(error: float | None) -> str:
    """A corruption error (CE, mCE) on the baseline's scale of 100."""
    return "-" if error is None else f"{100 * error:.1f}"


def print_corruptions(console: Console, corruptions: dict[str, Any]) -> None:
    """Accuracy per corruption x severity with the means, then the summary against clean and the baseline."""
    errors = corruptions.get("errors") or {}
    console.print(_corruptions_table(corruptions, errors))
    relative = corruptions.get("relative_accuracy")
    of_clean = "-" if relative is None else f"{100 * relative:.1f}%"
    console.print(
        f"mean corruption accuracy [bold]{pct(corruptions['mean_accuracy'])}[/] "
        f"({of_clean} of clean {pct(corruptions['clean_accuracy'])}); "
        f"mCE {_error_text(errors.get('mce'))}, relative mCE {_error_text(errors.get('relative_mce'))} "
        f"(baseline {errors.get('baseline', '-')} = 100)",
        highlight=False,
    )


def _corruptions_table(corruptions: dict[str, Any], errors: dict[str, Any]) -> Table:
    severities = [str(s) for s in corruptions["severities"]]
    # Short headers ("sev 3", "CE") so that five severities fit 80 columns; the title says the rest.
    table = compact_table(
        f"accuracy under common corruptions (Hendrycks & Dietterich 2019), {corruptions['n']} "
        f"points, per severity; CE: corruption error vs {errors.get('baseline', '-')} (= 100)"
    )
    table.add_column("corruption", no_wrap=True)
    for severity in severities:
        table.add_column(f"sev {severity}", justify="right", no_wrap=True)
    table.add_column("mean", justify="right", no_wrap=True)
    table.add_column("CE", justify="right", no_wrap=True)
    for name in corruptions["corruptions"]:
        table.add_row(
            name,
            *[pct(corruptions["accuracy"][name][s]) for s in severities],
            pct(corruptions["corruption_mean"][name]),
            _error_text((errors.get("ce") or {}).get(name)),
        )
    mce = errors.get("mce")
    table.add_row(
        "[bold]mean[/]",
        *[f"[bold]{pct(corruptions['severity_mean'][s])}[/]" for s in severities],
        f"[bold]{pct(corruptions['mean_accuracy'])}[/]",
        "-" if mce is None else f"[bold]{_error_text(mce)}[/]",
    )
    return table


# ------------------------------------------------------------------------- search


def print_summary(summary: SearchSummary, console: Console) -> None:
    """The best architectures (or the Pareto front), then what the search cost and where it went."""
    from rich.table import Table

    title = "Pareto front" if summary.pareto else "Best architectures"
    table = Table(title=f"{title} ({summary.experiment})")
    columns = ["rank", "trial", "arch_hash"] + [
        k for k in (summary.best[0] if summary.best else {}) if k not in ("rank", "trial", "arch_hash", "arch")
    ]
    for column in columns:
        table.add_column(column, justify="right" if column not in ("arch_hash", "status") else "left")
    for row in summary.best[:10]:
        table.add_row(*[_summary_cell(column, row.get(column)) for column in columns])
    console.print(table)
    console.print(
        f"{summary.finished}/{summary.requested} trials finished: {summary.complete} complete "
        f"({summary.deduplicated} answered from the store), {summary.pruned} pruned, "
        f"{summary.failed} failed, in {summary.seconds:.1f} s"
    )
    for number, reason in list(summary.failures.items())[:5]:
        console.print(f"  trial {number} failed: {reason}")
    if summary.exported:
        console.print(f"exported {len(summary.exported)} architectures to {summary.exported[0].parent}")
    console.print(f"experiment folder: {summary.experiment_dir}")


def _summary_cell(column: str, value: object) -> str:
    if column == "arch_hash":  # 12 hex digits tell the architectures of one search apart
        return str(value)[:12]
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


# ----------------------------------------------------------------------- progress


@contextmanager
def attack_progress(console: Console) -> Iterator[Callable[[str, int, int, str], None]]:
    """A progress bar per model over attack batches; yields the engine's ``progress`` callable."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("batches"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(label: str, done: int, total: int, description: str) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(label, total=total)
            bar.update(tasks[label], completed=done, total=total, description=f"{label}: {description}")

        yield progress
