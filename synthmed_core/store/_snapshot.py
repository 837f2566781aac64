"""The results snapshot: what the explorer's grid reads, as Parquet files beside the database,
so a page refresh never waits for the lock while job workers write.

Every write that changes results (a run started, finished, failed, cancelled or deleted, a
synthetic set or pretrain registered, a bundle imported, a migration) republishes it inside the
lock, after its commit: the finished runs, their metrics and correctness bits, and the synthetic
sets (what the grid, ``claims`` and ``report`` read), into a new generation folder
``<db>.results/<generation>/``, then ``current`` names it (an atomic rename). Readers run the
same SQL on an in-memory DuckDB whose tables are views of those files; a missing or
half-deleted generation, or a data root that cannot be written, is read from the database
instead. The generation doubles as the results version, so asking
"did anything change?" costs one small file read. ``current`` also records the database's
results fingerprint at publish time: ``check_results_snapshot`` drops a snapshot that a
writer outside this discipline (e.g. a worker still running older code) left behind.
"""
from __future__ import annotations

import itertools
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Callable, TypeVar

import duckdb

from ._base import StoreBase

T = TypeVar("T")

_FINISHED_IDS = "SELECT run_id FROM runs WHERE status = 'finished'"
# Each table as the grid's SQL sees it. Correctness bits travel as BLOBs (Parquet has no BIT);
# the grid reads them as BLOBs from the database too.
SNAPSHOT_TABLES = {
    "runs": """SELECT run_id, arch, init, setting, ratio, synthetic, seed, profile, recipe,
                      recipe_label, status, started_at, origin, wall_s FROM runs
               WHERE status = 'finished'""",
    "run_metrics": f"SELECT * FROM run_metrics WHERE run_id IN ({_FINISHED_IDS})",
    "run_correct": f"""SELECT run_id, split, n, correct::BLOB AS correct FROM run_correct
                       WHERE run_id IN ({_FINISHED_IDS})""",
    "synthetic_sets": "SELECT * FROM synthetic_sets",
}
_KEEP = 2  # generations kept: the current one and the one a slow reader may still be reading
# Everything a results page shows, summed: runs (status, checkpoint, recipe, origin), bundles,
# replicates, synthetic set cards, pretrains. Progress rows and epochs leave it alone.
_FINGERPRINT = """
    SELECT (SELECT count(*) || ':' || coalesce(sum(hash(run_id, status, checkpoint, recipe_label,
                   origin)), 0) FROM runs),
           (SELECT count(*) FROM bundles), (SELECT count(*) FROM replicates),
           (SELECT count(*) || ':' || coalesce(sum(hash(name, card_json)), 0)
            FROM synthetic_sets),
           (SELECT count(*) FROM pretrains)"""


def fingerprint(con: duckdb.DuckDBPyConnection) -> str:
    """The results' fingerprint in the database ``con`` (~20 ms at 10,000 runs)."""
    return "/".join(map(str, con.execute(_FINGERPRINT).fetchone()))


class SnapshotMixin(StoreBase):
    """Publishing and reading the results snapshot."""

    @property
    def results_snapshot_dir(self) -> Path:
        return Path(str(self.path) + ".results")

    def _current(self) -> tuple[str | None, str | None]:
        """The current generation and the database fingerprint it was published at."""
        try:
            lines = (self.results_snapshot_dir / "current").read_text().split("\n")
        except OSError:
            return None, None
        return (lines[0].strip() or None), (lines[1].strip() if len(lines) > 1 else None)

    def _current_generation(self) -> str | None:
        return self._current()[0]

    def _publish_results(self, con: duckdb.DuckDBPyConnection) -> None:
        """Write a new generation from ``con`` (inside the lock, after a commit) and make it
        current. Where that fails (a data root that cannot be written, a database at an older
        schema) none is current: readers read the database."""
        root = self.results_snapshot_dir
        generation = f"{time.time_ns():x}-{os.getpid()}"
        folder = root / generation
        tmp = root / f"{generation}.tmp"
        try:
            tmp.mkdir(parents=True)
            for table, select in SNAPSHOT_TABLES.items():
                path = str(tmp / f"{table}.parquet").replace("'", "''")
                con.execute(f"COPY ({select}) TO '{path}' (FORMAT parquet)")
            tmp.rename(folder)
            pointer = root / f"current.{os.getpid()}.tmp"
            pointer.write_text(f"{generation}\n{fingerprint(con)}")
            os.replace(pointer, root / "current")
        except (OSError, duckdb.Error):  # no stale generation may stay current
            shutil.rmtree(tmp, ignore_errors=True)
            try:
                (root / "current").unlink(missing_ok=True)
            except OSError:  # a folder we cannot write to holds no snapshot of ours anyway
                pass
            return
        self._prune_generations(root, generation)

    @staticmethod
    def _prune_generations(root: Path, current: str) -> None:
        olders = sorted((p for p in root.iterdir() if p.is_dir() and p.name != current),
                        key=lambda p: p.stat().st_mtime)
        for old in olders[:max(0, len(olders) - (_KEEP - 1))]:
            shutil.rmtree(old, ignore_errors=True)

    def _read_results(self, read: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """``read(con)`` on the current snapshot (no lock), or on the database when there is
        none or it went away under the read."""
        generation = self._current_generation()
        if generation is not None:
            try:
                con = _snapshot_cursor(self.results_snapshot_dir / generation)
                try:
                    return read(con)
                finally:
                    con.close()
            except duckdb.Error:  # pruned (files or views) by newer generations while we read:
                pass  # the database has it all, and a real error in ``read`` recurs there
        with self._connect() as con:
            return read(con)

    def check_results_snapshot(self) -> bool:
        """True when the current snapshot still holds what the database holds. A writer that
        does not publish (a process still running an older synthmed, a hand-written UPDATE)
        leaves it behind: then it is dropped, and reads go to the database until the next
        publish. One locked read (~20 ms at 10,000 runs); the app calls it every
        ``CHECK_SNAPSHOT_S`` seconds."""
        generation, published_at = self._current()
        if generation is None:
            return False
        with self._connect() as con:
            now = fingerprint(con)
        if now == published_at:
            return True
        try:  # only if it is still the one we compared: a newer publish is left alone
            if self._current()[0] == generation:
                (self.results_snapshot_dir / "current").unlink()
        except OSError:
            pass
        return False

    def results_generation(self) -> str | None:
        """The current snapshot's generation (it changes with every write that changes
        results), or None when this data root keeps no snapshot."""
        return self._current_generation()


# One in-memory DuckDB per process whose schemas are snapshot generations (views of their
# files): opening a database costs ~14 ms, a cursor on this one next to nothing.
_memory: dict[int, duckdb.DuckDBPyConnection] = {}  # by pid: never use a parent's after fork
_views: dict[Path, str] = {}  # generation folder -> its schema, the newest last
_views_lock = threading.Lock()
_numbers = itertools.count()
_VIEWS_KEPT = 4


def _snapshot_cursor(folder: Path) -> duckdb.DuckDBPyConnection:
    """A cursor whose tables are the snapshot generation in ``folder``."""
    with _views_lock:
        memory = _memory.get(os.getpid())
        if memory is None:
            _memory.clear()
            _views.clear()
            memory = _memory[os.getpid()] = duckdb.connect()
        schema = _views.get(folder)
        if schema is None:
            schema = f"generation{next(_numbers)}"
            memory.execute(f"CREATE SCHEMA {schema}")
            for table in SNAPSHOT_TABLES:
                path = str(folder / f"{table}.parquet").replace("'", "''")
                memory.execute(f"CREATE VIEW {schema}.{table} AS "
                               f"SELECT * FROM read_parquet('{path}')")
            _views[folder] = schema
            for old in list(_views)[:-_VIEWS_KEPT]:
                memory.execute(f"DROP SCHEMA {_views.pop(old)} CASCADE")
        cursor = memory.cursor()
    cursor.execute(f"SET search_path = '{schema}'")
    return cursor
