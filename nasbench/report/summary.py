"""Every number the report shows, gathered from an experiment's evaluation bundles, its
transfer matrix and its benchmark store into one JSON-able summary."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from nasbench.errors import UserError
from nasbench.evaluation_record import EvaluationRecord, GridShows, read_evaluations
from nasbench.experiment import BENCHMARK_FILE, EVALUATIONS_DIR, TRANSFER_FILE
from nasbench.formatting import eps_text
from nasbench.report.layout import PALETTE
from nasbench.report.numbers import finite_or_inf, same_eps

__all__ = ["collect_summary"]

# The per-attack numbers of the details table, as the engine's report names them.
DETAIL_KEYS = (
    "attack",
    "norm",
    "eps",
    "robust_accuracy",
    "success_rate",
    "n_attacked",
    "n_broken",
    "mean_l2",
    "median_l2",
    "mean_linf",
    "median_linf",
    "seconds",
    "seconds_per_example",
    "scope",
    "kind",
)
# The numbers of a model's corruption heatmap, as attacks.CorruptionReport names them.
CORRUPTION_KEYS = (
    "corruptions",
    "severities",
    "accuracy",
    "corruption_mean",
    "severity_mean",
    "mean_accuracy",
    "clean_accuracy",
    "n",
)


def _read_records(experiment_dir: Path) -> list[EvaluationRecord]:
    if not experiment_dir.is_dir():
        raise UserError(
            f"no experiment at {experiment_dir}; run 'nasbench attack --experiment {experiment_dir.name}' first"
        )
    records = read_evaluations(experiment_dir)
    if not records:
        raise UserError(
            f"experiment {experiment_dir} has no evaluations; run 'nasbench attack --experiment "
            f"{experiment_dir.name}' first"
        )
    return records


def _selected(
    records: list[EvaluationRecord], models: list[str] | None, attacks: list[str] | None, experiment_dir: Path
) -> list[EvaluationRecord]:
    """The records of ``models`` (all without); unknown models or attacks are UserErrors."""
    available = [r.model.label for r in records]
    if models:
        unknown = [m for m in models if m not in available]
        if unknown:
            raise UserError(
                f"no evaluation of model {unknown[0]!r} in {experiment_dir}; evaluated: {', '.join(available)}"
            )
        records = [r for r in records if r.model.label in models]
    if attacks:
        ran = {a for r in records for res in r.report["results"] for a in (res["attack"], res["name"])}
        unknown = [a for a in attacks if a.lower() not in {x.lower() for x in ran}]
        if unknown:
            raise UserError(f"attack {unknown[0]!r} was not run in {experiment_dir}; run: {', '.join(sorted(ran))}")
    return records


def _model_colours(labels: list[str]) -> dict[str, str]:
    """A colour per model by its position among all of the experiment's evaluations, so that
    a report filtered with --models draws each model in the colour of the full report."""
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}


def _worst_norms(records: list[EvaluationRecord]) -> list[str]:
    return list(dict.fromkeys(w["norm"] for r in records for w in r.report["worst_case"]))


def _choose_headline(records: list[EvaluationRecord], norm: str, requested: float | None) -> tuple[float | None, str]:
    """The eps whose worst-case robust accuracy stands for a model in the table's summary
    column and the Pareto plot: given, or the shared sweep value where the models' mean
    worst-case accuracy is nearest half their mean clean accuracy (where they differ)."""
    sweeps = [{float(w["eps"]) for w in r.report["worst_case"] if w["norm"] == norm} for r in records]
    common = sorted(set.intersection(*sweeps)) if sweeps else []
    if requested is not None:
        match = [e for e in common if same_eps(e, requested)]
        if not match:
            raise UserError(
                f"--headline-eps {requested:g} is not an eps every model was evaluated at "
                f"({', '.join(eps_text(e) for e in common) or 'none'})"
            )
        return match[0], "given with --headline-eps"
    positive = [e for e in common if e > 0]
    if not positive:
        return (common[0] if common else None), "the only eps evaluated"
    clean = sum(r.report["clean_accuracy"] for r in records) / len(records)

    def mean_robust(eps: float) -> float:
        values = [
            w["robust_accuracy"]
            for r in records
            for w in r.report["worst_case"]
            if w["norm"] == norm and same_eps(w["eps"], eps)
        ]
        return sum(values) / len(values)

    chosen = min(positive, key=lambda e: (abs(mean_robust(e) - clean / 2), e))
    return chosen, "the eps where the models' mean worst-case robust accuracy is nearest half their clean accuracy"


def _first_in_threat_models(records: list[EvaluationRecord], key: str) -> Any:
    """The first evaluation's value of ``key`` in its threat model, among those that set it."""
    return next((r.report["threat_model"][key] for r in records if r.report["threat_model"].get(key)), None)


def _threat_model(records: list[EvaluationRecord], worst_norms: list[str]) -> dict[str, Any]:
    """The union of the evaluations' threat models (they normally share one). It lists every
    attack that ran, filtered or not: the worst case depends on all of them."""
    specs: dict[str, dict] = {}
    eps_table: dict[str, list[float]] = {}
    for r in records:
        threat = r.report["threat_model"]
        for spec in threat["attacks"]:
            specs.setdefault(json.dumps(spec, sort_keys=True), spec)
        for key, values in threat["eps"].items():
            eps_table[key] = sorted(set(eps_table.get(key, [])) | {float(v) for v in values})
    return {
        "dataset": sorted({r.dataset for r in records}),
        "split": sorted({r.split for r in records}),
        "n": {r.model.label: r.n for r in records},
        "targeted": sorted({bool(r.targeted) for r in records}),
        "target_selection": _first_in_threat_models(records, "target_selection"),
        # Every norm an attack ran in: an unbounded L2 DeepFool has no worst case but was run.
        "norms": list(dict.fromkeys([*worst_norms, *(spec["norm"] for spec in specs.values())])),
        "eps": eps_table,
        "attacks": list(specs.values()),
        "cascade": sorted({c for r in records for c in r.report["threat_model"].get("cascade", [])}),
        "early_stop": sorted({c for r in records for c in r.report["threat_model"].get("early_stop", [])}),
        "autoattack": next(
            (r.report["threat_model"]["autoattack"] for r in records if "autoattack" in r.report["threat_model"]),
            None,
        ),
        "worst_case_over": "every attack that was run, whatever --attacks selects for display",
    }


def _corruption_summary(corruptions: dict | None) -> dict | None:
    """A model's numbers under common corruptions for the models table, or None."""
    if not corruptions:
        return None
    errors = corruptions.get("errors") or {}
    return {
        "mean_acc": corruptions["mean_accuracy"],
        "relative": corruptions.get("relative_accuracy"),
        "mce": errors.get("mce"),
        "relative_mce": errors.get("relative_mce"),
        "baseline": errors.get("baseline"),
        "pairs": len(corruptions["corruptions"]) * len(corruptions["severities"]),
    }


def _model_row(record: EvaluationRecord, norm: str, headline: float | None, colour: str) -> dict[str, Any]:
    """A model's line of the models table: size, speed, clean, headline and worst-case accuracies."""
    model, report = record.model, record.report
    worst: dict[str, list[dict[str, Any]]] = {w["norm"]: [] for w in report["worst_case"]}
    for w in report["worst_case"]:
        worst[w["norm"]].append(
            {
                "eps": w["eps"],
                "robust_acc": w["robust_accuracy"],
                "n_robust": w["n_robust"],
                "broken_by": w.get("broken_by", {}),
            }
        )
    robust = next(
        (
            w["robust_accuracy"]
            for w in report["worst_case"]
            if headline is not None and w["norm"] == norm and same_eps(w["eps"], headline)
        ),
        None,
    )
    return {
        "label": model.label,
        "kind": model.kind,
        "source": model.source,
        "spec": model.spec,
        "params": model.params,
        "macs": model.macs,
        "latency_ms": model.latency_ms,
        "latency_device": model.latency_device,
        "clean_acc": report["clean_accuracy"],
        "robust_acc": robust,
        "worst_case": worst,
        "colour": colour,
        "n": record.n,
        "seconds": report.get("seconds"),
        "device": report.get("device"),
        "failed_checks": sum(1 for c in report["checks"] if c["passed"] is False),
        "training_collapse": model.training_collapse,
        "corruption": _corruption_summary(record.corruptions),
    }


def _mark_pareto_front(model_rows: list[dict[str, Any]]) -> list[str]:
    """Mark the rows on the Pareto front over (clean accuracy max, robust accuracy max,
    params min) with ``on_front``; returns their labels."""
    from nasbench.store import pareto_front

    candidates = [m for m in model_rows if m["robust_acc"] is not None and m["params"] is not None]
    front = pareto_front([[-m["clean_acc"], -m["robust_acc"], m["params"]] for m in candidates])
    front_labels = [candidates[i]["label"] for i in front]
    for m in model_rows:
        m["on_front"] = m["label"] in front_labels
    return front_labels


def _store_row(row: dict[str, Any], norm: str, eps: float | None) -> dict[str, Any]:
    robust = None
    if eps is not None:
        robust = next(
            (
                item["accuracy"]
                for item in row.get("robust") or []
                if item["attack"] == "worst" and item["norm"] == norm and same_eps(item["eps"], eps)
            ),
            None,
        )
    return {
        "arch_hash": row["arch_hash"],
        "budget": row["budget"],
        "seed": row["seed"],
        "params": row.get("params"),
        "val_acc": row.get("val_acc"),
        "test_acc": row.get("test_acc"),
        "robust_acc": robust,
    }


def _store_context(experiment_dir: Path, dataset: str, norm: str, eps: float | None) -> dict | None:
    """Finished search results of the same dataset from the benchmark store, for the Pareto plot."""
    path = experiment_dir / BENCHMARK_FILE
    if not path.is_file():
        return None
    from nasbench.store import Benchmark, BenchmarkError

    try:
        with Benchmark(path, create=False) as bench:
            rows = bench.top(k=5000, by="val_acc", dataset=dataset)
    except BenchmarkError as error:
        return {"path": str(path), "error": str(error), "rows": []}
    return {"path": str(path), "rows": [_store_row(row, norm, eps) for row in rows]}


def _attack_matches(result: dict, wanted: list[str] | None) -> bool:
    if not wanted:
        return True
    names = {str(result.get("attack", "")).lower(), str(result.get("name", "")).lower()}
    return any(w.lower() in names for w in wanted)


def _attack_curves(label: str, results: list[dict]) -> list[dict[str, Any]]:
    """Robust accuracy against eps of each (attack, norm) among ``results`` with a finite eps."""
    curves = []
    for attack in dict.fromkeys((res["attack"], res["norm"]) for res in results):
        points = sorted(
            (finite_or_inf(res["eps"]), res["robust_accuracy"])
            for res in results
            if (res["attack"], res["norm"]) == attack and math.isfinite(finite_or_inf(res["eps"]))
        )
        if points:
            curves.append(
                {
                    "model": label,
                    "attack": attack[0],
                    "norm": attack[1],
                    "eps": [p[0] for p in points],
                    "robust_acc": [p[1] for p in points],
                    "scope": next(res["scope"] for res in results if (res["attack"], res["norm"]) == attack),
                }
            )
    return curves


def _worst_case_curves(row: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "model": row["label"],
            "attack": "worst case",
            "norm": norm,
            "eps": [p["eps"] for p in points],
            "robust_acc": [p["robust_acc"] for p in points],
            "scope": "per-example",
        }
        for norm, points in row["worst_case"].items()
    ]


def _curves_and_details(
    records: list[EvaluationRecord], model_rows: list[dict[str, Any]], attacks: list[str] | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per model, the curves of the attacks shown and of the worst case, and the per-attack details."""
    curves, details = [], []
    for record, row in zip(records, model_rows, strict=True):
        label = record.model.label
        results = [res for res in record.report["results"] if _attack_matches(res, attacks)]
        curves += _attack_curves(label, results)
        curves += _worst_case_curves(row)
        details += [{"model": label, **{k: res[k] for k in DETAIL_KEYS}} for res in results]
    return curves, details


def _transfer(experiment_dir: Path, labels: list[str]) -> dict[str, Any] | None:
    """The transfer matrix among the models shown, in the models' order (as in every other
    section, not the order they were attacked in); None for fewer than two of them."""
    path = experiment_dir / EVALUATIONS_DIR / TRANSFER_FILE
    if not path.is_file():
        return None
    try:
        transfer = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise UserError(f"{path} is not readable JSON ({error})") from None
    keep = [label for label in labels if label in transfer.get("sources", [])]
    if len(keep) < 2:
        return None
    return {
        **transfer,
        "sources": keep,
        "targets": keep,
        "clean_accuracy": {t: transfer["clean_accuracy"][t] for t in keep},
        "robust_accuracy": {s: {t: transfer["robust_accuracy"][s][t] for t in keep} for s in keep},
    }


def _grids(records: list[EvaluationRecord]) -> list[dict[str, Any]]:
    """The example grid of each model that has one, with what its columns show."""
    return [
        {
            "model": r.model.label,
            "file": str(r.grid_path),
            "examples": r.report.get("examples", []),
            **asdict(r.files.grid_shows or GridShows()),
        }
        for r in records
        if r.grid_path is not None and r.grid_path.is_file()
    ]


def _reproducibility(records: list[EvaluationRecord], transfer: dict[str, Any] | None) -> dict[str, Any]:
    """The versions, commits, seeds and commands of the evaluations."""
    first = records[0]
    return {
        "versions": first.versions,
        "versions_differ": [r.model.label for r in records if r.versions != first.versions],
        "git_commit": sorted({str(r.git_commit) for r in records}),
        "runs": [
            {
                "model": r.model.label,
                "seed": r.seed,
                "n": r.n,
                "command": r.command,
                "git_commit": r.git_commit,
                "mlflow_run_id": r.mlflow_run_id,
                "model_run_id": r.model.run_id,
                "created_at": r.created_at,
                "device": r.report.get("device"),
                "bundle": str(r.directory),
            }
            for r in records
        ],
        "transfer_command": transfer.get("command") if transfer else None,
    }


def _corruption_panels(records: list[EvaluationRecord]) -> list[dict[str, Any]]:
    return [
        {"model": r.model.label, **{k: r.corruptions[k] for k in CORRUPTION_KEYS}} for r in records if r.corruptions
    ]


def collect_summary(
    experiment_dir: str | Path,
    models: list[str] | None = None,
    attacks: list[str] | None = None,
    headline_eps: float | None = None,
) -> dict[str, Any]:
    """Every number the report shows, as a JSON-able dict (also written beside the report)."""
    experiment_dir = Path(experiment_dir)
    records = _read_records(experiment_dir)
    colours = _model_colours([r.model.label for r in records])  # a model keeps its colour in every report
    records = _selected(records, models, attacks, experiment_dir)
    worst_norms = _worst_norms(records)
    norm = "Linf" if "Linf" in worst_norms else (worst_norms[0] if worst_norms else "Linf")
    headline, why = _choose_headline(records, norm, headline_eps)
    model_rows = [_model_row(r, norm, headline, colours[r.model.label]) for r in records]
    front_labels = _mark_pareto_front(model_rows)
    curves, details = _curves_and_details(records, model_rows, attacks)
    transfer = _transfer(experiment_dir, [m["label"] for m in model_rows])
    checks = [{"model": r.model.label, **c} for r in records for c in r.report["checks"]]
    dataset = records[0].dataset
    return {
        "experiment": experiment_dir.name,
        "experiment_dir": str(experiment_dir.resolve()),
        "dataset": dataset,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "filters": {"models": models, "attacks": attacks},
        "headline": {"norm": norm, "eps": headline, "why": why},
        "threat_model": _threat_model(records, worst_norms),
        "models": model_rows,
        "curves": curves,
        "pareto": {
            "objectives": ["clean_acc:max", f"robust_acc@{norm} {headline}:max", "params:min"],
            "front": front_labels,
            "store": _store_context(experiment_dir, dataset, norm, headline),
        },
        "transfer": transfer,
        "grids": _grids(records),
        "checks": checks,
        "failed_checks": [c for c in checks if c["passed"] is False],
        # models whose training ended at chance (nasbench.train.collapse_reason)
        "collapsed": [
            {"model": m["label"], "reason": m["training_collapse"]} for m in model_rows if m["training_collapse"]
        ],
        "details": details,
        "corruptions": _corruption_panels(records),
        "reproducibility": _reproducibility(records, transfer),
    }
