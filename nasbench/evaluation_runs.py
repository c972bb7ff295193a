"""The MLflow runs of an evaluation: one per model, linked to the run that trained it, and
one for the transferability matrix."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasbench.evaluation_bundle import BUNDLE_FILES, write_json
from nasbench.evaluation_record import EVALUATION_FILE, EvaluationRecord
from nasbench.evaluation_store import robust_rows
from nasbench.model_loading import safe_label

if TYPE_CHECKING:  # attacks loads torch
    from attacks import RobustnessReport
    from nasbench.model_loading import ModelInfo
    from nasbench.tracking import TrackingConfig

__all__ = ["corruption_metrics", "log_evaluation", "log_transfer"]


def _evaluation_params(info: ModelInfo, record: EvaluationRecord) -> dict[str, Any]:
    """What the run was asked to do: the model, the data, the attacks and eps, the corruptions."""
    threat = record.report["threat_model"]
    params = {
        "model": info.label,
        "model_kind": info.kind,
        "source": info.source,
        "dataset": record.dataset,
        "n": record.n,
        "seed": record.seed,
        "targeted": record.targeted,
        "attacks": ",".join(a["name"] + (f"-{a['steps']}" if a.get("steps") else "") for a in threat["attacks"]),
        "eps": json.dumps(threat["eps"]),
    }
    if record.corruptions:
        corruptions = record.corruptions
        params.update(
            {
                "corruptions": ",".join(corruptions["corruptions"]),
                "severities": ",".join(map(str, corruptions["severities"])),
                "corruption_baseline": (corruptions.get("errors") or {}).get("baseline"),
            }
        )
    return params


def _summary_metrics(record: EvaluationRecord, report: RobustnessReport) -> dict[str, float | None]:
    """Clean accuracy, size, speed and checks; noise accuracies; success and distance of
    the unbounded attacks (CW, DeepFool), which have no robust accuracy."""
    metrics: dict[str, float | None] = {
        "clean_acc": report.clean_accuracy,
        "params": record.model.params,
        "macs": record.model.macs,
        "latency_ms": record.model.latency_ms,
        "seconds": report.seconds,
        "checks_failed": float(len(report.failed_checks)),
    }
    for r in report.results:
        if r.kind == "noise":
            metrics[f"noise_acc.{safe_label(r.attack)}.std_{r.eps:.4f}"] = r.robust_accuracy
        elif not math.isfinite(r.eps):
            metrics[f"success_rate.{safe_label(r.attack)}.{r.norm.lower()}"] = r.success_rate
            if r.median_l2 is not None:
                metrics[f"median_l2.{safe_label(r.attack)}"] = r.median_l2
    return metrics


def log_evaluation(
    tracking: TrackingConfig, info: ModelInfo, record: EvaluationRecord, report: RobustnessReport, directory: Path
) -> str:
    """Log one model's evaluation as a run linked to the model's run; the bundle (with the
    run's id written into ``evaluation.json``) becomes its artifacts. Returns the run id."""
    from nasbench.tracking import evaluation_run

    params = _evaluation_params(info, record)
    with evaluation_run(tracking, model_run_id=info.run_id, name=f"attack {info.label}", params=params) as run:
        run.log_robustness(robust_rows(report))
        run.log_metrics(_summary_metrics(record, report))
        if record.corruptions:
            run.log_metrics(corruption_metrics(record.corruptions))
        record.mlflow_run_id = run.run_id
        write_json(directory / EVALUATION_FILE, record.to_dict())
        for name in BUNDLE_FILES:
            if (directory / name).is_file():
                run.log_artifact(directory / name, "evaluation")
        return run.run_id


def corruption_metrics(corruptions: dict[str, Any]) -> dict[str, float]:
    """MLflow metrics of an evaluation's ``corruptions`` record: ``corruption_acc`` (the mean),
    ``corruption_acc_relative``, ``mce`` and ``relative_mce`` (against the named baseline),
    ``corruption_acc.NAME.sSEVERITY`` per pair and ``corruption_ce.NAME`` per corruption."""
    metrics = {"corruption_acc": corruptions["mean_accuracy"]}
    if corruptions.get("relative_accuracy") is not None:
        metrics["corruption_acc_relative"] = corruptions["relative_accuracy"]
    errors = corruptions.get("errors") or {}
    for key in ("mce", "relative_mce"):
        if errors.get(key) is not None:
            metrics[key] = errors[key]
    for name, by_severity in corruptions["accuracy"].items():
        for severity, value in by_severity.items():
            metrics[f"corruption_acc.{name}.s{severity}"] = value
        if (errors.get("ce") or {}).get(name) is not None:
            metrics[f"corruption_ce.{name}"] = errors["ce"][name]
    return metrics


def log_transfer(tracking: TrackingConfig, matrix: dict[str, Any], path: Path) -> None:
    """Log the transferability matrix as a run tagged with the evaluation runs it covers."""
    from nasbench.tracking import evaluation_run

    params = {
        "attack": matrix["attack_label"],
        "norm": matrix["norm"],
        "eps": matrix["eps"],
        "n": matrix["n"],
        "models": ",".join(matrix["sources"]),
    }
    with evaluation_run(tracking, model_run_id=None, name="transfer", params=params) as run:
        run.log_metrics(
            {
                f"transfer_acc.{safe_label(s)}.to.{safe_label(t)}": acc
                for s, row in matrix["robust_accuracy"].items()
                for t, acc in row.items()
            }
        )
        run.set_tag("nasbench.evaluation_runs", ",".join(v for v in matrix["evaluations"].values() if v))
        run.log_artifact(path, "evaluation")
