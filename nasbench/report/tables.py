"""The report's tables as header and rows of display strings, made once for both the HTML
template and the Markdown renderer, so the two formats say the same things."""

from __future__ import annotations

from typing import Any

from nasbench.formatting import eps_text, pct
from nasbench.report.numbers import MISSING, count_text, finite_or_inf

__all__ = ["build_tables"]


def _spec_params(spec: dict) -> str:
    skip = {"name", "norm", "eps", "steps", "restarts", "targeted"}
    parts = [
        f"{k}={'auto (2.5·eps/steps)' if k == 'alpha' and v is None else v}" for k, v in spec.items() if k not in skip
    ]
    if spec.get("eps") is not None:
        parts.insert(0, f"eps={spec['eps']:g} (fixed)")
    return ", ".join(parts) or MISSING


def _table(headers: list, rows: list, numeric=()) -> dict[str, Any]:
    """A table as the renderers take it; ``numeric`` column indices are right-aligned."""
    return {"headers": headers, "rows": rows, "numeric": list(numeric)}


def _checks_cell(failed: int) -> str:
    return f"⚠ {failed} FAILED" if failed else "none failed"


def _p_text(p: float | None) -> str:
    """A check's p-value as people read it: 0.42, 0.0031, 2e-07 (– where no test ran)."""
    if p is None:
        return MISSING
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.0e}"


def _counts_text(counts: dict | None) -> str:
    """The counts a check's test was computed from: "points 194; robust under pgd-40 89; ..."."""
    return "; ".join(f"{name} {value}" for name, value in (counts or {}).items()) or MISSING


def _short_commit(commit: str | None) -> str:
    """The first 12 hex digits, keeping a " (uncommitted changes)" note after them."""
    if not commit:
        return MISSING
    sha, _, note = commit.partition(" ")
    return f"{sha[:12]} {note}".strip()


def _models_table(summary: dict) -> dict[str, Any]:
    norm, headline = summary["headline"]["norm"], summary["headline"]["eps"]
    sweep = sorted({float(p["eps"]) for m in summary["models"] for p in m["worst_case"].get(norm, [])})
    fixed = ["model", "kind", "sanity checks", "params", "MACs", "latency (ms/image, best of 20)", "clean acc"]
    headers = (
        fixed
        + [f"worst case @ {eps_text(e)}" + (" (headline)" if e == headline else "") for e in sweep]
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
                    m["kind"] or MISSING,
                    _checks_cell(m["failed_checks"]),
                    count_text(m["params"]),
                    count_text(m["macs"]),
                    MISSING if m["latency_ms"] is None else f"{m['latency_ms']:.2f}",
                    pct(m["clean_acc"], MISSING),
                ]
                + [pct(by_eps.get(e), MISSING) for e in sweep]
                + ["yes" if m["on_front"] else "no"],
            }
        )
    if any(m.get("corruption") for m in summary["models"]):  # a summary column for common corruptions
        headers.append("corruption acc (mCE)")
        for m, row in zip(summary["models"], rows, strict=True):
            c = m.get("corruption")
            row["cells"].append(
                MISSING
                if not c
                else pct(c["mean_acc"], MISSING) + (f" ({100 * c['mce']:.0f})" if c["mce"] is not None else "")
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
        return MISSING if value is None else f"{value:.{digits}f}"

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
            eps_text(d["eps"]),
            pct(d["robust_accuracy"], MISSING),
            pct(d["success_rate"], MISSING),
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
        if finite_or_inf(d["eps"]) != 0
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
    baseline = next((m["corruption"]["baseline"] for m in models if m["corruption"]["baseline"]), MISSING)
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
                pct(m["clean_acc"], MISSING),
                pct(c["mean_acc"], MISSING),
                pct(c["relative"], MISSING),
                MISSING if c["mce"] is None else f"{100 * c['mce']:.1f}",
                MISSING if c["relative_mce"] is None else f"{100 * c['relative_mce']:.1f}",
                *[pct(panel["severity_mean"].get(s), MISSING) for s in severities],
            ]
        )
    return _table(headers, rows, numeric=range(1, len(headers)))


def _transfer_table(summary: dict) -> dict[str, Any] | None:
    t = summary.get("transfer")
    if not t:
        return None
    rows = [["clean", *[pct(t["clean_accuracy"][x], MISSING) for x in t["targets"]]]]
    rows += [[s, *[pct(t["robust_accuracy"][s][x], MISSING) for x in t["targets"]]] for s in t["sources"]]
    return _table(["source \\ target", *t["targets"]], rows, numeric=range(1, len(t["targets"]) + 1))


def _attacks_table(threat: dict) -> dict[str, Any]:
    return _table(
        ["attack", "norm", "steps", "restarts", "targeted", "parameters"],
        [
            [
                s["name"],
                s["norm"],
                s.get("steps") or MISSING,
                s.get("restarts", 1),
                "yes" if s.get("targeted") else "no",
                _spec_params(s),
            ]
            for s in threat["attacks"]
        ],
        numeric=(2, 3),
    )


def _eps_table(threat: dict) -> dict[str, Any]:
    rows = [
        [k if k != "gaussian" else "gaussian (noise std)", ", ".join(eps_text(v) for v in values)]
        for k, values in threat["eps"].items()
    ]
    return _table(["norm", "eps (pixel scale 0–1)"], rows)


def _checks_table(summary: dict) -> dict[str, Any]:
    return _table(
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


def _runs_table(repro: dict) -> dict[str, Any]:
    return _table(
        ["model", "seed", "n", "git commit", "MLflow run", "model's run", "device", "created"],
        [
            [
                r["model"],
                r["seed"],
                r["n"],
                _short_commit(r["git_commit"]),
                r["mlflow_run_id"] or MISSING,
                r["model_run_id"] or MISSING,
                r["device"] or MISSING,
                r["created_at"] or MISSING,
            ]
            for r in repro["runs"]
        ],
        numeric=(1, 2),
    )


def build_tables(summary: dict) -> dict[str, Any]:
    """Header + rows of display strings, shared by the HTML and Markdown renderers."""
    repro = summary["reproducibility"]
    return {
        "attacks": _attacks_table(summary["threat_model"]),
        "eps": _eps_table(summary["threat_model"]),
        "models": _models_table(summary),
        "checks": _checks_table(summary),
        "details": _details_table(summary),
        "transfer": _transfer_table(summary),
        "corruptions": _corruptions_table(summary),
        "versions": _table(["package", "version"], [[k, v or MISSING] for k, v in repro["versions"].items()]),
        "runs": _runs_table(repro),
    }
