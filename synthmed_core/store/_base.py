"""Connection discipline shared by every part of the store.

DuckDB lets one process write a file OR many processes read it, never both, and it does not
wait for locks (duckdb #1119). So every operation, reads included, is: take a cross-process
file lock -> connect -> SQL -> close -> release. No connection outlives a call.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb
import filelock

from ..errors import StoreError

_CONNECT_TRIES = 5  # retries when a process outside our lock discipline holds the file
_CONNECT_BACKOFF_S = 0.1


class StoreBase:
    """The file, its lock, and the locked connect/transaction every query goes through."""

    path: Path
    lock_path: Path
    lock_timeout: float
    _lock: filelock.FileLock

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    @contextmanager
    def _connect(self, write: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        try:
            self._lock.acquire(timeout=self.lock_timeout, poll_interval=0.01)
        except filelock.Timeout:
            raise StoreError(f"the results database {self.path} is busy: another process has "
                             f"held its lock {self.lock_path} for over {self.lock_timeout:g} s. "
                             "Wait for it or stop that process; the lock frees itself when the "
                             "process exits") from None
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
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._connect(write=True) as con:
            con.begin()
            try:
                yield con
            except BaseException:
                con.rollback()
                raise
            con.commit()

    def schema_version(self) -> int:
        """The schema version of the database file (the last migration applied)."""
        with self._connect() as con:
            return con.execute("SELECT max(version) FROM schema_version").fetchone()[0]
