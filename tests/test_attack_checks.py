"""Sanity checks (Carlini et al. 2019): each one passes on a sound evaluation and fails on a broken one.

Verdicts come from exact one-sided tests on per-example outcomes, so a difference of a
few examples (random starts) never fails a check, while the failures the checks exist
for (a one-step "iterative" attack, a gradient-masking model) do, on real attacks.
"""

import json
import re

import pytest
import torch
import torch.nn as nn
from attack_fixtures import load_digits_tensors, train_cnn

from attacks import AttackResult, RobustnessReport, WorstCase, evaluate, run_checks
from attacks.checks import ALPHA, compare

# tiny models run fastest on one thread, and the runs stay comparable on a loaded machine
pytestmark = pytest.mark.usefixtures("one_thread")

N = 100


def first(k: int, n: int = N, start: int = 0) -> torch.Tensor:
    """A per-example robust mask: points start .. start+k-1 robust."""
    mask = torch.zeros(n, dtype=torch.bool)
    mask[start : start + k] = True
    return mask


def result(
    attack,
    eps,
    robust,
    *,
    name=None,
    scope="all",
    kind="gradient",
    n_attacked=100,
    n_broken=0,
    success=0.0,
    norm="Linf",
    mask=None,
):
    return AttackResult(
        attack=attack,
        name=name or attack.split("-")[0],
        norm=norm,
        eps=eps,
        robust_accuracy=robust,
        success_rate=success,
        n_attacked=n_attacked,
        n_broken=n_broken,
        mean_l2=None,
        median_l2=None,
        mean_linf=None,
        median_linf=None,
        seconds=0.0,
        seconds_per_example=0.0,
        scope=scope,
        kind=kind,
        robust=mask if mask is not None else first(round(robust * N)),
    )


def worst_case(eps, robust, broken_by=None):
    k = round(robust * N)
    return WorstCase("Linf", eps, robust, k, broken_by or {}, robust=first(k))


def probe(attack, k, n=N):
    return {"attack": attack, "robust": k / n, "n_robust": k}


def report(results, worst, probes=None, probe_robust=None, n=N):
    return RobustnessReport(
        n=n,
        n_classes=10,
        clean_accuracy=0.98,
        targeted=False,
        threat_model={},
        results=results,
        worst_case=worst,
        probes=probes or {},
        probe_robust=probe_robust or {},
    )


def verdicts(r):
    return {c.name: c.passed for c in run_checks(r)}


def sound_probes(**changes):
    """Probes of a sound evaluation on 100 points at eps 0.1; ``changes``: role -> robust mask."""
    masks = {"single_step": first(61), "iterative": first(41), "more_steps": first(38), "large_eps": first(0)}
    masks.update(changes)
    probes = {
        "norm": "Linf",
        "n": N,
        "eps": 0.1,
        "single_step": probe("fgsm", int(masks["single_step"].sum())),
        "iterative": probe("pgd-10", int(masks["iterative"].sum())),
        "more_steps": probe("pgd-40", int(masks["more_steps"].sum())),
        "large_eps": {**probe("pgd-20", int(masks["large_eps"].sum())), "eps": 0.5},
    }
    return probes, masks


SOUND_RESULTS = [
    result("fgsm", 0.1, 0.60),
    result("pgd-10", 0.1, 0.40),
    result("fgsm", 0.3, 0.20),
    result("pgd-10", 0.3, 0.0),
]
SOUND_WORST = [worst_case(0.1, 0.40, {"pgd-10": 58}), worst_case(0.3, 0.0, {"pgd-10": 98})]


def test_a_sound_evaluation_passes_every_applicable_check():
    checks = run_checks(report(SOUND_RESULTS, SOUND_WORST, *sound_probes()))
    assert {c.name: c.passed for c in checks} == {
        "monotone-in-eps": True,
        "reaches-chance": True,
        "iterative-beats-single-step": True,
        "more-steps-no-worse": True,
        "black-box-not-better": None,
        "unbounded-attacks-succeed": None,
    }
    for c in checks:
        if c.passed is not None:  # every verdict carries its test: a p-value and the counts behind it
            assert 0 <= c.p_value <= 1 and c.counts and "p = " in c.detail


def test_the_p_value_is_the_exact_one_sided_mcnemar_test():
    # 8 points robust only under the stronger attack, 2 only under the weaker: P(X >= 8), X ~ Bin(10, 1/2).
    strong, weak = first(50), first(42) | first(2, start=50)
    c = compare("pgd-40", strong, "pgd-10", weak, "at eps 0.1")
    assert (c.only_strong, c.only_weak) == (8, 2)
    assert c.p_value == pytest.approx((45 + 10 + 1) / 1024)
    # The threshold: 10 of 10 discordant points against the expectation fail (p = 1/1024), 9 of 9 do not.
    ten, nine = compare("a", first(10), "b", first(0), "").p_value, compare("a", first(9), "b", first(0), "").p_value
    assert ten == pytest.approx(1 / 1024) and ten < ALPHA
    assert nine == pytest.approx(1 / 512) and nine > ALPHA
    assert compare("a", first(3), "b", first(7), "").p_value == 1.0


def test_one_example_either_way_never_fails_more_steps():
    """The false alarm of a default sweep: pgd-10 45.4% vs pgd-40 45.9% robust on 194 points
    (88 vs 89), one example that random starts easily move."""
    n = 194
    few = first(88, n)
    many = first(83, n) | first(6, n, start=100)  # 6 robust only under pgd-40, 5 only under pgd-10
    probes = {
        "norm": "Linf",
        "n": n,
        "eps": 0.1,
        "iterative": probe("pgd-10", 88, n),
        "more_steps": probe("pgd-40", 89, n),
    }
    checks = {c.name: c for c in run_checks(report([], [], probes, {"iterative": few, "more_steps": many}))}
    more = checks["more-steps-no-worse"]
    assert more.passed is True
    assert more.counts == {
        "points": 194,
        "robust under pgd-40": 89,
        "robust under pgd-10": 88,
        "robust only under pgd-40": 6,
        "robust only under pgd-10": 5,
    }
    assert "pgd-40 89 vs pgd-10 88 of 194" in more.detail and "p = 0.5" in more.detail
    # 15 points that only the longer attack fails on, none the other way: more steps really hurt.
    many = few | first(15, n, start=100)
    probes["more_steps"] = probe("pgd-40", 103, n)
    more = {c.name: c for c in run_checks(report([], [], probes, {"iterative": few, "more_steps": many}))}[
        "more-steps-no-worse"
    ]
    assert more.passed is False and more.p_value == pytest.approx(0.5**15)
    assert "15 only under pgd-40, 0 only under pgd-10" in more.detail


def test_rising_robust_accuracy_fails_monotonicity():
    results = SOUND_RESULTS[:3] + [result("pgd-10", 0.3, 0.65)]
    checks = run_checks(report(results, SOUND_WORST, *sound_probes()))
    failed = {c.name: c for c in checks if c.passed is False}
    # pgd-10 at 65% is also weaker than fgsm's 20%: both failures are shown.
    assert set(failed) == {"monotone-in-eps", "iterative-beats-single-step"}
    monotone = failed["monotone-in-eps"]
    assert "pgd-10" in monotone.detail and "eps 0.3 65 vs eps 0.1 40 of 100" in monotone.detail
    assert monotone.counts["robust only under eps 0.3"] == 25 and monotone.p_value < ALPHA
    # Five points up is within what random starts do: no verdict of FAIL on that.
    results[-1] = result("pgd-10", 0.3, 0.45)
    assert verdicts(report(results, SOUND_WORST, *sound_probes()))["monotone-in-eps"] is True


def test_robustness_that_never_reaches_chance_fails():
    probes, masks = sound_probes(large_eps=first(70))
    worst = [worst_case(0.1, 0.60), worst_case(0.3, 0.55)]
    checks = {
        c.name: c for c in run_checks(report(SOUND_RESULTS[:3] + [result("pgd-10", 0.3, 0.1)], worst, probes, masks))
    }
    assert checks["reaches-chance"].passed is False and checks["reaches-chance"].p_value < ALPHA
    # 12 of 100 points is chance (10%) plus noise: passes.
    probes, masks = sound_probes(large_eps=first(12))
    worst = [worst_case(0.1, 0.60), worst_case(0.3, 0.12)]
    assert verdicts(report(SOUND_RESULTS, worst, probes, masks))["reaches-chance"] is True


def test_single_step_beating_iterative_and_more_steps_hurting_fail():
    results = [result("fgsm", 0.1, 0.30), result("pgd-10", 0.1, 0.50)]
    v = verdicts(report(results, SOUND_WORST, *sound_probes(more_steps=first(60))))
    assert v["iterative-beats-single-step"] is False and v["more-steps-no-worse"] is False
    # The probe alone is enough evidence too.
    v = verdicts(report(SOUND_RESULTS, SOUND_WORST, *sound_probes(iterative=first(80))))
    assert v["iterative-beats-single-step"] is False


def square(eps, n_attacked, n_broken, robust):
    return result(
        "square-5000q",
        eps,
        robust,
        name="square",
        scope="cascade",
        kind="black-box",
        n_attacked=n_attacked,
        n_broken=n_broken,
    )


def test_square_beating_white_box_flags_gradient_masking():
    results = SOUND_RESULTS + [square(0.1, 40, 35, 0.05)]
    worst = [worst_case(0.1, 0.05, {"pgd-10": 20, "square-5000q": 35}), SOUND_WORST[1]]
    checks = {c.name: c for c in run_checks(report(results, worst, *sound_probes()))}
    black_box = checks["black-box-not-better"]
    assert black_box.passed is False and "gradient masking" in black_box.detail
    assert black_box.counts == {
        "points Square ran on": 40,
        "broken only by Square": 35,
        "broken by white-box attacks": 20,
    }
    results[-1] = square(0.1, 40, 1, 0.39)
    assert verdicts(report(results, SOUND_WORST, *sound_probes()))["black-box-not-better"] is True
    # One point Square found where the white-box attacks found none is no evidence of masking.
    results[-1] = square(0.1, 98, 1, 0.97)
    worst = [worst_case(0.1, 0.97, {"square-5000q": 1}), SOUND_WORST[1]]
    assert verdicts(report(results, worst, *sound_probes()))["black-box-not-better"] is True


def test_weak_unbounded_attack_fails():
    weak = result("cw", float("inf"), 0.3, kind="min-norm", success=0.7, n_broken=70)
    assert verdicts(report(SOUND_RESULTS + [weak], SOUND_WORST))["unbounded-attacks-succeed"] is False
    strong = result("deepfool", float("inf"), 0.0, kind="min-norm", success=1.0, n_broken=100)
    assert verdicts(report(SOUND_RESULTS + [strong], SOUND_WORST))["unbounded-attacks-succeed"] is True
    close = result("deepfool", float("inf"), 0.07, kind="min-norm", success=0.93, n_broken=93)
    assert verdicts(report(SOUND_RESULTS + [close], SOUND_WORST))["unbounded-attacks-succeed"] is True


# ----------------------------------------------------------------------------- on real attacks

DIGITS_EPS = [0.0, 0.05, 0.1, 0.2, 0.3]  # the default sweep on digits
DEFAULT_SWEEP = "fgsm,pgd,square:queries=200"  # the default attacks, Square with a smaller budget


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_default_sweeps_of_undefended_models_give_no_false_failure(seed):
    """Each seed trains its own small CNN and attacks it with its own random starts."""
    (_, _), (x, y) = load_digits_tensors()
    model = train_cnn(epochs=3, seed=seed)
    r = evaluate(model, x[:N], y[:N], DEFAULT_SWEEP, DIGITS_EPS, seed=seed)
    assert r.failed_checks == [], [str(c) for c in r.failed_checks]
    applicable = {c.name for c in r.checks if c.passed is not None}
    assert applicable == {
        "monotone-in-eps",
        "reaches-chance",
        "iterative-beats-single-step",
        "more-steps-no-worse",
        "black-box-not-better",
    }
    data = json.loads(json.dumps(r.to_dict()))  # JSON-able: the masks stay out, their counts go in
    assert all(c["p_value"] is not None and c["counts"] for c in data["checks"] if c["passed"] is not None)
    assert "robust" not in data["results"][0] and data["probes"]["iterative"]["n_robust"] == int(
        r.probe_robust["iterative"].sum()
    )


def test_a_one_step_iterative_attack_fails(trained_cnn, held_out_digits):
    """A "PGD" of one small step with no random start is weaker than FGSM: it must not pass as iterative."""
    x, y = held_out_digits[0][:N], held_out_digits[1][:N]
    r = evaluate(trained_cnn, x, y, "fgsm,pgd:steps=1:random_start=false:alpha=0.01", DIGITS_EPS)
    check = {c.name: c for c in r.checks}["iterative-beats-single-step"]
    assert check.passed is False and check.p_value < 1e-10
    assert check.counts["robust only under pgd-1"] > 20 and check.counts["robust only under fgsm"] == 0


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


def test_a_gradient_masked_model_fails_the_default_sweep(trained_cnn, held_out_digits):
    x, y = held_out_digits[0][:N], held_out_digits[1][:N]
    masked = QuantisedInput(trained_cnn).eval()
    r = evaluate(masked, x, y, DEFAULT_SWEEP, DIGITS_EPS)
    fgsm = r.result("fgsm", 0.1)
    assert fgsm.n_broken == 0  # zero gradients: FGSM cannot move
    checks = {c.name: c for c in r.checks}
    assert checks["black-box-not-better"].passed is False and checks["black-box-not-better"].p_value < 1e-6
    assert checks["black-box-not-better"].counts["broken only by Square"] >= 10
    # The same evaluation on the unmasked model finds nothing suspicious.
    clean = evaluate(trained_cnn, x, y, DEFAULT_SWEEP, DIGITS_EPS)
    assert clean.failed_checks == []


# ----------------------------------------------------------------------------- through the CLI


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A small macro CNN trained briefly on digits and saved as a platform checkpoint."""
    from test_attack_cli import make_checkpoint

    from nasbench.data import load_dataset

    directory, _, _ = make_checkpoint(tmp_path_factory.mktemp("ckpt") / "found", load_dataset("digits", seed=0))
    return directory


def tables_of(out: str) -> list[str]:
    """The console tables and lines above the file list (whose paths are printed unwrapped)."""
    return out[: out.index("\nfiles")].splitlines()


def test_attack_cli_default_sweep_fits_80_columns_with_no_false_failure_or_mlflow_notices(
    checkpoint, tmp_path, monkeypatch, capfd
):
    from nasbench.cli import main

    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("NASBENCH_CACHE_DIR", str(tmp_path / "cache"))  # as on a fresh clone: MLflow builds a store
    root = tmp_path / "experiments"
    code = main(
        [
            "attack",
            "--model",
            str(checkpoint),
            "--attacks",
            DEFAULT_SWEEP,
            "--eps",
            "0,0.05,0.1,0.2,0.3",
            "--n",
            "100",
            "--experiment",
            "e",
            "--experiments-dir",
            str(root),
        ]
    )
    out, err = capfd.readouterr()
    assert code == 0, err
    assert (root / "e" / "mlflow.db").is_file()
    assert "Creating initial MLflow database tables" not in err and " INFO " not in err, err
    lines = tables_of(out)
    assert max(len(line) for line in lines) <= 80 and "…" not in out
    verdicts_shown = [line.split()[0] for line in lines if re.fullmatch(r"(PASS|FAIL|n/a) {2,}[a-z-]+ *", line)]
    assert verdicts_shown == ["PASS"] * 5 + ["n/a"] and "check(s) FAILED" not in out
    # Every attack, eps and number in full; the marks and abbreviations are explained.
    assert any(line.split()[:1] == ["square-200q*"] for line in lines)
    assert any(line.split() == ["attack", "0", "0.05", "0.1", "0.2", "0.3"] for line in lines)
    assert "* cascade: ran only on the points" in out and "mean/median size of the perturbations" in out
    record = json.loads(next((root / "e" / "evaluations").glob("*/evaluation.json")).read_text())
    shown = {c["name"]: c for c in record["report"]["checks"]}
    for name in ("more-steps-no-worse", "iterative-beats-single-step", "black-box-not-better"):
        assert shown[name]["passed"] is True and shown[name]["p_value"] >= ALPHA and shown[name]["counts"]
        assert name in out


def test_attack_cli_and_report_show_a_failed_check_with_its_counts_and_p_value(checkpoint, tmp_path, capsys):
    from nasbench.cli import main

    root = tmp_path / "experiments"
    code = main(
        [
            "attack",
            "--model",
            str(checkpoint),
            "--attacks",
            "fgsm,pgd:steps=1:random_start=false:alpha=0.01",
            "--eps",
            "0,0.1,0.2",
            "--n",
            "100",
            "--no-tracking",
            "--experiment",
            "weak",
            "--experiments-dir",
            str(root),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    record = json.loads(next((root / "weak" / "evaluations").glob("*/evaluation.json")).read_text())
    check = next(c for c in record["report"]["checks"] if c["name"] == "iterative-beats-single-step")
    assert check["passed"] is False and check["p_value"] < 1e-6
    only_pgd, only_fgsm = check["counts"]["robust only under pgd-1"], check["counts"]["robust only under fgsm"]
    assert only_pgd > 10 and only_fgsm == 0
    assert f"{only_pgd} only under pgd-1, 0 only under fgsm" in " ".join(out.split())
    assert "sanity check(s) FAILED" in out

    code = main(["report", "--experiment", "weak", "--experiments-dir", str(root), "--no-tracking"])
    assert code == 0, capsys.readouterr().err
    html = next((root / "weak").glob("**/*.html")).read_text()
    from html import unescape

    text = unescape(html)
    assert "p-value" in text and "counts" in text
    p_shown = f"{check['p_value']:.0e}"
    assert f'<td class="num">{p_shown}</td>' in html
    assert f"robust only under pgd-1 {only_pgd}; robust only under fgsm 0" in text
