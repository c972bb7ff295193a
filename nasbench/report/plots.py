"""The report's figures: matplotlib (Agg) PNGs of robust accuracy against eps, the Pareto
front, the transfer matrix and the corruption heatmaps, drawn from the summary."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

from nasbench.formatting import eps_text
from nasbench.report.layout import NORM_SYMBOLS, STORE_COLOUR
from nasbench.report.numbers import count_text

__all__ = ["draw_figures", "plot_corruptions", "plot_curves", "plot_pareto", "plot_transfer"]


def _eps_axis_label(norm: str) -> str:
    """What an eps is measured in: attacks perturb images in [0, 1] (nasbench.data scales every
    dataset so), before any normalisation a model applies in its first layer."""
    if norm == "gaussian":
        return "noise std (pixel scale 0–1)"
    return f"{NORM_SYMBOLS.get(norm, norm)} eps (pixel scale 0–1)"


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
    for ax, (norm, attack) in zip(axes.flat, panels, strict=False):  # spare axes stay blank
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


# Where a search result from the store stands on a Pareto view's axes: its validation
# accuracy, a different split from the evaluated test points, so it is context only.
STORE_KEYS = {"clean_acc": "val_acc", "robust_acc": "robust_acc", "params": "params"}


def _scatter_store(ax: Any, store: list[dict], xk: str, yk: str) -> None:
    """The search results of the benchmark store, in grey behind the models."""
    shown = [row for row in store if row.get(STORE_KEYS[xk]) is not None and row.get(STORE_KEYS[yk]) is not None]
    if not shown:
        return
    ax.scatter(
        [row[STORE_KEYS[xk]] if xk == "params" else 100 * row[STORE_KEYS[xk]] for row in shown],
        [100 * row[STORE_KEYS[yk]] for row in shown],
        s=14,
        color=STORE_COLOUR,
        alpha=0.7,
        label="search results (val acc, benchmark.db)",
        zorder=1,
    )


def _scatter_models(ax: Any, models: list[dict], xk: str, yk: str) -> None:
    """The evaluated models in their colours, those on the front larger and ringed in black."""
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


def _params_axis(ax: Any) -> None:
    """A log axis of parameter counts labelled 1k, 2k, 5k, 10k ..."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: count_text(int(value))))
    ax.xaxis.set_minor_formatter(NullFormatter())  # 2x10^3, 3x10^3 ... overlap on short axes


def _robust_axis_label(headline: dict) -> str:
    if headline["eps"] is None:
        return "worst-case robust accuracy (%)"
    return (
        f"worst-case robust accuracy (%)\nat {NORM_SYMBOLS.get(headline['norm'], headline['norm'])} "
        f"eps {eps_text(headline['eps'])} (0–1 scale)"
    )


def plot_pareto(summary: dict) -> bytes | None:
    """Three views of (clean accuracy, robust accuracy, parameters); the front is ringed in black."""
    plt = _pyplot()
    models = [m for m in summary["models"] if m["params"] is not None]
    if not models:
        return None
    robust_axis = _robust_axis_label(summary["headline"])
    store = (summary["pareto"].get("store") or {}).get("rows") or []
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    views = [
        ("params", "clean_acc", "parameters (log scale)", "clean accuracy (%)"),
        ("params", "robust_acc", "parameters (log scale)", robust_axis),
        ("clean_acc", "robust_acc", "clean accuracy (%)", robust_axis),
    ]
    for ax, (xk, yk, xlabel, ylabel) in zip(axes, views, strict=True):
        _scatter_store(ax, store, xk, yk)
        _scatter_models(ax, models, xk, yk)
        if xk == "params":
            _params_axis(ax)
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
        f"{_eps_axis_label(matrix.get('norm', ''))} = {eps_text(matrix['eps'])}\n"
        "target accuracy (%)",
        fontsize=10,
    )
    fig.colorbar(image, ax=ax, label="accuracy on transferred examples (%)")
    fig.tight_layout()
    return _png(fig)


def draw_figures(summary: dict) -> dict[str, bytes]:
    """Every figure of the report as PNG bytes, by name; the example grids as the bundles hold them."""
    drawn = {}
    for name, plot in (
        ("curves", plot_curves),
        ("pareto", plot_pareto),
        ("transfer", plot_transfer),
        ("corruptions", plot_corruptions),
    ):
        data = plot(summary)
        if data is not None:
            drawn[name] = data
    for grid in summary["grids"]:
        drawn[f"grid-{grid['model']}"] = Path(grid["file"]).read_bytes()
    return drawn
