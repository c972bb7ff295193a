"""The search driver's single writer: every trial's MLflow child run and benchmark row.

Trials are pure compute; what they report reaches the driver through Ray Tune, and the
driver writes it here, on one background thread, in batches:

- a trial's start opens its child run (RUNNING, with its tags, params, ``arch.json`` and
  the search's dataset input), its epochs stream in as metrics at ``step=epoch``, and its
  end writes the final metrics, the status and reason tags and ends the run;
- the store rows of all trials that ended since the last batch go in one transaction;
- the weights a trial reported as a Ray Tune checkpoint are filed under
  ``<experiment>/checkpoints/<hash>/`` with the trial's MLflow run id in ``meta.json``.

One writer means no SQLite lock contention however many trials run at once, no SQLite
file shared between hosts, and trial actors that never import MLflow.

Nothing a trial finished is lost if the driver dies: :class:`Outbox` keeps each finished
trial's record in ``results.jsonl`` *before* Optuna is told, and marks it written once its
run and row are; ``--resume`` writes what is still unmarked (:func:`recover`).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

from nasbench.outcomes import FINAL_METRICS, finite

# Final metrics logged to a trial's run: the epoch is the step, the device no number.
_RUN_METRICS = tuple(name for name in FINAL_METRICS if name not in ("epoch", "device"))
# A running trial's curve reaches MLflow at most this often: each ``log_batch`` costs the
# driver ~7 ms of CPU that the trials' cores pay for, and a trial of a few short epochs
# then sends its whole curve with its end in one batch; an epoch that ends more than
# this long after the last write is written at once.
LIVE_CURVE_SECONDS = 2.0
# The writer's nice value (Linux gives every thread its own): where trials share the
# driver's cores, their compute goes first and the writing fills the gaps between trials.
WRITER_NICENESS = 10


class Outbox:
    """``results.jsonl``: one line per finished trial (its record), then ``{"written": n}``
    once the driver has written trial ``n``'s MLflow run and store row.

    Appends are single ``write`` calls of whole lines: a driver killed mid-line leaves at
    most one partial last line, which the next driver cuts off (its trial, not yet told to
    Optuna, is run again).
    """

    def __init__(self, path: Path):
        self._open(path)

    def _open(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._cut_partial_line()

    def _cut_partial_line(self) -> None:
        """A line cut short by a killed driver would glue itself to the next append."""
        if not self.path.is_file():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(self.path, "r+b") as handle:
                handle.truncate(data.rfind(b"\n") + 1)

    def __getstate__(self) -> dict:  # Ray Tune pickles its callbacks into tuner.pkl
        return {"path": self.path}

    def __setstate__(self, state: dict) -> None:
        self._open(state["path"])

    def _append(self, entries: list[dict]) -> None:
        data = "".join(json.dumps(entry, default=str) + "\n" for entry in entries)
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, data.encode())
            finally:
                os.close(fd)

    def add(self, record: dict) -> None:
        self._append([{"record": record}])

    def mark_written(self, numbers: list[int]) -> None:
        if numbers:
            self._append([{"written": number} for number in numbers])

    def pending(self) -> list[dict]:
        """Records not yet marked written, in the order they were added."""
        if not self.path.is_file():
            return []
        records: dict[int, dict] = {}
        for line in self.path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:  # the partial last line of a killed driver
                continue
            if "record" in entry:
                records[int(entry["record"]["trial"])] = entry["record"]
            elif "written" in entry:
                records.pop(int(entry["written"]), None)
        return list(records.values())


class TrialWriter:
    """Writes trial runs and store rows from a queue, on one thread (``background``) or
    at once (``background=False``: recovery, tests).

    Args:
        tracking: ``nasbench.tracking.TrackingConfig`` or None (no MLflow).
        parent_run_id: the search's MLflow run.
        dataset: the search's ``DatasetDescription`` (every trial run's input).
        train_config: the trials' TrainConfig dump (params ``train.*``).
        store_path, store_journal: the benchmark store and its journal mode.
        checkpoints_dir: where the weights of trained architectures are filed.
        outbox: the :class:`Outbox` to mark written records in.
    """

    def __init__(
        self,
        *,
        tracking,
        parent_run_id: str | None,
        dataset,
        train_config: dict,
        store_path: str | None,
        store_journal: str | None,
        checkpoints_dir: Path,
        outbox: Outbox,
        identity: dict,
        background: bool = True,
    ):
        self.tracking, self.parent_run_id, self.dataset = tracking, parent_run_id, dataset
        self.train_config, self.store_path, self.store_journal = train_config, store_path, store_journal
        self.checkpoints_dir, self.outbox, self.identity = Path(checkpoints_dir), outbox, identity
        self._runs: dict[int, Any] = {}  # trial number -> open TrialRecorder
        self._store: Any = None  # nasbench.store.Benchmark, opened at the first row
        self._error: BaseException | None = None
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._loop, name="nasbench-trial-writer", daemon=True)
            self._thread.start()

    # ------------------------------------------------------------------ what the driver calls

    def start(self, number: int, arch: dict, arch_hash: str, rerun: bool) -> None:
        self._submit(("start", number, {"arch": arch, "arch_hash": arch_hash, "rerun": rerun}))

    def epoch(self, number: int, metrics: dict) -> None:
        self._submit(("epoch", number, metrics))

    def finish(self, record: dict) -> None:
        """Write a finished trial's record (already in the outbox)."""
        self._submit(("finish", int(record["trial"]), record))

    def close(self, interrupted: bool = False) -> None:
        """Write everything queued; runs of trials that never finished end ``interrupted``.
        Re-raises the first error of the writing thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        if self._error is None:
            for number in list(self._runs):
                self._runs.pop(number).finish(
                    "interrupted", "the search was interrupted" if interrupted else "the trial never reported its end"
                )
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def __getstate__(self) -> dict:
        # Ray Tune pickles its callbacks (and this with them) into the experiment's
        # tuner.pkl: the copy writes nothing
        return {"identity": self.identity}

    # ------------------------------------------------------------------ the writing thread

    def _submit(self, event: tuple) -> None:
        if self._thread is not None:
            self._queue.put(event)
        else:
            self._write([event])

    def _loop(self) -> None:
        _yield_to_trials()
        done = False
        while not done:
            try:
                events = [self._queue.get(timeout=LIVE_CURVE_SECONDS)]
            except queue.Empty:  # a quiet spell: the write below sends the curves held back
                events = []
            while True:  # everything that arrived meanwhile goes into the same batch
                try:
                    events.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            done = None in events
            if self._error is None:
                try:
                    self._write([event for event in events if event is not None])
                except BaseException as error:  # noqa: BLE001 - reported by close()
                    self._error = error

    def _write(self, events: list[tuple]) -> None:
        finished = []
        for kind, number, payload in events:
            if kind == "start":
                self._open(number, payload["arch"], payload["arch_hash"], payload["rerun"])
            elif kind == "epoch" and number in self._runs:
                self._runs[number].log_epoch(int(payload["epoch"]), payload)
            elif kind == "finish":
                finished.append(payload)
        rows = [self._finish_run(record) for record in finished]
        self._record_rows([row for row in rows if row is not None])
        self.outbox.mark_written([int(record["trial"]) for record in finished])
        for recorder in self._runs.values():  # the live curves whose time has come
            recorder.flush_if_due()

    def _open(self, number: int, arch: dict, arch_hash: str, rerun: bool):
        if self.tracking is None or self.parent_run_id is None:
            return None
        if number not in self._runs:
            from nasbench.tracking import open_trial_run

            self._runs[number] = open_trial_run(
                self.tracking,
                self.parent_run_id,
                number,
                arch=arch,
                arch_hash=arch_hash,
                train_config=self.train_config,
                dataset=self.dataset,
                flush_seconds=LIVE_CURVE_SECONDS,
                find_existing=rerun,
            )
        return self._runs[number]

    def _finish_run(self, record: dict) -> dict | None:
        """End the trial's run, file its weights; its store row (None: nothing to store)."""
        number = int(record["trial"])
        if number not in self._runs:  # answered on the driver, or recovered: no run opened yet
            self._open(
                number,
                record["arch"],
                record["arch_hash"],
                rerun=bool(record.get("rerun")) or record.get("recovered", False),
            )
        recorder = self._runs.pop(number, None)
        run_id = getattr(recorder, "run_id", None)
        metrics = record.get("metrics") or {}
        if recorder is not None:
            for entry in record.get("epochs") or []:  # answered trials: their curve, not streamed
                recorder.log_epoch(int(entry["epoch"]), entry)
            if record.get("recovered"):  # a killed driver may have held epochs it never wrote
                recorder.log_missing_epochs(record.get("curves") or [])
            step = int(metrics.get("epoch") or record.get("budget") or self.identity["budget"])
            recorder.log_metrics({k: v for k, v in metrics.items() if k in _RUN_METRICS and finite(v)}, step=step)
            recorder.finish(record["status"], record.get("reason"))
        if record.get("checkpoint"):
            self._file_checkpoint(record["checkpoint"], record["arch_hash"], run_id)
        if not record.get("store", True) or self.store_path is None:
            return None
        return self._row(record, run_id)

    def _row(self, record: dict, run_id: str | None) -> dict:
        metrics = record.get("metrics") or {}
        row = {
            **self.identity,
            "arch_hash": record["arch_hash"],
            "arch": record["arch"],
            "status": "ok" if record["status"] == "deduplicated" else record["status"],
            "reason": record.get("reason"),
            "curves": record.get("curves") or [],
            "mlflow_run_id": run_id,
            "robust": record.get("robust") or None,
        }
        for key in ("train_acc", "val_acc", "test_acc", "params", "macs", "latency_ms", "device", "train_seconds"):
            if metrics.get(key) is not None:
                row[key] = metrics[key]
        if "val_acc" not in row and row["curves"]:  # pruned: its last epoch's accuracy
            row["val_acc"] = row["curves"][-1].get("val_acc")
        return {k: v for k, v in row.items() if v is not None}

    def _record_rows(self, rows: list[dict]) -> None:
        if not rows or self.store_path is None:
            return
        if self._store is None:
            from nasbench.store import Benchmark

            self._store = Benchmark(self.store_path, journal_mode=self.store_journal)
        from nasbench.store import InvalidRow

        try:
            self._store.record_many(rows)
        except InvalidRow:  # one bad row must not keep the others out
            for row in rows:
                with contextlib.suppress(InvalidRow):
                    self._store.record(row)

    def _file_checkpoint(self, source: str, arch_hash: str, run_id: str | None) -> None:
        """Copy the weights Tune persisted (a local folder or a storage URI) to
        ``checkpoints/<hash>/``, the trial's MLflow run id added to its ``meta.json``."""
        import pyarrow.fs

        target = self.checkpoints_dir / arch_hash[:16]
        partial = target.with_name(f".{target.name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        pyarrow.fs.copy_files(source, str(partial), destination_filesystem=pyarrow.fs.LocalFileSystem())
        meta_path = partial / "meta.json"
        if meta_path.is_file():
            meta = json.loads(meta_path.read_text())
            meta["mlflow_run_id"] = run_id
            meta_path.write_text(json.dumps(meta, indent=2))
        if target.exists():
            shutil.rmtree(target)
        os.replace(partial, target)


def _yield_to_trials() -> None:
    """Lower the calling thread's priority to :data:`WRITER_NICENESS` (Linux only)."""
    if sys.platform == "linux":
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WRITER_NICENESS)


def recover(outbox: Outbox, writer: TrialWriter, study, metrics: list[str]) -> list[int]:
    """Write what a killed driver left unwritten; the trial numbers written.

    A record is in the outbox before Optuna hears of it, so a trial can be finished in
    the outbox and still RUNNING in Optuna (the driver died between the two): Optuna is
    told from the record then, instead of running the trial again.
    """
    from optuna.trial import TrialState

    from nasbench.outcomes import tell_study

    pending = outbox.pending()
    states = {t.number: t.state for t in study.get_trials(deepcopy=False)}
    for record in pending:
        number = int(record["trial"])
        if states.get(number) == TrialState.RUNNING:
            values = record.get("values")
            tell_study(study, number, record["status"], record.get("reason"), values)
        writer.finish({**record, "recovered": True})  # its run may exist already: found, not doubled
    return [int(record["trial"]) for record in pending]
