"""Sanity checks on a robustness evaluation (Carlini et al. 2019, "On Evaluating Adversarial Robustness").

An evaluation that passes these is not proof of robustness, but one that fails
any of them is almost certainly too weak (gradient masking, a bug, too few
steps). Every check gives a verdict: ``passed=True``, ``False`` (shown, never
hidden) or ``None`` when the run holds nothing it could be judged on.

- ``monotone-in-eps``: robust accuracy does not rise with eps (section 5.3:
  a larger ball contains the smaller one).
- ``reaches-chance``: at a large eps accuracy falls to chance or below
  (section 5.3: "unbounded attacks should reach 100% success").
- ``iterative-beats-single-step``: iterative attacks do at least as well as a
  single step (section 5.2: otherwise the loss surface is masked).
- ``more-steps-no-worse``: more iterations do not raise robust accuracy
  (section 5.2: "verify that the attack has converged").
- ``black-box-not-better``: the black-box Square attack does not beat the
  white-box attacks; if it does, gradients are masked (section 5.4).
- ``unbounded-attacks-succeed``: unbounded CW / DeepFool reach about 100% success.

Verdicts are statistical tests, never raw differences: random-start attacks differ
by a few examples from run to run. Two attacks compared on the same points are
judged by their per-example outcomes with the exact one-sided McNemar test (a
binomial test on the points where exactly one of them succeeded); a rate compared
with a fixed bound (chance, 95% success, a 10% share) by an exact one-sided
binomial test. A check fails only when its p-value, Bonferroni-adjusted for the
number of comparisons it made, is below ``ALPHA``; its counts and p-value are kept
with the verdict (``CheckResult.counts``, ``CheckResult.p_value``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from attacks.results import CheckResult, RobustnessReport

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["ALPHA", "Comparison", "compare", "run_checks", "UNBOUNDED_SUCCESS"]

# A verdict of FAIL needs p below this: one evaluation in a thousand of a sound model
# may be flagged by chance, while the failures the checks exist for give p < 1e-10.
ALPHA = 0.001
# "About 100%": DeepFool and CW need a handful of points of slack on real data.
UNBOUNDED_SUCCESS = 0.95
# A black-box attack breaking more than this share of the points that withstood
# every white-box attack is a sign of gradient masking.
BLACK_BOX_SHARE = 0.10
ITERATIVE = ("bim", "pgd", "mifgsm", "pgdl2", "apgd", "apgd-t")


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def format_p(p: float | None) -> str:
    """A p-value as people read it: 0.42, 0.0031, 2e-07."""
    if p is None:
        return "-"
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.0e}"


def _adjusted(p: float, comparisons: int) -> float:
    """Bonferroni: the check's p-value over all the comparisons it made."""
    return min(1.0, p * max(comparisons, 1))


def _binomial_greater(k: int, n: int, rate: float) -> float:
    """P(X >= k) for X ~ Binomial(n, rate): is the observed share significantly above ``rate``?"""
    from scipy.stats import binomtest  # imported here: scipy.stats costs a second to import

    if n == 0 or k == 0 or rate >= 1:
        return 1.0
    return float(binomtest(k, n, min(max(rate, 0.0), 1.0), alternative="greater").pvalue)


# --------------------------------------------------------------------------- paired comparisons


@dataclass
class Comparison:
    """Two attacks (or eps values) on the same points: ``strong`` is expected to leave at
    most as many points robust as ``weak``.

    ``only_strong``: points robust under ``strong`` but broken by ``weak`` (evidence
    against the expectation); ``only_weak`` the reverse. ``p_value`` is the exact
    one-sided McNemar test of "strong is no stronger than weak": the chance of at least
    ``only_strong`` of the ``only_strong + only_weak`` discordant points going against
    the expectation if each went either way with probability 1/2.
    """

    strong: str
    weak: str
    where: str
    n: int
    strong_robust: int
    weak_robust: int
    only_strong: int
    only_weak: int
    p_value: float

    def counts(self) -> dict[str, int]:
        return {
            "points": self.n,
            f"robust under {self.strong}": self.strong_robust,
            f"robust under {self.weak}": self.weak_robust,
            f"robust only under {self.strong}": self.only_strong,
            f"robust only under {self.weak}": self.only_weak,
        }

    def text(self) -> str:
        return (
            f"{self.strong} {self.strong_robust} vs {self.weak} {self.weak_robust} of {self.n} robust "
            f"{self.where} ({self.only_strong} only under {self.strong}, {self.only_weak} only under {self.weak})"
        )


def compare(strong: str, strong_robust: torch.Tensor, weak: str, weak_robust: torch.Tensor, where: str) -> Comparison:
    """Compare two per-example robust masks over the same points (exact one-sided McNemar)."""
    only_strong = int((strong_robust & ~weak_robust).sum())
    only_weak = int((weak_robust & ~strong_robust).sum())
    p = _binomial_greater(only_strong, only_strong + only_weak, 0.5)
    return Comparison(
        strong,
        weak,
        where,
        len(strong_robust),
        int(strong_robust.sum()),
        int(weak_robust.sum()),
        only_strong,
        only_weak,
        float(p),
    )


def _verdict(name: str, comparisons: list[Comparison], failure: str, success: str) -> CheckResult:
    """FAIL when the most surprising comparison is significant after Bonferroni; the counts
    shown are that comparison's (the closest call when the check passes)."""
    worst = min(comparisons, key=lambda c: (c.p_value, c.only_weak - c.only_strong))
    p = _adjusted(worst.p_value, len(comparisons))
    test = f"McNemar p = {format_p(p)}" + (f", {len(comparisons)} comparisons" if len(comparisons) > 1 else "")
    if p < ALPHA:
        return CheckResult(name, False, f"{worst.text()}: {failure} ({test})", p, worst.counts())
    if worst.only_strong == 0 and len(comparisons) > 1:  # nothing against it anywhere: no closest call
        return CheckResult(
            name,
            True,
            f"{success}: no point went against it ({test})",
            p,
            {"comparisons": len(comparisons), "points against": 0},
        )
    closest = "closest: " if len(comparisons) > 1 else ""
    return CheckResult(name, True, f"{success}; {closest}{worst.text()} ({test})", p, worst.counts())


# --------------------------------------------------------------------------- the checks


def run_checks(report: RobustnessReport) -> list[CheckResult]:
    """Run every check on ``report`` (also done inside ``evaluate``)."""
    return [
        check_monotone(report),
        check_reaches_chance(report),
        check_iterative_beats_single_step(report),
        check_more_steps(report),
        check_black_box(report),
        check_unbounded(report),
    ]


def check_monotone(report: RobustnessReport) -> CheckResult:
    name = "monotone-in-eps"
    series: dict[str, list[tuple[float, torch.Tensor | None]]] = {}
    for w in report.worst_case:
        series.setdefault(f"worst case ({w.norm})", []).append((w.eps, w.robust))
    for r in report.results:
        if r.scope == "all" and r.kind not in ("min-norm", "noise"):
            series.setdefault(f"{r.attack} ({r.norm})", []).append((r.eps, r.robust))
    if not any(len(points) > 1 for points in series.values()):
        return CheckResult(name, None, "fewer than two eps values: nothing to compare")
    comparisons = []
    for label, points in series.items():
        points.sort(key=lambda point: point[0])
        for (e0, m0), (e1, m1) in zip(points, points[1:], strict=False):
            if m0 is not None and m1 is not None:
                comparisons.append(compare(f"eps {e1:.4g}", m1, f"eps {e0:.4g}", m0, f"for {label}"))
    if not comparisons:
        return CheckResult(name, None, "no per-example outcomes to compare")
    return _verdict(
        name,
        comparisons,
        "robust accuracy rises with eps",
        f"robust accuracy never significantly rises with eps ({len(series)} curves)",
    )


def check_reaches_chance(report: RobustnessReport) -> CheckResult:
    """Robust accuracy at the largest eps is tested against chance: FAIL when every such
    measurement is significantly above it (one-sided exact binomial test)."""
    name = "reaches-chance"
    chance = 1.0 / max(report.n_classes, 1)
    seen = []  # (p, robust, points, where)
    for norm in dict.fromkeys(w.norm for w in report.worst_case):
        top = max((w for w in report.worst_case if w.norm == norm), key=lambda w: w.eps)
        seen.append(
            (
                _binomial_greater(top.n_robust, report.n, chance),
                top.n_robust,
                report.n,
                f"{norm} eps {top.eps:.4g} (sweep)",
            )
        )
    probe = report.probes.get("large_eps") if report.probes else None
    if probe:
        n_probe = report.probes.get("n", 1)
        k = probe.get("n_robust", round(probe["robust"] * n_probe))
        # The probe runs on clean-correct points: chance over the whole set is chance / clean accuracy there.
        bound = chance / report.clean_accuracy if report.clean_accuracy > 0 else 1.0
        seen.append(
            (
                _binomial_greater(k, n_probe, bound),
                k,
                n_probe,
                f"{report.probes['norm']} eps {probe['eps']:.4g} ({probe['attack']} probe on clean-correct "
                f"points, {_pct(probe['robust'] * report.clean_accuracy)} of all)",
            )
        )
    if not seen:
        return CheckResult(name, None, "no eps-bounded attack was run")
    p, k, n, where = max(seen, key=lambda item: item[0])  # the measurement most consistent with chance
    counts = {"points": n, "robust": k}
    test = f"binomial p = {format_p(p)} against chance {_pct(chance)}"
    if p >= ALPHA:
        return CheckResult(name, True, f"{k} of {n} robust at {where}: not above chance ({test})", p, counts)
    return CheckResult(
        name,
        False,
        f"{k} of {n} robust at {where}, above chance ({test}): the attack may be "
        "blocked (gradient masking) or too weak",
        p,
        counts,
    )


def check_iterative_beats_single_step(report: RobustnessReport) -> CheckResult:
    name = "iterative-beats-single-step"
    comparisons = []
    for r in report.results:
        if r.name != "fgsm" or r.eps == 0 or r.robust is None:
            continue
        for o in report.results:
            if (
                o.name in ITERATIVE
                and o.scope == "all"
                and o.norm == r.norm
                and o.eps == r.eps
                and o.robust is not None
            ):
                comparisons.append(compare(o.attack, o.robust, r.attack, r.robust, f"at eps {r.eps:.4g}"))
    probes = report.probes or {}
    masks = report.probe_robust
    if "single_step" in probes and "single_step" in masks and "iterative" in masks:
        comparisons.append(
            compare(
                probes["iterative"]["attack"],
                masks["iterative"],
                probes["single_step"]["attack"],
                masks["single_step"],
                f"at eps {probes['eps']:.4g} (probe)",
            )
        )
    if not comparisons:
        return CheckResult(name, None, "no single-step / iterative pair to compare")
    return _verdict(
        name,
        comparisons,
        "the iterative attack is weaker than a single step",
        "iterative attacks at least as strong as single-step",
    )


def check_more_steps(report: RobustnessReport) -> CheckResult:
    name = "more-steps-no-worse"
    probes = report.probes or {}
    masks = report.probe_robust
    if "more_steps" not in probes:
        return CheckResult(name, None, "no iterative probe was run (no eps > 0 in the sweep)")
    if "more_steps" not in masks or "iterative" not in masks:
        return CheckResult(name, None, "no per-example outcomes of the probe to compare")
    comparison = compare(
        probes["more_steps"]["attack"],
        masks["more_steps"],
        probes["iterative"]["attack"],
        masks["iterative"],
        f"at eps {probes['eps']:.4g}",
    )
    return _verdict(name, [comparison], "more steps made the attack weaker", "more steps are no weaker")


def check_black_box(report: RobustnessReport) -> CheckResult:
    """Square runs after the white-box attacks, on the points they all failed on, so the
    two sets it is judged by are disjoint: ``extra`` points only Square broke, and the
    points the white-box attacks broke (at most that many only they broke). Two tests,
    Bonferroni-adjusted: Square broke more points than the white-box attacks (McNemar,
    conservative), and Square broke more than 10% of the white-box survivors (binomial)."""
    name = "black-box-not-better"
    white_box = {r.attack for r in report.results if r.kind == "gradient"}
    squares = [r for r in report.results if r.name == "square" and r.eps > 0]
    if not squares:
        return CheckResult(name, None, "Square was not run")
    if not white_box:
        return CheckResult(name, None, "no white-box attack to compare Square with")
    tests = []  # (p, square result, white-box broken)
    for r in squares:
        worst = next((w for w in report.worst_case if w.norm == r.norm and w.eps == r.eps), None)
        white_broken = sum(v for k, v in (worst.broken_by if worst else {}).items() if k in white_box)
        extra = r.n_broken
        more_than_white = _binomial_greater(extra, extra + white_broken, 0.5)
        large_share = _binomial_greater(extra, r.n_attacked, BLACK_BOX_SHARE)
        tests.append((min(more_than_white, large_share), r, white_broken))
    p_min, r, white_broken = min(tests, key=lambda t: (t[0], -t[1].n_broken))
    p = _adjusted(p_min, 2 * len(tests))
    counts = {
        "points Square ran on": r.n_attacked,
        "broken only by Square": r.n_broken,
        "broken by white-box attacks": white_broken,
    }
    test = f"binomial p = {format_p(p)}, {2 * len(tests)} tests"
    found = (
        f"{r.attack} broke {r.n_broken} of the {r.n_attacked} points still standing after the white-box "
        f"attacks at eps {r.eps:.4g} (they broke {white_broken})"
    )
    if p < ALPHA:
        return CheckResult(name, False, f"{found}, significantly more ({test}): gradient masking suspected", p, counts)
    return CheckResult(
        name, True, f"Square found little the white-box attacks missed; closest: {found} ({test})", p, counts
    )


def check_unbounded(report: RobustnessReport) -> CheckResult:
    """Unbounded CW / DeepFool: FAIL when the success rate is significantly below 95%
    (one-sided exact binomial test)."""
    name = "unbounded-attacks-succeed"
    rows = [r for r in report.results if r.kind == "min-norm" and r.eps == float("inf")]
    if not rows:
        return CheckResult(name, None, "no unbounded CW / DeepFool run")
    detail = ", ".join(
        f"{r.attack} {r.n_broken}/{r.n_attacked} (median L2 {r.median_l2:.3g})"
        if r.median_l2 is not None
        else f"{r.attack} {r.n_broken}/{r.n_attacked}"
        for r in rows
    )
    # P(at most this many successes) if the true rate were 95%: the same test, counting failures.
    tests = [(_binomial_greater(r.n_attacked - r.n_broken, r.n_attacked, 1 - UNBOUNDED_SUCCESS), r) for r in rows]
    p_min, r = min(tests, key=lambda t: t[0])
    p = _adjusted(p_min, len(tests))
    counts = {"points": r.n_attacked, "broken": r.n_broken}
    test = f"binomial p = {format_p(p)} against {_pct(UNBOUNDED_SUCCESS)}"
    if p < ALPHA:
        return CheckResult(name, False, f"success below {_pct(UNBOUNDED_SUCCESS)}: {detail} ({test})", p, counts)
    return CheckResult(name, True, f"{detail} ({test})", p, counts)
