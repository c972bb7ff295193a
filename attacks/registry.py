"""Registry of adversarial attacks over torchattacks, with validated parameters.

Every attack the platform runs is described by an :class:`AttackSpec` (name, norm,
eps, steps, restarts, targeted, extra options) and built into a torchattacks
object by :func:`attacks.builders.build_attack`. Specs are plain data, so they can be logged, put in
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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from attacks.eps import parse_radius, validate_eps
from attacks.errors import AttackConfigError

__all__ = [
    "ATTACKS",
    "AttackInfo",
    "AttackSpec",
    "list_attacks",
    "parse_attacks",
    "resolve_name",
]

NORMS = ("Linf", "L2")
MAX_STEPS = 100_000


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


def _info(
    name: str,
    title: str,
    paper: str,
    norms: Sequence[str],
    kind: str,
    cost: int,
    defaults: Mapping[str, Any],
    targeted: bool,
    cascade: bool,
    aliases: Sequence[str] = (),
) -> AttackInfo:
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


# --------------------------------------------------------------------------- specs


@dataclass(frozen=True, init=False)
class AttackSpec:
    """One attack with all its parameters.

    ``eps=None`` means "use the eps of the sweep" (for min-norm attacks it means
    unbounded). ``norm=None`` takes the attack's first norm and ``steps=None`` the
    registry's default. ``options`` holds the attack-specific knobs (``alpha``,
    ``decay``, ``queries``, ``c``, ``lr`` ...); unknown options are rejected. Once
    built, ``name`` and ``norm`` are canonical and ``options`` holds every default.
    """

    name: str
    norm: str
    eps: float | None
    steps: int | None
    restarts: int
    targeted: bool
    options: dict[str, Any]

    def __init__(
        self,
        name: str,
        norm: str | None = None,
        eps: float | None = None,
        steps: int | None = None,
        restarts: int = 1,
        targeted: bool = False,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        info = ATTACKS[resolve_name(name)]
        canonical = _canonical_norm(info, norm)
        values = {
            "name": info.name,
            "norm": canonical,
            "eps": None if eps is None else validate_eps(float(eps), canonical),
            "steps": _checked_steps(info, steps),
            "restarts": _checked_restarts(restarts),
            "targeted": _checked_targeted(info, targeted),
            "options": _merged_options(info, dict(options or {})),
        }
        for key, value in values.items():
            object.__setattr__(self, key, value)  # frozen: the dataclass's own __setattr__ refuses

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


def _canonical_norm(info: AttackInfo, norm: str | None) -> str:
    """``Linf`` or ``L2`` (``inf``, ``linf``, ``l2`` accepted), one the attack supports."""
    asked = norm or info.default_norm
    canonical = {"linf": "Linf", "l2": "L2", "inf": "Linf"}.get(str(asked).lower())
    if canonical is None or canonical not in info.norms:
        raise AttackConfigError(
            f"attack {info.name!r} does not support norm {asked!r}; choose from: {', '.join(info.norms)}"
        )
    return canonical


def _checked_steps(info: AttackInfo, steps: int | None) -> int | None:
    """The attack's step count (its default when ``None``); ``None`` for single-shot attacks."""
    if "steps" not in info.defaults:
        if steps is not None:
            raise AttackConfigError(f"attack {info.name!r} takes no steps (it is single-shot)")
        return None
    value = info.defaults["steps"] if steps is None else steps
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_STEPS:
        raise AttackConfigError(f"steps for {info.name!r} must be a whole number in [1, {MAX_STEPS}], got {value!r}")
    return value


def _checked_restarts(restarts: int) -> int:
    if isinstance(restarts, bool) or not isinstance(restarts, int) or restarts < 1:
        raise AttackConfigError(f"restarts must be a whole number >= 1, got {restarts!r}")
    return restarts


def _checked_targeted(info: AttackInfo, targeted: bool) -> bool:
    if targeted and not info.targeted:
        supported = ", ".join(n for n in list_attacks() if ATTACKS[n].targeted)
        raise AttackConfigError(f"attack {info.name!r} has no targeted mode; targeted attacks: {supported}")
    return targeted


def _merged_options(info: AttackInfo, options: dict[str, Any]) -> dict[str, Any]:
    """The attack's default options updated with ``options``, each known and in range."""
    allowed = {k for k in info.defaults if k != "steps"}
    unknown = set(options) - allowed
    if unknown:
        choices = ", ".join(sorted(allowed | {"steps", "restarts", "eps", "norm"})) or "none"
        raise AttackConfigError(f"unknown option {sorted(unknown)[0]!r} for attack {info.name!r}; options: {choices}")
    merged = {k: v for k, v in info.defaults.items() if k != "steps"}
    merged.update(options)
    _validate_options(info.name, merged)
    return merged


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))


def _validate_positive(name: str, options: dict[str, Any], key: str, integer: bool = False) -> None:
    value = options.get(key)
    if value is None:
        return
    bad = not _is_number(value) or value <= 0 or (integer and not float(value).is_integer())
    if bad:
        kind = "a whole number" if integer else "a number"
        raise AttackConfigError(f"option {key!r} of attack {name!r} must be {kind} > 0, got {value!r}")


def _validate_options(name: str, options: dict[str, Any]) -> None:
    for key in ("alpha", "c", "lr", "alpha_max", "eta"):
        _validate_positive(name, options, key)
    _validate_positive(name, options, "queries", integer=True)
    for key in ("decay", "overshoot", "kappa", "beta", "rho"):
        value = options.get(key)
        if value is not None and (not _is_number(value) or value < 0):
            raise AttackConfigError(f"option {key!r} of attack {name!r} must be a number >= 0, got {value!r}")
    if "p_init" in options and not 0 < options["p_init"] <= 1:
        raise AttackConfigError(f"option 'p_init' of attack {name!r} must be in (0, 1]")
    if "loss" in options:
        valid = ("margin", "ce") if name == "square" else ("ce", "dlr")
        if options["loss"] not in valid:
            raise AttackConfigError(f"loss {options['loss']!r} of attack {name!r}; choose from: {', '.join(valid)}")
    if "version" in options and options["version"] != "standard":
        raise AttackConfigError("only the 'standard' AutoAttack version is supported")


# --------------------------------------------------------------------------- parsing


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
        return parse_radius(low, "L2")
    try:
        return float(low)
    except ValueError:
        return text.strip()


def _make_spec(name: str, params: dict[str, Any]) -> AttackSpec:
    fields = {k: v for k, v in params.items() if k in _SPEC_FIELDS}
    options = {k: v for k, v in params.items() if k not in _SPEC_FIELDS}
    if "eps" in fields and isinstance(fields["eps"], str):
        fields["eps"] = parse_radius(fields["eps"], fields.get("norm", "L2") or "L2")
    return AttackSpec(name, options=options, **fields)


def _spec_params(item: str | AttackSpec) -> tuple[str, dict[str, Any]]:
    """The name and the parameters of ``"pgd:steps=20"`` or of a spec (less its defaults)."""
    if isinstance(item, AttackSpec):
        params = item.to_dict()
        params.pop("name")
        # to_dict flattens defaults into the options; keep only what differs.
        for key, value in ATTACKS[item.name].defaults.items():
            if key != "steps" and params.get(key) == value:
                params.pop(key)
        return item.name, params
    name, *pairs = str(item).strip().split(":")
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise AttackConfigError(f"attack option {pair!r} must look like key=value (e.g. pgd:steps=20)")
        params[key.strip().replace("-", "_")] = _coerce(value)
    return name, params


def _apply_overrides(info: AttackInfo, params: dict[str, Any], overrides: dict[str, Any]) -> set[str]:
    """Set in ``params`` the overrides this attack takes and it does not set itself; return their keys."""
    accepted = _SPEC_FIELDS | set(info.defaults) | {"steps"}
    used = set()
    for key, value in overrides.items():
        if key in params or key not in accepted:
            continue
        if key == "steps" and "steps" not in info.defaults:
            continue
        if key == "targeted" and value and not info.targeted:
            continue
        params[key] = value
        used.add(key)
    return used


def _check_overrides_used(specs: list[AttackSpec], overrides: dict[str, Any], used: set[str]) -> None:
    # targeted=False or restarts=1 are defaults: harmless even when no attack takes them.
    unused = {k for k in set(overrides) - used if not (k == "targeted" and not overrides[k])}
    if unused:
        key = sorted(unused)[0]
        raise AttackConfigError(f"no attack in {', '.join(s.name for s in specs)} takes the parameter {key!r}")
    if overrides.get("targeted") and not any(s.targeted for s in specs):
        supported = ", ".join(n for n in list_attacks() if ATTACKS[n].targeted)
        raise AttackConfigError(f"none of these attacks has a targeted mode; targeted attacks: {supported}")


def _check_listed_once(specs: list[AttackSpec]) -> None:
    seen: set[tuple[str, str, float | None, int | None]] = set()
    for spec in specs:
        key = (spec.name, spec.norm, spec.eps, spec.steps)
        if key in seen:
            raise AttackConfigError(f"attack {spec.label!r} is listed twice")
        seen.add(key)


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
    specs: list[AttackSpec] = []
    used: set[str] = set()
    for item in items:
        name, params = _spec_params(item)
        info = ATTACKS[resolve_name(name)]
        used |= _apply_overrides(info, params, overrides)
        specs.append(_make_spec(info.name, params))
    _check_overrides_used(specs, overrides, used)
    _check_listed_once(specs)
    return sorted(specs, key=lambda s: s.info.cost)
