"""What the strategies read of a search's configuration.

The search's own config (``nasbench.search_config.SearchConfig``) has every field named
here; the strategies depend on these read-only views of it, never on the search.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class SchedulerSettings(Protocol):
    """The options that decide the trial scheduler and the epochs of its rungs."""

    @property
    def scheduler(self) -> str: ...
    @property
    def objectives(self) -> Sequence[str]: ...
    @property
    def epochs(self) -> int: ...
    @property
    def grace_period(self) -> int: ...
    @property
    def reduction_factor(self) -> int: ...
    @property
    def multi_objective(self) -> bool: ...


class FidelitySettings(SchedulerSettings, Protocol):
    """The scheduler's options and the attacks measured at its rungs and at the end."""

    @property
    def rung_attack(self) -> str: ...
    @property
    def robust_eps(self) -> float: ...
    @property
    def robust_steps(self) -> int: ...
    @property
    def robust_samples(self) -> int: ...
