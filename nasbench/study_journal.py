"""The Optuna study's journal file, as the search driver writes it. Imported late: it
imports Optuna."""

from __future__ import annotations

from optuna.storages.journal import JournalFileBackend
from optuna.storages.journal._file import get_lock_file


class DriverJournalFile(JournalFileBackend):
    """Optuna's journal file without an ``fsync`` per append.

    Optuna syncs the file to disk on every operation, and a define-by-run trial is one
    operation per parameter: 20-odd syncs per trial (3 ms each here), all on the driver's
    loop, between one trial's end and the next one's start. Only the search driver writes
    the journal, and what it wrote survives the driver's death (``kill -9``) in the
    operating system's cache; a power cut may lose the last operations, never the file's
    sense: the same trade as the benchmark store's WAL with ``synchronous=NORMAL``. A line
    cut short is removed before the next run (``nasbench.study.repair_journal``).
    """

    def append_logs(self, logs: list[dict]) -> None:
        import json

        data = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs).encode("utf-8")
        with get_lock_file(self._lock), open(self._file_path, "ab") as handle:
            handle.write(data)
