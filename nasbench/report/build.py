"""Building a report: the summary, its tables and figures, the HTML or Markdown file and
the JSON beside it, and the MLflow run that keeps them."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasbench.errors import UserError
from nasbench.report.plots import draw_figures
from nasbench.report.render import render_html, render_markdown
from nasbench.report.summary import collect_summary
from nasbench.report.tables import build_tables

if TYPE_CHECKING:
    from nasbench.tracking import TrackingConfig

__all__ = ["ReportResult", "build_report"]


@dataclass
class ReportResult:
    """Where the report went: the HTML/Markdown file, its JSON summary, its MLflow run."""

    path: Path
    json_path: Path
    mlflow_run_id: str | None = None
    failed_checks: int = 0


def _log_report(tracking: TrackingConfig, summary: dict, result: ReportResult, extra: list[Path]) -> str:
    from nasbench.tracking import evaluation_run

    runs = [r["mlflow_run_id"] for r in summary["reproducibility"]["runs"] if r["mlflow_run_id"]]
    model_runs = {r["model_run_id"] for r in summary["reproducibility"]["runs"] if r["model_run_id"]}
    params = {
        "experiment": summary["experiment"],
        "models": ",".join(m["label"] for m in summary["models"]),
        "format": result.path.suffix.lstrip("."),
        "headline_eps": summary["headline"]["eps"],
        "headline_norm": summary["headline"]["norm"],
    }
    with evaluation_run(
        tracking,
        model_run_id=next(iter(model_runs)) if len(model_runs) == 1 else None,
        name="report",
        params=params,
        role="report",
    ) as run:
        run.set_tag("nasbench.covers_runs", ",".join(runs))
        run.log_metrics({"models": len(summary["models"]), "failed_checks": len(summary["failed_checks"])})
        run.log_artifact(result.path, "report")
        run.log_artifact(result.json_path, "report")
        for path in extra:
            run.log_artifact(path, "report/" + path.parent.name)
        return run.run_id


def _equivalent_command(
    experiment_dir: Path,
    out: Path,
    format: str,
    models: list[str] | None,
    attacks: list[str] | None,
    headline_eps: float | None,
) -> str:
    """The CLI call that makes the same report, for one built from Python."""
    words = ["nasbench", "report", "--experiment", experiment_dir.name, "--experiments-dir", str(experiment_dir.parent)]
    if models:
        words += ["--models", ",".join(models)]
    if attacks:
        words += ["--attacks", ",".join(attacks)]
    if headline_eps is not None:
        words += ["--headline-eps", str(headline_eps)]
    if format != "html":
        words += ["--format", format]
    return shlex.join([*words, "--out", str(out)])


def _report_provenance(command: str, headline_eps: float | None) -> dict[str, Any]:
    """How this report itself was made: its command and the code it ran, which may differ
    from those of the evaluations it shows."""
    from nasbench.provenance import collect_provenance

    return {
        "command": command,
        "working_directory": os.getcwd(),  # the command's relative paths start there
        "git_commit": collect_provenance().get("git_commit"),
        "headline_eps_given": headline_eps is not None,
    }


def _report_path(out: str | Path, format: str) -> Path:
    out = Path(out)
    if out.suffix.lower() == f".{format}":
        return out
    if out.suffix.lower() in (".html", ".md", ""):
        return out.with_suffix(f".{format}")
    return out.with_name(out.name + f".{format}")


@contextlib.contextmanager
def _writing_to(out: Path) -> Iterator[None]:
    """An --out that cannot be written (a file where a folder should be, no permission, a full
    disk) is the user's to fix: a UserError naming the path, not an internal error."""
    try:
        yield
    except OSError as error:
        where = f"{error.filename}: " if error.filename and str(error.filename) != str(out) else ""
        # mkdir(exist_ok=True) says "File exists" for a plain file where a folder should be.
        reason = "not a folder" if isinstance(error, (FileExistsError, NotADirectoryError)) else error.strerror
        raise UserError(f"cannot write the report to {out}: {where}{reason or error}") from None


def _write_report(out: Path, format: str, summary: dict, tables: dict, figures: dict[str, bytes]) -> list[Path]:
    """Write the report file (and, for Markdown, its images beside it); returns the images."""
    extra: list[Path] = []
    if format == "html":
        out.write_text(render_html(summary, tables, figures), encoding="utf-8")
        summary["figures"] = sorted(figures)
        return extra
    folder = out.with_name(f"{out.stem}_files")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    paths = {}
    for name, data in figures.items():
        path = folder / f"{name}.png"
        path.write_bytes(data)
        extra.append(path)
        paths[name] = f"{folder.name}/{path.name}"
    out.write_text(render_markdown(summary, tables, paths), encoding="utf-8")
    summary["figures"] = paths
    return extra


def build_report(
    experiment_dir: str | Path,
    out: str | Path,
    format: str = "html",
    models: list[str] | None = None,
    attacks: list[str] | None = None,
    tracking: TrackingConfig | None = None,
    headline_eps: float | None = None,
    command: str | None = None,
) -> ReportResult:
    """Write the robustness report of an experiment and its JSON summary.

    Args:
        experiment_dir: ``experiments/<NAME>``, holding ``evaluations/`` from ``nasbench attack``.
        out: the report file; the JSON summary goes beside it (``report.json`` for
            ``report.html``). With ``format="md"`` the images go to ``<stem>_files/``.
        models, attacks: only these model labels / attack names (default: all).
        tracking: a ``nasbench.tracking.TrackingConfig``: the report is also logged as
            artifacts of an MLflow run tagged with the evaluation runs it covers.
        headline_eps: the eps of the summary column and the Pareto plot (default: where
            the models differ most, see :func:`_choose_headline`).
        command: the command line that asked for the report, shown in its reproducibility
            block (default: the equivalent ``nasbench report`` command).

    Raises UserError for a missing experiment, no evaluations, unknown models or attacks,
    and an ``out`` that cannot be written.
    """
    if format not in ("html", "md"):
        raise UserError(f"report format must be html or md, not {format!r}")
    summary = collect_summary(experiment_dir, models, attacks, headline_eps)
    out = _report_path(out, format)
    # not this process's argv: inside `nasbench demo` that would name the whole demo
    command = command or _equivalent_command(Path(experiment_dir), out, format, models, attacks, headline_eps)
    summary["reproducibility"]["report"] = _report_provenance(command, headline_eps)
    with _writing_to(out):  # before the plots: a bad --out fails in a second, not after them
        out.parent.mkdir(parents=True, exist_ok=True)
    tables = build_tables(summary)
    figures = draw_figures(summary)
    json_path = out.with_suffix(".json")
    with _writing_to(out):
        extra = _write_report(out, format, summary, tables, figures)
        json_path.write_text(json.dumps(summary, indent=2, default=str))
    result = ReportResult(path=out, json_path=json_path, failed_checks=len(summary["failed_checks"]))
    if tracking is not None:
        result.mlflow_run_id = _log_report(tracking, summary, result, extra)
    return result
