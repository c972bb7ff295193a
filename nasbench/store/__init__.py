"""The tabular benchmark: every evaluated architecture, queryable like NAS-Bench-101/201.

NAS-Bench-101 (Ying et al., 2019, arXiv:1902.09635) trained 423k cell architectures
on CIFAR-10 at four epoch budgets with three seeds each and published the results as
a table, which turned an architecture evaluation into a millisecond lookup.
NAS-Bench-201 (Dong & Yang, 2020, arXiv:2001.00326) added per-epoch curves for
several datasets. This store builds such a table as a by-product of every search and
adds robust accuracy per (attack, norm, eps).

One row per (architecture hash, dataset, training budget in epochs, seed) holds the
architecture JSON, per-epoch curves, params, MACs, latency and device, training time,
status (ok / failed / pruned, with the reason), robust accuracies and provenance
(package versions, git commit, MLflow run id).

Storage is one SQLite file. In a search the driver is its only writer (trials report
to the driver, never to the store), but ``attack`` runs, merges and readers may open it
while a search runs, and a killed process must never leave half a row behind:

- WAL journal on local disks: readers never block the writer and the writer never
  blocks readers. WAL needs memory shared between the processes of one host, so on a
  network file system (NFS, SMB, Lustre, ...) the store keeps SQLite's rollback journal
  and POSIX locks instead, the mode SQLite supports there;
- every write is one ``BEGIN IMMEDIATE`` transaction (a row and its robustness
  results commit together or not at all), waiting up to ``busy_timeout`` for the
  write lock instead of failing with "database is locked";
- ``PRAGMA user_version`` numbers the schema; ``MIGRATIONS`` upgrade older files in
  place when they are opened; ``PRAGMA application_id`` marks the file as ours, so
  another program's database is refused rather than altered.

Scalar metrics are real columns with partial indexes over finished (``ok``) rows, so
``top`` reads the k best rows straight from an index; JSON (architecture, curves,
provenance) is stored as TEXT.

Accuracy under common corruptions (Hendrycks & Dietterich 2019) is robustness under the
threat model ``corruption``: a robustness row with norm ``corruption``, the corruption's
name as the attack and the severity (1-5) as the eps. Its means are rows too: severity 0
is the mean over the severities, attack ``mean`` the mean over the corruptions, so
``mean``/0 is the mean corruption accuracy. They are queried as ``corruption:NAME:SEVERITY``
(``corruption:fog:3``, ``corruption:fog:mean``, ``corruption:mean:5``) and
``corruption_acc``, ranked, exported and imported like every robust accuracy.

The package, by job: ``benchmark`` (:class:`Benchmark`, the face every caller uses),
``database`` (opening a file, migrating it, locked reads and write transactions),
``schema`` (tables, indexes, migrations), ``journal`` (WAL or rollback journal by file
system), ``rows`` (what a row is and how it is checked), ``writes``, ``queries``
(rows by key or architecture), ``aggregate`` (seeds combined), ``metrics`` (metric
names and the robustness rows they read), ``selection`` and ``ranking`` (top k and
Pareto fronts), ``overview`` (counts and integrity) and ``parquet`` (export, import).
"""

from nasbench.store.aggregate import REDUCERS
from nasbench.store.benchmark import Benchmark
from nasbench.store.errors import BenchmarkError, InvalidRow
from nasbench.store.journal import NETWORK_FILE_SYSTEMS, file_system_type, journal_mode_for
from nasbench.store.metrics import (
    CORRUPTION_METRIC,
    CORRUPTION_NORM,
    CORRUPTION_PREFIX,
    ROBUST_PREFIX,
    corruption_results,
    parse_objective,
    robustness_setting,
)
from nasbench.store.ranking import pareto_front
from nasbench.store.rows import OPTIONAL_KEYS, REQUIRED_KEYS, ROW_KEYS, SPACES, STATUSES, validate_row
from nasbench.store.schema import APPLICATION_ID, METRIC_COLUMNS, MIGRATIONS, SCHEMA_VERSION, SQLITE_MAGIC
from nasbench.store.selection import FILTER_COLUMNS
from nasbench.store.writes import IMPORT_CHUNK

__all__ = [
    "APPLICATION_ID",
    "CORRUPTION_METRIC",
    "CORRUPTION_NORM",
    "CORRUPTION_PREFIX",
    "FILTER_COLUMNS",
    "IMPORT_CHUNK",
    "METRIC_COLUMNS",
    "MIGRATIONS",
    "NETWORK_FILE_SYSTEMS",
    "OPTIONAL_KEYS",
    "REDUCERS",
    "REQUIRED_KEYS",
    "ROBUST_PREFIX",
    "ROW_KEYS",
    "SCHEMA_VERSION",
    "SPACES",
    "SQLITE_MAGIC",
    "STATUSES",
    "Benchmark",
    "BenchmarkError",
    "InvalidRow",
    "corruption_results",
    "file_system_type",
    "journal_mode_for",
    "parse_objective",
    "pareto_front",
    "robustness_setting",
    "validate_row",
]
