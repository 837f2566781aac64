"""The bundle format: its files and manifest, the id, and reading a bundle back with every
check (manifest, schema version, file hashes, Parquet files and their columns)."""
from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import BundleError
from ..store import BUNDLE_COLUMNS

BUNDLE_SCHEMA = 1
MANIFEST = "manifest.json"
FILES = {"runs": "runs.parquet", "metrics": "metrics.parquet", "epochs": "epochs.parquet",
         "predictions": "predictions.parquet", "sets": "synthetic_sets.parquet",
         "samples": "samples.parquet"}
SET_COLUMNS = ("name", "content_sha256", "card_json", "sample_card_json")
SAMPLE_COLUMNS = ("set", "row", "label", "height", "width", "image")
SAMPLE_PER_CLASS = 64
SAMPLE_SUFFIX = "-sample"
_PER_IMAGE_LIMIT = 64  # longer lists in a card are per-image data: left out of a bundle


def bundle_id(files: dict[str, dict]) -> str:
    """The id of a bundle: a hash of its schema version and its files' hashes."""
    blob = json.dumps({"schema": BUNDLE_SCHEMA,
                       "files": {k: v["sha256"] for k, v in sorted(files.items())}},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def parquet_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    # No pandas index and a fixed codec: the same rows always give the same bytes (and id).
    df.reset_index(drop=True).to_parquet(buf, engine="pyarrow", compression="zstd", index=False)
    return buf.getvalue()


@dataclass
class Bundle:
    path: Path
    manifest: dict
    tables: dict[str, pd.DataFrame]

    @property
    def id(self) -> str:
        return self.manifest["bundle_id"]

    @property
    def name(self) -> str:
        return self.manifest.get("name") or self.path.name


def read_bundle(path: Path) -> Bundle:
    """Read and check a bundle folder: manifest, schema version, every file's hash against the
    manifest, the id against the files, each Parquet file and its columns. BundleError naming
    the file for anything wrong."""
    path = Path(path).expanduser()
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise BundleError(f"{path} is not a results bundle: {mpath} is missing")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
        files, version = manifest["files"], int(manifest["schema_version"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{mpath} is not a readable bundle manifest ({exc})") from exc
    if version > BUNDLE_SCHEMA:
        raise BundleError(f"{mpath}: bundle schema version {version} is newer than this "
                          f"synthmed reads ({BUNDLE_SCHEMA}); update synthmed to import it")
    tables = {}
    for table, filename in FILES.items():
        fpath = path / filename
        entry = files.get(filename)
        if entry is None or not fpath.is_file():
            raise BundleError(f"{fpath}: " + ("missing from the manifest" if entry is None
                                               else "listed in the manifest but missing"))
        data = fpath.read_bytes()
        if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
            raise BundleError(f"{fpath} does not match the manifest (its sha256 differs: the "
                              "file was changed, truncated or replaced after export)")
        tables[table] = _read_parquet(fpath, data, table, entry)
    if bundle_id(files) != manifest.get("bundle_id"):
        raise BundleError(f"{mpath}: bundle_id {manifest.get('bundle_id')!r} does not match "
                          f"its files ({bundle_id(files)})")
    return Bundle(path, manifest, tables)


def _read_parquet(fpath: Path, data: bytes, table: str, entry: dict) -> pd.DataFrame:
    try:
        df = pd.read_parquet(io.BytesIO(data), engine="pyarrow")
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise BundleError(f"{fpath} is not a readable Parquet file ({type(exc).__name__}: "
                          f"{exc})") from exc
    want = {"sets": SET_COLUMNS, "samples": SAMPLE_COLUMNS}.get(table, BUNDLE_COLUMNS.get(table))
    missing = [c for c in want if c not in df.columns]
    if missing:
        raise BundleError(f"{fpath} lacks columns {missing}")
    if len(df) != entry.get("rows"):
        raise BundleError(f"{fpath} has {len(df)} rows; the manifest says {entry.get('rows')}")
    return df
