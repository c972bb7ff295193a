"""Robustness reports: one self-contained HTML (or Markdown) file per experiment, plus JSON.

The report reads the evaluation bundles ``nasbench attack`` wrote under
``<experiment_dir>/evaluations/`` (see :mod:`nasbench.evaluation`), the transfer matrix
next to them, and, when present, the search's tabular benchmark
``<experiment_dir>/benchmark.db`` for the Pareto context. It shows, in order:

1. the sanity checks that failed, at the top where nobody can miss them;
2. the threat model: norms, eps values, every attack with all its parameters, the
   number of examples, targeted or not (Carlini et al. 2019, "On Evaluating
   Adversarial Robustness", section 3: a robustness number means nothing without it);
3. the models (found architectures and classic baselines) with parameters, MACs,
   latency, clean accuracy and the per-example worst-case robust accuracy;
4. robust accuracy against eps, per attack, one colour per model;
5. the Pareto front of clean accuracy, robust accuracy and size;
6. the transferability heatmap (Papernot et al. 2016);
   then, when the evaluations measured them, accuracy under common corruptions
   (Hendrycks & Dietterich 2019): a corruption x severity heatmap per model, the mean
   corruption accuracy and the mCE against the evaluation's baseline model;
7. adversarial example grids; 8. every check's verdict; 9. reproducibility.

Plots are matplotlib (Agg) PNGs, base64-embedded in the HTML so the file opens anywhere
without a network; ``format="md"`` writes the same report as Markdown with the PNGs
in a folder beside it. Every number shown is also in the JSON summary.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import math
import os
import shlex
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasbench.errors import UserError

__all__ = ["ReportResult", "build_report", "collect_summary", "SECTIONS"]

# Section ids, in the order they appear; the tests check every one is present.
SECTIONS = {
    "threat-model": "Threat model",
    "models": "Models",
    "curves": "Robust accuracy vs eps",
    "pareto": "Pareto front: clean accuracy, robust accuracy, size",
    "transfer": "Transferability",
    "corruptions": "Common corruptions",
    "examples": "Adversarial examples",
    "checks": "Sanity checks",
    "details": "Per-attack details",
    "reproducibility": "Reproducibility",
}
TEMPLATE = "report.html.j2"
# One colour per model, the same in every plot and table (matplotlib's tab10, then tab20).
PALETTE = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
]
STORE_COLOUR = "#b0b0b0"
NORM_SYMBOLS = {"Linf": "L∞"}


@dataclass
class ReportResult:
    """Where the report went: the HTML/Markdown file, its JSON summary, its MLflow run."""

    path: Path
    json_path: Path
    mlflow_run_id: str | None = None
    failed_checks: int = 0


# ----------------------------------------------------------------------------- numbers


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _eps_text(value: float | str) -> str:
    if value in ("inf", float("inf")):
        return "unbounded"
    value = float(value)
    short = f"{value:g}"
    numerator = value * 255
    if len(short) > 5 and abs(numerator - round(numerator)) < 1e-6:
        return f"{round(numerator)}/255"
    return short


def _eps_axis_label(norm: str) -> str:
    """What an eps is measured in: attacks perturb images in [0, 1] (nasbench.data scales every
    dataset so), before any normalisation a model applies in its first layer."""
    if norm == "gaussian":
        return "noise std (pixel scale 0–1)"
    return f"{NORM_SYMBOLS.get(norm, norm)} eps (pixel scale 0–1)"


def _count(value: int | None) -> str:
    if value is None:
        return "–"
    for limit, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= limit:
            return f"{value / limit:.3g}{unit}"
    return str(value)


def _same(a: float, b: float) -> bool:
    return abs(float(a) - float(b)) <= 1e-9


def _finite(value) -> float:
    return math.inf if value in ("inf", float("inf")) else float(value)


def _choose_headline(records: list[dict], norm: str, requested: float | None) -> tuple[float | None, str]:
    """The eps whose worst-case robust accuracy stands for a model in the table's summary
    column and the Pareto plot: given, or the shared sweep value where the models' mean
    worst-case accuracy is nearest half their mean clean accuracy (where they differ)."""
    sweeps = [{float(w["eps"]) for w in r["report"]["worst_case"] if w["norm"] == norm} for r in records]
    common = sorted(set.intersection(*sweeps)) if sweeps else []
    if requested is not None:
        match = [e for e in common if _same(e, requested)]
        if not match:
            raise UserError(
                f"--headline-eps {requested:g} is not an eps every model was evaluated at "
                f"({', '.join(_eps_text(e) for e in common) or 'none'})"
            )
        return match[0], "given with --headline-eps"
    positive = [e for e in common if e > 0]
    if not positive:
        return (common[0] if common else None), "the only eps evaluated"
    clean = sum(r["report"]["clean_accuracy"] for r in records) / len(records)

    def mean_robust(eps: float) -> float:
        values = [
            w["robust_accuracy"]
            for r in records
            for w in r["report"]["worst_case"]
            if w["norm"] == norm and _same(w["eps"], eps)
        ]
        return sum(values) / len(values)

    chosen = min(positive, key=lambda e: (abs(mean_robust(e) - clean / 2), e))
    return chosen, "the eps where the models' mean worst-case robust accuracy is nearest half their clean accuracy"


def _attack_matches(result: dict, wanted: list[str] | None) -> bool:
    if not wanted:
        return True
    names = {str(result.get("attack", "")).lower(), str(result.get("name", "")).lower()}
    return any(w.lower() in names for w in wanted)


def _store_context(experiment_dir: Path, dataset: str, norm: str, eps: float | None) -> dict | None:
    """Finished search results of the same dataset from the benchmark store, for the Pareto plot."""
    path = experiment_dir / "benchmark.db"
    if not path.is_file():
        return None
    from nasbench.store import Benchmark, BenchmarkError

    try:
        with Benchmark(path, create=False) as bench:
            rows = bench.top(k=5000, by="val_acc", dataset=dataset)
    except BenchmarkError as error:
        return {"path": str(path), "error": str(error), "rows": []}
    points = []
    for row in rows:
        robust = None
        if eps is not None:
            robust = next(
                (
                    item["accuracy"]
                    for item in row.get("robust") or []
                    if item["attack"] == "worst" and item["norm"] == norm and _same(item["eps"], eps)
                ),
                None,
            )
        points.append(
            {
                "arch_hash": row["arch_hash"],
                "budget": row["budget"],
                "seed": row["seed"],
                "params": row.get("params"),
                "val_acc": row.get("val_acc"),
                "test_acc": row.get("test_acc"),
                "robust_acc": robust,
            }
        )
    return {"path": str(path), "rows": points}


def _model_colours(labels: list[str]) -> dict[str, str]:
    """A colour per model by its position among all of the experiment's evaluations, so that
    a report filtered with --models draws each model in the colour of the full report."""
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}


def collect_summary(
    experiment_dir: str | Path,
    models: list[str] | None = None,
    attacks: list[str] | None = None,
    headline_eps: float | None = None,
) -> dict[str, Any]:
    """Every number the report shows, as a JSON-able dict (also written beside the report)."""
    from nasbench.evaluation import EVALUATIONS_DIR, TRANSFER_FILE, read_evaluations
    from nasbench.store import pareto_front

    experiment_dir = Path(experiment_dir)
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
    available = [r["model"]["label"] for r in records]
    colours = _model_colours(available)  # before filtering: a model keeps its colour in every report
    if models:
        unknown = [m for m in models if m not in available]
        if unknown:
            raise UserError(
                f"no evaluation of model {unknown[0]!r} in {experiment_dir}; evaluated: {', '.join(available)}"
            )
        records = [r for r in records if r["model"]["label"] in models]
    if attacks:
        ran = {a for r in records for res in r["report"]["results"] for a in (res["attack"], res["name"])}
        unknown = [a for a in attacks if a.lower() not in {x.lower() for x in ran}]
        if unknown:
            raise UserError(f"attack {unknown[0]!r} was not run in {experiment_dir}; run: {', '.join(sorted(ran))}")

    worst_norms = list(dict.fromkeys(w["norm"] for r in records for w in r["report"]["worst_case"]))
    norm = "Linf" if "Linf" in worst_norms else (worst_norms[0] if worst_norms else "Linf")
    headline, why = _choose_headline(records, norm, headline_eps)

    # Threat model: the union over the evaluations (they normally share it). It lists every
    # attack that ran, filtered or not: the worst case depends on all of them.
    specs: dict[str, dict] = {}
    eps_table: dict[str, list[float]] = {}
    for r in records:
        threat = r["report"]["threat_model"]
        for spec in threat["attacks"]:
            specs.setdefault(json.dumps(spec, sort_keys=True), spec)
        for key, values in threat["eps"].items():
            eps_table[key] = sorted(set(eps_table.get(key, [])) | {float(v) for v in values})
    threat_model = {
        "dataset": sorted({r["dataset"] for r in records}),
        "split": sorted({r.get("split", "test") for r in records}),
        "n": {r["model"]["label"]: r["n"] for r in records},
        "targeted": sorted({bool(r["targeted"]) for r in records}),
        "target_selection": next(
            (
                r["report"]["threat_model"].get("target_selection")
                for r in records
                if r["report"]["threat_model"].get("target_selection")
            ),
            None,
        ),
        # Every norm an attack ran in: an unbounded L2 DeepFool has no worst case but was run.
        "norms": list(dict.fromkeys([*worst_norms, *(spec["norm"] for spec in specs.values())])),
        "eps": eps_table,
        "attacks": list(specs.values()),
        "cascade": sorted({c for r in records for c in r["report"]["threat_model"].get("cascade", [])}),
        "early_stop": sorted({c for r in records for c in r["report"]["threat_model"].get("early_stop", [])}),
        "autoattack": next(
            (r["report"]["threat_model"]["autoattack"] for r in records if "autoattack" in r["report"]["threat_model"]),
            None,
        ),
        "worst_case_over": "every attack that was run, whatever --attacks selects for display",
    }

    model_rows = []
    for r in records:
        m, rep = r["model"], r["report"]
        worst = {w["norm"]: [] for w in rep["worst_case"]}
        for w in rep["worst_case"]:
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
                for w in rep["worst_case"]
                if headline is not None and w["norm"] == norm and _same(w["eps"], headline)
            ),
            None,
        )
        model_rows.append(
            {
                "label": m["label"],
                "kind": m.get("kind"),
                "source": m.get("source"),
                "spec": m.get("spec"),
                "params": m.get("params"),
                "macs": m.get("macs"),
                "latency_ms": m.get("latency_ms"),
                "latency_device": m.get("latency_device"),
                "clean_acc": rep["clean_accuracy"],
                "robust_acc": robust,
                "worst_case": worst,
                "colour": colours[m["label"]],
                "n": r["n"],
                "seconds": rep.get("seconds"),
                "device": rep.get("device"),
                "failed_checks": sum(1 for c in rep["checks"] if c["passed"] is False),
                "training_collapse": m.get("training_collapse"),
                "corruption": _corruption_summary(r.get("corruptions")),
            }
        )

    # Pareto front over (clean accuracy max, robust accuracy max, params min).
    candidates = [m for m in model_rows if m["robust_acc"] is not None and m["params"] is not None]
    front = pareto_front([[-m["clean_acc"], -m["robust_acc"], m["params"]] for m in candidates])
    front_labels = [candidates[i]["label"] for i in front]
    for m in model_rows:
        m["on_front"] = m["label"] in front_labels
    dataset = records[0]["dataset"]
    store = _store_context(experiment_dir, dataset, norm, headline)

    curves = []
    details = []
    for r in records:
        label = r["model"]["label"]
        results = [res for res in r["report"]["results"] if _attack_matches(res, attacks)]
        for attack in dict.fromkeys((res["attack"], res["norm"]) for res in results):
            points = sorted(
                (_finite(res["eps"]), res["robust_accuracy"])
                for res in results
                if (res["attack"], res["norm"]) == attack and math.isfinite(_finite(res["eps"]))
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
        for w_norm, points in model_rows[[m["label"] for m in model_rows].index(label)]["worst_case"].items():
            curves.append(
                {
                    "model": label,
                    "attack": "worst case",
                    "norm": w_norm,
                    "eps": [p["eps"] for p in points],
                    "robust_acc": [p["robust_acc"] for p in points],
                    "scope": "per-example",
                }
            )
        for res in results:
            details.append(
                {
                    "model": label,
                    **{
                        k: res[k]
                        for k in (
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
                    },
                }
            )

    transfer = None
    transfer_path = experiment_dir / EVALUATIONS_DIR / TRANSFER_FILE
    if transfer_path.is_file():
        try:
            transfer = json.loads(transfer_path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise UserError(f"{transfer_path} is not readable JSON ({error})") from None
        # In the models' order, as in every other section, not the order they were attacked in.
        keep = [m["label"] for m in model_rows if m["label"] in transfer.get("sources", [])]
        if len(keep) < 2:
            transfer = None
        else:
            transfer = {
                **transfer,
                "sources": keep,
                "targets": keep,
                "clean_accuracy": {t: transfer["clean_accuracy"][t] for t in keep},
                "robust_accuracy": {s: {t: transfer["robust_accuracy"][s][t] for t in keep} for s in keep},
            }

    checks = [{"model": r["model"]["label"], **c} for r in records for c in r["report"]["checks"]]
    grids = [
        {
            "model": r["model"]["label"],
            "file": str(Path(r["_dir"]) / r["files"]["grid"]),
            "examples": r["report"].get("examples", []),
            **(r["files"].get("grid_shows") or {"norm": None, "eps": None, "attacks": []}),
        }
        for r in records
        if (r.get("files") or {}).get("grid") and (Path(r["_dir"]) / r["files"]["grid"]).is_file()
    ]
    reproducibility = {
        "versions": records[0].get("versions", {}),
        "versions_differ": [r["model"]["label"] for r in records if r.get("versions") != records[0].get("versions")],
        "git_commit": sorted({str(r.get("git_commit")) for r in records}),
        "runs": [
            {
                "model": r["model"]["label"],
                "seed": r["seed"],
                "n": r["n"],
                "command": r.get("command"),
                "git_commit": r.get("git_commit"),
                "mlflow_run_id": r.get("mlflow_run_id"),
                "model_run_id": r["model"].get("run_id"),
                "created_at": r.get("created_at"),
                "device": r["report"].get("device"),
                "bundle": r["_dir"],
            }
            for r in records
        ],
        "transfer_command": transfer.get("command") if transfer else None,
    }
    return {
        "experiment": experiment_dir.name,
        "experiment_dir": str(experiment_dir.resolve()),
        "dataset": dataset,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "filters": {"models": models, "attacks": attacks},
        "headline": {"norm": norm, "eps": headline, "why": why},
        "threat_model": threat_model,
        "models": model_rows,
        "curves": curves,
        "pareto": {
            "objectives": ["clean_acc:max", f"robust_acc@{norm} {headline}:max", "params:min"],
            "front": front_labels,
            "store": store,
        },
        "transfer": transfer,
        "grids": grids,
        "checks": checks,
        "failed_checks": [c for c in checks if c["passed"] is False],
        # models whose training ended at chance (nasbench.train.collapse_reason)
        "collapsed": [
            {"model": m["label"], "reason": m["training_collapse"]} for m in model_rows if m["training_collapse"]
        ],
        "details": details,
        "corruptions": [
            {
                "model": r["model"]["label"],
                **{
                    k: r["corruptions"][k]
                    for k in (
                        "corruptions",
                        "severities",
                        "accuracy",
                        "corruption_mean",
                        "severity_mean",
                        "mean_accuracy",
                        "clean_accuracy",
                        "n",
                    )
                },
            }
            for r in records
            if r.get("corruptions")
        ],
        "reproducibility": reproducibility,
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


# ----------------------------------------------------------------------------- plots


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return buffer.getvalue()


def plot_curves(summary: dict) -> bytes | None:
    """Robust accuracy (%) against eps: one panel per (norm, attack), worst case first; a line per model."""
    plt = _pyplot()
    colours = {m["label"]: m["colour"] for m in summary["models"]}
    panels = list(dict.fromkeys((c["norm"], c["attack"]) for c in summary["curves"] if c["attack"] == "worst case"))
    panels += [p for p in dict.fromkeys((c["norm"], c["attack"]) for c in summary["curves"]) if p not in panels]
    if not panels:
        return None
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.5 * rows), squeeze=False)
    for ax, (norm, attack) in zip(axes.flat, panels):
        for curve in summary["curves"]:
            if (curve["norm"], curve["attack"]) != (norm, attack):
                continue
            ax.plot(
                curve["eps"],
                [100 * a for a in curve["robust_acc"]],
                marker="o",
                markersize=4,
                color=colours[curve["model"]],
                label=curve["model"],
                linewidth=2.4 if attack == "worst case" else 1.6,
            )
        title = f"worst case over all attacks ({norm})" if attack == "worst case" else f"{attack} ({norm})"
        if any(c["scope"] == "cascade" for c in summary["curves"] if (c["norm"], c["attack"]) == (norm, attack)):
            title += "\ncascade: ensemble up to this attack"
        ax.set_title(title, fontsize=10, fontweight="bold" if attack == "worst case" else "normal")
        ax.set_xlabel(_eps_axis_label(norm))
        ax.set_ylabel("robust accuracy (%)")
        ax.set_ylim(-3, 103)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    handles = [
        plt.Line2D([], [], color=m["colour"], marker="o", linewidth=2, label=m["label"]) for m in summary["models"]
    ]
    fig.legend(
        handles=handles,
        loc="upper center",
        ncol=min(len(handles), 6),
        frameon=False,
        bbox_to_anchor=(0.5, 1.0 + 0.04 / rows),
        title="model",
    )
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.1 / rows))
    return _png(fig)


def plot_corruptions(summary: dict) -> bytes | None:
    """Accuracy (%) per corruption (rows) and severity (columns), one heatmap per model, one colour scale."""
    panels = summary.get("corruptions") or []
    if not panels:
        return None
    plt = _pyplot()
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    height = 0.32 * max(len(p["corruptions"]) for p in panels) + 1.6
    width = 0.62 * max(len(p["severities"]) for p in panels) + 3.2
    fig, axes = plt.subplots(
        rows, columns, figsize=(width * columns, height * rows), squeeze=False, layout="constrained"
    )
    same_rows = all(p["corruptions"] == panels[0]["corruptions"] for p in panels)
    image = None
    for index, (ax, panel) in enumerate(zip(axes.flat, panels, strict=False)):  # spare axes stay blank
        severities = [str(s) for s in panel["severities"]]
        values = [[100 * panel["accuracy"][c][s] for s in severities] for c in panel["corruptions"]]
        image = ax.imshow(values, cmap="viridis", vmin=0, vmax=100, aspect="auto")
        for i, row in enumerate(values):
            for j, value in enumerate(row):
                ax.text(
                    j, i, f"{value:.0f}", ha="center", va="center", fontsize=8, color="white" if value < 60 else "black"
                )
        ax.set_xticks(range(len(severities)), severities)
        # one column of corruption names per row of panels when every panel has the same
        ax.set_yticks(
            range(len(panel["corruptions"])),
            panel["corruptions"] if index % columns == 0 or not same_rows else [],
            fontsize=8,
        )
        ax.set_xlabel("severity")
        ax.set_title(
            f"{panel['model']}: mean {100 * panel['mean_accuracy']:.1f}% (clean {100 * panel['clean_accuracy']:.1f}%)",
            fontsize=10,
        )
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.colorbar(image, ax=list(axes.flat), label="accuracy under the corruption (%)", shrink=0.8)
    return _png(fig)


# Accuracy axes of the Pareto plot span at least this many points: auto-zoomed, 97% and 98%
# sit at opposite corners and one point of accuracy reads as a large difference.
MIN_ACCURACY_SPAN = 10.0


def _accuracy_limits(low: float, high: float) -> tuple[float, float]:
    """Axis limits (in %) widened around their middle to MIN_ACCURACY_SPAN, kept within -1..101."""
    if high - low >= MIN_ACCURACY_SPAN:
        return low, high
    middle = (low + high) / 2
    low = min(max(middle - MIN_ACCURACY_SPAN / 2, -1.0), 101.0 - MIN_ACCURACY_SPAN)
    return low, low + MIN_ACCURACY_SPAN


def plot_pareto(summary: dict) -> bytes | None:
    """Three views of (clean accuracy, robust accuracy, parameters); the front is ringed in black."""
    plt = _pyplot()
    models = [m for m in summary["models"] if m["params"] is not None]
    if not models:
        return None
    headline = summary["headline"]
    robust_axis = (
        f"worst-case robust accuracy (%)\nat {NORM_SYMBOLS.get(headline['norm'], headline['norm'])} "
        f"eps {_eps_text(headline['eps'])} (0–1 scale)"
        if headline["eps"] is not None
        else "worst-case robust accuracy (%)"
    )
    store = (summary["pareto"].get("store") or {}).get("rows") or []
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    views = [
        ("params", "clean_acc", "parameters (log scale)", "clean accuracy (%)"),
        ("params", "robust_acc", "parameters (log scale)", robust_axis),
        ("clean_acc", "robust_acc", "clean accuracy (%)", robust_axis),
    ]
    for ax, (xk, yk, xlabel, ylabel) in zip(axes, views):
        # Search results from the store: validation accuracy, a different split: context only.
        store_key = {"clean_acc": "val_acc", "robust_acc": "robust_acc", "params": "params"}
        sx = [
            row[store_key[xk]]
            for row in store
            if row.get(store_key[xk]) is not None and row.get(store_key[yk]) is not None
        ]
        sy = [
            row[store_key[yk]]
            for row in store
            if row.get(store_key[xk]) is not None and row.get(store_key[yk]) is not None
        ]
        if sx:
            ax.scatter(
                [v if xk == "params" else 100 * v for v in sx],
                [100 * v for v in sy],
                s=14,
                color=STORE_COLOUR,
                alpha=0.7,
                label="search results (val acc, benchmark.db)",
                zorder=1,
            )
        for m in models:
            if m[xk] is None or m[yk] is None:
                continue
            x = m[xk] if xk == "params" else 100 * m[xk]
            ax.scatter(
                [x],
                [100 * m[yk]],
                s=110 if m["on_front"] else 60,
                color=m["colour"],
                edgecolors="black" if m["on_front"] else "none",
                linewidths=1.8,
                zorder=3,
                label=m["label"] + (" (on front)" if m["on_front"] else ""),
            )
        if xk == "params":
            from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: _count(int(value))))
            ax.xaxis.set_minor_formatter(NullFormatter())  # 2x10^3, 3x10^3 ... overlap on short axes
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_ylim(*_accuracy_limits(*ax.get_ylim()))
        if xk != "params":
            ax.set_xlim(*_accuracy_limits(*ax.get_xlim()))
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 5), frameon=False, bbox_to_anchor=(0.5, 1.08))
    fig.tight_layout()
    return _png(fig)


def plot_transfer(summary: dict) -> bytes | None:
    """Accuracy of each target on examples crafted on each source (diagonal: white-box)."""
    matrix = summary.get("transfer")
    if not matrix:
        return None
    plt = _pyplot()
    sources, targets = matrix["sources"], matrix["targets"]
    values = [[100 * matrix["robust_accuracy"][s][t] for t in targets] for s in sources]
    size = max(4.0, 1.1 * len(targets) + 2.5)
    fig, ax = plt.subplots(figsize=(size, max(3.2, 0.9 * len(sources) + 1.8)))
    image = ax.imshow(values, cmap="viridis", vmin=0, vmax=100)
    for i in range(len(sources)):
        for j in range(len(targets)):
            ax.text(
                j,
                i,
                f"{values[i][j]:.1f}",
                ha="center",
                va="center",
                color="white" if values[i][j] < 60 else "black",
                fontsize=10,
            )
    ax.set_xticks(range(len(targets)), targets, rotation=30, ha="right")
    ax.set_yticks(range(len(sources)), sources)
    ax.set_xlabel("target model (evaluated)")
    ax.set_ylabel("source model (attacked)")
    ax.set_title(
        f"{matrix.get('attack_label', matrix['attack'].get('name'))} at "
        f"{_eps_axis_label(matrix.get('norm', ''))} = {_eps_text(matrix['eps'])}\n"
        "target accuracy (%)",
        fontsize=10,
    )
    fig.colorbar(image, ax=ax, label="accuracy on transferred examples (%)")
    fig.tight_layout()
    return _png(fig)


# ----------------------------------------------------------------------------- tables and text
# Everything a reader sees as words or table cells is made here once, for both the HTML
# template and the Markdown renderer, so the two formats say the same things.


def _spec_params(spec: dict) -> str:
    skip = {"name", "norm", "eps", "steps", "restarts", "targeted"}
    parts = [
        f"{k}={'auto (2.5·eps/steps)' if k == 'alpha' and v is None else v}" for k, v in spec.items() if k not in skip
    ]
    if spec.get("eps") is not None:
        parts.insert(0, f"eps={spec['eps']:g} (fixed)")
    return ", ".join(parts) or "–"


def _table(headers: list, rows: list, numeric=()) -> dict[str, Any]:
    """A table as the renderers take it; ``numeric`` column indices are right-aligned."""
    return {"headers": headers, "rows": rows, "numeric": list(numeric)}


def _checks_cell(failed: int) -> str:
    return f"⚠ {failed} FAILED" if failed else "none failed"


def _p_text(p: float | None) -> str:
    """A check's p-value as people read it: 0.42, 0.0031, 2e-07 (– where no test ran)."""
    if p is None:
        return "–"
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.0e}"


def _counts_text(counts: dict | None) -> str:
    """The counts a check's test was computed from: "points 194; robust under pgd-40 89; ..."."""
    return "; ".join(f"{name} {value}" for name, value in (counts or {}).items()) or "–"


def _short_commit(commit: str | None) -> str:
    """The first 12 hex digits, keeping a " (uncommitted changes)" note after them."""
    if not commit:
        return "–"
    sha, _, note = commit.partition(" ")
    return f"{sha[:12]} {note}".strip()


def _models_table(summary: dict) -> dict[str, Any]:
    norm, headline = summary["headline"]["norm"], summary["headline"]["eps"]
    sweep = sorted({float(p["eps"]) for m in summary["models"] for p in m["worst_case"].get(norm, [])})
    fixed = ["model", "kind", "sanity checks", "params", "MACs", "latency (ms/image, best of 20)", "clean acc"]
    headers = (
        fixed
        + [f"worst case @ {_eps_text(e)}" + (" (headline)" if e == headline else "") for e in sweep]
        + ["Pareto front"]
    )
    rows = []
    for m in summary["models"]:
        by_eps = {float(p["eps"]): p["robust_acc"] for p in m["worst_case"].get(norm, [])}
        label = f"{m['label']} ⚠ training collapsed" if m.get("training_collapse") else m["label"]
        rows.append(
            {
                "colour": m["colour"],
                "failed": m["failed_checks"] > 0,
                "cells": [
                    label,
                    m["kind"] or "–",
                    _checks_cell(m["failed_checks"]),
                    _count(m["params"]),
                    _count(m["macs"]),
                    "–" if m["latency_ms"] is None else f"{m['latency_ms']:.2f}",
                    _pct(m["clean_acc"]),
                ]
                + [_pct(by_eps.get(e)) for e in sweep]
                + ["yes" if m["on_front"] else "no"],
            }
        )
    if any(m.get("corruption") for m in summary["models"]):  # a summary column for common corruptions
        headers.append("corruption acc (mCE)")
        for m, row in zip(summary["models"], rows, strict=True):
            c = m.get("corruption")
            row["cells"].append(
                "–" if not c else _pct(c["mean_acc"]) + (f" ({100 * c['mce']:.0f})" if c["mce"] is not None else "")
            )
    table = _table(
        headers,
        rows,
        numeric=[
            *range(3, len(fixed) + len(sweep)),
            *([len(headers) - 1] if headers[-1].startswith("corruption") else []),
        ],
    )
    table["checks_column"] = fixed.index("sanity checks")
    table["headline_column"] = len(fixed) + sweep.index(headline) if headline in sweep else None
    return table


def _details_table(summary: dict) -> dict[str, Any]:
    def number(value, digits=3):
        return "–" if value is None else f"{value:.{digits}f}"

    # n_broken counts every point broken at this eps or a smaller one, n_attacked only the
    # points still standing that the attack ran on at this eps: named so they don't read
    # as "broke more than it attacked".
    headers = [
        "model",
        "attack",
        "norm",
        "eps",
        "robust acc",
        "success rate",
        "points broken (so far)",
        "points attacked at this eps",
        "mean L2",
        "median L2",
        "mean Linf",
        "median Linf",
        "ms/example",
        "scope",
    ]
    rows = [
        [
            d["model"],
            d["attack"],
            d["norm"],
            _eps_text(d["eps"]),
            _pct(d["robust_accuracy"]),
            _pct(d["success_rate"]),
            d["n_broken"],
            d["n_attacked"],
            number(d["mean_l2"]),
            number(d["median_l2"]),
            number(d["mean_linf"]),
            number(d["median_linf"]),
            number(1000 * d["seconds_per_example"], 2),
            d["scope"],
        ]
        for d in summary["details"]
        if _finite(d["eps"]) != 0
    ]
    return _table(headers, rows, numeric=range(3, len(headers) - 1))


def _corruptions_table(summary: dict) -> dict[str, Any] | None:
    """Per model: mean corruption accuracy, its ratio to clean, mCE and relative mCE, and the
    mean accuracy at each severity."""
    models = [m for m in summary["models"] if m.get("corruption")]
    if not models:
        return None
    panels = {p["model"]: p for p in summary.get("corruptions") or []}
    severities = sorted({str(s) for p in panels.values() for s in p["severities"]}, key=int)
    baseline = next((m["corruption"]["baseline"] for m in models if m["corruption"]["baseline"]), "–")
    headers = [
        "model",
        "clean acc",
        "mean corruption acc",
        "of clean",
        f"mCE (baseline {baseline} = 100)",
        "relative mCE",
        *[f"severity {s}" for s in severities],
    ]
    rows = []
    for m in models:
        c, panel = m["corruption"], panels[m["label"]]
        rows.append(
            [
                m["label"],
                _pct(m["clean_acc"]),
                _pct(c["mean_acc"]),
                _pct(c["relative"]),
                "–" if c["mce"] is None else f"{100 * c['mce']:.1f}",
                "–" if c["relative_mce"] is None else f"{100 * c['relative_mce']:.1f}",
                *[_pct(panel["severity_mean"].get(s)) for s in severities],
            ]
        )
    return _table(headers, rows, numeric=range(1, len(headers)))


def _transfer_table(summary: dict) -> dict[str, Any] | None:
    t = summary.get("transfer")
    if not t:
        return None
    rows = [["clean", *[_pct(t["clean_accuracy"][x]) for x in t["targets"]]]]
    rows += [[s, *[_pct(t["robust_accuracy"][s][x]) for x in t["targets"]]] for s in t["sources"]]
    return _table(["source \\ target", *t["targets"]], rows, numeric=range(1, len(t["targets"]) + 1))


def _tables(summary: dict) -> dict[str, Any]:
    """Header + rows of display strings, shared by the HTML and Markdown renderers."""
    threat = summary["threat_model"]
    attacks = _table(
        ["attack", "norm", "steps", "restarts", "targeted", "parameters"],
        [
            [
                s["name"],
                s["norm"],
                s.get("steps") or "–",
                s.get("restarts", 1),
                "yes" if s.get("targeted") else "no",
                _spec_params(s),
            ]
            for s in threat["attacks"]
        ],
        numeric=(2, 3),
    )
    eps_rows = [
        [k if k != "gaussian" else "gaussian (noise std)", ", ".join(_eps_text(v) for v in values)]
        for k, values in threat["eps"].items()
    ]
    checks = _table(
        ["model", "check", "verdict", "p-value", "counts", "detail"],
        [
            {
                "cells": [
                    c["model"],
                    c["name"],
                    {True: "PASS", False: "FAIL", None: "n/a"}[c["passed"]],
                    _p_text(c.get("p_value")),
                    _counts_text(c.get("counts")),
                    c["detail"],
                ],
                "passed": c["passed"],
            }
            for c in summary["checks"]
        ],
        numeric=(3,),
    )
    repro = summary["reproducibility"]
    versions = _table(["package", "version"], [[k, v or "–"] for k, v in repro["versions"].items()])
    runs = _table(
        ["model", "seed", "n", "git commit", "MLflow run", "model's run", "device", "created"],
        [
            [
                r["model"],
                r["seed"],
                r["n"],
                _short_commit(r["git_commit"]),
                r["mlflow_run_id"] or "–",
                r["model_run_id"] or "–",
                r["device"] or "–",
                r["created_at"] or "–",
            ]
            for r in repro["runs"]
        ],
        numeric=(1, 2),
    )
    return {
        "attacks": attacks,
        "eps": _table(["norm", "eps (pixel scale 0–1)"], eps_rows),
        "models": _models_table(summary),
        "checks": checks,
        "details": _details_table(summary),
        "transfer": _transfer_table(summary),
        "corruptions": _corruptions_table(summary),
        "versions": versions,
        "runs": runs,
    }


def _threat_facts(summary: dict) -> list[tuple[str, str]]:
    tm = summary["threat_model"]
    facts = [
        (
            "examples",
            f"{', '.join(f'{k}: {v}' for k, v in tm['n'].items())} points of the {'/'.join(tm['split'])} "
            "split (the same seeded subset for every model)",
        ),
        (
            "targeted",
            " and ".join("yes" if v else "no" for v in tm["targeted"])
            + (f" ({tm['target_selection']})" if tm["target_selection"] else ""),
        ),
        ("norms", ", ".join(tm["norms"]) + "; eps in pixel units, images scaled to 0–1"),
        ("worst case", f"per example, over {tm['worst_case_over']}"),
        (
            "cascade",
            f"{', '.join(tm['cascade']) or 'none'} (expensive attacks run only on the points every "
            "cheaper attack left standing)",
        ),
    ]
    if tm.get("autoattack"):
        facts.append(("AutoAttack", str(tm["autoattack"])))
    return facts


def _report_filters(summary: dict) -> str:
    report = summary["reproducibility"].get("report") or {}
    filters = summary["filters"]
    head = summary["headline"]
    chosen = "given with --headline-eps" if report.get("headline_eps_given") else f"chosen: {head['why']}"
    return (
        f"models: {', '.join(filters['models'] or []) or 'all'}; "
        f"attacks: {', '.join(filters['attacks'] or []) or 'all'}; "
        f"headline eps: {head['norm']} {_eps_text(head['eps']) if head['eps'] is not None else '–'} ({chosen})"
    )


def _reproducibility_facts(summary: dict) -> list[tuple[str, str]]:
    repro = summary["reproducibility"]
    report_commit = (repro.get("report") or {}).get("git_commit")
    commits = ", ".join(repro["git_commit"])
    if report_commit and [report_commit] != repro["git_commit"]:
        commits = f"evaluations: {commits}; this report: {report_commit}"
    return [
        ("git commit", commits),
        ("seeds", ", ".join(f"{r['model']}: {r['seed']}" for r in repro["runs"])),
        ("experiment", summary["experiment_dir"]),
        ("report filters", _report_filters(summary)),
    ]


def _commands(summary: dict) -> list[tuple[str, str]]:
    """(what it made, the command): this report's, each evaluation's, the transfer matrix's."""
    repro = summary["reproducibility"]
    by_command: dict[str, list[str]] = {}
    for run in repro["runs"]:
        by_command.setdefault(run["command"] or "(not recorded)", []).append(run["model"])
    transfer = repro.get("transfer_command")
    report = repro.get("report")
    commands = [(f"this report (run in {report['working_directory']})", report["command"])] if report else []
    for command, models in by_command.items():
        what = f"evaluation of {', '.join(models)}"
        commands.append((what + (" and the transfer matrix" if command == transfer else ""), command))
    if transfer and transfer not in by_command:
        commands.append(("transfer matrix", transfer))
    return commands


def _grid_caption(grid: dict) -> str:
    attacks = grid["attacks"]
    if not attacks:
        made_by = "attack not recorded"
    elif len(set(attacks)) == 1:
        made_by = f"every example made by {attacks[0]}"
    else:
        made_by = "made by, left to right: " + ", ".join(attacks)
    where = f" at {grid['norm']} eps ≤ {_eps_text(grid['eps'])}" if grid["eps"] is not None else ""
    return f"{grid['model']}: {len(attacks) or 'the'} examples{where}, {made_by} (the first attack that broke each)."


def _captions(summary: dict) -> dict[str, str]:
    """Figure captions and table notes."""
    store = summary["pareto"].get("store")
    store_note = ""
    if store:
        store_note = (
            f" {len(store['rows'])} search results of {summary['dataset']} from {store['path']} in grey "
            "(their validation accuracy; robust accuracy where the store has the worst case at this eps)."
            if not store.get("error")
            else f" Benchmark store unreadable: {store['error']}."
        )
    transfer = summary.get("transfer")
    captions = {
        "models": "Clean and robust accuracy on the attacked test points; worst case = the share of points that "
        "every attack failed on (per example); (headline): the headline eps. Sanity checks: how many of "
        "the model's checks failed (see the checks section). Latency: one image, best of 20 runs on the "
        "device named in the reproducibility block.",
        "curves": "Robust accuracy (%) against the attack radius. The first panel is the per-example worst case over "
        'all attacks (the number to report); the others show each attack alone ("cascade" attacks: the '
        "ensemble up to them).",
        "curves_missing": "No eps-bounded attack was run.",
        "pareto": "Each evaluated model in its colour; models on the Pareto front of (clean accuracy, worst-case "
        "robust accuracy, parameters) are ringed in black: "
        f"{', '.join(summary['pareto']['front']) or 'none'}.{store_note}",
        "pareto_missing": "No model has both a parameter count and a robust accuracy.",
        "transfer_missing": "Not available: a transfer matrix needs two or more models attacked together "
        "(nasbench attack --model a,b).",
        "corruptions": "Accuracy (%) on the evaluated test points after each corruption of Hendrycks & Dietterich "
        "2019 at each severity (CIFAR-10-C's constants; frost uses a procedural texture), one "
        "heatmap per model on one colour scale. Corruption error CE = the model's summed errors over "
        "the severities / the baseline's; mCE = its mean over the corruptions (baseline = 100); "
        "relative mCE counts only the errors beyond each model's clean error.",
        "corruptions_missing": "Not measured: add --corruptions all (or a list) to nasbench attack.",
        "examples": "Per model: the clean image with its true and predicted label (top row), the adversarial image "
        "with its prediction (middle, red), and the perturbation amplified so its largest entry fills "
        "the grey range (bottom; mid-grey is zero, its true size is written above it).",
        "examples_missing": "No attack succeeded, so there are no adversarial examples to show.",
        "checks": 'After Carlini et al. 2019, "On Evaluating Adversarial Robustness": passing them is no proof of '
        "robustness, failing any is a sign the evaluation is too weak. n/a: nothing in the run to judge "
        "it on. Every verdict is an exact one-sided test on the points attacked (two attacks: McNemar's "
        "test on the points only one of them broke; a rate against a bound: a binomial test), never a "
        "raw difference, since random starts move a few points from run to run. FAIL when the p-value, "
        "Bonferroni-adjusted over the check's comparisons, is below 0.001. Counts: the points the test "
        "was computed from (the closest call when the check passed).",
        "details": "Success rate: broken / clean-correct points (cascade attacks: / points they ran on). Points "
        "broken (so far): by this attack at this eps or a smaller one (cascade attacks: only those the "
        "cheaper attacks missed); points attacked at this eps: those still standing that it ran on. "
        "Perturbation sizes over the examples each attack broke.",
    }
    if transfer:
        captions["transfer"] = (
            f"Accuracy of each target model (column) on adversarial examples crafted on each source model (row) "
            f"with {transfer.get('attack_label')} at {transfer.get('norm')} eps {_eps_text(transfer['eps'])} "
            f"({transfer.get('eps_choice')}), on {transfer.get('n')} points. The diagonal is white-box; high values "
            "off it mean the examples transfer poorly."
        )
    for grid in summary["grids"]:
        captions[f"grid-{grid['model']}"] = _grid_caption(grid)
    return captions


def _headline_text(summary: dict) -> str:
    head = summary["headline"]
    eps = _eps_text(head["eps"]) if head["eps"] is not None else "–"
    return f"per-example worst case over all attacks at {head['norm']} eps {eps} ({head['why']})"


def _failure_banner(summary: dict) -> str:
    return f"{len(summary['failed_checks'])} sanity check(s) FAILED: these robustness numbers may be overestimates"


def _collapse_banner(summary: dict) -> str:
    return (
        f"{len(summary.get('collapsed') or [])} model(s) whose training collapsed to chance: their numbers "
        "describe a failed training run, not the architecture"
    )


# ----------------------------------------------------------------------------- rendering


def _figures(summary: dict) -> dict[str, bytes]:
    figures = {}
    for name, plot in (
        ("curves", plot_curves),
        ("pareto", plot_pareto),
        ("transfer", plot_transfer),
        ("corruptions", plot_corruptions),
    ):
        data = plot(summary)
        if data is not None:
            figures[name] = data
    for grid in summary["grids"]:
        figures[f"grid-{grid['model']}"] = Path(grid["file"]).read_bytes()
    return figures


def _texts(summary: dict) -> dict[str, Any]:
    """The words both renderers put around the tables and figures."""
    return {
        "captions": _captions(summary),
        "threat_facts": _threat_facts(summary),
        "repro_facts": _reproducibility_facts(summary),
        "commands": _commands(summary),
        "headline": _headline_text(summary),
        "banner": _failure_banner(summary),
        "collapse_banner": _collapse_banner(summary),
    }


def _render_html(summary: dict, tables: dict, figures: dict[str, bytes]) -> str:
    from importlib.resources import files

    import jinja2

    source = files("nasbench").joinpath("templates", TEMPLATE).read_text()
    environment = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    images = {name: "data:image/png;base64," + base64.b64encode(data).decode() for name, data in figures.items()}
    colours = {m["label"]: m["colour"] for m in summary["models"]}
    return environment.from_string(source).render(
        s=summary, t=tables, x=_texts(summary), images=images, sections=SECTIONS, colours=colours
    )


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _md_table(table: dict, bold_column: int | None = None) -> str:
    """A pipe table; numeric columns right-aligned, ``bold_column`` (the headline) in bold."""

    def row_cells(row):
        cells = row["cells"] if isinstance(row, dict) else row
        return [f"**{_md_cell(c)}**" if i == bold_column else _md_cell(c) for i, c in enumerate(cells)]

    headers = table["headers"]
    lines = [
        "| " + " | ".join(row_cells(headers)) + " |",
        "|" + "".join("---:|" if i in table["numeric"] else "---|" for i in range(len(headers))),
    ]
    lines += ["| " + " | ".join(row_cells(row)) + " |" for row in table["rows"]]
    return "\n".join(lines)


def _md_figure(key: str, alt: str, image_paths: dict[str, str], caption: str) -> list[str]:
    return [f"![{alt}]({image_paths[key]})", "", f"*{_md_cell(caption)}*", ""]


def _render_markdown(summary: dict, tables: dict, image_paths: dict[str, str]) -> str:
    s, t, x = summary, tables, _texts(summary)
    captions = x["captions"]
    out = [
        f"# Robustness report: {s['experiment']}",
        "",
        f"Dataset **{s['dataset']}**, {len(s['models'])} model(s), generated {s['generated_at']}. "
        f"Headline number: {x['headline']}.",
        "",
    ]
    if s["failed_checks"]:
        out += [f"> **{x['banner']}**", ">"]
        out += [f"> - **{c['model']}: {c['name']}** – {c['detail']}" for c in s["failed_checks"]]
        out.append("")
    else:
        out += ["All applicable sanity checks passed (Carlini et al. 2019); see the checks below.", ""]
    if s.get("collapsed"):
        out += [f"> **{x['collapse_banner']}**", ">"]
        out += [f"> - **{c['model']}**: {c['reason']}" for c in s["collapsed"]]
        out.append("")
    out += [f"## {SECTIONS['threat-model']}", ""]
    out += [f"- **{term}**: {text}" for term, text in x["threat_facts"]]
    out += ["", _md_table(t["eps"]), "", _md_table(t["attacks"]), ""]
    column = t["models"]["checks_column"]
    models = {
        **t["models"],
        "rows": [
            [f"**{c}**" if i == column and r["failed"] else c for i, c in enumerate(r["cells"])]
            for r in t["models"]["rows"]
        ],
    }
    out += [
        f"## {SECTIONS['models']}",
        "",
        _md_table(models, bold_column=t["models"]["headline_column"]),
        "",
        captions["models"],
        "",
    ]
    for key in ("curves", "pareto", "transfer"):
        out += [f"## {SECTIONS[key]}", ""]
        out += (
            _md_figure(key, SECTIONS[key], image_paths, captions[key])
            if key in image_paths
            else [captions[f"{key}_missing"], ""]
        )
        if key == "transfer" and t["transfer"]:
            out += [_md_table(t["transfer"]), ""]
    out += [f"## {SECTIONS['corruptions']}", ""]
    out += (
        _md_figure("corruptions", SECTIONS["corruptions"], image_paths, captions["corruptions"])
        if "corruptions" in image_paths
        else [captions["corruptions_missing"], ""]
    )
    if t["corruptions"]:
        out += [_md_table(t["corruptions"]), ""]
    out += [f"## {SECTIONS['examples']}", "", captions["examples"], ""]
    for grid in s["grids"]:
        key = f"grid-{grid['model']}"
        out += [f"### {grid['model']}", ""] + _md_figure(
            key, f"adversarial examples of {grid['model']}", image_paths, captions[key]
        )
    if not s["grids"]:
        out += [captions["examples_missing"], ""]
    checks = {
        **t["checks"],
        "rows": [
            [*r["cells"][:2], f"**{r['cells'][2]}**" if r["passed"] is False else r["cells"][2], *r["cells"][3:]]
            for r in t["checks"]["rows"]
        ],
    }
    out += [f"## {SECTIONS['checks']}", "", captions["checks"], "", _md_table(checks), ""]
    out += [f"## {SECTIONS['details']}", "", _md_table(t["details"]), "", captions["details"], ""]
    out += [f"## {SECTIONS['reproducibility']}", ""]
    out += [f"- **{term}**: {text}" for term, text in x["repro_facts"]]
    out += ["", _md_table(t["versions"]), "", _md_table(t["runs"]), "", "Commands:", ""]
    for what, command in x["commands"]:
        out += [f"{what}:", "", f"```\n{command}\n```", ""]
    return "\n".join(out)


def _log_report(tracking, summary: dict, result: ReportResult, extra: list[Path]) -> str:
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
    from nasbench.store import collect_provenance

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
def _writing_to(out: Path):
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
        out.write_text(_render_html(summary, tables, figures), encoding="utf-8")
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
    out.write_text(_render_markdown(summary, tables, paths), encoding="utf-8")
    summary["figures"] = paths
    return extra


def build_report(
    experiment_dir: str | Path,
    out: str | Path,
    format: str = "html",
    models: list[str] | None = None,
    attacks: list[str] | None = None,
    tracking=None,
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
    tables = _tables(summary)
    figures = _figures(summary)
    json_path = out.with_suffix(".json")
    with _writing_to(out):
        extra = _write_report(out, format, summary, tables, figures)
        json_path.write_text(json.dumps(summary, indent=2, default=str))
    result = ReportResult(path=out, json_path=json_path, failed_checks=len(summary["failed_checks"]))
    if tracking is not None:
        result.mlflow_run_id = _log_report(tracking, summary, result, extra)
    return result
