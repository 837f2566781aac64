"""The results database (DuckDB): schema, migrations, and every query. The only package with SQL.

DuckDB lets one process write a file OR many processes read it, never both, and it does not
wait for locks (duckdb #1119). The app and several job processes share one file, so every
operation, reads included, is: take a cross-process file lock -> connect -> SQL -> close ->
release. No connection outlives a call; writes are batched into one short transaction each.

Layout: ``_schema`` (MIGRATIONS), ``_base`` (the lock and connection discipline), ``_runs``
(runs, epochs, predictions, registries), ``_jobs`` (the job queue, progress, workers),
``_grid`` (the explorer's grid query), ``_snapshot`` (the results snapshot the grid reads
without the lock), ``_bundles`` (export reads, one-transaction
imports of result bundles), ``_bench`` (filling a scratch store for benchmarks).
"""
from __future__ import annotations

from pathlib import Path

import filelock

from .. import paths
from ._base import yield_to_readers
from ._bundles import BUNDLE_COLUMNS, SAMPLE_SUFFIX, BundlesMixin, ImportPlan
from ._grid import CELL_KEYS, GridMixin
from ._jobs import JOB_STATUSES, JobsMixin
from ._runs import EPOCH_COLUMNS, RUN_STATUSES, SUMMARY_METRICS, RunsMixin
from ._schema import LOCAL_ORIGIN, MIGRATIONS, migrate, refresh_recipe_labels

__all__ = ["Store", "MIGRATIONS", "RUN_STATUSES", "JOB_STATUSES", "SUMMARY_METRICS",
           "EPOCH_COLUMNS", "CELL_KEYS", "LOCAL_ORIGIN", "BUNDLE_COLUMNS", "ImportPlan", "SAMPLE_SUFFIX",
           "yield_to_readers"]


class Store(RunsMixin, JobsMixin, GridMixin, BundlesMixin):
    """The results database at ``path`` (default ``paths.db_path()``), created and migrated on
    first use; the data root's database also imports the shipped results bundles it has not
    imported yet (``bundle.import_shipped``). Safe to use from many processes at once: each call holds a cross-process lock
    for its few milliseconds; ``lock_timeout`` bounds the wait for it."""

    def __init__(self, path: Path | None = None, lock_timeout: float = 120.0):
        self.path = Path(path) if path is not None else paths.db_path()
        self.lock_path = Path(str(self.path) + ".lock")
        self.lock_timeout = lock_timeout
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = filelock.FileLock(str(self.lock_path))
        with self._connect(write=True) as con:
            # Read through this module at call time: tests (and a future plugin) may replace
            # MIGRATIONS on `synthmed_core.store`.
            changed = migrate(con, self.path, MIGRATIONS)
            changed |= refresh_recipe_labels(con)  # one small read unless the profiles changed
            if changed or self.results_generation() is None:
                self._publish_results(con)
        if self.path == paths.db_path() and paths.shipped_results_dir() is not None:
            # The data root's own database: it holds the shipped results from its first open.
            from ..bundle import import_shipped  # reads Parquet: only where it may be needed
            import_shipped(self)  # never raises: a bad shipped bundle is skipped and said
