"""Write the robustness report of an experiment: one self-contained HTML file (plots
embedded, opens without a network) and a JSON summary of every number in it.

The report reads the evaluation bundles that 'nasbench attack' wrote under
experiments/<NAME>/evaluations/ and, when present, the search's benchmark.db for the
Pareto context. It shows the threat model, a table of the models, robust accuracy vs
eps curves, the Pareto front of clean accuracy, robust accuracy and size, the
transferability heatmap, adversarial example grids, every sanity check's verdict
(failures at the top) and a reproducibility block. It is also logged to MLflow as the
artifacts of a run tagged with the evaluation runs it covers.

Each evaluation names the dataset it was measured on (by default, the one its
checkpoint was trained on); a report covers one dataset, so evaluations measured on
different data are reported one dataset at a time with --models.

Examples:
  nasbench report --experiment default --out report.html
  nasbench report --experiment exp1 --models lenet5,macro-08efee6f53 --attacks pgd-10 --out exp1.html
  nasbench report --experiment exp1 --format md --out appendix.md
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Literal

from pydantic import field_validator

from nasbench.config import StrictModel, TrackingUri, add_config_argument, resolve, split_list
from nasbench.errors import UserError

HELP = "robustness report of an experiment as self-contained HTML (or Markdown) plus JSON"


class ReportCommandConfig(StrictModel):
    experiment: str = "default"
    experiments_dir: Path = Path("experiments")
    out: Path | None = None
    format: Literal["html", "md"] = "html"
    models: list[str] | None = None
    attacks: list[str] | None = None
    headline_eps: str | None = None
    tracking_uri: TrackingUri = None
    no_tracking: bool = False

    @field_validator("models", "attacks", mode="before")
    @classmethod
    def _comma_list(cls, value):
        return split_list(value) if isinstance(value, str) else value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--experiment", help="experiment name (default: default)")
    parser.add_argument("--experiments-dir", type=Path, help="root of the experiments (default: experiments)")
    parser.add_argument("--out", type=Path, help="report file (default: <experiment dir>/report.html or .md)")
    parser.add_argument("--format", help="html (default) or md: Markdown with the images in a folder beside it")
    parser.add_argument("--models", type=split_list, help="only these model labels, comma-separated")
    parser.add_argument("--attacks", type=split_list, help="only these attacks (names or labels such as pgd-10)")
    parser.add_argument(
        "--headline-eps",
        help="eps of the summary column and the Pareto plot, e.g. 0.1 or 8/255 "
        "(default: where the models' robust accuracy is about half the clean)",
    )
    parser.add_argument(
        "--tracking-uri",
        help="MLflow tracking URI (default: the one the experiment's search recorded, else its mlflow.db, if any)",
    )
    parser.add_argument("--no-tracking", action="store_true", default=None, help="do not log the report to MLflow")


def _check_one_dataset(experiment_dir: Path, models: list[str] | None) -> None:
    """A report compares its models on the same test points, so on one dataset: each
    evaluation names the data it was measured on, and different data do not mix."""
    from nasbench.evaluation_record import read_evaluations

    labels_by_dataset: dict[str, list[str]] = {}
    for record in read_evaluations(experiment_dir):
        if models is None or record.model.label in models:
            labels_by_dataset.setdefault(record.dataset, []).append(record.model.label)
    if len(labels_by_dataset) > 1:
        listed = "; ".join(f"{name}: {', '.join(labels)}" for name, labels in labels_by_dataset.items())
        raise UserError(
            f"the evaluations in {experiment_dir} were measured on different datasets ({listed}); "
            "choose the models of one with --models"
        )


def run(args: argparse.Namespace) -> int:
    config = resolve(ReportCommandConfig, args)

    from rich.console import Console

    from nasbench.command_line import command_line
    from nasbench.evaluation import parse_one_eps
    from nasbench.experiment import experiment_path
    from nasbench.report import build_report

    experiment_dir = experiment_path(config.experiment, config.experiments_dir)
    if not experiment_dir.is_dir():
        raise UserError(
            f"no experiment '{config.experiment}' in {config.experiments_dir} "
            f"(run 'nasbench attack --experiment {config.experiment}' first)"
        )
    _check_one_dataset(experiment_dir, config.models)
    headline = None if config.headline_eps is None else parse_one_eps(config.headline_eps, "--headline-eps")
    tracking = None
    if not config.no_tracking:
        from nasbench.tracking import TrackingConfig, experiment_tracking_uri, missing_local_store

        uri = experiment_tracking_uri(experiment_dir, config.tracking_uri)
        # only where the evaluations were tracked: never a new, empty local store
        if config.tracking_uri or missing_local_store(uri) is None:
            tracking = TrackingConfig(uri, config.experiment)
    out = config.out or experiment_dir / f"report.{config.format}"
    result = build_report(
        experiment_dir,
        out,
        format=config.format,
        models=config.models,
        attacks=config.attacks,
        tracking=tracking,
        headline_eps=headline,
        command=command_line(getattr(args, "argv", None)),
    )
    console = Console()
    if result.failed_checks:
        console.print(f"[bold red]{result.failed_checks} sanity check(s) FAILED[/] (shown at the top of the report)")
    console.print(f"report: {result.path}")
    console.print(f"summary: {result.json_path}")
    if result.mlflow_run_id and tracking is not None:
        console.print(f"MLflow run: {result.mlflow_run_id} ({tracking.tracking_uri})")
    return 0
