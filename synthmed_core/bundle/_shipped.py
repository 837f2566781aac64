"""The shipped bundles of a data root, and undoing an import.

Every open of a data root's store imports the bundles under ``results/`` (or
``SYNTHMED_SHIPPED``) it has not imported yet. A shipped bundle that fails a check must never
stop the app, the CLI or a worker: it is skipped with one line saying why, and the refusal is
recorded beside the database with a fingerprint of the bundle's files, so it is not checked
again on every open until its files change (``refused_shipped`` lists them for Home and
``results list``). A shipped bundle removed (``remove_bundle``) is recorded the same way, so it
stays removed. The call site may move (e.g. out of ``Store.__init__``): everything is here.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

from .. import paths
from ..errors import BundleError, StoreError, SynthmedError
from ..store import Store
from ._format import LIMITS, MANIFEST, load_json_capped
from ._import import ImportReport, import_bundle
from ._staging import discard, settle


def import_shipped(store: Store, folder: Path | None = None) -> list[ImportReport]:
    """Import every bundle under ``folder`` (default ``paths.shipped_results_dir()``) that this
    store has not imported yet, as shipped results. Cheap when there is nothing new (one small
    JSON read per bundle, one query, one small file). Never raises: a bundle that fails is
    skipped with one line on stderr and recorded (``refused_shipped``)."""
    folder = folder if folder is not None else paths.shipped_results_dir()
    reports: list[ImportReport] = []
    try:
        if folder is None or not Path(folder).is_dir():
            return reports
        settle(store)
        done = store.imported_bundle_ids()
        refused = _read_record(store)
        changed = False
        for sub in sorted(p for p in Path(folder).iterdir() if (p / MANIFEST).is_file()):
            key = str(sub.resolve())
            before = refused.get(key)
            try:
                if _manifest_id(sub) in done:
                    changed |= refused.pop(key, None) is not None
                    continue
                if isinstance(before, dict) and before.get("fingerprint") == fingerprint(sub):
                    continue  # refused (or removed) before, its files unchanged
                reports.append(import_bundle(store, sub, shipped=True))
                changed |= refused.pop(key, None) is not None
            except Exception as exc:  # noqa: BLE001 - a shipped bundle never stops the store
                why = one_line(exc)
                print(f"synthmed: shipped results bundle {sub} skipped: {why}", file=sys.stderr)
                if isinstance(exc, SynthmedError) and not _transient(exc):
                    refused[key] = {"fingerprint": fingerprint(sub), "reason": why,
                                    "name": sub.name}
                    changed = True
        if changed:
            _write_record(store, refused)
    except Exception as exc:  # noqa: BLE001 - e.g. an unreadable results folder
        print(f"synthmed: shipped results bundles not imported: {one_line(exc)}",
              file=sys.stderr)
    return reports


def refused_shipped(store: Store, folder: Path | None = None) -> list[dict]:
    """The shipped bundles this store refused and why: {"name", "path", "reason"}, for those
    still in ``folder`` (default the shipped folder)."""
    folder = folder if folder is not None else paths.shipped_results_dir()
    if folder is None:
        return []
    here = {str(p.resolve()) for p in Path(folder).glob("*") if p.is_dir()} \
        if Path(folder).is_dir() else set()
    return [{"name": r.get("name"), "path": k, "reason": r.get("reason")}
            for k, r in sorted(_read_record(store).items())
            if k in here and isinstance(r, dict) and not r.get("removed")]


def _manifest_id(sub: Path) -> object:
    path = sub / MANIFEST
    if path.stat().st_size > LIMITS.manifest_bytes:
        raise BundleError(f"{path} is over the {LIMITS.manifest_bytes:,}-byte manifest limit")
    try:
        manifest = load_json_capped(path.read_bytes(), LIMITS.manifest_bytes)
    except ValueError as exc:
        raise BundleError(f"{path} is not a readable bundle manifest ({exc})") from exc
    return manifest.get("bundle_id") if isinstance(manifest, dict) else None


def fingerprint(sub: Path) -> str:
    """A hash of a bundle folder's files (names and contents; a file over the size cap by its
    size and modification time, without reading it)."""
    digest = hashlib.sha256()
    for path in sorted(sub.iterdir()):
        if not path.is_file():
            continue
        st = path.stat()
        digest.update(path.name.encode() + b"\0")
        if st.st_size > LIMITS.file_bytes:
            digest.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
        else:
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def one_line(exc: BaseException, limit: int = 400) -> str:
    """An error as one line of at most ``limit`` characters (a refusal's reasons joined)."""
    text = " ".join(part.strip(" -") for part in str(exc).splitlines() if part.strip())
    text = text or type(exc).__name__
    if not isinstance(exc, SynthmedError):
        text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _transient(exc: BaseException) -> bool:
    """A failure that says nothing about the bundle (a busy store, real data not readable
    here): not recorded, so the next open tries again."""
    return isinstance(exc, StoreError) or "cannot check them against the real" in str(exc)


def _record_path(store: Store) -> Path:
    return Path(str(store.path) + ".refused-bundles.json")


def _read_record(store: Store) -> dict[str, dict]:
    try:
        data = load_json_capped(_record_path(store).read_bytes(), LIMITS.manifest_bytes)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_record(store: Store, record: dict) -> None:
    path = _record_path(store)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True))
        os.replace(tmp, path)
    except OSError:  # a read-only data root: refused again on the next open, still safe
        tmp.unlink(missing_ok=True)


def remove_bundle(store: Store, which: str) -> dict:
    """Undo the import of the bundle ``which`` (its id, a unique id prefix, or its name when
    one imported bundle has it): its runs with every row, its replicate records, and the
    synthetic sets it registered that no remaining run uses, with their folders. Returns
    ``Store.remove_bundle``'s summary plus "bundle_id" and "name"; BundleError for no match."""
    bundles = store.bundles()
    hit = bundles[(bundles["bundle_id"] == which) | (bundles["name"] == which)]
    if hit.empty and which:
        hit = bundles[bundles["bundle_id"].str.startswith(which)]
    if len(hit) != 1:
        raise BundleError(f"{'no' if hit.empty else 'more than one'} imported bundle matches "
                          f"{which!r}; `python -m synthmed_core results list` shows their ids "
                          f"and names" + ("" if hit.empty else ": give the id"))
    bundle_id, name = hit["bundle_id"].iloc[0], hit["name"].iloc[0]
    settle(store)
    done = store.remove_bundle(bundle_id)
    folder = Path(str(hit["path"].iloc[0]))
    if bool(hit["shipped"].iloc[0]) and (folder / MANIFEST).is_file():
        # Removed stays removed: the next open does not import it again (until it changes).
        record = _read_record(store)
        record[str(folder.resolve())] = {"fingerprint": fingerprint(folder), "name": name,
                                         "reason": "removed with `results remove`",
                                         "removed": True}
        _write_record(store, record)
    root = paths.synthetic_dir().resolve()
    for s in done["sets"]:
        folder = Path(s["path"]).resolve() if s["path"] else None
        if folder is not None and folder.parent == root:  # only a set folder of this root
            discard(folder)
    return {**done, "bundle_id": bundle_id, "name": name}
