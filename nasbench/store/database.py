"""One open benchmark file: refusing what is not ours, the pragmas that make it safe
to share, migrating its schema, and the locked reads and write transactions over it."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from nasbench.store.errors import BenchmarkError
from nasbench.store.journal import journal_mode_for
from nasbench.store.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION, SQLITE_MAGIC


class Database:
    """The SQLite connection to one benchmark file, shared safely by a process's threads.

    Opening checks the file, sets the journal (``journal_mode`` or
    :func:`journal_mode_for` the path), turns foreign keys on and migrates the schema;
    every error on the way is a :class:`BenchmarkError` and leaves the file untouched.
    """

    def __init__(self, path: str | os.PathLike, *, create: bool, timeout: float, journal_mode: str | None):
        self.path = Path(path)
        self.timeout = float(timeout)
        _check_path(self.path, create)
        self.lock = threading.RLock()
        uri = f"file:{quote(str(self.path.resolve()))}?mode={'rwc' if create else 'rw'}"
        try:
            self.conn = sqlite3.connect(
                uri, uri=True, timeout=self.timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as error:
            raise BenchmarkError(f"cannot open benchmark {self.path}: {error}") from None
        try:
            self.conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            self.journal_mode = journal_mode or journal_mode_for(self.path)
            self._set_journal_mode(self.journal_mode)
            self.conn.execute("PRAGMA foreign_keys = ON")
            # With WAL, NORMAL loses nothing when a process dies; only a power cut
            # can roll back the last transactions, and never corrupts the file. The
            # rollback journal needs FULL for the same guarantee.
            self.conn.execute(f"PRAGMA synchronous = {'NORMAL' if self.journal_mode == 'wal' else 'FULL'}")
            self._migrate()
        except sqlite3.DatabaseError as error:
            self.conn.close()
            raise BenchmarkError(f"{self.path} is not a usable benchmark database: {error}") from None
        except BaseException:
            self.conn.close()
            raise

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Every record ``sql`` selects; a damaged file is a :class:`BenchmarkError`."""
        with self.lock:
            try:
                return self.conn.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as error:
                raise BenchmarkError(f"cannot read benchmark {self.path}: {error}") from None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: BEGIN IMMEDIATE takes the write lock up front (waiting
        for it), so a transaction never fails half-way on a lock upgrade."""
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    def _set_journal_mode(self, wanted: str) -> None:
        # Switching a brand-new file's journal needs a moment of exclusive access; when
        # several workers open it at once the busy handler is not always consulted.
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                mode = self.conn.execute(f"PRAGMA journal_mode = {wanted}").fetchone()[0]
                break
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        if str(mode).lower() != wanted:
            raise BenchmarkError(
                f"{self.path}: the file system does not support SQLite's {wanted} journal "
                f"(journal mode stayed {mode!r}); use a local disk"
            )

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            self._check_application_id()
            return
        if version > SCHEMA_VERSION:
            raise BenchmarkError(
                f"{self.path} has benchmark schema v{version}, newer than this "
                f"nasbench reads (v{SCHEMA_VERSION}); upgrade nasbench"
            )
        with self.transaction() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]  # another process may have won
            if version == 0:
                self._claim_empty_file(conn)
            else:
                self._check_application_id()
            for step in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[step]:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _claim_empty_file(self, conn: sqlite3.Connection) -> None:
        """Mark a database without a schema as ours, unless another program's tables are in it."""
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        if tables:
            raise BenchmarkError(
                f"{self.path} is a SQLite database of another program "
                f"(tables: {', '.join(sorted(tables)[:5])}); left untouched"
            )
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")

    def _check_application_id(self) -> None:
        app = self.conn.execute("PRAGMA application_id").fetchone()[0]
        if app != APPLICATION_ID:
            raise BenchmarkError(
                f"{self.path} is a SQLite database of another program (application id {app:#x}); left untouched"
            )


def _check_path(path: Path, create: bool) -> None:
    """Refuse a directory, a file that is not SQLite, and a missing file or directory."""
    if path.is_dir():
        raise BenchmarkError(f"{path} is a directory, not a benchmark database file")
    if path.exists():
        try:
            with path.open("rb") as handle:
                header = handle.read(len(SQLITE_MAGIC))
        except OSError as error:
            raise BenchmarkError(f"cannot read {path}: {error.strerror or error}") from None
        # An empty file is what sqlite3 leaves for a database never written to.
        if header and header != SQLITE_MAGIC:
            raise BenchmarkError(
                f"{path} is not a SQLite database (left untouched); give the path of a nasbench benchmark .db file"
            )
    elif not create:
        raise BenchmarkError(f"no benchmark database at {path}")
    elif not path.parent.exists():
        raise BenchmarkError(f"cannot create benchmark {path}: directory {path.parent} does not exist")
