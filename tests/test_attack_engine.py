"""The evaluation engine on a real small CNN trained on digits (MNIST-style eps so curves reach zero)."""

import itertools
import json

import matplotlib.image
import pytest
import torch
import torchattacks
from attack_fixtures import cached_cnn
from safetensors.torch import load_file

from attacks import AttackConfigError, AttackSpec, evaluate, iterative_attack, save_example_grid, transfer_matrix

# tiny models run fastest on one thread, and the runs stay comparable on a loaded machine
pytestmark = pytest.mark.usefixtures("one_thread")

EPS = [0.0, 0.05, 0.1, 0.2, 0.3]


@pytest.fixture(scope="module")
def sweep():
    """fgsm + pgd over the eps sweep on 200 held-out digits, with a progress log."""
    from attack_fixtures import load_digits_tensors

    x, y = load_digits_tensors()[1]
    calls = []
    report = evaluate(
        cached_cnn(),
        x[:200],
        y[:200],
        "pgd,fgsm",
        EPS,
        batch_size=64,
        progress=lambda done, total, text: calls.append((done, total, text)),
    )
    return report, calls, (x[:200], y[:200])


def test_sweep_is_monotone_bounded_by_clean_and_reaches_zero(sweep):
    report, _, _ = sweep
    assert report.clean_accuracy > 0.93
    worst = [report.robust_accuracy(e) for e in EPS]
    assert worst[0] == pytest.approx(report.clean_accuracy)  # eps 0 changes nothing
    assert all(a >= b for a, b in itertools.pairwise(worst))
    assert worst[-1] == 0.0 and worst[2] < report.clean_accuracy - 0.2
    for e in EPS:
        pgd, fgsm = report.result("pgd", e), report.result("fgsm", e)
        assert report.robust_accuracy(e) <= min(pgd.robust_accuracy, fgsm.robust_accuracy)
        assert pgd.robust_accuracy <= report.clean_accuracy
        if e > 0:
            assert pgd.median_linf is None or pgd.median_linf <= e + 1e-6
    # eps reuse: points broken at 0.2 were not attacked again at 0.3
    assert report.result("pgd", 0.3).n_attacked < report.result("pgd", 0.05).n_attacked
    names = {c.name: c for c in report.checks}
    assert names["monotone-in-eps"].passed and names["reaches-chance"].passed
    assert names["iterative-beats-single-step"].passed and names["more-steps-no-worse"].passed


def test_progress_reaches_its_total(sweep):
    _, calls, _ = sweep
    assert calls, "no progress reported"
    dones = [c[0] for c in calls]
    assert dones == sorted(dones) and calls[-1][0] == calls[-1][1]


def test_engine_never_weaker_than_the_naive_torchattacks_loop(sweep):
    report, _, (x, y) = sweep
    model = cached_cnn()
    for e in EPS[1:]:
        broken = torch.zeros(len(x), dtype=torch.bool)
        for attack in (torchattacks.FGSM(model, eps=e), torchattacks.PGD(model, eps=e, alpha=2.5 * e / 10, steps=10)):
            torch.manual_seed(0)
            adv = attack(x, y)
            with torch.no_grad():
                broken |= model(adv).argmax(1) != y
        with torch.no_grad():
            naive = int(((model(x).argmax(1) == y) & ~broken).sum()) / len(x)
        assert report.robust_accuracy(e) <= naive + 1e-9, e


@pytest.mark.parametrize("name", ["pgd", "bim", "mifgsm", "pgdl2", "fgsm"])
def test_early_stop_loop_is_at_least_as_strong_as_torchattacks(trained_cnn, held_out_digits, name):
    """Same random start, same steps: every example torchattacks breaks, the loop breaks too."""
    x, y = held_out_digits[0][:160], held_out_digits[1][:160]
    eps = 1.0 if name == "pgdl2" else 0.1
    spec = AttackSpec(name)
    alpha = eps if name == "fgsm" else 2.5 * eps / spec.steps
    reference = {
        "pgd": lambda: torchattacks.PGD(trained_cnn, eps=eps, alpha=alpha, steps=10),
        "bim": lambda: torchattacks.BIM(trained_cnn, eps=eps, alpha=alpha, steps=10),
        "mifgsm": lambda: torchattacks.MIFGSM(trained_cnn, eps=eps, alpha=alpha, steps=10),
        "pgdl2": lambda: torchattacks.PGDL2(trained_cnn, eps=eps, alpha=alpha, steps=10),
        "fgsm": lambda: torchattacks.FGSM(trained_cnn, eps=eps),
    }[name]()
    torch.manual_seed(1)
    theirs = reference(x, y)
    torch.manual_seed(1)
    ours = iterative_attack(
        trained_cnn,
        x,
        y,
        norm=spec.norm,
        eps=eps,
        alpha=alpha,
        steps=1 if name == "fgsm" else 10,
        random_start=name in ("pgd", "pgdl2"),
        decay=1.0 if name == "mifgsm" else None,
    )
    with torch.no_grad():
        broken_theirs = trained_cnn(theirs).argmax(1) != y
        broken_ours = trained_cnn(ours).argmax(1) != y
    delta = (ours - x).flatten(1)
    size = delta.abs().amax(1) if spec.norm == "Linf" else delta.norm(dim=1)
    assert (size <= eps + 1e-5).all() and ours.min() >= 0 and ours.max() <= 1
    assert broken_theirs.sum() >= 5  # the comparison means something
    assert int((broken_theirs & ~broken_ours).sum()) <= 1
    assert broken_ours.sum() >= broken_theirs.sum()


def test_bad_input_raises_clear_errors(trained_cnn, held_out_digits):
    x, y = held_out_digits[0][:8], held_out_digits[1][:8]
    with pytest.raises(AttackConfigError, match="unknown attack 'pgdd'"):
        evaluate(trained_cnn, x, y, "pgdd", [0.1])
    with pytest.raises(AttackConfigError, match=r"\[0, 1\]"):
        evaluate(trained_cnn, x, y, "pgd", [0.1, 1.5])
    with pytest.raises(AttackConfigError, match="diameter"):
        evaluate(trained_cnn, x, y, "pgdl2", {"L2": [9.0]})  # sqrt(64) = 8
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        evaluate(trained_cnn, x * 255, y, "pgd", [0.1])


def test_targeted_mode_counts_only_hits_on_the_target(trained_cnn, held_out_digits):
    x, y = held_out_digits[0][:96], held_out_digits[1][:96]
    untargeted = evaluate(trained_cnn, x, y, "pgd", [0.15], checks=False)
    targeted = evaluate(trained_cnn, x, y, "pgd", [0.15], targeted=True, checks=False)
    assert targeted.targeted and targeted.threat_model["attacks"][0]["targeted"] is True
    # Reaching one given class is harder than leaving the true one.
    assert targeted.robust_accuracy(0.15) >= untargeted.robust_accuracy(0.15)
    assert targeted.robust_accuracy(0.15) < targeted.clean_accuracy


def test_cascade_runs_expensive_attacks_only_on_points_still_standing(trained_cnn, held_out_digits):
    x, y = held_out_digits[0][:24], held_out_digits[1][:24]
    report = evaluate(trained_cnn, x, y, "square:queries=100,fgsm", [0.1], checks=False)
    fgsm, square = report.result("fgsm", 0.1), report.result("square", 0.1)
    assert square.scope == "cascade" and fgsm.scope == "all"
    assert square.n_attacked == round((fgsm.robust_accuracy) * len(x))
    assert report.robust_accuracy(0.1) <= fgsm.robust_accuracy
    assert report.threat_model["attacks"][1]["queries"] == 100


def test_autoattack_and_unbounded_attacks_on_a_few_points(trained_cnn, held_out_digits):
    x, y = held_out_digits[0][:12], held_out_digits[1][:12]
    report = evaluate(trained_cnn, x, y, "pgd,autoattack,cw,deepfool", [0.3], checks=True)
    assert "100 iterations" in report.threat_model["autoattack"]
    assert report.robust_accuracy(0.3) == 0.0
    for name in ("cw", "deepfool"):
        r = report.result(name, float("inf"))
        assert r.success_rate >= 0.95 and r.median_l2 > 0
    assert {c.name: c.passed for c in report.checks}["unbounded-attacks-succeed"] is True


def test_report_serialises_and_saves_examples_and_grid(sweep, tmp_path):
    report, _, (x, _) = sweep
    data = json.loads(json.dumps(report.to_dict()))
    assert data["clean_accuracy"] == report.clean_accuracy and len(data["checks"]) == 6
    assert {r["attack"] for r in data["results"]} == {"fgsm", "pgd-10"}
    path = report.save_examples(tmp_path / "examples.safetensors")
    tensors = load_file(path)
    kept = report.examples[-1]
    assert torch.equal(tensors[f"{kept.key}/adversarial"], kept.adversarial)
    assert torch.equal(tensors[f"{kept.key}/clean"], x[kept.index])
    assert (kept.adv_pred != kept.labels).all() and len(kept.index) <= 16
    png = save_example_grid(report, tmp_path / "grid.png", class_names=[str(i) for i in range(10)])
    image = matplotlib.image.imread(png)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 400


def test_transfer_matrix_diagonal_is_white_box(trained_cnn, held_out_digits):
    x, y = held_out_digits[0][:128], held_out_digits[1][:128]
    other = cached_cnn(seed=1)
    result = transfer_matrix({"a": trained_cnn, "b": other}, x, y, AttackSpec("pgd"), 0.15)
    acc = result["robust_accuracy"]
    assert set(acc) == {"a", "b"} and set(acc["a"]) == {"a", "b"}
    # White-box on the diagonal is the strongest; transfer is weaker but still hurts.
    assert acc["a"]["a"] < acc["a"]["b"] < result["clean_accuracy"]["b"]
    assert acc["b"]["b"] < acc["b"]["a"] < result["clean_accuracy"]["a"]
