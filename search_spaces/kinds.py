"""The registry of architecture kinds, and everything done to an architecture by kind.

Each kind of architecture (``"macro"``: Zoph & Le's chain of conv layers, ``"cell"``:
NAS-Bench-201's cell) registers one :class:`ArchKind`: how its spec reads from and
writes to a dict, how it is validated on an input shape, built into a module, reduced
to a canonical form and named. The functions below look the kind up by the spec's type
(or, for a dict, by its ``"kind"`` field) and call it, so no code outside a kind's own
package asks which kind it holds. In the style of timm's model registry: dispatch by
registered name, no ``isinstance`` chains.

Kinds register when their package is imported, which ``import search_spaces`` does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from search_spaces import fields
from search_spaces.errors import InvalidArchitecture, NotAnArchitecture
from search_spaces.fields import Shape

SPEC_VERSION = 1
"""Version of the serialised form; bumped whenever a field changes meaning."""

DEFAULT_KIND = "macro"
"""The kind of a dict written before architectures carried a ``"kind"`` field."""


@dataclass(frozen=True)
class ArchKind:
    """What the registry knows about one kind of architecture spec.

    ``to_dict`` writes the spec's own fields (the registry adds ``kind`` and
    ``version``); ``from_dict`` reads them back from a dict already checked for its
    version and raises :class:`InvalidArchitecture` on anything malformed. ``validate``
    raises when the spec cannot run on an input shape, ``build`` validates and returns
    the module, ``canonical_form`` is equal for specs that compute the same function,
    and ``display_name`` names a spec in tables. ``legacy_field`` marks a dict of this
    kind written without its ``kind``.
    """

    name: str
    spec_type: type
    to_dict: Callable[[Any], dict[str, Any]]
    from_dict: Callable[[dict[str, Any]], Any]
    validate: Callable[[Any, Shape], None]
    build: Callable[[Any, Shape, int], nn.Module]
    canonical_form: Callable[[Any], dict[str, Any]]
    display_name: Callable[[Any], str]
    legacy_field: str | None = None


_KINDS: dict[str, ArchKind] = {}
_BY_TYPE: dict[type, ArchKind] = {}


def register_kind(kind: ArchKind) -> ArchKind:
    """Add ``kind`` to the registry (once per name and spec type)."""
    if kind.name in _KINDS or kind.spec_type in _BY_TYPE:
        raise ValueError(f"architecture kind {kind.name!r} is registered twice")
    _KINDS[kind.name] = kind
    _BY_TYPE[kind.spec_type] = kind
    return kind


def kind_of(arch: object) -> ArchKind:
    """The registered kind of the spec ``arch``; :class:`NotAnArchitecture` if none."""
    for cls in type(arch).__mro__:
        kind = _BY_TYPE.get(cls)
        if kind is not None:
            return kind
    raise NotAnArchitecture(f"not an architecture: {type(arch).__name__}")


def kind_named(name: object) -> ArchKind:
    """The registered kind called ``name``; :class:`InvalidArchitecture` if none."""
    kind = _KINDS.get(name) if isinstance(name, str) else None
    if kind is None:
        names = [repr(n) for n in sorted(_KINDS)]
        either = " or ".join(names) if len(names) <= 2 else ", ".join(names[:-1]) + " or " + names[-1]
        raise InvalidArchitecture(f"kind must be {either}, not {name!r}")
    return kind


# ------------------------------------------------------------------ serialisation


def arch_to_dict(arch: object) -> dict[str, Any]:
    """The JSON-ready dict of an architecture spec, carrying its ``kind`` and ``version``."""
    kind = kind_of(arch)
    return {"kind": kind.name, "version": SPEC_VERSION, **kind.to_dict(arch)}


def _dict_kind(data: dict[str, Any]) -> ArchKind:
    if "kind" in data:
        return kind_named(data["kind"])
    legacy = (k for k in _KINDS.values() if k.legacy_field is not None and k.legacy_field in data)
    return next(legacy, None) or kind_named(DEFAULT_KIND)


def arch_from_dict(data: Any) -> Any:
    """Inverse of :func:`arch_to_dict`; raises :class:`InvalidArchitecture` on malformed input."""
    if not isinstance(data, dict):
        raise InvalidArchitecture(f"an architecture must be a JSON object, not {type(data).__name__}")
    version = data.get("version", SPEC_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidArchitecture(f"version must be a positive integer, not {version!r}")
    if version > SPEC_VERSION:
        raise InvalidArchitecture(
            f"architecture spec version {version} is newer than this nasbench understands (version {SPEC_VERSION})"
        )
    return _dict_kind(data).from_dict(data)


def arch_to_json(arch: object, indent: int | None = None) -> str:
    """:func:`arch_to_dict` as JSON text."""
    return json.dumps(arch_to_dict(arch), indent=indent)


def arch_from_json(text: str) -> Any:
    """Inverse of :func:`arch_to_json`; bad JSON is an :class:`InvalidArchitecture` naming line and column."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidArchitecture(f"not valid JSON (line {error.lineno}, column {error.colno}): {error.msg}") from None
    return arch_from_dict(data)


# ------------------------------------------------------- validating and building


def validate(arch: object, input_shape: Any) -> None:
    """Raise :class:`InvalidArchitecture` if ``arch`` cannot run on ``input_shape`` (C, H, W)."""
    kind_of(arch).validate(arch, fields.input_shape(input_shape))


def build_model(arch: object, input_shape: Any, num_classes: int) -> nn.Module:
    """Build ``arch`` (an ``Arch`` or a ``CellArch``) for ``input_shape`` = (C, H, W).

    Validates first, so a bad architecture raises :class:`InvalidArchitecture` with
    a reason instead of a shape error later. No input normalisation inside.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise InvalidArchitecture(f"num_classes must be a positive integer, not {num_classes!r}")
    shape = fields.input_shape(input_shape)
    return kind_of(arch).build(arch, shape, num_classes)


build = build_model
"""The short name: ``build(arch, input_shape, num_classes) -> nn.Module``."""


def display_name(arch: object) -> str:
    """How tables name ``arch``: its own name, or its kind and what identifies it."""
    return kind_of(arch).display_name(arch)


# ----------------------------------------------------------------------- hashing


def canonical_form(arch: object) -> dict[str, Any]:
    """A JSON-ready dict, equal for architectures that compute the same function.

    NAS-Bench users drown in isomorphic duplicates (Dong & Yang 2020 find 6,466 unique
    cells among NAS-Bench-201's 15,625), so the store and the search deduplicate on
    :func:`arch_hash` of this form. Each kind says what its form forgets.
    """
    kind = kind_of(arch)
    return {"kind": kind.name, **kind.canonical_form(arch)}


def arch_hash(arch: object) -> str:
    """SHA-256 (hex) of :func:`canonical_form`: equal for equivalent architectures."""
    text = json.dumps(canonical_form(arch), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
