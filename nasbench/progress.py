"""Live progress of a search in the terminal: a Ray Tune ``Callback`` on the driver.

One line, refreshed a few times a second (rich ``Live``)::

    search  12/40 done  2 running  1 failed  3 deduplicated  2 pruned  best val_acc 0.9722  elapsed 0:41  ETA 1:36

With several objectives "best" becomes the size of the Pareto front seen so far. When
the output is not a terminal (CI, a log file) the same line is printed every 10 s
instead of redrawn. :class:`ProgressState` holds the numbers and is independent of
Ray and rich, so it is tested on its own. Imported late: it imports Ray Tune.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ray.tune import Callback

from nasbench.trial_context import OBJECTIVES

if TYPE_CHECKING:  # rich is imported when the line is first drawn
    from rich.live import Live


def _dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """``a`` is at least as good everywhere and better somewhere (all values maximised)."""
    return all(x >= y for x, y in zip(a, b, strict=True)) and any(x > y for x, y in zip(a, b, strict=True))


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "--:--"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass
class ProgressState:
    """Counts of a search's trials, the best so far and the time left.

    ``already`` holds the counts of a resumed search's earlier runs (from the study), so
    the display continues where the last driver stopped; the ETA extrapolates from the
    trials finished by this driver only.
    """

    total: int
    objectives: list[str] = field(default_factory=lambda: ["val_acc"])
    done: int = 0
    failed: int = 0
    pruned: int = 0
    deduplicated: int = 0
    running: int = 0
    done_here: int = 0
    best: float | None = None
    front: list[tuple[float, ...]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def start_trial(self) -> None:
        self.running += 1

    def finish_trial(self, result: dict | None, error: bool = False) -> None:
        """Count one finished trial from its last result (None if its worker died)."""
        result = result or {}
        self.running = max(0, self.running - 1)
        self.done += 1
        self.done_here += 1
        if error or result.get("status") == "failed":
            self.failed += 1
            return
        if not result.get("trial_complete"):
            self.pruned += 1
            return
        if result.get("status") == "deduplicated":
            self.deduplicated += 1
        self._update_best(result)

    def _signed(self, result: dict) -> tuple[float, ...] | None:
        values = []
        for name in self.objectives:
            key, mode = OBJECTIVES[name]
            value = result.get(key)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                return None
            values.append(float(value) if mode == "max" else -float(value))
        return tuple(values)

    def _update_best(self, result: dict) -> None:
        point = self._signed(result)
        if point is None:
            return
        if len(self.objectives) == 1:
            key, mode = OBJECTIVES[self.objectives[0]]
            value = float(result[key])
            if self.best is None or (value > self.best if mode == "max" else value < self.best):
                self.best = value
            return
        if any(_dominates(other, point) or other == point for other in self.front):
            return
        self.front = [other for other in self.front if not _dominates(point, other)] + [point]

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def eta(self) -> float:
        """Seconds left at this driver's rate so far; inf before the first trial ends."""
        left = max(0, self.total - self.done)
        if left == 0:
            return 0.0
        if self.done_here == 0:
            return math.inf
        return self.elapsed / self.done_here * left

    def line(self) -> str:
        parts = [
            f"{self.done}/{self.total} done",
            f"{self.running} running",
            f"{self.failed} failed",
            f"{self.deduplicated} deduplicated",
        ]
        if self.pruned:
            parts.append(f"{self.pruned} pruned")
        if len(self.objectives) == 1:
            shown = "-" if self.best is None else f"{self.best:.4g}"
            parts.append(f"best {self.objectives[0]} {shown}")
        else:
            parts.append(f"Pareto front {len(self.front)}")
        parts.append(f"elapsed {_clock(self.elapsed)}")
        parts.append(f"ETA {_clock(self.eta)}")
        return "  ".join(parts)


class SearchProgress(Callback):
    """Ray Tune callback that keeps a :class:`ProgressState` and draws it.

    Use as a context manager around ``Tuner.fit()``: the live line starts and stops
    with it.
    """

    refresh_seconds = 0.25
    plain_every_seconds = 10.0

    def __init__(
        self, total: int, already: dict | None = None, objectives=("val_acc",), enabled: bool = True, console=None
    ):
        already = already or {}
        self.state = ProgressState(
            total=total,
            objectives=list(objectives),
            done=already.get("finished", 0),
            failed=already.get("failed", 0),
            pruned=already.get("pruned", 0),
            deduplicated=already.get("deduplicated", 0),
        )
        self.enabled = enabled
        self._console = console
        self._live: Live | None = None
        self._last_draw = 0.0

    # -- pickling: ``Tuner`` pickles its callbacks into the experiment's ``tuner.pkl``; a
    # rich Console (and the Live display's refresh thread) holds locks that cannot be
    # pickled. The copy keeps the counts and draws nothing; this instance keeps drawing.
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_console"] = None
        state["_live"] = None
        return state

    # -- drawing
    def __enter__(self) -> SearchProgress:
        if not self.enabled:
            return self
        from rich.console import Console
        from rich.live import Live

        console = self._console or Console(stderr=True)
        self._console = console
        if console.is_terminal:
            self._live = Live(self._render(), console=console, refresh_per_second=4, transient=False)
            self._live.start()
        return self

    def __exit__(self, *exc_info) -> None:
        if not self.enabled:
            return
        if self._live is not None:
            self._live.update(self._render())
            self._live.stop()
            self._live = None
        else:
            self._console.print(self._render())

    def _render(self):
        from rich.text import Text

        return Text("search  " + self.state.line())

    def _draw(self, force: bool = False) -> None:
        if not self.enabled or self._console is None:
            return
        now = time.monotonic()
        if self._live is not None:
            if force or now - self._last_draw >= self.refresh_seconds:
                self._live.update(self._render())
                self._last_draw = now
        elif force or now - self._last_draw >= self.plain_every_seconds:
            self._console.print(self._render())
            self._last_draw = now

    # -- Ray Tune callback hooks (driver side)
    def on_trial_start(self, iteration, trials, trial, **info):
        self.state.start_trial()
        self._draw()

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.state.finish_trial(trial.last_result, error=False)
        self._draw(force=self._live is not None)

    def on_trial_error(self, iteration, trials, trial, **info):
        self.state.finish_trial(trial.last_result, error=True)
        self._draw(force=self._live is not None)

    def on_step_end(self, iteration, trials, **info):
        self._draw()
