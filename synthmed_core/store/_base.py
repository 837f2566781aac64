"""Connection discipline shared by every part of the store.

DuckDB lets one process write a file OR many processes read it, never both, and it does not
wait for locks (duckdb #1119). So every operation, reads included, is: take a cross-process
file lock -> connect -> SQL -> close -> release. No connection outlives a call.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import duckdb
import filelock

from ..errors import StoreError

_CONNECT_TRIES = 5  # retries when a process outside our lock discipline holds the file
_CONNECT_BACKOFF_S = 0.1
_POLL_S = 0.01  # how often a waiter tries the lock
# Interactive callers (the app, the CLI) go first: while one waits for the lock it touches a
# marker file, and a background process (a job worker, see ``yield_to_readers``) does not take
# the lock while the marker is fresher than _WAITING_S, for at most _YIELD_MAX_S per call,
# so a reader waits for the one write in progress, not for every worker's next one as well.
_WAITING_S = 0.1
_YIELD_MAX_S = 1.0
_background = False


def yield_to_readers(on: bool = True) -> None:
    """Make this process's store calls give way to interactive ones waiting for the lock (job
    workers call it: their writes can wait a moment, a page's read should not)."""
    global _background
    _background = on


class StoreBase:
    """The file, its lock, and the locked connect/transaction every query goes through."""

    path: Path
    lock_path: Path
    lock_timeout: float
    _lock: filelock.FileLock

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    @property
    def _waiting_path(self) -> Path:
        return Path(str(self.path) + ".waiting")

    def _acquire(self) -> None:
        """Take the cross-process lock: interactive callers mark that they wait; background
        ones hold back while such a mark is fresh (at most _YIELD_MAX_S)."""
        start = time.monotonic()
        while True:
            now = time.monotonic()
            if not (_background and now - start < _YIELD_MAX_S and self._reader_waiting()):
                try:
                    self._lock.acquire(timeout=0)
                    return
                except filelock.Timeout:
                    if not _background:
                        self._mark_waiting()
            if now - start > self.lock_timeout:
                raise StoreError(
                    f"the results database {self.path} is busy: another process has held its "
                    f"lock {self.lock_path} for over {self.lock_timeout:g} s. Wait for it or "
                    "stop that process; the lock frees itself when the process exits")
            time.sleep(_POLL_S)

    def _mark_waiting(self) -> None:
        try:
            self._waiting_path.touch()
        except OSError:  # a read-only data root: no priority, still correct
            pass

    def _reader_waiting(self) -> bool:
        try:
            return time.time() - self._waiting_path.stat().st_mtime < _WAITING_S
        except OSError:
            return False

    @contextmanager
    def _connect(self, write: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        self._acquire()
        try:
            con = self._open(read_only=not write)
            try:
                yield con
            finally:
                con.close()
        finally:
            self._lock.release()

    def _open(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        for attempt in range(_CONNECT_TRIES):
            try:
                return duckdb.connect(str(self.path), read_only=read_only)
            except duckdb.IOException as exc:
                if "Could not set lock" not in str(exc):
                    raise StoreError(f"cannot open the results database {self.path}: {exc}. "
                                     "Check the path and permissions, or set SYNTHMED_DB") from exc
                last = exc
                time.sleep(_CONNECT_BACKOFF_S * (attempt + 1))
            except duckdb.Error as exc:
                raise StoreError(f"cannot open the results database {self.path}: {exc}. If it "
                                 "is not a synthmed database, set SYNTHMED_DB to another file"
                                 ) from exc
        raise StoreError(f"the results database {self.path} is held open by a process outside "
                         f"synthmed ({last}). Close other DuckDB sessions on it and retry")

    @contextmanager
    def _transaction(self, then: Callable[[duckdb.DuckDBPyConnection], None] | None = None
                     ) -> Iterator[duckdb.DuckDBPyConnection]:
        """One write transaction; ``then(con)`` runs after its commit, still inside the lock
        (so nothing else writes between the two)."""
        with self._connect(write=True) as con:
            con.begin()
            try:
                yield con
            except BaseException:
                con.rollback()
                raise
            con.commit()
            if then is not None:
                then(con)

    def schema_version(self) -> int:
        """The schema version of the database file (the last migration applied)."""
        with self._connect() as con:
            return con.execute("SELECT max(version) FROM schema_version").fetchone()[0]
