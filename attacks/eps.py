"""Radii of an evaluation: parsed from text once, validated, held per norm.

Users write radii as ``8/255``, ``0.031`` or comma-separated lists of those;
:func:`parse_eps` and :func:`parse_eps_list` read one norm's radii, and
:func:`parse_eps_sweep` reads a whole sweep into an :class:`EpsSweep`, the one form
the engine takes. A radius is validated for its norm: a Linf radius lies in
[0, 1] (images lie in [0, 1]), an L2 radius in [0, ``MAX_L2_EPS``].
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeAlias

from attacks.errors import AttackConfigError

__all__ = [
    "MAX_L2_EPS",
    "NOISE_GROUP",
    "EpsInput",
    "EpsSweep",
    "EpsText",
    "parse_eps",
    "parse_eps_list",
    "parse_eps_sweep",
    "parse_radius",
    "validate_eps",
]

# The L2 diameter of [0,1]^d is sqrt(d): 388 for a 3x224x224 image. Anything above
# is larger than every image space we load and is certainly a typo.
MAX_L2_EPS = 400.0
# The Gaussian-noise baseline is swept over its noise's standard deviations, with Linf's range.
NOISE_GROUP = "gaussian"

Radius: TypeAlias = str | float
# One norm's radii: "0,1/255,8/255", a single radius, or a sequence of radii.
EpsText: TypeAlias = str | float | Iterable[Radius]

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_GROUPS = {"linf": "Linf", "l2": "L2", NOISE_GROUP: NOISE_GROUP}


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


def parse_radius(text: Radius, norm: str) -> float:
    """One radius, ``8/255`` or ``0.031`` (or a number), validated for ``norm``."""
    if isinstance(text, bool):
        raise AttackConfigError(f"eps must be a number such as 8/255 or 0.031, not {text!r}")
    if isinstance(text, (int, float)):
        return validate_eps(float(text), norm)
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
    return validate_eps(value, norm)


def parse_eps(text: EpsText, norm: str = "Linf") -> float | list[float]:
    """Parse eps given as ``8/255``, ``0.031`` or a comma-separated list of those.

    A single value (no comma) gives a float, a comma-separated list gives a sorted,
    de-duplicated list of floats: ``parse_eps("8/255") == 8/255`` and
    ``parse_eps("0,1/255,8/255") == [0.0, 1/255, 8/255]``. Use :func:`parse_eps_list`
    to always get a list.
    """
    if isinstance(text, str) and "," not in text and text.strip():
        return parse_radius(text, norm)
    if isinstance(text, (int, float)):
        return parse_radius(text, norm)
    return parse_eps_list(text, norm)


def parse_eps_list(text: EpsText, norm: str = "Linf") -> list[float]:
    """Like :func:`parse_eps` but always a sorted list (``"8/255"`` -> ``[0.0314]``)."""
    items: list[Radius]
    if isinstance(text, str):
        items = [t for t in text.split(",") if t.strip()]
    elif isinstance(text, (int, float)):
        items = [text]
    else:
        items = list(text)
    if not items:
        raise AttackConfigError("no eps given; write them as 0,1/255,8/255")
    return sorted({parse_radius(item, norm) for item in items})


@dataclass(frozen=True)
class EpsSweep:
    """The radii an evaluation sweeps, per norm group, each sorted and validated.

    ``linf`` and ``l2`` are the radii of the Linf and L2 attacks (``None``: not
    given); ``gaussian`` holds the standard deviations of the Gaussian-noise
    baseline, in Linf's range. Build one with :func:`parse_eps_sweep`.
    """

    linf: tuple[float, ...] | None
    l2: tuple[float, ...] | None
    gaussian: tuple[float, ...]

    def radii(self, group: str) -> tuple[float, ...]:
        """The radii of ``group`` (``Linf``, ``L2`` or ``gaussian``); an error when not given."""
        values = {"Linf": self.linf, "L2": self.l2, NOISE_GROUP: self.gaussian}[group]
        if values is None:
            raise AttackConfigError(f"no eps given for norm {group}; give eps as {{'{group}': [...]}}")
        return values

    def require(self, groups: Iterable[str]) -> None:
        """Raise :class:`AttackConfigError` for the first of ``groups`` that has no radii."""
        for group in groups:
            self.radii(group)

    def as_dict(self, groups: Iterable[str]) -> dict[str, list[float]]:
        """``{group: radii}`` for the ``groups`` an evaluation ran (for its threat model)."""
        wanted = set(groups)
        return {group: list(self.radii(group)) for group in ("Linf", "L2", NOISE_GROUP) if group in wanted}


EpsInput: TypeAlias = EpsSweep | EpsText | Mapping[str, EpsText]


def parse_eps_sweep(eps: EpsInput) -> EpsSweep:
    """Read a sweep: one list of radii for every norm, or ``{"Linf": [...], "L2": [...]}``.

    A list (``"0,1/255,8/255"``, ``[0, 0.1]``, ``0.1``) serves every norm and the
    Gaussian baseline, so it must lie in Linf's range. In a mapping each norm's radii
    are validated for that norm; the Gaussian baseline takes ``"gaussian"`` when
    given, else the Linf radii, else no noise (``[0]``).
    """
    if isinstance(eps, EpsSweep):
        return eps
    if isinstance(eps, Mapping):
        return _sweep_per_norm(eps)
    radii = tuple(parse_eps_list(eps, "Linf"))
    return EpsSweep(linf=radii, l2=radii, gaussian=radii)


def _sweep_per_norm(eps: Mapping[str, EpsText]) -> EpsSweep:
    table: dict[str, tuple[float, ...]] = {}
    for key, values in eps.items():
        group = _GROUPS.get(str(key).lower())
        if group is None:
            raise AttackConfigError(f"unknown norm {key!r} in eps; choose from: Linf, L2")
        table[group] = tuple(parse_eps_list(values, "L2" if group == "L2" else "Linf"))
    linf = table.get("Linf")
    return EpsSweep(linf=linf, l2=table.get("L2"), gaussian=table.get(NOISE_GROUP, linf or (0.0,)))
