"""The words around the report's tables and figures: captions, the threat model's and
reproducibility's facts, the commands that made it, the banners. Made once for both the
HTML template and the Markdown renderer."""

from __future__ import annotations

from typing import Any

from nasbench.formatting import eps_text
from nasbench.report.numbers import MISSING

__all__ = ["captions", "texts"]


# The captions that say the same in every report.
CAPTIONS = {
    "models": "Clean and robust accuracy on the attacked test points; worst case = the share of points that "
    "every attack failed on (per example); (headline): the headline eps. Sanity checks: how many of "
    "the model's checks failed (see the checks section). Latency: one image, best of 20 runs on the "
    "device named in the reproducibility block.",
    "curves": "Robust accuracy (%) against the attack radius. The first panel is the per-example worst case over "
    'all attacks (the number to report); the others show each attack alone ("cascade" attacks: the '
    "ensemble up to them).",
    "curves_missing": "No eps-bounded attack was run.",
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
        f"headline eps: {head['norm']} {eps_text(head['eps']) if head['eps'] is not None else '–'} ({chosen})"
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
    where = f" at {grid['norm']} eps ≤ {eps_text(grid['eps'])}" if grid["eps"] is not None else ""
    return f"{grid['model']}: {len(attacks) or 'the'} examples{where}, {made_by} (the first attack that broke each)."


def _store_note(summary: dict) -> str:
    """What the Pareto plot's grey points are, or why there are none."""
    store = summary["pareto"].get("store")
    if not store:
        return ""
    if store.get("error"):
        return f" Benchmark store unreadable: {store['error']}."
    return (
        f" {len(store['rows'])} search results of {summary['dataset']} from {store['path']} in grey "
        "(their validation accuracy; robust accuracy where the store has the worst case at this eps)."
    )


def _transfer_caption(transfer: dict) -> str:
    return (
        f"Accuracy of each target model (column) on adversarial examples crafted on each source model (row) "
        f"with {transfer.get('attack_label')} at {transfer.get('norm')} eps {eps_text(transfer['eps'])} "
        f"({transfer.get('eps_choice')}), on {transfer.get('n')} points. The diagonal is white-box; high values "
        "off it mean the examples transfer poorly."
    )


def captions(summary: dict) -> dict[str, str]:
    """Figure captions and table notes."""
    by_key = {
        **CAPTIONS,
        "pareto": "Each evaluated model in its colour; models on the Pareto front of (clean accuracy, worst-case "
        "robust accuracy, parameters) are ringed in black: "
        f"{', '.join(summary['pareto']['front']) or 'none'}.{_store_note(summary)}",
    }
    if summary.get("transfer"):
        by_key["transfer"] = _transfer_caption(summary["transfer"])
    for grid in summary["grids"]:
        by_key[f"grid-{grid['model']}"] = _grid_caption(grid)
    return by_key


def _headline_text(summary: dict) -> str:
    head = summary["headline"]
    eps = eps_text(head["eps"]) if head["eps"] is not None else MISSING
    return f"per-example worst case over all attacks at {head['norm']} eps {eps} ({head['why']})"


def _failure_banner(summary: dict) -> str:
    return f"{len(summary['failed_checks'])} sanity check(s) FAILED: these robustness numbers may be overestimates"


def _collapse_banner(summary: dict) -> str:
    return (
        f"{len(summary.get('collapsed') or [])} model(s) whose training collapsed to chance: their numbers "
        "describe a failed training run, not the architecture"
    )


def texts(summary: dict) -> dict[str, Any]:
    """The words both renderers put around the tables and figures."""
    return {
        "captions": captions(summary),
        "threat_facts": _threat_facts(summary),
        "repro_facts": _reproducibility_facts(summary),
        "commands": _commands(summary),
        "headline": _headline_text(summary),
        "banner": _failure_banner(summary),
        "collapse_banner": _collapse_banner(summary),
    }
