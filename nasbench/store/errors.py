"""The store's errors: a request it cannot serve, and a row it refuses to store."""

from __future__ import annotations

from nasbench.errors import UserError


class BenchmarkError(UserError, ValueError):
    """A benchmark file or request that cannot be served: one clear line.

    A ``ValueError`` for Python callers and a ``UserError`` for the CLI (exit 2).
    """


class InvalidRow(BenchmarkError):
    """A row given to :meth:`Benchmark.record` is missing keys or has bad values."""
