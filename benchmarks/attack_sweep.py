"""Attack sweep: the evaluation engine against the naive loop, side by side in one run.

The naive loop is what one writes with torchattacks as is: every attack at every
eps on every point, batched, then the per-example worst case. The engine
(``attacks.evaluate``) runs the same attacks with the same parameters, model, data
and seed, but skips work that cannot change the answer (eps-sweep reuse,
per-example early stop, expensive attacks only on points still standing). It
must be faster and never report a higher robust accuracy (it may only be
stronger). Prints both timings, the ratio and the robust accuracy per eps; exits
1 if the engine is ever weaker.

    .venv/bin/python benchmarks/attack_sweep.py            # LeNet-5 on digits, CPU
    .venv/bin/python benchmarks/attack_sweep.py --n 300 --attacks fgsm,pgd,autoattack

The model is LeNet-5 from the registry (``--model``), trained undefended on 1,297 digits
(96% clean on the 500 others), attacked at MNIST's eps grid 0, 0.1, 0.2, 0.3 so the
curves reach zero. What the engine saves is the work on points that cannot change
the answer; what it cannot save is the full budget of every attack on the points that
stay robust, which both loops pay. So the ratio is roughly the sweep's total work over
the work on robust points: it is large when most (point, eps) pairs break early, and
small on a grid that lingers where most points hold.

Measured (2 shared CPU cores, 1 thread, load ~1-2; 500 points unless said):

    model, attacks, eps                                  naive    engine   speed-up
    lenet5  fgsm,pgd,square:1000  0,.1,.2,.3 (default)   12.6 s    2.0 s   6.5x
                                        (idle, three runs)  8.2-9.2 s 1.4-1.7 s 5.5-6.1x
    lenet5  fgsm,pgd,apgd         0,.1,.2,.3              6.7 s    0.9 s   7.6x
    lenet5  fgsm,pgd,autoattack   0,.1,.2,.3  (300 pts)  81.8 s   14.6 s   5.6x
    lenet5  fgsm,pgd,square:1000  0,.05,.1,.2,.3         18.0 s    6.9 s   2.6x
    lenet5  fgsm,pgd,apgd,square  0,.05,.1,.2,.3         21.5 s    7.4 s   2.9x
    small-cnn fgsm,pgd,apgd       0,.1,.2,.3             13.3 s    3.2 s   4.1x

The worst case is equal at every eps, or trails by one example where a cascaded,
randomised attack (APGD, Square, AutoAttack) drew differently on its smaller set of
points. On the finer grid 73% of the points still stand at eps 0.05 and Square must
spend its 1000 queries on each of them in both loops; the SmallCNN (98.6% clean)
keeps 60% at eps 0.1, against LeNet-5's 24%.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from attacks import build_attack, evaluate, parse_attacks, parse_eps_list  # noqa: E402


class SmallCNN(nn.Module):
    """Two 3x3 convolutions and a linear head for 8x8 digits; normalises inside."""

    def __init__(self, width: int = 16):
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.head = nn.Linear(2 * width * 16, 10)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1((x - 0.3) / 0.4)))
        return self.head(F.max_pool2d(F.relu(self.conv2(x)), 2).flatten(1))


def digits(seed: int):
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(data.target)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    return x[perm], y[perm]


MODELS = ("lenet5", "small-cnn", "resnet20")


def make_model(name: str, x_train: torch.Tensor) -> nn.Module:
    """LeNet-5 and ResNet-20 from the model registry (normalising inside, as every
    nasbench model does), or the two-convolution SmallCNN above."""
    if name == "small-cnn":
        return SmallCNN()
    from nasbench.models import build_from_spec
    from search_spaces import Normalize

    channels, height, width = x_train.shape[1:]
    network = build_from_spec({"kind": "classic", "name": name}, (channels, height, width), 10)
    return nn.Sequential(Normalize([float(x_train.mean())], [float(x_train.std())]), network)


def train(x, y, epochs: int, seed: int, device, name: str = "lenet5") -> nn.Module:
    torch.manual_seed(seed)
    model = make_model(name, x).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(x)).split(64):
            loss = F.cross_entropy(model(x[idx].to(device)), y[idx].to(device))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return model.eval()


def naive_loop(model, x, y, specs, eps_values, *, batch_size, seed, device):
    """Every attack at every eps on every point with torchattacks as is; per-example worst case."""
    model.eval()
    with torch.no_grad():
        correct = torch.cat(
            [
                model(x[i : i + batch_size].to(device)).argmax(1).cpu() == y[i : i + batch_size]
                for i in range(0, len(x), batch_size)
            ]
        )
    worst = {}
    for eps in eps_values:
        broken = torch.zeros(len(x), dtype=torch.bool)
        for spec in specs:
            torch.manual_seed(seed)
            attack = build_attack(spec, model, eps, n_classes=10, seed=seed)
            for i in range(0, len(x), batch_size):
                xb, yb = x[i : i + batch_size].to(device), y[i : i + batch_size].to(device)
                adv = attack(xb, yb)
                with torch.no_grad():
                    broken[i : i + batch_size] |= (model(adv).argmax(1) != yb).cpu()
        worst[eps] = float((correct & ~broken).sum()) / len(x)
    return worst


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="evaluation points (default 500)")
    parser.add_argument("--attacks", default="fgsm,pgd,square:queries=1000")
    parser.add_argument("--eps", default="0,0.1,0.2,0.3")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--model",
        choices=MODELS,
        default="lenet5",
        help="undefended model to attack (default lenet5, from the model registry)",
    )
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: steadier timings)")
    parser.add_argument(
        "--tolerance",
        type=int,
        default=1,
        help="examples by which the engine may trail at one eps before the run fails (default 1): "
        "the cascaded attacks (APGD, Square, AutoAttack) reseed themselves and run on a different "
        "subset of points, so their random draws per point differ from the naive loop's; the "
        "early-stopping FGSM/BIM/PGD/MI-FGSM are point-wise at least as strong",
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return parser.parse_args(argv)


@dataclass
class Sweep:
    """The trained model, the test points and the attack grid that both loops run."""

    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    specs: list
    eps_values: list[float]
    device: torch.device

    @property
    def n(self) -> int:
        return len(self.x)


def prepare(args: argparse.Namespace) -> Sweep:
    """Train the model on the first 1,297 digits and take the first ``--n`` of the rest; prints the set-up."""
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    x, y = digits(args.seed)
    x_train, y_train, x_test, y_test = x[:1297], y[:1297], x[1297:], y[1297:]
    n = min(args.n, len(x_test))
    x_test, y_test = x_test[:n], y_test[:n]
    model = train(x_train, y_train, args.epochs, args.seed, device, args.model)
    specs = parse_attacks(args.attacks)
    eps_values = parse_eps_list(args.eps)
    print(
        f"device {device}, {args.model}, {n} digits, attacks {', '.join(s.label for s in specs)}, "
        f"eps {', '.join(f'{e:g}' for e in eps_values)}"
    )
    return Sweep(model, x_test, y_test, specs, eps_values, device)


class Timed(NamedTuple):
    """Both loops' answers and their wall times in seconds."""

    naive: dict[float, float]  # the naive loop's worst-case robust accuracy per eps
    naive_s: float
    report: Any  # the engine's report, without sanity checks
    engine_s: float
    checked: Any  # the engine's report with its sanity checks
    checked_s: float


def run_both(sweep: Sweep, batch_size: int, seed: int) -> Timed:
    """The naive loop, the engine, and the engine with its sanity checks, each timed."""
    model, x, y, specs, eps_values, device = sweep.model, sweep.x, sweep.y, sweep.specs, sweep.eps_values, sweep.device
    t0 = time.perf_counter()
    naive = naive_loop(model, x, y, specs, eps_values, batch_size=batch_size, seed=seed, device=device)
    naive_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    report = evaluate(
        model,
        x,
        y,
        specs,
        eps_values,
        batch_size=batch_size,
        device=device,
        seed=seed,
        checks=False,
    )
    engine_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    checked = evaluate(model, x, y, specs, eps_values, batch_size=batch_size, device=device, seed=seed, checks=True)
    checked_s = time.perf_counter() - t0
    return Timed(naive, naive_s, report, engine_s, checked, checked_s)


def compare(sweep: Sweep, naive, report, tolerance: int):
    """Print the robust accuracy per eps of both loops; returns the eps where the engine is weaker
    by more than ``tolerance`` examples, and (eps, gap) where it trails within it."""
    print(f"clean accuracy {report.clean_accuracy:.1%}")
    print(f"{'eps':>8} {'naive':>8} {'engine':>8}")
    weaker, trailing = [], []
    for eps in sweep.eps_values:
        engine_acc = report.robust_accuracy(eps)
        print(f"{eps:8.4g} {naive[eps]:8.1%} {engine_acc:8.1%}")
        gap = round((engine_acc - naive[eps]) * sweep.n)
        if gap > tolerance:
            weaker.append(eps)
        elif gap > 0:
            trailing.append((eps, gap))
    return weaker, trailing


def main(argv=None) -> int:
    args = parse_args(argv)
    sweep = prepare(args)
    timed = run_both(sweep, args.batch_size, args.seed)
    weaker, trailing = compare(sweep, timed.naive, timed.report, args.tolerance)
    naive_s, engine_s, checked_s = timed.naive_s, timed.engine_s, timed.checked_s
    print(f"naive loop {naive_s:.1f} s, engine {engine_s:.1f} s (with sanity checks {checked_s:.1f} s)")
    print(f"speed-up {naive_s / engine_s:.1f}x (with checks {naive_s / checked_s:.1f}x)")
    for check in timed.checked.checks:
        print(f"  {check}")
    for eps, gap in trailing:
        print(
            f"note: engine trails by {gap} example(s) at eps {eps:g} "
            "(random draws of a cascaded attack; within tolerance)"
        )
    if weaker:
        print(f"ENGINE WEAKER than the naive loop at eps {weaker}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
