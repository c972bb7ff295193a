"""Checks of single values read from JSON or config files, each raising one clear line.

Shared by every kind of architecture and every search space, so that a typo reads the
same everywhere: ``layer 2.stride must be an integer, not '2'``.
"""

from __future__ import annotations

from typing import Any

from search_spaces.errors import InvalidArchitecture

Shape = tuple[int, int, int]
"""An input or feature-map shape: (channels, height, width)."""

# Upper bounds far beyond any published CNN (AlexNet's 11x11 filters, ResNet's 2,048
# channels, VGG's 4,096-wide dense layers), so that a typo such as 1e8 filters is a
# clear error instead of an attempt to allocate gigabytes.
MAX_LAYERS = 1024
MAX_FILTER_SIZE = 64
MAX_STRIDE = 64
MAX_PADDING = 64
MAX_FILTERS = 16_384
MAX_DENSE = 65_536


def check_keys(data: Any, allowed: set[str], where: str) -> dict[str, Any]:
    """``data`` as a dict whose keys are all in ``allowed``."""
    if not isinstance(data, dict):
        raise InvalidArchitecture(f"{where} must be a JSON object, not {type(data).__name__}")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise InvalidArchitecture(
            f"{where}: unknown field(s) {', '.join(map(repr, unknown))}; expected some of {', '.join(sorted(allowed))}"
        )
    return data


def integer(value: Any, where: str, minimum: int, maximum: int | None = None) -> int:
    """``value`` as an integer (not a bool) in ``minimum..maximum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArchitecture(f"{where} must be an integer, not {value!r}")
    if maximum is None and value < minimum:
        raise InvalidArchitecture(f"{where} must be >= {minimum}, not {value}")
    if maximum is not None and not minimum <= value <= maximum:
        raise InvalidArchitecture(f"{where} must be in {minimum}..{maximum}, not {value}")
    return value


def boolean(value: Any, where: str) -> bool:
    """``value`` as true or false (JSON's booleans only)."""
    if not isinstance(value, bool):
        raise InvalidArchitecture(f"{where} must be true or false, not {value!r}")
    return value


def choice(value: Any, choices: tuple[str, ...], where: str) -> str:
    """``value`` as one of ``choices``."""
    if value not in choices:
        raise InvalidArchitecture(f"{where} must be one of {', '.join(choices)}, not {value!r}")
    return str(value)


def choices(name: str, values: Any, allowed: tuple[Any, ...] | None = None) -> tuple[Any, ...]:
    """A non-empty tuple of choices for a search space, each in ``allowed`` when given.

    A single string or number counts as one choice (``filters: 32`` in a config file).
    """
    result: tuple[Any, ...] = (values,) if isinstance(values, (str, int)) else tuple(values)
    if not result:
        raise InvalidArchitecture(f"{name} needs at least one choice")
    if allowed is not None:
        bad = [v for v in result if v not in allowed]
        if bad:
            raise InvalidArchitecture(
                f"{name}: unknown choice(s) {bad}; expected some of {', '.join(map(str, allowed))}"
            )
    return result


def positive_ints(name: str, values: Any) -> tuple[int, ...]:
    """A non-empty tuple of positive integers for a search space."""
    result = choices(name, values)
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in result):
        raise InvalidArchitecture(f"{name} must be positive integers, not {result}")
    return result


def input_shape(value: Any) -> Shape:
    """``value`` as a positive (channels, height, width)."""
    try:
        c, h, w = (int(v) for v in value)
    except (TypeError, ValueError):
        raise InvalidArchitecture(f"input shape must be (channels, height, width), not {value!r}") from None
    if min(c, h, w) < 1:
        raise InvalidArchitecture(f"input shape must be positive, not {c}x{h}x{w}")
    return c, h, w
