"""Robustness evaluation engine: an eps sweep over many attacks that never redoes work.

The naive evaluation runs every attack at every eps on every point. Most of that
work cannot change the answer, and the engine skips it without weakening any
attack (Carlini et al. 2019 ask for the strongest evaluation, so the engine may
only ever be *stronger* than the naive loop):

1. **eps-sweep reuse.** An example broken at eps_i stays broken at every
   eps_j > eps_i: the same perturbation is still inside the larger ball. Each
   eps is attacked only on the points still robust at the previous one, and
   eps = 0 needs no attack at all.
2. **Per-example early stop.** FGSM, BIM, PGD (Linf, L2) and MI-FGSM run in a
   batched loop that drops an example from the batch as soon as it is
   misclassified, instead of walking it on for the remaining steps (and maybe
   walking it back to a correct prediction, which the plain torchattacks loop
   does). With the same random start the loop follows torchattacks' steps
   exactly, so it breaks a superset of the points (tested).
3. **Cheap first, expensive on what stands.** Attacks run cheapest first; the
   expensive ones (APGD, APGD-T, FAB, Square, AutoAttack) run only on the points
   every earlier attack failed on, as AutoAttack itself does.
4. **Per-example worst case** over all attacks of a norm is the number to report.

Everything is batched; on a GPU the model and inputs use channels_last.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from attacks.checks import CheckResult, run_checks
from attacks.registry import (
    AttackConfigError,
    AttackSpec,
    build_attack,
    default_alpha,
    parse_attacks,
)

__all__ = [
    "AdversarialExamples",
    "AttackResult",
    "RobustnessReport",
    "WorstCase",
    "evaluate",
    "iterative_attack",
]

# Attacks the engine runs in its own early-stopping loop (same updates as torchattacks).
EARLY_STOP_ATTACKS = ("fgsm", "bim", "pgd", "mifgsm", "pgdl2")
NOISE_GROUP = "gaussian"
# Slack for floating-point error when checking that an adversarial example is inside its ball.
BALL_TOLERANCE = 1e-5

Progress = Callable[[int, int, str], None]


# --------------------------------------------------------------------------- report types


@dataclass
class AttackResult:
    """One attack at one eps.

    ``scope="all"``: the attack was judged on every clean-correct point, so
    ``robust_accuracy`` is this attack's own robust accuracy. ``scope="cascade"``:
    an expensive attack that ran only on the points every cheaper attack failed
    on; its ``robust_accuracy`` is that of the ensemble up to and including it,
    and ``n_broken`` counts the points it broke that all cheaper attacks missed.
    ``success_rate`` is ``n_broken / n_attacked_total`` where the denominator is
    the clean-correct points (scope all) or the points it ran on (cascade).
    Perturbation norms are over the examples this attack broke. Unbounded
    (min-norm) attacks have ``eps = inf``. ``robust`` is the per-example outcome
    behind ``robust_accuracy`` (a bool per point, True where the point is classified
    correctly and still stands), for the sanity checks' paired tests; it is not
    written to JSON.
    """

    attack: str
    name: str
    norm: str
    eps: float
    robust_accuracy: float
    success_rate: float
    n_attacked: int
    n_broken: int
    mean_l2: float | None
    median_l2: float | None
    mean_linf: float | None
    median_linf: float | None
    seconds: float
    seconds_per_example: float
    scope: str = "all"
    kind: str = "gradient"
    robust: torch.Tensor | None = field(default=None, repr=False, compare=False)


@dataclass
class WorstCase:
    """Per-example worst case over every attack of one norm at one eps (``robust``: the
    per-example outcome, a bool per point, not written to JSON)."""

    norm: str
    eps: float
    robust_accuracy: float
    n_robust: int
    broken_by: dict[str, int] = field(default_factory=dict)
    robust: torch.Tensor | None = field(default=None, repr=False, compare=False)


@dataclass
class AdversarialExamples:
    """A few clean/adversarial pairs kept for grids and for saving as tensors."""

    norm: str
    eps: float
    index: torch.Tensor
    clean: torch.Tensor
    adversarial: torch.Tensor
    labels: torch.Tensor
    clean_pred: torch.Tensor
    adv_pred: torch.Tensor
    attacks: list[str]

    @property
    def key(self) -> str:
        return f"{self.norm}_eps{self.eps:.6g}"


@dataclass
class RobustnessReport:
    """Everything an evaluation found; ``to_dict()`` is JSON-able (no tensors).

    ``probe_robust`` holds the per-example outcomes of the checks' probe attacks (a
    bool per probe point, by probe role: ``single_step``, ``iterative`` ...).
    """

    n: int
    n_classes: int
    clean_accuracy: float
    targeted: bool
    threat_model: dict[str, Any]
    results: list[AttackResult]
    worst_case: list[WorstCase]
    checks: list[CheckResult] = field(default_factory=list)
    examples: list[AdversarialExamples] = field(default_factory=list)
    probes: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    device: str = "cpu"
    probe_robust: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    def result(self, attack: str, eps: float, norm: str | None = None) -> AttackResult:
        """The result of ``attack`` (name or label) at ``eps`` (closest match within 1e-9)."""
        for r in self.results:
            if (attack in (r.attack, r.name)) and (norm is None or r.norm == norm) and _same(r.eps, eps):
                return r
        raise KeyError(f"no result for attack {attack!r} at eps {eps!r}")

    def worst(self, eps: float, norm: str = "Linf") -> WorstCase:
        for w in self.worst_case:
            if w.norm == norm and _same(w.eps, eps):
                return w
        raise KeyError(f"no worst case for {norm} eps {eps!r}")

    def robust_accuracy(self, eps: float, norm: str = "Linf") -> float:
        """The number to report: per-example worst case over all attacks."""
        return self.worst(eps, norm).robust_accuracy

    @property
    def failed_checks(self) -> list[CheckResult]:
        return [c for c in self.checks if c.passed is False]

    def to_dict(self) -> dict[str, Any]:
        def clean(value):
            if isinstance(value, float) and not math.isfinite(value):
                return "inf" if value > 0 else "-inf"
            if isinstance(value, dict):
                return {str(k): clean(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [clean(v) for v in value]
            return value

        return clean(
            {
                "n": self.n,
                "n_classes": self.n_classes,
                "clean_accuracy": self.clean_accuracy,
                "targeted": self.targeted,
                "threat_model": self.threat_model,
                "results": [_plain(r) for r in self.results],
                "worst_case": [_plain(w) for w in self.worst_case],
                "checks": [_plain(c) for c in self.checks],
                "probes": self.probes,
                "examples": [
                    {
                        "norm": e.norm,
                        "eps": e.eps,
                        "index": e.index.tolist(),
                        "labels": e.labels.tolist(),
                        "clean_pred": e.clean_pred.tolist(),
                        "adv_pred": e.adv_pred.tolist(),
                        "attacks": e.attacks,
                    }
                    for e in self.examples
                ],
                "seconds": self.seconds,
                "device": self.device,
            }
        )

    def save_examples(self, path) -> str:
        """Write the kept examples as safetensors (``<norm>_eps<eps>/clean`` etc.)."""
        from safetensors.torch import save_file

        tensors, metadata = {}, {}
        for e in self.examples:
            for name in ("index", "clean", "adversarial", "labels", "clean_pred", "adv_pred"):
                tensors[f"{e.key}/{name}"] = getattr(e, name).detach().cpu().contiguous()
            metadata[f"{e.key}/attacks"] = ",".join(e.attacks)
        save_file(tensors, str(path), metadata=metadata)
        return str(path)


def _plain(record) -> dict[str, Any]:
    """A dataclass's fields without its per-example tensors (their counts are in the record)."""
    return {
        f.name: getattr(record, f.name) for f in fields(record) if not isinstance(getattr(record, f.name), torch.Tensor)
    }


def _same(a: float, b: float) -> bool:
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= 1e-9


# --------------------------------------------------------------------------- the early-stopping loop


def is_adversarial(logits: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
    """Untargeted: the prediction is wrong. Targeted: the prediction is the target."""
    pred = logits.argmax(dim=1)
    return pred == targets if targets is not None else pred != labels


def _project(adv: torch.Tensor, x: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    if norm == "Linf":
        delta = torch.clamp(adv - x, min=-eps, max=eps)
    else:
        delta = adv - x
        norms = delta.flatten(1).norm(p=2, dim=1)
        factor = torch.clamp(eps / norms, max=1.0)  # torchattacks PGDL2's rescaling
        delta = delta * factor.view(-1, *([1] * (x.dim() - 1)))
    return torch.clamp(x + delta, min=0, max=1)


def random_start_delta(x: torch.Tensor, norm: str, eps: float) -> torch.Tensor:
    """torchattacks' random start, drawn from the global RNG in the same order.

    Linf (PGD): uniform in [-eps, eps]^d. L2 (PGDL2): a Gaussian direction scaled to a
    radius uniform in [0, eps].
    """
    if norm == "Linf":
        return torch.empty_like(x).uniform_(-eps, eps)
    delta = torch.empty_like(x).normal_()
    n = delta.flatten(1).norm(p=2, dim=1).view(-1, *([1] * (x.dim() - 1)))
    r = torch.zeros_like(n).uniform_(0, 1)
    return delta * r / n * eps


def iterative_attack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    norm: str,
    eps: float,
    alpha: float,
    steps: int,
    random_start: bool = False,
    decay: float | None = None,
    targets: torch.Tensor | None = None,
    early_stop: bool = True,
    start: torch.Tensor | None = None,
) -> torch.Tensor:
    """FGSM / BIM / PGD / MI-FGSM / PGD-L2 with per-example early stop.

    The update is torchattacks' (sign step for Linf, L2-normalised step for L2,
    momentum on the mean-|grad|-normalised gradient for MI-FGSM, the same random
    start drawn in the same order), so with the same seed every example follows
    torchattacks' trajectory until it is misclassified; there it stops and is
    kept, rather than being walked on. ``start`` is an explicit initial
    perturbation (it overrides ``random_start``). Loss: cross-entropy summed per example (the
    mean torchattacks uses only rescales the gradient, which the sign and the
    normalisations remove). Returns the adversarial batch (detached).
    """
    x = x.detach()
    if start is not None:
        adv = torch.clamp(x + start.to(x.device, x.dtype), 0, 1)
    elif random_start:
        adv = torch.clamp(x + random_start_delta(x, norm, eps), 0, 1)
    else:
        adv = x.clone()
    active = torch.arange(len(x), device=x.device)
    momentum = torch.zeros_like(x) if decay is not None else None
    shape = (-1, *([1] * (x.dim() - 1)))
    for _ in range(steps):
        xa = adv[active].clone().requires_grad_(True)
        logits = model(xa)
        ya = y[active]
        ta = targets[active] if targets is not None else None
        xa_kept = None
        if early_stop:
            done = is_adversarial(logits.detach(), ya, ta)
            if done.any():
                keep = ~done
                active, xa_kept = active[keep], keep
                if len(active) == 0:
                    break
                logits = logits[xa_kept]
                ya = ya[xa_kept]
                ta = ta[xa_kept] if ta is not None else None
        loss = (
            -F.cross_entropy(logits, ta, reduction="sum")
            if ta is not None
            else F.cross_entropy(logits, ya, reduction="sum")
        )
        grad = torch.autograd.grad(loss, xa)[0]
        if xa_kept is not None:
            grad = grad[xa_kept]
        current = adv[active]
        if momentum is not None:
            grad = grad / torch.mean(torch.abs(grad), dim=tuple(range(1, x.dim())), keepdim=True)
            grad = grad + momentum[active] * decay
            momentum[active] = grad
        if norm == "Linf":
            step = alpha * grad.sign()
        else:
            grad_norm = grad.flatten(1).norm(p=2, dim=1).view(shape) + 1e-10
            step = alpha * grad / grad_norm
        adv[active] = _project(current + step, x[active], eps, norm).detach()
    return adv.detach()


def _run_own_loop(spec: AttackSpec, model, x, y, targets, eps, start=None):
    name = spec.name
    if name == "fgsm":
        return iterative_attack(model, x, y, norm="Linf", eps=eps, alpha=eps, steps=1, targets=targets)
    alpha = default_alpha(spec, eps)
    random_start = bool(spec.option("random_start", False))
    decay = float(spec.option("decay")) if name == "mifgsm" else None
    adv = iterative_attack(
        model,
        x,
        y,
        norm=spec.norm,
        eps=eps,
        alpha=alpha,
        steps=spec.steps,
        random_start=random_start,
        decay=decay,
        targets=targets,
        start=start if random_start else None,
    )
    # Further random restarts only for the points the previous tries left standing.
    for _ in range(spec.restarts - 1 if random_start else 0):
        with torch.no_grad():
            standing = ~is_adversarial(model(adv), y, targets)
        if not standing.any():
            break
        idx = standing.nonzero().squeeze(1)
        adv[idx] = iterative_attack(
            model,
            x[idx],
            y[idx],
            norm=spec.norm,
            eps=eps,
            alpha=alpha,
            steps=spec.steps,
            random_start=True,
            decay=decay,
            targets=None if targets is None else targets[idx],
        )
    return adv


# --------------------------------------------------------------------------- helpers


def _resolve_device(model: nn.Module, device) -> torch.device:
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    t = t.to(device, non_blocking=True)
    if device.type == "cuda" and t.dim() == 4:
        t = t.contiguous(memory_format=torch.channels_last)
    return t


@torch.no_grad()
def _predict(model, x, batch_size, device) -> torch.Tensor:
    preds = [model(_to_device(x[i : i + batch_size], device)).argmax(1).cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long)


@torch.no_grad()
def _n_classes(model, x, device) -> int:
    return int(model(_to_device(x[:1], device)).shape[1])


def _stats(values: torch.Tensor) -> tuple[float | None, float | None]:
    if values.numel() == 0:
        return None, None
    return float(values.mean()), float(values.median())


def _random_targets(y: torch.Tensor, n_classes: int, seed: int) -> torch.Tensor:
    """A random wrong class per example, fixed by ``seed`` (same target for every attack and eps)."""
    generator = torch.Generator().manual_seed(seed)
    offset = torch.randint(1, n_classes, y.shape, generator=generator)
    return (y + offset) % n_classes


def _normalise_eps(eps, norms: Iterable[str]) -> dict[str, list[float]]:
    from attacks.registry import parse_eps_list

    norms = list(norms)
    if isinstance(eps, dict):
        table = {}
        for key, values in eps.items():
            canonical = {"linf": "Linf", "l2": "L2", "gaussian": NOISE_GROUP}.get(str(key).lower())
            if canonical is None:
                raise AttackConfigError(f"unknown norm {key!r} in eps; choose from: Linf, L2")
            table[canonical] = parse_eps_list(values, "L2" if canonical == "L2" else "Linf")
        missing = [n for n in norms if n not in table and n != NOISE_GROUP]
        if missing:
            raise AttackConfigError(f"no eps given for norm {missing[0]}; give eps as {{'{missing[0]}': [...]}}")
        table.setdefault(NOISE_GROUP, table.get("Linf", [0.0]))
        return table
    table = {}
    for norm in set(norms) | {NOISE_GROUP}:
        table[norm] = parse_eps_list(eps, "L2" if norm == "L2" else "Linf")
    return table


class _Budget:
    """Progress in batches: an upper bound fixed up front, topped up when work is skipped."""

    def __init__(self, progress: Progress | None, total: int):
        self.progress, self.total, self.done = progress, max(total, 1), 0

    def step(self, description: str, n: int = 1):
        self.done = min(self.done + n, self.total)
        if self.progress is not None:
            self.progress(self.done, self.total, description)

    def finish(self, description: str = "done"):
        if self.done < self.total:
            self.step(description, self.total - self.done)


# --------------------------------------------------------------------------- evaluate


def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attacks: Sequence[AttackSpec | str] | str,
    eps: Sequence[float] | str | float | dict[str, Sequence[float]],
    *,
    batch_size: int = 256,
    device=None,
    seed: int = 0,
    targeted: bool = False,
    keep_examples: int = 16,
    progress: Progress | None = None,
    checks: bool = True,
) -> RobustnessReport:
    """Robust accuracy of ``model`` on ``(x, y)`` under ``attacks`` at every ``eps``.

    ``x`` holds images in [0, 1] (the model normalises inside); ``attacks`` are
    specs or names (``"pgd,square"``); ``eps`` is a list (``"0,1/255,8/255"`` also
    works) used for every norm, or ``{"Linf": [...], "L2": [...]}``. For the
    Gaussian baseline eps is the noise's standard deviation (the Linf list).
    ``targeted``: every targeted-capable attack aims at one random wrong class per
    example (fixed by ``seed``); a point then counts as broken only when it
    reaches its target. ``checks`` runs the Carlini et al. 2019 sanity checks
    (with small probes on at most 256 points) and stores them in the report.

    The model is moved to ``device`` (default: CUDA when there is one, else the
    model's device; channels_last on CUDA), put in eval mode for the evaluation
    and put back in its previous mode afterwards. The global RNG state is left as
    it was.
    """
    started = time.perf_counter()
    if isinstance(attacks, str):
        specs = parse_attacks(attacks, targeted=targeted or None)
    else:
        specs = parse_attacks([a for a in attacks], targeted=targeted or None)
    if x.dim() < 2 or len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {tuple(x.shape)} and {tuple(y.shape)}")
    if len(x) == 0:
        raise ValueError("no examples to evaluate")
    if x.min() < 0 or x.max() > 1:
        raise ValueError("images must lie in [0, 1]; the model should carry its own normalisation")
    x, y = x.detach().float().cpu(), y.detach().long().cpu()
    device = _resolve_device(model, device)
    was_training = model.training
    model.to(device)
    if device.type == "cuda" and x.dim() == 4:
        model.to(memory_format=torch.channels_last)
    model.eval()
    devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            report = _evaluate(
                model,
                x,
                y,
                specs,
                eps,
                batch_size=batch_size,
                device=device,
                seed=seed,
                targeted=targeted,
                keep_examples=keep_examples,
                progress=progress,
                with_checks=checks,
            )
    finally:
        model.train(was_training)
    report.seconds = time.perf_counter() - started
    return report


def _evaluate(
    model, x, y, specs, eps, *, batch_size, device, seed, targeted, keep_examples, progress, with_checks
) -> RobustnessReport:
    n = len(x)
    n_classes = _n_classes(model, x, device)
    clean_pred = _predict(model, x, batch_size, device)
    correct = clean_pred == y
    targets = _random_targets(y, n_classes, seed) if targeted else None
    dim = x[0].numel()

    def group_of(spec):
        return NOISE_GROUP if spec.info.kind == "noise" else spec.norm

    bounded = [s for s in specs if s.info.kind != "min-norm"]
    unbounded = [s for s in specs if s.info.kind == "min-norm"]
    eps_table = _normalise_eps(eps, [group_of(s) for s in bounded] or ["Linf"])
    for spec in bounded:
        for value in [spec.eps] if spec.eps is not None else eps_table[group_of(spec)]:
            if spec.norm == "L2" and value > math.sqrt(dim) + 1e-9:
                raise AttackConfigError(
                    f"L2 eps {value:g} exceeds the diameter of the image space ({math.sqrt(dim):.3g} for "
                    f"{dim} values in [0, 1])"
                )

    def eps_of(spec):
        return [spec.eps] if spec.eps is not None else eps_table[group_of(spec)]

    n_correct = int(correct.sum())
    per_unit = math.ceil(n_correct / batch_size) if n_correct else 0
    units = sum(len(eps_of(s)) for s in bounded) + len(unbounded)
    budget = _Budget(progress, units * per_unit)

    results: list[AttackResult] = []
    worst: list[WorstCase] = []
    examples: list[AdversarialExamples] = []

    def attack_points(spec, eps_value, todo_idx, description):
        """Run ``spec`` on the points ``todo_idx``; return (broken mask, adv images) over them."""
        broken = torch.zeros(len(todo_idx), dtype=torch.bool)
        adv_all = x[todo_idx].clone()
        if len(todo_idx) == 0:
            return broken, adv_all
        attack, starts = None, None
        torch.manual_seed(seed)
        if spec.name not in EARLY_STOP_ATTACKS:
            attack = build_attack(spec, model, eps_value, n_classes=n_classes, seed=seed)
        elif spec.option("random_start", False):
            # One random start per example for the whole set, drawn as torchattacks would draw
            # it for one batch of all points: an example gets the same start whether or not
            # the points around it were dropped, so the sweep is comparable point by point.
            starts = random_start_delta(x, spec.norm, eps_value)[todo_idx]
        for start in range(0, len(todo_idx), batch_size):
            idx = todo_idx[start : start + batch_size]
            xb, yb = _to_device(x[idx], device), y[idx].to(device)
            tb = targets[idx].to(device) if targets is not None else None
            if attack is None:
                adv = _run_own_loop(
                    spec,
                    model,
                    xb,
                    yb,
                    tb if spec.targeted else None,
                    eps_value,
                    start=None if starts is None else starts[start : start + len(idx)],
                )
            else:
                adv = attack(xb, tb if spec.targeted else yb)
            with torch.no_grad():
                # In a targeted run every attack is judged by whether it reached the target.
                hit = is_adversarial(model(adv), yb, tb)
                delta = (adv - xb).flatten(1)
                if spec.info.kind != "noise" and eps_value is not None and math.isfinite(eps_value):
                    size = delta.abs().amax(1) if spec.norm == "Linf" else delta.norm(p=2, dim=1)
                    hit &= size <= eps_value + BALL_TOLERANCE
                hit &= (adv >= -BALL_TOLERANCE).flatten(1).all(1) & (adv <= 1 + BALL_TOLERANCE).flatten(1).all(1)
            broken[start : start + len(idx)] = hit.cpu()
            adv_all[start : start + len(idx)] = adv.detach().float().cpu()
            budget.step(description)
        return broken, adv_all

    def timed(fn):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return out, time.perf_counter() - t0

    # ---- eps-bounded attacks, one norm at a time, eps ascending
    groups = []
    for spec in bounded:
        if group_of(spec) not in groups:
            groups.append(group_of(spec))
    for group in groups:
        group_specs = [s for s in bounded if group_of(s) == group]
        eps_values = sorted({e for s in group_specs for e in eps_of(s)})
        ensemble = torch.zeros(n, dtype=torch.bool)  # broken by some attack at this or a smaller eps
        state = [
            {
                "broken": torch.zeros(n, dtype=torch.bool),
                "l2": torch.full((n,), math.nan),
                "linf": torch.full((n,), math.nan),
            }
            for _ in group_specs
        ]
        first_breaker: dict[int, str] = {}
        kept: dict[int, torch.Tensor] = {}
        for eps_value in eps_values:
            for spec, st in zip(group_specs, state):
                if eps_value not in eps_of(spec):
                    continue
                description = f"{spec.label} {spec.norm if group != NOISE_GROUP else 'std'} eps={eps_value:.4g}"
                cascade = spec.info.cascade
                if eps_value == 0:
                    todo = torch.zeros(0, dtype=torch.long)  # a zero perturbation changes nothing
                elif cascade:
                    todo = (correct & ~ensemble).nonzero().squeeze(1)
                else:
                    todo = (correct & ~st["broken"]).nonzero().squeeze(1)
                before = ensemble.clone()
                (hit, adv), seconds = timed(lambda: attack_points(spec, eps_value, todo, description))
                budget.step(description, per_unit - math.ceil(len(todo) / batch_size))
                new = todo[hit]
                if len(new):
                    delta = (adv[hit] - x[new]).flatten(1)
                    st["l2"][new] = delta.norm(p=2, dim=1)
                    st["linf"][new] = delta.abs().amax(1)
                    st["broken"][new] = True
                    if group != NOISE_GROUP:
                        ensemble[new] = True
                        for i, a in zip(new.tolist(), adv[hit]):
                            first_breaker.setdefault(i, spec.label)
                            if i not in kept and len(kept) < keep_examples:
                                kept[i] = a
                if cascade:
                    newly = ensemble & ~before
                    n_broken = int(newly.sum())
                    robust = float((correct & ~ensemble).sum()) / n
                    success = n_broken / len(todo) if len(todo) else 0.0
                    mask = newly
                    still_robust = correct & ~ensemble
                else:
                    n_broken = int(st["broken"].sum())
                    robust = float((correct & ~st["broken"]).sum()) / n
                    success = n_broken / n_correct if n_correct else 0.0
                    mask = st["broken"]
                    still_robust = correct & ~st["broken"]
                mean_l2, median_l2 = _stats(st["l2"][mask & ~st["l2"].isnan()])
                mean_linf, median_linf = _stats(st["linf"][mask & ~st["linf"].isnan()])
                results.append(
                    AttackResult(
                        attack=spec.label,
                        name=spec.name,
                        norm=group,
                        eps=eps_value,
                        robust_accuracy=robust,
                        success_rate=success,
                        n_attacked=len(todo),
                        n_broken=n_broken,
                        mean_l2=mean_l2,
                        median_l2=median_l2,
                        mean_linf=mean_linf,
                        median_linf=median_linf,
                        seconds=seconds,
                        seconds_per_example=seconds / len(todo) if len(todo) else 0.0,
                        scope="cascade" if cascade else "all",
                        kind=spec.info.kind,
                        robust=still_robust,
                    )
                )
            if group == NOISE_GROUP:
                continue
            standing = correct & ~ensemble
            broken_by: dict[str, int] = {}
            for i in ensemble.nonzero().squeeze(1).tolist():
                broken_by[first_breaker[i]] = broken_by.get(first_breaker[i], 0) + 1
            worst.append(
                WorstCase(group, eps_value, float(standing.sum()) / n, int(standing.sum()), broken_by, robust=standing)
            )
            if kept:
                index = torch.tensor(sorted(kept))
                adv_kept = torch.stack([kept[i] for i in index.tolist()])
                with torch.no_grad():
                    adv_pred = model(_to_device(adv_kept, device)).argmax(1).cpu()
                examples.append(
                    AdversarialExamples(
                        norm=group,
                        eps=eps_value,
                        index=index,
                        clean=x[index],
                        adversarial=adv_kept,
                        labels=y[index],
                        clean_pred=clean_pred[index],
                        adv_pred=adv_pred,
                        attacks=[first_breaker[i] for i in index.tolist()],
                    )
                )

    # ---- unbounded, minimum-norm attacks: run once on every clean-correct point
    for spec in unbounded:
        todo = correct.nonzero().squeeze(1)
        description = f"{spec.label} unbounded"
        (hit, adv), seconds = timed(lambda: attack_points(spec, math.inf, todo, description))
        budget.step(description, per_unit - math.ceil(len(todo) / batch_size))
        delta = (adv[hit] - x[todo[hit]]).flatten(1)
        l2, linf = delta.norm(p=2, dim=1), delta.abs().amax(1)
        limit = spec.eps if spec.eps is not None else math.inf
        if math.isfinite(limit):
            hit = hit.clone()
            hit[hit.clone()] = l2 <= limit + BALL_TOLERANCE
            l2, linf = l2[l2 <= limit + BALL_TOLERANCE], linf[l2 <= limit + BALL_TOLERANCE]
        n_broken = int(hit.sum())
        broken = torch.zeros(n, dtype=torch.bool)
        broken[todo[hit]] = True
        mean_l2, median_l2 = _stats(l2)
        mean_linf, median_linf = _stats(linf)
        results.append(
            AttackResult(
                attack=spec.label,
                name=spec.name,
                norm=spec.norm,
                eps=limit,
                robust_accuracy=(n_correct - n_broken) / n,
                success_rate=n_broken / n_correct if n_correct else 0.0,
                n_attacked=len(todo),
                n_broken=n_broken,
                mean_l2=mean_l2,
                median_l2=median_l2,
                mean_linf=mean_linf,
                median_linf=median_linf,
                seconds=seconds,
                seconds_per_example=seconds / len(todo) if len(todo) else 0.0,
                scope="all",
                kind=spec.info.kind,
                robust=correct & ~broken,
            )
        )
    budget.finish()

    threat_model = {
        "n": n,
        "targeted": targeted,
        "target_selection": "one random wrong class per example (seeded)" if targeted else None,
        "eps": {k: v for k, v in eps_table.items() if k in groups},
        "attacks": [spec.to_dict() for spec in specs],
        "seed": seed,
        "batch_size": batch_size,
        "early_stop": list(EARLY_STOP_ATTACKS),
        "cascade": [s.label for s in specs if s.info.cascade],
    }
    for spec in specs:
        if spec.name == "autoattack":
            threat_model["autoattack"] = (
                f"standard version: APGD-CE, APGD-T (9 targets), FAB-T (9 targets) with {spec.steps} iterations "
                f"each and Square with {spec.options['queries']} queries"
            )
    report = RobustnessReport(
        n=n,
        n_classes=n_classes,
        clean_accuracy=n_correct / n,
        targeted=targeted,
        threat_model=threat_model,
        results=results,
        worst_case=worst,
        examples=examples,
        device=str(device),
    )
    if with_checks:
        report.probes, report.probe_robust = _run_probes(model, x, y, correct, specs, report, device=device, seed=seed)
        report.checks = run_checks(report)
    return report


# --------------------------------------------------------------------------- probes for the checks


PROBE_POINTS = 256
LARGE_LINF_EPS = 0.5


def _run_probes(model, x, y, correct, specs, report, *, device, seed) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Small extra attacks the sanity checks need (Carlini et al. 2019, section 5).

    On at most 256 clean-correct points, at the sweep eps where the worst case is
    nearest half the clean accuracy: a single-step attack, the first iterative
    attack of the run and the same with four times the steps; and the iterative
    attack at a large eps (Linf 0.5, or L2 0.5 * sqrt(d)), at which every image
    can be turned into plain grey, so accuracy must fall to chance. Returns the
    probes' description and counts (JSON-able), and each probe's per-example outcome
    on the same points (the checks compare them point by point).
    """
    iterative = [s for s in specs if s.name in ("pgd", "bim", "mifgsm", "pgdl2")]
    norms = [s.norm for s in specs if s.info.kind in ("gradient", "black-box", "ensemble")]
    if not norms:
        return {}, {}
    norm = "Linf" if "Linf" in norms else "L2"
    base = next((s for s in iterative if s.norm == norm), None)
    if base is None:
        base = AttackSpec("pgd" if norm == "Linf" else "pgdl2")
    base = AttackSpec(
        base.name,
        steps=base.steps,
        options={k: v for k, v in base.options.items() if k in ("alpha", "decay", "random_start")},
    )
    candidates = [w for w in report.worst_case if w.norm == norm and w.eps > 0]
    idx = correct.nonzero().squeeze(1)[:PROBE_POINTS]
    if len(idx) == 0:
        return {}, {}
    xb, yb = _to_device(x[idx], device), y[idx].to(device)
    dim = x[0].numel()

    outcomes: dict[str, torch.Tensor] = {}

    def run(role, spec, eps_value) -> dict[str, Any]:
        # Same seed for every probe: attacks with a random start start from the same point.
        torch.manual_seed(seed)
        adv = _run_own_loop(spec, model, xb, yb, None, eps_value)
        with torch.no_grad():
            outcomes[role] = (model(adv).argmax(1) == yb).cpu()
        n_robust = int(outcomes[role].sum())
        return {"attack": spec.label, "robust": n_robust / len(idx), "n_robust": n_robust}

    probes: dict[str, Any] = {"norm": norm, "n": len(idx), "attack": base.label}
    if candidates:
        target = report.clean_accuracy / 2
        probe_eps = min(candidates, key=lambda w: (abs(w.robust_accuracy - target), w.eps)).eps
        probes["eps"] = probe_eps
        if norm == "Linf":
            single = AttackSpec("fgsm")
        else:  # one full-size L2 gradient step, no random start (fast gradient method)
            single = AttackSpec("pgdl2", steps=1, options={"alpha": probe_eps, "random_start": False})
        probes["single_step"] = run("single_step", single, probe_eps)
        probes["iterative"] = run("iterative", base, probe_eps)
        more = AttackSpec(base.name, steps=min(base.steps * 4, 1000), options=dict(base.options))
        probes["more_steps"] = run("more_steps", more, probe_eps)
    large = LARGE_LINF_EPS if norm == "Linf" else LARGE_LINF_EPS * math.sqrt(dim)
    strong = AttackSpec(base.name, steps=max(base.steps, 20), options=dict(base.options))
    probes["large_eps"] = {**run("large_eps", strong, large), "eps": large}
    return probes, outcomes
