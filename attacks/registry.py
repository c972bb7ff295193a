"""Registry of adversarial attacks over torchattacks, with validated parameters.

Every attack the platform runs is described by an :class:`AttackSpec` (name, norm,
eps, steps, restarts, targeted, extra options) and built into a torchattacks
object by :func:`build_attack`. Specs are plain data, so they can be logged, put in
a report's threat model and compared, and they are validated when created: a bad
name, norm, eps or step count raises :class:`AttackConfigError` with one line that
names the valid choices.

Models take images in [0, 1] and carry their own normalisation, so no attack ever
calls torchattacks' ``set_normalization_used``.

Attacks (paper, norm):

- ``fgsm``      Goodfellow et al. 2015, "Explaining and Harnessing Adversarial Examples" (Linf).
- ``bim``       Kurakin et al. 2017, "Adversarial Examples in the Physical World" (Linf).
- ``pgd``       Madry et al. 2018, "Towards Deep Learning Models Resistant to Adversarial Attacks" (Linf).
- ``pgdl2``     the same with L2 steps and projection (L2).
- ``mifgsm``    Dong et al. 2018, "Boosting Adversarial Attacks with Momentum" (Linf).
- ``cw``        Carlini & Wagner 2017, "Towards Evaluating the Robustness of Neural Networks" (L2, unbounded;
                torchattacks has no binary search over c, so the defaults c=10, lr=0.05, 100 Adam
                steps are set high enough to reach ~100% success on an undefended model, where
                torchattacks' c=1, lr=0.01, 50 steps reaches about 85%).
- ``deepfool``  Moosavi-Dezfooli et al. 2016, "DeepFool" (L2, unbounded).
- ``square``    Andriushchenko et al. 2020, "Square Attack", black-box, 5,000 queries (Linf or L2).
- ``apgd``      Croce & Hein 2020, "Reliable evaluation ... parameter-free attacks", APGD-CE, 100 steps.
- ``apgd-t``    the targeted-DLR variant over the 9 most likely wrong classes, 100 steps.
- ``fab``       Croce & Hein 2020, "Minimally distorted Adversarial Examples with a Fast Adaptive
                Boundary Attack", 100 steps (Linf or L2).
- ``autoattack`` the *standard* AutoAttack ensemble APGD-CE, APGD-T, FAB-T, Square with the original
                100 iterations per gradient sub-attack and 5,000 Square queries. torchattacks'
                ``AutoAttack`` builds its sub-attacks with 10 steps; :func:`build_attack` raises
                them to the original 100.
- ``gaussian``  Gaussian-noise baseline: adds N(0, eps^2) noise (eps is the standard deviation).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch.nn as nn

__all__ = [
    "ATTACKS",
    "AttackConfigError",
    "AttackInfo",
    "AttackSpec",
    "build_attack",
    "list_attacks",
    "parse_attacks",
    "parse_eps",
    "parse_eps_list",
]

NORMS = ("Linf", "L2")
# The L2 diameter of [0,1]^d is sqrt(d): 388 for a 3x224x224 image. Anything above
# is larger than every image space we load and is certainly a typo.
MAX_L2_EPS = 400.0
MAX_STEPS = 100_000


class AttackConfigError(ValueError):
    """An attack name, norm, eps or parameter that cannot be used (one clear line)."""


@dataclass(frozen=True)
class AttackInfo:
    """What the registry knows about one attack.

    ``kind`` is one of ``"gradient"`` (white-box, eps-bounded), ``"black-box"``
    (score-based, eps-bounded), ``"min-norm"`` (unbounded: finds the smallest
    perturbation it can), ``"ensemble"`` and ``"noise"``. ``cost`` orders attacks
    cheapest first inside an evaluation; attacks with ``cascade=True`` are
    expensive and only run on the points still standing after the cheap ones.
    """

    name: str
    title: str
    paper: str
    norms: tuple[str, ...]
    kind: str
    cost: int
    defaults: dict[str, Any]
    targeted: bool
    cascade: bool
    aliases: tuple[str, ...] = ()

    @property
    def default_norm(self) -> str:
        return self.norms[0]


def _info(name, title, paper, norms, kind, cost, defaults, targeted, cascade, aliases=()):
    return AttackInfo(name, title, paper, tuple(norms), kind, cost, dict(defaults), targeted, cascade, tuple(aliases))


ATTACKS: dict[str, AttackInfo] = {
    info.name: info
    for info in (
        _info("gaussian", "Gaussian noise", "baseline", ["Linf"], "noise", 0, {}, False, False, ["gn", "noise"]),
        _info("fgsm", "FGSM", "Goodfellow et al. 2015", ["Linf"], "gradient", 1, {}, True, False),
        _info(
            "bim",
            "BIM (I-FGSM)",
            "Kurakin et al. 2017",
            ["Linf"],
            "gradient",
            10,
            {"steps": 10, "alpha": None},
            True,
            False,
            ["i-fgsm", "ifgsm"],
        ),
        _info(
            "pgd",
            "PGD (Linf)",
            "Madry et al. 2018",
            ["Linf"],
            "gradient",
            11,
            {"steps": 10, "alpha": None, "random_start": True},
            True,
            False,
            ["pgd-linf"],
        ),
        _info(
            "mifgsm",
            "MI-FGSM",
            "Dong et al. 2018",
            ["Linf"],
            "gradient",
            12,
            {"steps": 10, "alpha": None, "decay": 1.0},
            True,
            False,
            ["mi-fgsm"],
        ),
        _info(
            "pgdl2",
            "PGD (L2)",
            "Madry et al. 2018",
            ["L2"],
            "gradient",
            11,
            {"steps": 10, "alpha": None, "random_start": True},
            True,
            False,
            ["pgd-l2"],
        ),
        _info(
            "deepfool",
            "DeepFool",
            "Moosavi-Dezfooli et al. 2016",
            ["L2"],
            "min-norm",
            40,
            {"steps": 50, "overshoot": 0.02},
            False,
            False,
        ),
        _info(
            "apgd",
            "APGD-CE",
            "Croce & Hein 2020",
            ["Linf", "L2"],
            "gradient",
            100,
            {"steps": 100, "loss": "ce", "rho": 0.75},
            False,
            True,
            ["apgd-ce"],
        ),
        _info(
            "apgd-t",
            "APGD-T (DLR)",
            "Croce & Hein 2020",
            ["Linf", "L2"],
            "gradient",
            110,
            {"steps": 100, "rho": 0.75},
            False,
            True,
            ["apgdt", "apgd-dlr"],
        ),
        _info(
            "fab",
            "FAB",
            "Croce & Hein 2020 (FAB)",
            ["Linf", "L2"],
            "gradient",
            120,
            {"steps": 100, "alpha_max": 0.1, "eta": 1.05, "beta": 0.9},
            False,
            True,
        ),
        _info(
            "square",
            "Square",
            "Andriushchenko et al. 2020",
            ["Linf", "L2"],
            "black-box",
            200,
            {"queries": 5000, "p_init": 0.8, "loss": "margin"},
            True,
            True,
        ),
        _info(
            "cw",
            "Carlini-Wagner L2",
            "Carlini & Wagner 2017",
            ["L2"],
            "min-norm",
            300,
            {"steps": 100, "c": 10.0, "kappa": 0.0, "lr": 0.05},
            True,
            False,
            ["cw-l2"],
        ),
        _info(
            "autoattack",
            "AutoAttack (standard)",
            "Croce & Hein 2020",
            ["Linf", "L2"],
            "ensemble",
            400,
            {"steps": 100, "queries": 5000, "version": "standard"},
            False,
            True,
            ["aa"],
        ),
    )
}

_ALIASES: dict[str, str] = {}
for _info_ in ATTACKS.values():
    _ALIASES[_info_.name] = _info_.name
    for _alias in _info_.aliases:
        _ALIASES[_alias] = _info_.name


def list_attacks() -> list[str]:
    """Names of every registered attack, cheapest first."""
    return [info.name for info in sorted(ATTACKS.values(), key=lambda i: (i.cost, i.name))]


def resolve_name(name: str) -> str:
    key = str(name).strip().lower().replace("_", "-")
    if key in _ALIASES:
        return _ALIASES[key]
    if key.replace("-", "") in _ALIASES:
        return _ALIASES[key.replace("-", "")]
    raise AttackConfigError(f"unknown attack {name!r}; choose from: {', '.join(list_attacks())}")


# --------------------------------------------------------------------------- eps


_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def _parse_one_eps(text: str | float | int, norm: str) -> float:
    if isinstance(text, bool):
        raise AttackConfigError(f"eps must be a number such as 8/255 or 0.031, not {text!r}")
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        raw = str(text).strip()
        parts = raw.split("/")
        if len(parts) > 2 or not all(_NUMBER.match(p.strip()) for p in parts):
            raise AttackConfigError(f"eps {raw!r} is not a number; write it as 8/255 or 0.031")
        value = float(parts[0])
        if len(parts) == 2:
            denominator = float(parts[1])
            if denominator == 0:
                raise AttackConfigError(f"eps {raw!r} divides by zero; write it as 8/255 or 0.031")
            value /= denominator
    validate_eps(value, norm)
    return value


def validate_eps(value: float, norm: str = "Linf") -> float:
    """Raise :class:`AttackConfigError` unless ``value`` is a usable radius for ``norm``."""
    if not math.isfinite(value) or value < 0:
        raise AttackConfigError(f"eps must be a finite number >= 0, got {value!r}")
    if norm == "Linf" and value > 1:
        raise AttackConfigError(
            f"Linf eps {value:g} is out of range: images lie in [0, 1], so eps must be in [0, 1] (e.g. 8/255)"
        )
    if norm == "L2" and value > MAX_L2_EPS:
        raise AttackConfigError(f"L2 eps {value:g} is unreasonable: it must be in [0, {MAX_L2_EPS:g}]")
    return value


def parse_eps(text: str | float | Iterable, norm: str = "Linf") -> float | list[float]:
    """Parse eps given as ``8/255``, ``0.031`` or a comma-separated list of those.

    A single value (no comma) gives a float, a comma-separated list gives a sorted,
    de-duplicated list of floats: ``parse_eps("8/255") == 8/255`` and
    ``parse_eps("0,1/255,8/255") == [0.0, 1/255, 8/255]``. Use :func:`parse_eps_list`
    to always get a list.
    """
    if isinstance(text, str) and "," not in text and text.strip():
        return _parse_one_eps(text, norm)
    if isinstance(text, (int, float)):
        return _parse_one_eps(text, norm)
    return parse_eps_list(text, norm)


def parse_eps_list(text: str | float | Iterable, norm: str = "Linf") -> list[float]:
    """Like :func:`parse_eps` but always a sorted list (``"8/255"`` -> ``[0.0314]``)."""
    if isinstance(text, str):
        items = [t for t in text.split(",") if t.strip()]
    elif isinstance(text, (int, float)):
        items = [text]
    else:
        items = list(text)
    if not items:
        raise AttackConfigError("no eps given; write them as 0,1/255,8/255")
    return sorted({_parse_one_eps(item, norm) for item in items})


# --------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class AttackSpec:
    """One attack with all its parameters.

    ``eps=None`` means "use the eps of the sweep" (for min-norm attacks it means
    unbounded). ``steps=None`` takes the registry's default. ``options`` holds the
    attack-specific knobs (``alpha``, ``decay``, ``queries``, ``c``, ``lr`` ...);
    unknown options are rejected.
    """

    name: str
    norm: str | None = None
    eps: float | None = None
    steps: int | None = None
    restarts: int = 1
    targeted: bool = False
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        info = ATTACKS[resolve_name(self.name)]
        object.__setattr__(self, "name", info.name)
        norm = self.norm or info.default_norm
        canonical = {"linf": "Linf", "l2": "L2", "inf": "Linf"}.get(str(norm).lower())
        if canonical not in info.norms:
            raise AttackConfigError(
                f"attack {info.name!r} does not support norm {norm!r}; choose from: {', '.join(info.norms)}"
            )
        object.__setattr__(self, "norm", canonical)
        if self.eps is not None:
            object.__setattr__(self, "eps", validate_eps(float(self.eps), canonical))
        if "steps" in info.defaults:
            steps = info.defaults["steps"] if self.steps is None else self.steps
            if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
                raise AttackConfigError(
                    f"steps for {info.name!r} must be a whole number in [1, {MAX_STEPS}], got {steps!r}"
                )
            object.__setattr__(self, "steps", steps)
        elif self.steps is not None:
            raise AttackConfigError(f"attack {info.name!r} takes no steps (it is single-shot)")
        if isinstance(self.restarts, bool) or not isinstance(self.restarts, int) or self.restarts < 1:
            raise AttackConfigError(f"restarts must be a whole number >= 1, got {self.restarts!r}")
        if self.targeted and not info.targeted:
            supported = ", ".join(n for n in list_attacks() if ATTACKS[n].targeted)
            raise AttackConfigError(f"attack {info.name!r} has no targeted mode; targeted attacks: {supported}")
        allowed = {k for k in info.defaults if k != "steps"}
        unknown = set(self.options) - allowed
        if unknown:
            choices = ", ".join(sorted(allowed | {"steps", "restarts", "eps", "norm"})) or "none"
            raise AttackConfigError(
                f"unknown option {sorted(unknown)[0]!r} for attack {info.name!r}; options: {choices}"
            )
        merged = {k: v for k, v in info.defaults.items() if k != "steps"}
        merged.update(self.options)
        _validate_options(info.name, merged)
        object.__setattr__(self, "options", merged)

    @property
    def info(self) -> AttackInfo:
        return ATTACKS[self.name]

    @property
    def label(self) -> str:
        """Short display name, e.g. ``pgd-10`` or ``square-5000q``."""
        if self.name == "square":
            return f"square-{self.options['queries']}q"
        if self.steps is not None and self.info.kind != "min-norm":
            return f"{self.name}-{self.steps}"
        return self.name

    def with_eps(self, eps: float | None) -> AttackSpec:
        return dataclasses.replace(self, eps=eps)

    def option(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "norm": self.norm,
            "eps": self.eps,
            "steps": self.steps,
            "restarts": self.restarts,
            "targeted": self.targeted,
            **{k: v for k, v in sorted(self.options.items())},
        }


def _validate_options(name: str, options: dict[str, Any]) -> None:
    def positive(key, integer=False):
        value = options.get(key)
        if value is None:
            return
        bad = isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0
        if integer:
            bad = bad or not float(value).is_integer()
        if bad:
            kind = "a whole number" if integer else "a number"
            raise AttackConfigError(f"option {key!r} of attack {name!r} must be {kind} > 0, got {value!r}")

    for key in ("alpha", "c", "lr", "alpha_max", "eta"):
        positive(key)
    positive("queries", integer=True)
    for key in ("decay", "overshoot", "kappa", "beta", "rho"):
        value = options.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            raise AttackConfigError(f"option {key!r} of attack {name!r} must be a number >= 0, got {value!r}")
    if "p_init" in options and not 0 < options["p_init"] <= 1:
        raise AttackConfigError(f"option 'p_init' of attack {name!r} must be in (0, 1]")
    if "loss" in options:
        valid = ("margin", "ce") if name == "square" else ("ce", "dlr")
        if options["loss"] not in valid:
            raise AttackConfigError(f"loss {options['loss']!r} of attack {name!r}; choose from: {', '.join(valid)}")
    if "version" in options and options["version"] != "standard":
        raise AttackConfigError("only the 'standard' AutoAttack version is supported")


_SPEC_FIELDS = {"norm", "eps", "steps", "restarts", "targeted"}


def _coerce(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    try:
        return int(low)
    except ValueError:
        pass
    if "/" in low:
        return _parse_one_eps(low, "L2")
    try:
        return float(low)
    except ValueError:
        return text.strip()


def _make_spec(name: str, params: dict[str, Any]) -> AttackSpec:
    fields = {k: v for k, v in params.items() if k in _SPEC_FIELDS}
    options = {k: v for k, v in params.items() if k not in _SPEC_FIELDS}
    if "eps" in fields and isinstance(fields["eps"], str):
        fields["eps"] = _parse_one_eps(fields["eps"], fields.get("norm", "L2") or "L2")
    return AttackSpec(name, options=options, **fields)


def parse_attacks(text: str | Iterable[str | AttackSpec], **overrides: Any) -> list[AttackSpec]:
    """Parse ``"pgd,fgsm,square"`` into specs, cheapest first.

    Per-attack options go after a colon: ``"pgd:steps=20:restarts=2,square:queries=1000"``.
    Keyword ``overrides`` (``steps=20``, ``targeted=True``, ``restarts=2`` ...) apply
    to every attack that has that parameter; an override no listed attack accepts is
    an error, as is an unknown name (the message lists the valid names).
    """
    items = [t for t in text.split(",") if t.strip()] if isinstance(text, str) else list(text)
    if not items:
        raise AttackConfigError(f"no attack given; choose from: {', '.join(list_attacks())}")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    specs, used = [], set()
    for item in items:
        if isinstance(item, AttackSpec):
            name, params = item.name, {**item.to_dict()}
            params.pop("name")
            # to_dict flattens defaults into the options; keep only what differs.
            for key, value in ATTACKS[item.name].defaults.items():
                if key != "steps" and params.get(key) == value:
                    params.pop(key)
        else:
            name, *pairs = str(item).strip().split(":")
            params = {}
            for pair in pairs:
                key, sep, value = pair.partition("=")
                if not sep or not key.strip():
                    raise AttackConfigError(f"attack option {pair!r} must look like key=value (e.g. pgd:steps=20)")
                params[key.strip().replace("-", "_")] = _coerce(value)
        info = ATTACKS[resolve_name(name)]
        accepted = _SPEC_FIELDS | set(info.defaults) | {"steps"}
        for key, value in overrides.items():
            if key in params or key not in accepted:
                continue
            if key == "steps" and "steps" not in info.defaults:
                continue
            if key == "targeted" and value and not info.targeted:
                continue
            params[key] = value
            used.add(key)
        specs.append(_make_spec(info.name, params))
    unused = set(overrides) - used
    # targeted=False or restarts=1 are defaults: harmless even when no attack takes them.
    unused = {k for k in unused if not (k == "targeted" and not overrides[k])}
    if unused:
        key = sorted(unused)[0]
        raise AttackConfigError(f"no attack in {', '.join(s.name for s in specs)} takes the parameter {key!r}")
    if overrides.get("targeted") and not any(s.targeted for s in specs):
        supported = ", ".join(n for n in list_attacks() if ATTACKS[n].targeted)
        raise AttackConfigError(f"none of these attacks has a targeted mode; targeted attacks: {supported}")
    seen = set()
    for spec in specs:
        key = (spec.name, spec.norm, spec.eps, spec.steps)
        if key in seen:
            raise AttackConfigError(f"attack {spec.label!r} is listed twice")
        seen.add(key)
    return sorted(specs, key=lambda s: s.info.cost)


# --------------------------------------------------------------------------- building


def default_alpha(spec: AttackSpec, eps: float) -> float:
    """Step size of the iterative gradient attacks.

    An explicit ``alpha`` option wins; otherwise 2.5 * eps / steps, the rule of
    Madry et al. 2018 that lets a walk of ``steps`` steps cross the ball and back.
    """
    alpha = spec.option("alpha")
    if alpha is not None:
        return float(alpha)
    return 2.5 * eps / max(spec.steps or 1, 1)


def build_attack(spec: AttackSpec, model: nn.Module, eps: float | None = None, *, n_classes: int = 10, seed: int = 0):
    """Build the torchattacks object for ``spec`` at radius ``eps``.

    Targeted attacks are put in "targeted by label" mode: the caller passes the
    target classes in place of the labels. The returned object never has a
    normalisation set (models normalise inside).
    """
    import torchattacks

    eps = spec.eps if eps is None else eps
    o = spec.options
    name = spec.name
    bounded = spec.info.kind not in ("min-norm",)
    if bounded and eps is None:
        raise AttackConfigError(f"attack {name!r} needs an eps")
    if name == "gaussian":
        attack = torchattacks.GN(model, std=eps)
    elif name == "fgsm":
        attack = torchattacks.FGSM(model, eps=eps)
    elif name == "bim":
        attack = torchattacks.BIM(model, eps=eps, alpha=default_alpha(spec, eps), steps=spec.steps)
    elif name == "pgd":
        attack = torchattacks.PGD(
            model, eps=eps, alpha=default_alpha(spec, eps), steps=spec.steps, random_start=bool(o["random_start"])
        )
    elif name == "mifgsm":
        attack = torchattacks.MIFGSM(
            model, eps=eps, alpha=default_alpha(spec, eps), steps=spec.steps, decay=float(o["decay"])
        )
    elif name == "pgdl2":
        attack = torchattacks.PGDL2(
            model, eps=eps, alpha=default_alpha(spec, eps), steps=spec.steps, random_start=bool(o["random_start"])
        )
    elif name == "cw":
        attack = torchattacks.CW(model, c=float(o["c"]), kappa=float(o["kappa"]), steps=spec.steps, lr=float(o["lr"]))
    elif name == "deepfool":
        from attacks.deepfool import DeepFool

        attack = DeepFool(model, steps=spec.steps, overshoot=float(o["overshoot"]))
    elif name == "square":
        attack = torchattacks.Square(
            model,
            norm=spec.norm,
            eps=eps,
            n_queries=int(o["queries"]),
            n_restarts=spec.restarts,
            p_init=float(o["p_init"]),
            loss=o["loss"],
            seed=seed,
        )
    elif name == "apgd":
        attack = torchattacks.APGD(
            model,
            norm=spec.norm,
            eps=eps,
            steps=spec.steps,
            n_restarts=spec.restarts,
            seed=seed,
            loss=o["loss"],
            rho=float(o["rho"]),
        )
    elif name == "apgd-t":
        attack = torchattacks.APGDT(
            model,
            norm=spec.norm,
            eps=eps,
            steps=spec.steps,
            n_restarts=spec.restarts,
            seed=seed,
            rho=float(o["rho"]),
            n_classes=n_classes,
        )
    elif name == "fab":
        attack = torchattacks.FAB(
            model,
            norm=spec.norm,
            eps=eps,
            steps=spec.steps,
            n_restarts=spec.restarts,
            alpha_max=float(o["alpha_max"]),
            eta=float(o["eta"]),
            beta=float(o["beta"]),
            seed=seed,
            multi_targeted=False,
            n_classes=n_classes,
        )
    elif name == "autoattack":
        attack = build_autoattack(
            model, norm=spec.norm, eps=eps, n_classes=n_classes, seed=seed, steps=spec.steps, queries=int(o["queries"])
        )
    else:  # pragma: no cover - the registry and this switch are kept in step
        raise AttackConfigError(f"attack {name!r} has no builder")
    if spec.targeted:
        attack.set_mode_targeted_by_label(quiet=True)
    return attack


def build_autoattack(
    model: nn.Module, *, norm: str, eps: float, n_classes: int, seed: int = 0, steps: int = 100, queries: int = 5000
):
    """Standard AutoAttack (Croce & Hein 2020) with the original iteration counts.

    torchattacks' ``AutoAttack(version="standard")`` builds APGD-CE, APGD-T, FAB-T and
    Square, but with torchattacks' default of 10 steps for the three gradient
    attacks; the original runs 100. We build it and raise ``steps`` on each
    sub-attack, so what runs is APGD-CE-100, APGD-T-100 (9 target classes),
    FAB-T-100 (9 target classes) and Square-5000.
    """
    import torchattacks

    attack = torchattacks.AutoAttack(model, norm=norm, eps=eps, version="standard", n_classes=n_classes, seed=seed)
    for sub in attack._autoattack.attacks:
        if isinstance(sub, torchattacks.Square):
            sub.n_queries = queries
        else:
            sub.steps = steps
    return attack


def autoattack_configuration(attack) -> list[dict[str, Any]]:
    """The sub-attacks of a built AutoAttack with their iteration budgets (for reports and tests)."""
    rows = []
    for sub in attack._autoattack.attacks:
        row = {"attack": type(sub).__name__, "norm": sub.norm, "eps": sub.eps}
        if hasattr(sub, "n_queries"):
            row["queries"] = sub.n_queries
        else:
            row["steps"] = sub.steps
        if getattr(sub, "n_target_classes", None) is not None and type(sub).__name__ != "APGD":
            row["target_classes"] = sub.n_target_classes
        rows.append(row)
    return rows


Builder = Callable[[AttackSpec, nn.Module, float], Any]
