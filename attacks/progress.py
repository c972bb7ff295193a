"""Progress of a long evaluation, counted in batches."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Budget", "Progress"]

Progress = Callable[[int, int, str], None]
"""``progress(done, total, description)``, called after every batch."""


class Budget:
    """Progress in batches: an upper bound fixed up front, topped up when work is skipped."""

    def __init__(self, progress: Progress | None, total: int):
        self.progress, self.total, self.done = progress, max(total, 1), 0

    def step(self, description: str, n: int = 1) -> None:
        self.done = min(self.done + n, self.total)
        if self.progress is not None:
            self.progress(self.done, self.total, description)

    def finish(self, description: str = "done") -> None:
        if self.done < self.total:
            self.step(description, self.total - self.done)
