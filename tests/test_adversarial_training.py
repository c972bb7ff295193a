"""Adversarial training batches (PGD-AT, FGSM-RS) and a real PGD-AT run on digits."""

import pytest
import torch
import torchattacks
from attack_fixtures import SmallCNN, cached_cnn, load_digits_tensors, train_cnn

from attacks import AttackConfigError, adversarial_batch
from attacks.adversarial_training import warmup_eps

# tiny models run fastest on one thread, and the runs stay comparable on a loaded machine
pytestmark = pytest.mark.usefixtures("one_thread")

EPS = 0.15


@pytest.mark.parametrize("method", ["pgd", "fgsm-rs"])
def test_batch_stays_in_the_ball_and_leaves_the_model_as_it_was(method):
    (x, y), _ = load_digits_tensors()
    x, y = x[:64], y[:64]
    torch.manual_seed(0)
    model = SmallCNN()
    model(x)  # give batch norm some running statistics
    model.train()
    running_mean = model.bn1.running_mean.clone()
    tracked = int(model.bn1.num_batches_tracked)
    x_adv = adversarial_batch(model, x, y, method, eps=EPS, steps=3)
    assert model.training  # the trainer's mode is restored
    # The attack ran in eval mode: batch-norm statistics saw no adversarial search point.
    assert torch.equal(model.bn1.running_mean, running_mean) and int(model.bn1.num_batches_tracked) == tracked
    assert all(p.grad is None for p in model.parameters())
    assert not x_adv.requires_grad and x_adv.shape == x.shape
    assert (x_adv - x).abs().max() <= EPS + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    assert (x_adv - x).abs().max() > EPS / 2  # it moved


def test_bad_method_and_eps_raise():
    (x, y), _ = load_digits_tensors()
    model = SmallCNN()
    with pytest.raises(AttackConfigError, match="pgd, fgsm-rs"):
        adversarial_batch(model, x[:4], y[:4], "trades", eps=0.1)
    with pytest.raises(AttackConfigError, match=r"\[0, 1\]"):
        adversarial_batch(model, x[:4], y[:4], "pgd", eps=8)


def test_warmup_grows_eps_linearly_per_step_then_holds_it():
    ramp = [warmup_eps(0.3, step, 4) for step in range(6)]
    assert ramp == pytest.approx([0.075, 0.15, 0.225, 0.3, 0.3, 0.3])
    assert [warmup_eps(0.3, step, 0) for step in (0, 5)] == [0.3, 0.3]  # no warm-up
    assert warmup_eps(0.3, 0, 1) == 0.3


def _pgd_robust_accuracy(model, x, y, eps):
    torch.manual_seed(0)
    adv = torchattacks.PGD(model.eval(), eps=eps, alpha=2.5 * eps / 20, steps=20)(x, y)
    with torch.no_grad():
        return float((model(adv).argmax(1) == y).float().mean()), float((model(x).argmax(1) == y).float().mean())


def test_pgd_adversarial_training_gives_clearly_higher_robust_accuracy():
    _, (x, y) = load_digits_tensors()
    standard = cached_cnn()
    robust = train_cnn(epochs=6, adversarial="pgd", eps=EPS, steps=5)
    standard_robust, standard_clean = _pgd_robust_accuracy(standard, x, y, EPS)
    at_robust, at_clean = _pgd_robust_accuracy(robust, x, y, EPS)
    assert at_clean > 0.85  # still a working classifier
    assert at_robust > standard_robust + 0.25, (standard_robust, at_robust)
