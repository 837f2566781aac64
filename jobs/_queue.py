"""The queue's doorbell: a file beside the database whose change tells idle workers "a job is
waiting" — so they can wait on a cheap ``stat`` instead of querying the database every tick.
Workers still claim every few seconds without it, so a missed ring only delays a job."""
from __future__ import annotations

from pathlib import Path

from synthmed_core.store import Store


def bell_path(store: Store) -> Path:
    """The doorbell file of the database ``store`` uses."""
    return Path(str(store.path) + ".bell")


def ring(store: Store) -> None:
    """Tell idle workers that the queue changed (after a submit, retry or requeue)."""
    path = bell_path(store)
    # One byte per ring: the size changes even when two rings share a coarse mtime tick.
    with path.open("ab") as f:
        if f.tell() >= 4096:
            f.truncate(0)
        f.write(b".")


class Doorbell:
    """``changed()`` is True once after each ring since the last call."""

    def __init__(self, store: Store) -> None:
        self.path = bell_path(store)
        self._seen = self._stamp()

    def _stamp(self) -> tuple | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def changed(self) -> bool:
        stamp = self._stamp()
        if stamp != self._seen:
            self._seen = stamp
            return True
        return False
