"""What a search space asks of the trial that drives it: Optuna's define-by-run calls.

An ``optuna.Trial`` (or ``FixedTrial``) fits, and so does any planner that answers the
same two calls, which lets a strategy propose a whole architecture by replaying them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class Trial(Protocol):
    """The two ``suggest_*`` calls of :class:`optuna.trial.Trial` that the spaces use."""

    def suggest_int(self, name: str, low: int, high: int) -> int:
        """An integer in ``low..high`` for the parameter ``name``."""
        ...

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        """One of ``choices`` for the parameter ``name``."""
        ...
