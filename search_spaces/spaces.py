"""Search spaces by name: ``get_space("macro" | "cell", input_shape, **options)``.

Each space is a dataclass whose fields are its options and whose ``sample(trial)``
asks an Optuna trial for one architecture, define-by-run.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from search_spaces.cell.space import CellSpace
from search_spaces.errors import InvalidArchitecture
from search_spaces.macro.space import MacroSpace

SPACES: dict[str, type[MacroSpace] | type[CellSpace]] = {"macro": MacroSpace, "cell": CellSpace}


def get_space(name: str, input_shape: Any, **options: Any) -> MacroSpace | CellSpace:
    """The search space ``name`` ("macro" or "cell") for ``input_shape`` = (C, H, W)."""
    try:
        cls = SPACES[name]
    except KeyError:
        raise InvalidArchitecture(f"unknown search space {name!r}; expected one of {', '.join(SPACES)}") from None
    known = sorted(f.name for f in fields(cls) if f.name != "input_shape")
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise InvalidArchitecture(f"unknown option(s) {', '.join(unknown)}; the {name} space takes {', '.join(known)}")
    try:
        return cls(tuple(input_shape), **options)
    except TypeError as error:  # a value of the wrong type, e.g. a string where numbers go
        raise InvalidArchitecture(f"search space {name!r}: {error}") from None
