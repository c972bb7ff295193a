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
7. adversarial example grids; 8. every check's verdict; 9. reproducibility.

Plots are matplotlib (Agg) PNGs, base64-embedded in the HTML so the file opens anywhere
without a network; ``format="md"`` writes the same report as Markdown with the PNGs
in a folder beside it. Every number shown is also in the JSON summary.
"""

from __future__ import annotations

import base64
import io
import json
import math
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
    "examples": "Adversarial examples",
    "checks": "Sanity checks",
    "details": "Per-attack details",
    "reproducibility": "Reproducibility",
}
TEMPLATE = "report.html.j2"
# One colour per model, the same in every plot and table (matplotlib's tab10, then tab20).
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94"]
STORE_COLOUR = "#b0b0b0"


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
            raise UserError(f"--headline-eps {requested:g} is not an eps every model was evaluated at "
                            f"({', '.join(_eps_text(e) for e in common) or 'none'})")
        return match[0], "given with --headline-eps"
    positive = [e for e in common if e > 0]
    if not positive:
        return (common[0] if common else None), "the only eps evaluated"
    clean = sum(r["report"]["clean_accuracy"] for r in records) / len(records)

    def mean_robust(eps: float) -> float:
        values = [w["robust_accuracy"] for r in records for w in r["report"]["worst_case"]
                  if w["norm"] == norm and _same(w["eps"], eps)]
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
            robust = next((item["accuracy"] for item in row.get("robust") or []
                           if item["attack"] == "worst" and item["norm"] == norm and _same(item["eps"], eps)), None)
        points.append({"arch_hash": row["arch_hash"], "budget": row["budget"], "seed": row["seed"],
                       "params": row.get("params"), "val_acc": row.get("val_acc"), "test_acc": row.get("test_acc"),
                       "robust_acc": robust})
    return {"path": str(path), "rows": points}


def collect_summary(experiment_dir: str | Path, models: list[str] | None = None, attacks: list[str] | None = None,
                    headline_eps: float | None = None) -> dict[str, Any]:
    """Every number the report shows, as a JSON-able dict (also written beside the report)."""
    from nasbench.evaluation import EVALUATIONS_DIR, TRANSFER_FILE, read_evaluations
    from nasbench.store import pareto_front

    experiment_dir = Path(experiment_dir)
    if not experiment_dir.is_dir():
        raise UserError(f"no experiment at {experiment_dir}; run 'nasbench attack --experiment "
                        f"{experiment_dir.name}' first")
    records = read_evaluations(experiment_dir)
    if not records:
        raise UserError(f"experiment {experiment_dir} has no evaluations; run 'nasbench attack --experiment "
                        f"{experiment_dir.name}' first")
    available = [r["model"]["label"] for r in records]
    if models:
        unknown = [m for m in models if m not in available]
        if unknown:
            raise UserError(f"no evaluation of model {unknown[0]!r} in {experiment_dir}; evaluated: "
                            f"{', '.join(available)}")
        records = [r for r in records if r["model"]["label"] in models]
    if attacks:
        ran = {a for r in records for res in r["report"]["results"] for a in (res["attack"], res["name"])}
        unknown = [a for a in attacks if a.lower() not in {x.lower() for x in ran}]
        if unknown:
            raise UserError(f"attack {unknown[0]!r} was not run in {experiment_dir}; run: {', '.join(sorted(ran))}")

    colours = {r["model"]["label"]: PALETTE[i % len(PALETTE)] for i, r in enumerate(records)}
    norms = list(dict.fromkeys(w["norm"] for r in records for w in r["report"]["worst_case"]))
    norm = "Linf" if "Linf" in norms else (norms[0] if norms else "Linf")
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
        "target_selection": next((r["report"]["threat_model"].get("target_selection") for r in records
                                  if r["report"]["threat_model"].get("target_selection")), None),
        "norms": norms,
        "eps": eps_table,
        "attacks": list(specs.values()),
        "cascade": sorted({c for r in records for c in r["report"]["threat_model"].get("cascade", [])}),
        "early_stop": sorted({c for r in records for c in r["report"]["threat_model"].get("early_stop", [])}),
        "autoattack": next((r["report"]["threat_model"]["autoattack"] for r in records
                            if "autoattack" in r["report"]["threat_model"]), None),
        "worst_case_over": "every attack that was run, whatever --attacks selects for display",
    }

    model_rows = []
    for r in records:
        m, rep = r["model"], r["report"]
        worst = {w["norm"]: [] for w in rep["worst_case"]}
        for w in rep["worst_case"]:
            worst[w["norm"]].append({"eps": w["eps"], "robust_acc": w["robust_accuracy"], "n_robust": w["n_robust"],
                                     "broken_by": w.get("broken_by", {})})
        robust = next((w["robust_accuracy"] for w in rep["worst_case"]
                       if headline is not None and w["norm"] == norm and _same(w["eps"], headline)), None)
        model_rows.append({
            "label": m["label"], "kind": m.get("kind"), "source": m.get("source"), "spec": m.get("spec"),
            "params": m.get("params"), "macs": m.get("macs"), "latency_ms": m.get("latency_ms"),
            "latency_device": m.get("latency_device"), "clean_acc": rep["clean_accuracy"], "robust_acc": robust,
            "worst_case": worst, "colour": colours[m["label"]], "n": r["n"], "seconds": rep.get("seconds"),
            "device": rep.get("device"), "failed_checks": sum(1 for c in rep["checks"] if c["passed"] is False),
        })

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
            points = sorted((_finite(res["eps"]), res["robust_accuracy"]) for res in results
                            if (res["attack"], res["norm"]) == attack and math.isfinite(_finite(res["eps"])))
            if points:
                curves.append({"model": label, "attack": attack[0], "norm": attack[1],
                               "eps": [p[0] for p in points], "robust_acc": [p[1] for p in points],
                               "scope": next(res["scope"] for res in results if (res["attack"], res["norm"]) == attack)})
        for w_norm, points in model_rows[[m["label"] for m in model_rows].index(label)]["worst_case"].items():
            curves.append({"model": label, "attack": "worst case", "norm": w_norm,
                           "eps": [p["eps"] for p in points], "robust_acc": [p["robust_acc"] for p in points],
                           "scope": "per-example"})
        for res in results:
            details.append({"model": label, **{k: res[k] for k in (
                "attack", "norm", "eps", "robust_accuracy", "success_rate", "n_attacked", "n_broken", "mean_l2",
                "median_l2", "mean_linf", "median_linf", "seconds", "seconds_per_example", "scope", "kind")}})

    transfer = None
    transfer_path = experiment_dir / EVALUATIONS_DIR / TRANSFER_FILE
    if transfer_path.is_file():
        try:
            transfer = json.loads(transfer_path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise UserError(f"{transfer_path} is not readable JSON ({error})") from None
        labels = [m["label"] for m in model_rows]
        keep = [t for t in transfer.get("sources", []) if t in labels]
        if len(keep) < 2:
            transfer = None
        else:
            transfer = {**transfer, "sources": keep, "targets": keep,
                        "clean_accuracy": {t: transfer["clean_accuracy"][t] for t in keep},
                        "robust_accuracy": {s: {t: transfer["robust_accuracy"][s][t] for t in keep} for s in keep}}

    checks = [{"model": r["model"]["label"], **c} for r in records for c in r["report"]["checks"]]
    grids = [{"model": r["model"]["label"], "file": str(Path(r["_dir"]) / r["files"]["grid"]),
              "examples": r["report"].get("examples", [])}
             for r in records if (r.get("files") or {}).get("grid") and (Path(r["_dir"]) / r["files"]["grid"]).is_file()]
    reproducibility = {
        "versions": records[0].get("versions", {}),
        "versions_differ": [r["model"]["label"] for r in records if r.get("versions") != records[0].get("versions")],
        "git_commit": sorted({str(r.get("git_commit")) for r in records}),
        "runs": [{"model": r["model"]["label"], "seed": r["seed"], "n": r["n"], "command": r.get("command"),
                  "git_commit": r.get("git_commit"), "mlflow_run_id": r.get("mlflow_run_id"),
                  "model_run_id": r["model"].get("run_id"), "created_at": r.get("created_at"),
                  "device": r["report"].get("device"), "bundle": r["_dir"]} for r in records],
        "transfer_command": transfer.get("command") if transfer else None,
    }
    return {
        "experiment": experiment_dir.name,
        "experiment_dir": str(experiment_dir),
        "dataset": dataset,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "filters": {"models": models, "attacks": attacks},
        "headline": {"norm": norm, "eps": headline, "why": why},
        "threat_model": threat_model,
        "models": model_rows,
        "curves": curves,
        "pareto": {"objectives": ["clean_acc:max", f"robust_acc@{norm} {headline}:max", "params:min"],
                   "front": front_labels, "store": store},
        "transfer": transfer,
        "grids": grids,
        "checks": checks,
        "failed_checks": [c for c in checks if c["passed"] is False],
        "details": details,
        "reproducibility": reproducibility,
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
    panels = list(dict.fromkeys((c["norm"], c["attack"]) for c in summary["curves"]
                                if c["attack"] == "worst case"))
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
            ax.plot(curve["eps"], [100 * a for a in curve["robust_acc"]], marker="o", markersize=4,
                    color=colours[curve["model"]], label=curve["model"],
                    linewidth=2.4 if attack == "worst case" else 1.6)
        kind = "noise std" if norm == "gaussian" else f"{norm} eps"
        title = f"worst case over all attacks ({norm})" if attack == "worst case" else f"{attack} ({norm})"
        if any(c["scope"] == "cascade" for c in summary["curves"] if (c["norm"], c["attack"]) == (norm, attack)):
            title += "\ncascade: ensemble up to this attack"
        ax.set_title(title, fontsize=10, fontweight="bold" if attack == "worst case" else "normal")
        ax.set_xlabel(kind)
        ax.set_ylabel("robust accuracy (%)")
        ax.set_ylim(-3, 103)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    handles = [plt.Line2D([], [], color=m["colour"], marker="o", linewidth=2, label=m["label"])
               for m in summary["models"]]
    fig.legend(handles=handles, loc="upper center", ncol=min(len(handles), 6), frameon=False,
               bbox_to_anchor=(0.5, 1.0 + 0.04 / rows), title="model")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.1 / rows))
    return _png(fig)


def plot_pareto(summary: dict) -> bytes | None:
    """Three views of (clean accuracy, robust accuracy, parameters); the front is ringed in black."""
    plt = _pyplot()
    models = [m for m in summary["models"] if m["params"] is not None]
    if not models:
        return None
    headline = summary["headline"]
    robust_axis = f"worst-case robust accuracy (%)\n{headline['norm']} eps {_eps_text(headline['eps'])}" \
        if headline["eps"] is not None else "worst-case robust accuracy (%)"
    store = (summary["pareto"].get("store") or {}).get("rows") or []
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    views = [("params", "clean_acc", "parameters (log scale)", "clean accuracy (%)"),
             ("params", "robust_acc", "parameters (log scale)", robust_axis),
             ("clean_acc", "robust_acc", "clean accuracy (%)", robust_axis)]
    for ax, (xk, yk, xlabel, ylabel) in zip(axes, views):
        # Search results from the store: validation accuracy, a different split: context only.
        store_key = {"clean_acc": "val_acc", "robust_acc": "robust_acc", "params": "params"}
        sx = [row[store_key[xk]] for row in store if row.get(store_key[xk]) is not None
              and row.get(store_key[yk]) is not None]
        sy = [row[store_key[yk]] for row in store if row.get(store_key[xk]) is not None
              and row.get(store_key[yk]) is not None]
        if sx:
            ax.scatter([v if xk == "params" else 100 * v for v in sx], [100 * v for v in sy], s=14,
                       color=STORE_COLOUR, alpha=0.7, label="search results (val acc, benchmark.db)", zorder=1)
        for m in models:
            if m[xk] is None or m[yk] is None:
                continue
            x = m[xk] if xk == "params" else 100 * m[xk]
            ax.scatter([x], [100 * m[yk]], s=110 if m["on_front"] else 60, color=m["colour"],
                       edgecolors="black" if m["on_front"] else "none", linewidths=1.8, zorder=3,
                       label=m["label"] + (" (on front)" if m["on_front"] else ""))
        if xk == "params":
            from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: _count(int(value))))
            ax.xaxis.set_minor_formatter(NullFormatter())  # 2x10^3, 3x10^3 ... overlap on short axes
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 5), frameon=False,
               bbox_to_anchor=(0.5, 1.08))
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
            ax.text(j, i, f"{values[i][j]:.1f}", ha="center", va="center",
                    color="white" if values[i][j] < 60 else "black", fontsize=10)
    ax.set_xticks(range(len(targets)), targets, rotation=30, ha="right")
    ax.set_yticks(range(len(sources)), sources)
    ax.set_xlabel("target model (evaluated)")
    ax.set_ylabel("source model (attacked)")
    ax.set_title(f"{matrix.get('attack_label', matrix['attack'].get('name'))}, {matrix.get('norm', '')} eps "
                 f"{_eps_text(matrix['eps'])}: target accuracy (%)", fontsize=10)
    fig.colorbar(image, ax=ax, label="accuracy on transferred examples (%)")
    fig.tight_layout()
    return _png(fig)


# ----------------------------------------------------------------------------- tables


def _spec_params(spec: dict) -> str:
    skip = {"name", "norm", "eps", "steps", "restarts", "targeted"}
    parts = [f"{k}={'auto (2.5·eps/steps)' if k == 'alpha' and v is None else v}"
             for k, v in spec.items() if k not in skip]
    if spec.get("eps") is not None:
        parts.insert(0, f"eps={spec['eps']:g} (fixed)")
    return ", ".join(parts) or "–"


def _tables(summary: dict) -> dict[str, Any]:
    """Header + rows of display strings, shared by the HTML and Markdown renderers."""
    norm, headline = summary["headline"]["norm"], summary["headline"]["eps"]
    threat = summary["threat_model"]
    attacks = {"headers": ["attack", "norm", "steps", "restarts", "targeted", "parameters"],
               "rows": [[s["name"], s["norm"], s.get("steps") or "–", s.get("restarts", 1),
                         "yes" if s.get("targeted") else "no", _spec_params(s)] for s in threat["attacks"]]}
    eps_rows = [[k if k != "gaussian" else "gaussian (noise std)", ", ".join(_eps_text(v) for v in values)]
                for k, values in threat["eps"].items()]
    sweep = sorted({float(p["eps"]) for m in summary["models"] for p in m["worst_case"].get(norm, [])})
    model_headers = ["", "model", "kind", "params", "MACs", "latency (ms/image, best of 20)", "clean acc"] + \
        [f"worst case @ {_eps_text(e)}" for e in sweep] + ["Pareto front"]
    model_rows = []
    for m in summary["models"]:
        by_eps = {float(p["eps"]): p["robust_acc"] for p in m["worst_case"].get(norm, [])}
        model_rows.append({"colour": m["colour"], "headline_index": sweep.index(headline) if headline in sweep else None,
                           "cells": [m["label"], m["kind"] or "–", _count(m["params"]), _count(m["macs"]),
                                     "–" if m["latency_ms"] is None else f"{m['latency_ms']:.2f}",
                                     _pct(m["clean_acc"])] + [_pct(by_eps.get(e)) for e in sweep] +
                                    ["yes" if m["on_front"] else "no"]})
    checks = {"headers": ["model", "check", "verdict", "detail"],
              "rows": [{"cells": [c["model"], c["name"], {True: "PASS", False: "FAIL", None: "n/a"}[c["passed"]],
                                  c["detail"]], "passed": c["passed"]} for c in summary["checks"]]}

    def number(value, digits=3):
        return "–" if value is None else f"{value:.{digits}f}"

    details = {"headers": ["model", "attack", "norm", "eps", "robust acc", "success rate", "broken", "attacked",
                           "mean L2", "median L2", "mean Linf", "median Linf", "ms/example", "scope"],
               "rows": [[d["model"], d["attack"], d["norm"], _eps_text(d["eps"]), _pct(d["robust_accuracy"]),
                         _pct(d["success_rate"]), d["n_broken"], d["n_attacked"], number(d["mean_l2"]),
                         number(d["median_l2"]), number(d["mean_linf"]), number(d["median_linf"]),
                         number(1000 * d["seconds_per_example"], 2), d["scope"]]
                        for d in summary["details"] if _finite(d["eps"]) != 0]}
    transfer = None
    if summary.get("transfer"):
        t = summary["transfer"]
        transfer = {"headers": ["source \\ target", *t["targets"]],
                    "rows": [["clean", *[_pct(t["clean_accuracy"][x]) for x in t["targets"]]]] +
                            [[s, *[_pct(t["robust_accuracy"][s][x]) for x in t["targets"]]] for s in t["sources"]]}
    repro = summary["reproducibility"]
    versions = {"headers": ["package", "version"], "rows": [[k, v or "–"] for k, v in repro["versions"].items()]}
    runs = {"headers": ["model", "seed", "n", "git commit", "MLflow run", "model's run", "device", "created"],
            "rows": [[r["model"], r["seed"], r["n"], (r["git_commit"] or "–")[:12], r["mlflow_run_id"] or "–",
                      r["model_run_id"] or "–", r["device"] or "–", r["created_at"] or "–"] for r in repro["runs"]]}
    store = summary["pareto"].get("store")
    return {"attacks": attacks, "eps": {"headers": ["norm", "eps"], "rows": eps_rows},
            "models": {"headers": model_headers, "rows": model_rows}, "checks": checks, "details": details,
            "transfer": transfer, "versions": versions, "runs": runs,
            "commands": [(r["model"], r["command"]) for r in repro["runs"]],
            "store_note": None if not store else (
                f"{len(store['rows'])} search results of {summary['dataset']} from {store['path']} in grey "
                "(their validation accuracy; robust accuracy where the store has the worst case at this eps)"
                if not store.get("error") else f"benchmark store unreadable: {store['error']}")}


# ----------------------------------------------------------------------------- rendering


def _figures(summary: dict) -> dict[str, bytes]:
    figures = {}
    for name, plot in (("curves", plot_curves), ("pareto", plot_pareto), ("transfer", plot_transfer)):
        data = plot(summary)
        if data is not None:
            figures[name] = data
    for grid in summary["grids"]:
        figures[f"grid-{grid['model']}"] = Path(grid["file"]).read_bytes()
    return figures


def _render_html(summary: dict, tables: dict, figures: dict[str, bytes]) -> str:
    from importlib.resources import files

    import jinja2

    source = files("nasbench").joinpath("templates", TEMPLATE).read_text()
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                                     trim_blocks=True, lstrip_blocks=True)
    images = {name: "data:image/png;base64," + base64.b64encode(data).decode() for name, data in figures.items()}
    colours = {m["label"]: m["colour"] for m in summary["models"]}
    return environment.from_string(source).render(s=summary, t=tables, images=images, sections=SECTIONS,
                                                  colours=colours, eps_text=_eps_text, pct=_pct)


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _md_table(headers: list, rows: list[list]) -> str:
    lines = ["| " + " | ".join(_md_cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _render_markdown(summary: dict, tables: dict, image_paths: dict[str, str]) -> str:
    s, t = summary, tables
    head = s["headline"]
    out = [f"# Robustness report: {s['experiment']}", "",
           f"Dataset **{s['dataset']}**, {len(s['models'])} model(s), generated {s['generated_at']}. "
           f"Headline robust accuracy: per-example worst case over all attacks at {head['norm']} eps "
           f"{_eps_text(head['eps']) if head['eps'] is not None else '–'} ({head['why']}).", ""]
    if s["failed_checks"]:
        out += [f"> **{len(s['failed_checks'])} sanity check(s) FAILED** — the evaluation may be too weak:", ">"]
        out += [f"> - **{c['model']}: {c['name']}** — {c['detail']}" for c in s["failed_checks"]]
        out.append("")
    tm = s["threat_model"]
    out += [f"## {SECTIONS['threat-model']}", "",
            f"- examples: {', '.join(f'{k}: {v}' for k, v in tm['n'].items())} points of the "
            f"{'/'.join(tm['split'])} split, the same seeded subset for every model",
            f"- targeted: {' and '.join('yes' if v else 'no' for v in tm['targeted'])}"
            + (f" ({tm['target_selection']})" if tm["target_selection"] else ""),
            f"- norms: {', '.join(tm['norms'])}; worst case over {tm['worst_case_over']}",
            f"- expensive attacks run as a cascade on the points the cheaper ones left standing: "
            f"{', '.join(tm['cascade']) or 'none'}"]
    if tm.get("autoattack"):
        out.append(f"- AutoAttack: {tm['autoattack']}")
    out += ["", _md_table(t["eps"]["headers"], t["eps"]["rows"]), "",
            _md_table(t["attacks"]["headers"], t["attacks"]["rows"]), ""]
    out += [f"## {SECTIONS['models']}", "",
            _md_table(t["models"]["headers"][1:], [r["cells"] for r in t["models"]["rows"]]), ""]
    for key in ("curves", "pareto", "transfer"):
        out += [f"## {SECTIONS[key]}", ""]
        if key == "transfer" and t["transfer"]:
            out += [_md_table(t["transfer"]["headers"], t["transfer"]["rows"]), ""]
        if key == "pareto" and t["store_note"]:
            out += [t["store_note"], ""]
        if key == "pareto":
            out += [f"Front (clean accuracy, robust accuracy, parameters): {', '.join(s['pareto']['front']) or '–'}", ""]
        out += ([f"![{SECTIONS[key]}]({image_paths[key]})", ""] if key in image_paths
                else ["Not available (needs two or more models evaluated together).", ""])
    out += [f"## {SECTIONS['examples']}", ""]
    for grid in s["grids"]:
        out += [f"**{grid['model']}**: clean / adversarial / amplified perturbation", "",
                f"![adversarial examples of {grid['model']}]({image_paths['grid-' + grid['model']]})", ""]
    if not s["grids"]:
        out += ["No attack succeeded, so there are no adversarial examples to show.", ""]
    out += [f"## {SECTIONS['checks']}", "",
            _md_table(t["checks"]["headers"], [[*r["cells"][:2], f"**{r['cells'][2]}**" if r["passed"] is False
                                                 else r["cells"][2], r["cells"][3]] for r in t["checks"]["rows"]]), ""]
    out += [f"## {SECTIONS['details']}", "", _md_table(t["details"]["headers"], t["details"]["rows"]), ""]
    out += [f"## {SECTIONS['reproducibility']}", "", _md_table(t["versions"]["headers"], t["versions"]["rows"]), "",
            _md_table(t["runs"]["headers"], t["runs"]["rows"]), "", "Commands:", ""]
    out += [f"```\n{command}\n```" for _, command in dict.fromkeys((None, c) for _, c in t["commands"])]
    return "\n".join(out) + "\n"


def _log_report(tracking, summary: dict, result: ReportResult, extra: list[Path]) -> str:
    from nasbench.tracking import evaluation_run

    runs = [r["mlflow_run_id"] for r in summary["reproducibility"]["runs"] if r["mlflow_run_id"]]
    model_runs = {r["model_run_id"] for r in summary["reproducibility"]["runs"] if r["model_run_id"]}
    params = {"experiment": summary["experiment"], "models": ",".join(m["label"] for m in summary["models"]),
              "format": result.path.suffix.lstrip("."), "headline_eps": summary["headline"]["eps"],
              "headline_norm": summary["headline"]["norm"]}
    with evaluation_run(tracking, model_run_id=next(iter(model_runs)) if len(model_runs) == 1 else None,
                        name="report", params=params) as run:
        run.set_tag("nasbench.role_detail", "report")
        run.set_tag("nasbench.covers_runs", ",".join(runs))
        run.log_metrics({"models": len(summary["models"]), "failed_checks": len(summary["failed_checks"])})
        run.log_artifact(result.path, "report")
        run.log_artifact(result.json_path, "report")
        for path in extra:
            run.log_artifact(path, "report/" + path.parent.name)
        return run.run_id


def build_report(experiment_dir: str | Path, out: str | Path, format: str = "html", models: list[str] | None = None,
                 attacks: list[str] | None = None, tracking=None, headline_eps: float | None = None) -> ReportResult:
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

    Raises UserError for a missing experiment, no evaluations, unknown models or attacks.
    """
    if format not in ("html", "md"):
        raise UserError(f"report format must be html or md, not {format!r}")
    summary = collect_summary(experiment_dir, models, attacks, headline_eps)
    out = Path(out)
    if out.suffix.lower() != f".{format}":
        out = out.with_suffix(f".{format}") if out.suffix.lower() in (".html", ".md", "") else \
            out.with_name(out.name + f".{format}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tables = _tables(summary)
    figures = _figures(summary)
    extra: list[Path] = []
    if format == "html":
        out.write_text(_render_html(summary, tables, figures), encoding="utf-8")
        summary["figures"] = sorted(figures)
    else:
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
    json_path = out.with_suffix(".json")
    json_path.write_text(json.dumps(summary, indent=2, default=str))
    result = ReportResult(path=out, json_path=json_path, failed_checks=len(summary["failed_checks"]))
    if tracking is not None:
        result.mlflow_run_id = _log_report(tracking, summary, result, extra)
    return result
