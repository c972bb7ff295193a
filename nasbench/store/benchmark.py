"""The public face of the store: :class:`Benchmark`, one SQLite file that records,
looks up, ranks, summarises and exchanges trained architectures."""

from __future__ import annotations

import os
from collections.abc import Iterable

from nasbench.store import overview, parquet, queries, ranking, writes
from nasbench.store.database import Database
from nasbench.store.metrics import corruption_results


class Benchmark:
    """A tabular benchmark of trained architectures in one SQLite file.

    >>> bench = Benchmark("bench.db")                     # doctest: +SKIP
    >>> bench.record(row)                                 # True: inserted
    >>> bench.lookup(arch_hash, "digits", budget=10, seed=0)
    >>> bench.query(arch_hash, dataset="digits", epochs=10)   # mean over seeds
    >>> bench.top(5, by="robust:pgd:Linf:0.1", dataset="digits")
    >>> bench.pareto(["val_acc:max", "params:min"], dataset="digits")

    Args:
        path: the database file; created (with its directory's existing parent) when absent.
        create: when False, a missing file is an error instead of a new benchmark.
        timeout: seconds a writer waits for the write lock held by another process.
        journal_mode: ``"wal"`` or ``"delete"``; by default :func:`journal_mode_for` the
            path. Every process that opens one file must use the same mode: a search's
            workers take the driver's choice.

    Raises:
        BenchmarkError: the path is a directory, is not a SQLite file, is another
            program's database, is corrupt, or was written by a newer schema.
    """

    def __init__(
        self, path: str | os.PathLike, *, create: bool = True, timeout: float = 60.0, journal_mode: str | None = None
    ):
        self._db = Database(path, create=create, timeout=timeout, journal_mode=journal_mode)
        self.path = self._db.path
        self.timeout = self._db.timeout
        self.journal_mode = self._db.journal_mode

    def close(self) -> None:
        """Close the connection; the file stays consistent whether or not this is called."""
        self._db.close()

    def __enter__(self) -> Benchmark:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Benchmark({str(self.path)!r})"

    def __len__(self) -> int:
        return overview.count_rows(self._db)

    # --------------------------------------------------------------------- writing

    def record(self, row: dict) -> bool:
        """Store one trained architecture; True if inserted, False if its key already existed.

        The key is (arch_hash, dataset, budget, seed). An existing row is left as it is,
        so a retried or duplicated trial never overwrites the first result. The row and
        its robust accuracies are written in one transaction.

        Raises:
            InvalidRow: missing or unknown keys, or bad values (see :func:`validate_row`).
        """
        return writes.record(self._db, row)

    def record_many(self, rows: Iterable[dict], *, source: str | None = None) -> int:
        """Store many rows at once; the number inserted (rows whose key exists are skipped).

        Every row is validated before anything is written; then rows are written in
        transactions of ``IMPORT_CHUNK`` rows, so other writers are not starved and a
        killed process leaves whole chunks only. ``source`` names where the rows came
        from in error messages.
        """
        return writes.record_many(self._db, rows, source)

    def record_robustness(self, arch_hash: str, dataset: str, budget: int, seed: int, results: list[dict]) -> None:
        """Add or update robust accuracies of a stored row, one per (attack, norm, eps).

        ``results`` looks like ``[{"attack": "pgd", "norm": "Linf", "eps": 0.1,
        "accuracy": 0.42}, ...]``; a setting already stored is overwritten.
        """
        writes.record_robustness(self._db, arch_hash, dataset, budget, seed, results)

    def record_corruption(
        self, arch_hash: str, dataset: str, budget: int, seed: int, accuracy: dict[str, dict[int, float]]
    ) -> None:
        """Add or update the accuracies of a stored row under common corruptions,
        ``{corruption: {severity: accuracy}}``, with their means (:func:`corruption_results`)."""
        self.record_robustness(arch_hash, dataset, budget, seed, corruption_results(accuracy))

    # --------------------------------------------------------------------- reading

    def lookup(self, arch_hash: str, dataset: str, budget: int, seed: int) -> dict | None:
        """The stored row for this exact key, or None: what a search asks before training."""
        return queries.lookup(self._db, arch_hash, dataset, budget, seed)

    def query(
        self,
        arch_or_hash: str | dict,
        dataset: str | None = None,
        epochs: int | None = None,
        seed: int | None = None,
        reduce: str | None = "mean",
    ) -> dict | list[dict] | None:
        """What the benchmark knows about one architecture.

        Args:
            arch_or_hash: the architecture hash, or its dict form (hashed with
                ``search_spaces.arch_hash(search_spaces.arch_from_dict(d))``).
            dataset, epochs, seed: narrow the rows; ``epochs`` is the training budget.
            reduce: how seeds are combined: "mean" (NAS-Bench-201 reports the mean
                over seeds), "median", "min", "max"; None returns every row as stored.

        Returns:
            With ``seed`` given: that row, or None. With ``reduce=None``: the list of
            matching rows. Otherwise one summary per (dataset, budget): finished
            (``ok``) seeds reduced metric by metric, per-epoch curves and robust
            accuracies included, plus ``n_seeds``, ``seeds`` and ``n_unfinished``;
            a single dict (or None) when both ``dataset`` and ``epochs`` are given,
            else a list.
        """
        return queries.query(self._db, arch_or_hash, dataset, epochs, seed, reduce)

    # -------------------------------------------------------------- top and pareto

    def top(
        self,
        k: int = 10,
        by: str = "val_acc",
        where: dict | None = None,
        dataset: str | None = None,
        reduce: str | None = None,
    ) -> list[dict]:
        """The k best finished rows by one metric.

        Args:
            by: a metric, optionally with a direction: "val_acc", "params:min",
                "robust:pgd:Linf:0.1" (see :func:`parse_objective`).
            where: column filters: ``{"budget": 10}`` (equals), ``{"space": ["macro",
                "cell"]}`` (one of), ``{"params": ("<=", 100_000)}`` (compare).
            dataset: shorthand for ``where={"dataset": ...}``.
            reduce: None ranks single runs; "mean" (or "min"/"max") first combines
                the seeds of each (architecture, dataset, budget) and ranks those.

        Rows come with the metric's value under the metric's name (so robust ranks
        show the number they were ranked by). Rows missing the metric are left out.
        """
        return ranking.top(self._db, k, by, where, dataset, reduce)

    def explain_top(self, by: str = "val_acc", where: dict | None = None, dataset: str | None = None) -> str:
        """SQLite's plan for :meth:`top` (reduce=None): shows which index serves the ranking."""
        return ranking.explain_top(self._db, by, where, dataset)

    def pareto(self, objectives: list[str], dataset: str | None = None, where: dict | None = None) -> list[dict]:
        """Finished rows that no other row beats on every objective at once.

        Args:
            objectives: two or more metrics with directions, e.g. ``["val_acc:max",
                "params:min"]`` or ``["robust:pgd:Linf:0.1:max", "latency_ms:min"]``.
            dataset, where: as in :meth:`top`. Rows missing an objective are left out.

        Returns:
            The front, sorted by the first objective (best first); each row carries
            the objective values under their names.
        """
        return ranking.pareto(self._db, objectives, dataset, where)

    # ----------------------------------------------------------------- statistics

    def stats(self) -> dict:
        """Counts that describe the benchmark: rows by status and dataset, architectures, budgets."""
        return overview.stats(self._db)

    def integrity_check(self) -> list[str]:
        """SQLite's own consistency check plus foreign keys; an empty list means sound."""
        return overview.integrity_check(self._db)

    # ------------------------------------------------------------ parquet exchange

    def export_parquet(self, path: str | os.PathLike) -> int:
        """Write every row (JSON columns as JSON text) to a Parquet file; the row count.

        The file is written next to its target and renamed into place, so a reader
        never sees half of it.
        """
        return parquet.export_parquet(self._db, path)

    def import_parquet(self, path: str | os.PathLike) -> int:
        """Merge rows from a Parquet file written by :meth:`export_parquet`; rows added.

        Rows whose key is already stored are skipped (importing twice adds nothing the
        second time); robust accuracies for settings a stored row lacks are added.
        Every row is validated like :meth:`record` before anything is written.
        """
        return parquet.import_parquet(self._db, path)
