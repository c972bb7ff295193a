"""Ray Tune's progress table, silenced: :class:`nasbench.progress.SearchProgress` draws
the search's own line instead. Imported late: it imports Ray Tune."""

from __future__ import annotations

from ray.tune import ProgressReporter


class SilentReporter(ProgressReporter):
    """A progress reporter that never reports."""

    def should_report(self, trials, done=False):
        return False

    def report(self, trials, done, *sys_info):
        return None
