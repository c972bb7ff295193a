"""Sanity checks (Carlini et al. 2019): each one passes on a sound evaluation and fails on a broken one."""

import torch
import torch.nn as nn

from attack_fixtures import one_thread, trained_cnn, digits  # noqa: F401
from attacks import AttackResult, RobustnessReport, WorstCase, evaluate, run_checks


def result(attack, eps, robust, *, name=None, scope="all", kind="gradient", n_attacked=100, n_broken=0,
           success=0.0, norm="Linf"):
    return AttackResult(attack=attack, name=name or attack.split("-")[0], norm=norm, eps=eps,
                        robust_accuracy=robust, success_rate=success, n_attacked=n_attacked, n_broken=n_broken,
                        mean_l2=None, median_l2=None, mean_linf=None, median_linf=None, seconds=0.0,
                        seconds_per_example=0.0, scope=scope, kind=kind)


def report(results, worst, probes=None, n=100):
    return RobustnessReport(n=n, n_classes=10, clean_accuracy=0.98, targeted=False, threat_model={},
                            results=results, worst_case=worst, probes=probes or {})


def verdicts(r):
    return {c.name: c.passed for c in run_checks(r)}


SOUND = dict(
    results=[result("fgsm", 0.1, 0.60), result("pgd-10", 0.1, 0.40), result("fgsm", 0.3, 0.20),
             result("pgd-10", 0.3, 0.0)],
    worst=[WorstCase("Linf", 0.1, 0.40, 40, {"pgd-10": 58}), WorstCase("Linf", 0.3, 0.0, 0, {"pgd-10": 98})],
    probes={"norm": "Linf", "n": 100, "eps": 0.1, "single_step": {"attack": "fgsm", "robust": 0.61},
            "iterative": {"attack": "pgd-10", "robust": 0.41}, "more_steps": {"attack": "pgd-40", "robust": 0.38},
            "large_eps": {"attack": "pgd-20", "eps": 0.5, "robust": 0.0}},
)


def test_a_sound_evaluation_passes_every_applicable_check():
    v = verdicts(report(SOUND["results"], SOUND["worst"], SOUND["probes"]))
    assert v == {"monotone-in-eps": True, "reaches-chance": True, "iterative-beats-single-step": True,
                 "more-steps-no-worse": True, "black-box-not-better": None, "unbounded-attacks-succeed": None}


def test_rising_robust_accuracy_fails_monotonicity():
    results = SOUND["results"][:3] + [result("pgd-10", 0.3, 0.45)]
    checks = run_checks(report(results, SOUND["worst"], SOUND["probes"]))
    failed = {c.name: c for c in checks if c.passed is False}
    # pgd-10 at 45% is also weaker than fgsm's 20%: both failures are shown.
    assert set(failed) == {"monotone-in-eps", "iterative-beats-single-step"}
    assert "pgd-10" in failed["monotone-in-eps"].detail and "45.0%" in failed["monotone-in-eps"].detail


def test_robustness_that_never_reaches_chance_fails():
    probes = dict(SOUND["probes"], large_eps={"attack": "pgd-20", "eps": 0.5, "robust": 0.7})
    worst = [WorstCase("Linf", 0.1, 0.60, 60), WorstCase("Linf", 0.3, 0.55, 55)]
    assert verdicts(report(SOUND["results"][:3] + [result("pgd-10", 0.3, 0.1)], worst, probes))["reaches-chance"] \
        is False


def test_single_step_beating_iterative_and_more_steps_hurting_fail():
    results = [result("fgsm", 0.1, 0.30), result("pgd-10", 0.1, 0.50)]
    probes = dict(SOUND["probes"], more_steps={"attack": "pgd-40", "robust": 0.60})
    v = verdicts(report(results, SOUND["worst"], probes))
    assert v["iterative-beats-single-step"] is False and v["more-steps-no-worse"] is False


def test_square_beating_white_box_flags_gradient_masking():
    results = SOUND["results"] + [result("square-5000q", 0.1, 0.05, name="square", scope="cascade",
                                         kind="black-box", n_attacked=40, n_broken=35)]
    worst = [WorstCase("Linf", 0.1, 0.05, 5, {"pgd-10": 20, "square-5000q": 35}), SOUND["worst"][1]]
    checks = {c.name: c for c in run_checks(report(results, worst, SOUND["probes"]))}
    assert checks["black-box-not-better"].passed is False
    assert "gradient masking" in checks["black-box-not-better"].detail
    results[-1] = result("square-5000q", 0.1, 0.39, name="square", scope="cascade", kind="black-box",
                         n_attacked=40, n_broken=1)
    assert verdicts(report(results, SOUND["worst"], SOUND["probes"]))["black-box-not-better"] is True


def test_weak_unbounded_attack_fails():
    weak = result("cw", float("inf"), 0.3, kind="min-norm", success=0.7)
    assert verdicts(report(SOUND["results"] + [weak], SOUND["worst"]))["unbounded-attacks-succeed"] is False
    strong = result("deepfool", float("inf"), 0.0, kind="min-norm", success=1.0)
    assert verdicts(report(SOUND["results"] + [strong], SOUND["worst"]))["unbounded-attacks-succeed"] is True


class QuantisedInput(nn.Module):
    """Rounds inputs to 17 grey levels before the model: a classic gradient-masking defence.

    The rounding has zero gradient almost everywhere, so FGSM sees nothing, while the
    black-box Square attack, which only needs scores, walks straight through it.
    """

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(torch.round(x * 16) / 16)


def test_a_gradient_masked_model_is_caught_on_real_attacks(trained_cnn, digits):
    x, y = digits[0][:20], digits[1][:20]
    masked = QuantisedInput(trained_cnn).eval()
    r = evaluate(masked, x, y, "fgsm,square:queries=150", [0.25], batch_size=64)
    fgsm, square = r.result("fgsm", 0.25), r.result("square", 0.25)
    assert fgsm.n_broken == 0  # zero gradients: FGSM cannot move
    assert square.n_broken >= 5
    checks = {c.name: c for c in r.checks}
    assert checks["black-box-not-better"].passed is False
    # The same evaluation on the unmasked model finds nothing suspicious.
    clean = evaluate(trained_cnn, x, y, "fgsm,square:queries=150", [0.25], batch_size=64)
    assert {c.name: c.passed for c in clean.checks}["black-box-not-better"] is not False
