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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from attacks.engine import RobustnessReport

__all__ = ["CheckResult", "run_checks", "UNBOUNDED_SUCCESS"]

# "About 100%": DeepFool and CW need a handful of points of slack on real data.
UNBOUNDED_SUCCESS = 0.95
# A black-box attack breaking more than this share of the points that withstood
# every white-box attack is a sign of gradient masking.
BLACK_BOX_SHARE = 0.10
ITERATIVE = ("bim", "pgd", "mifgsm", "pgdl2", "apgd", "apgd-t")


@dataclass
class CheckResult:
    """One sanity check: its name, verdict (``None``: not applicable) and a one-line detail."""

    name: str
    passed: bool | None
    detail: str

    def __str__(self) -> str:
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[self.passed]
        return f"[{verdict}] {self.name}: {self.detail}"


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def run_checks(report: "RobustnessReport") -> list[CheckResult]:
    """Run every check on ``report`` (also done inside ``evaluate``)."""
    return [
        check_monotone(report),
        check_reaches_chance(report),
        check_iterative_beats_single_step(report),
        check_more_steps(report),
        check_black_box(report),
        check_unbounded(report),
    ]


def check_monotone(report) -> CheckResult:
    name = "monotone-in-eps"
    slack = 1e-12
    series: dict[str, list[tuple[float, float]]] = {}
    for w in report.worst_case:
        series.setdefault(f"worst case ({w.norm})", []).append((w.eps, w.robust_accuracy))
    for r in report.results:
        if r.scope == "all" and r.kind not in ("min-norm", "noise"):
            series.setdefault(f"{r.attack} ({r.norm})", []).append((r.eps, r.robust_accuracy))
    if not any(len(points) > 1 for points in series.values()):
        return CheckResult(name, None, "fewer than two eps values: nothing to compare")
    for label, points in series.items():
        points.sort()
        for (e0, a0), (e1, a1) in zip(points, points[1:]):
            if a1 > a0 + slack:
                return CheckResult(name, False, f"{label} rises from {_pct(a0)} at eps {e0:.4g} "
                                                f"to {_pct(a1)} at eps {e1:.4g}")
    return CheckResult(name, True, f"robust accuracy never rises with eps ({len(series)} curves)")


def check_reaches_chance(report) -> CheckResult:
    name = "reaches-chance"
    chance = 1.0 / max(report.n_classes, 1)
    seen = []
    for norm in dict.fromkeys(w.norm for w in report.worst_case):
        top = max((w for w in report.worst_case if w.norm == norm), key=lambda w: w.eps)
        seen.append((top.robust_accuracy, f"{norm} eps {top.eps:.4g} (sweep)"))
    probe = report.probes.get("large_eps") if report.probes else None
    if probe:
        n_probe = report.probes.get("n", 1)
        # The probe runs on clean-correct points: scale to the whole set.
        estimate = probe["robust"] * report.clean_accuracy
        seen.append((max(estimate - 1.0 / n_probe, 0.0),
                     f"{report.probes['norm']} eps {probe['eps']:.4g} ({probe['attack']} probe, "
                     f"{_pct(estimate)})"))
    if not seen:
        return CheckResult(name, None, "no eps-bounded attack was run")
    best = min(seen, key=lambda item: item[0])
    if best[0] <= chance + 1e-12:
        return CheckResult(name, True, f"robust accuracy {_pct(best[0])} <= chance {_pct(chance)} at {best[1]}")
    return CheckResult(name, False, f"robust accuracy stays at {_pct(best[0])} > chance {_pct(chance)} even at "
                                    f"{best[1]}: the attack may be blocked (gradient masking) or too weak")


def check_iterative_beats_single_step(report) -> CheckResult:
    name = "iterative-beats-single-step"
    one_point = 1.0 / max(report.n, 1)
    compared = 0
    for r in report.results:
        if r.name != "fgsm" or r.eps == 0:
            continue
        rivals = [o for o in report.results if o.name in ITERATIVE and o.norm == r.norm and o.eps == r.eps]
        if not rivals:
            continue
        compared += 1
        best = min(rivals, key=lambda o: o.robust_accuracy)
        if best.scope == "all" and best.robust_accuracy > r.robust_accuracy + one_point:
            return CheckResult(name, False, f"{best.attack} leaves {_pct(best.robust_accuracy)} robust, more than "
                                            f"fgsm's {_pct(r.robust_accuracy)} at eps {r.eps:.4g}")
    probes = report.probes or {}
    if "single_step" in probes:
        compared += 1
        single, iterative = probes["single_step"], probes["iterative"]
        if iterative["robust"] > single["robust"] + 1.0 / probes["n"]:
            return CheckResult(name, False, f"{iterative['attack']} leaves {_pct(iterative['robust'])} robust, more "
                                            f"than {single['attack']}'s {_pct(single['robust'])} at eps "
                                            f"{probes['eps']:.4g} (probe)")
    if not compared:
        return CheckResult(name, None, "no single-step / iterative pair to compare")
    detail = f"iterative attacks at least as strong as single-step ({compared} comparisons)"
    if "single_step" in probes:
        detail += (f"; probe at eps {probes['eps']:.4g}: {probes['single_step']['attack']} "
                   f"{_pct(probes['single_step']['robust'])} vs {probes['iterative']['attack']} "
                   f"{_pct(probes['iterative']['robust'])}")
    return CheckResult(name, True, detail)


def check_more_steps(report) -> CheckResult:
    name = "more-steps-no-worse"
    probes = report.probes or {}
    if "more_steps" not in probes:
        return CheckResult(name, None, "no iterative probe was run (no eps > 0 in the sweep)")
    few, many = probes["iterative"], probes["more_steps"]
    detail = (f"{few['attack']} {_pct(few['robust'])} vs {many['attack']} {_pct(many['robust'])} robust at eps "
              f"{probes['eps']:.4g} on {probes['n']} points")
    if many["robust"] > few["robust"] + 1.0 / probes["n"]:
        return CheckResult(name, False, detail + ": more steps made the attack weaker")
    return CheckResult(name, True, detail)


def check_black_box(report) -> CheckResult:
    name = "black-box-not-better"
    white_box = {r.attack for r in report.results if r.kind == "gradient"}
    squares = [r for r in report.results if r.name == "square" and r.eps > 0]
    if not squares:
        return CheckResult(name, None, "Square was not run")
    if not white_box:
        return CheckResult(name, None, "no white-box attack to compare Square with")
    for r in squares:
        worst = next((w for w in report.worst_case if w.norm == r.norm and w.eps == r.eps), None)
        white_broken = sum(v for k, v in (worst.broken_by if worst else {}).items() if k in white_box)
        extra = r.n_broken
        if extra > white_broken or (extra >= 3 and extra > BLACK_BOX_SHARE * r.n_attacked):
            return CheckResult(name, False, f"{r.attack} broke {extra} of the {r.n_attacked} points every white-box "
                                            f"attack failed on at eps {r.eps:.4g} (white-box broke {white_broken}): "
                                            f"gradient masking suspected")
    return CheckResult(name, True, "Square found little the white-box attacks missed: "
                                   + ", ".join(f"{r.n_broken}/{r.n_attacked} at eps {r.eps:.4g}" for r in squares))


def check_unbounded(report) -> CheckResult:
    name = "unbounded-attacks-succeed"
    rows = [r for r in report.results if r.kind == "min-norm" and r.eps == float("inf")]
    if not rows:
        return CheckResult(name, None, "no unbounded CW / DeepFool run")
    detail = ", ".join(f"{r.attack} {_pct(r.success_rate)} (median L2 {r.median_l2:.3g})"
                       if r.median_l2 is not None else f"{r.attack} {_pct(r.success_rate)}" for r in rows)
    failed = [r for r in rows if r.success_rate < UNBOUNDED_SUCCESS]
    if failed:
        return CheckResult(name, False, f"success below {_pct(UNBOUNDED_SUCCESS)}: {detail}")
    return CheckResult(name, True, detail)
