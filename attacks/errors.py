"""The error every attack module raises for a setting that cannot be used."""

from __future__ import annotations

__all__ = ["AttackConfigError"]


class AttackConfigError(ValueError):
    """An attack name, norm, eps or parameter that cannot be used (one clear line)."""
