"""The bundle format: its files and manifest, the id, the limits of what a bundle may hold,
and reading a bundle back with every check of its form (manifest, schema version, file sizes
and hashes, Parquet row counts and sizes, columns and their types). What the tables say is
checked against itself and the real data in ``_checks``."""
from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import BundleError
from ..store import SAMPLE_SUFFIX  # noqa: F401  (re-exported: the bundle's name for it)

BUNDLE_SCHEMA = 1
MANIFEST = "manifest.json"
FILES = {"runs": "runs.parquet", "metrics": "metrics.parquet", "epochs": "epochs.parquet",
         "predictions": "predictions.parquet", "sets": "synthetic_sets.parquet",
         "samples": "samples.parquet"}
SAMPLE_PER_CLASS = 64
_PER_IMAGE_LIMIT = 64  # longer lists in a card are per-image data: left out of a bundle


@dataclass(frozen=True)
class Limits:
    """What a bundle may hold at most (docs/bundles.md): checked before anything is decoded."""

    manifest_bytes: int = 1 << 20
    json_bytes: int = 1 << 20  # each JSON value in a table (spec, context, card)
    json_depth: int = 32
    file_bytes: int = 64 << 20  # each Parquet file on disk
    table_bytes: int = 256 << 20  # each table unpacked, as its Parquet footer declares it
    # ... and per row it declares (a sample row holds one image of at most image_side^2 px),
    # above a fixed allowance for a table's own overhead (column chunks, dictionaries): a
    # one-row table of a one-epoch run unpacks to more than one row's worth
    table_overhead_bytes: int = 64 << 10
    row_bytes: tuple = (("runs", 64 << 10), ("metrics", 256), ("epochs", 512),
                        ("predictions", 256), ("sets", 2 << 20), ("samples", 256 * 256 + 1024))
    runs: int = 5000
    rows_per_run: tuple = (("metrics", 64), ("epochs", 1000), ("predictions", 2048))
    sets: int = 64
    samples_per_set: int = 2 * SAMPLE_PER_CLASS
    image_side: int = 256  # sample images, each side in pixels (MedMNIST+ goes to 224)
    text_chars: int = 1000  # any one string in the manifest or a card
    reasons: int = 25  # reasons listed in one refusal

    def __post_init__(self) -> None:
        object.__setattr__(self, "rows_per_run", dict(self.rows_per_run))
        object.__setattr__(self, "row_bytes", dict(self.row_bytes))


LIMITS = Limits()
# Each table's columns and their types ("?": may be empty). Extra columns are ignored.
_RUN_TYPES = {"run_id": "str", "arch": "str", "init": "str", "setting": "str",
              "ratio": "float?", "synthetic": "str?", "seed": "int", "profile": "str",
              "spec_json": "str", "status": "str", "device": "str?", "started_at": "time?",
              "finished_at": "time?", "wall_s": "float?", "best_epoch": "int?",
              "best_phase": "int?", "context_json": "str?"}
TABLE_TYPES: dict[str, dict[str, str]] = {
    "runs": _RUN_TYPES,
    "metrics": {"run_id": "str", "split": "str", "name": "str", "value": "float?"},
    "epochs": {"run_id": "str", "phase": "int", "epoch": "int", "train_loss": "float?",
               "val_loss": "float?", "val_accuracy": "float?", "val_auroc": "float?",
               "lr": "float?", "seconds": "float?"},
    "predictions": {"run_id": "str", "split": "str", "idx": "int", "label": "int",
                    "prob": "float"},
    "sets": {"name": "str", "content_sha256": "str?", "card_json": "str",
             "sample_card_json": "str?"},
    "samples": {"set": "str", "row": "int", "label": "int", "height": "int", "width": "int",
                "image": "bytes"},
}
SET_COLUMNS, SAMPLE_COLUMNS = tuple(TABLE_TYPES["sets"]), tuple(TABLE_TYPES["samples"])


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


def refusal(path: Path, reasons: list[str]) -> BundleError:
    """One BundleError listing every reason a bundle is refused (at most LIMITS.reasons)."""
    from ..text import plain
    shown = [plain(r) for r in reasons[:LIMITS.reasons]]
    more = len(reasons) - len(shown)
    lines = "\n".join(f"  - {r}" for r in shown) + (f"\n  - ... and {more} more" if more else "")
    return BundleError(f"results bundle {path} refused, nothing imported "
                       f"({len(reasons)} problem{'s' if len(reasons) != 1 else ''}):\n{lines}")


def read_bundle(path: Path) -> Bundle:
    """Read and check a bundle folder: manifest (size and depth capped), schema version, every
    file's size and hash against the manifest, the id against the files, each Parquet file's
    row count and size (from its footer, before reading it), columns and their types.
    BundleError listing every problem found, each naming its file."""
    path = Path(path).expanduser()
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise BundleError(f"{path} is not a results bundle: {mpath} is missing")
    try:
        size = mpath.stat().st_size
        if size > LIMITS.manifest_bytes:  # not even read
            raise ValueError(f"{size:,} bytes, over the {LIMITS.manifest_bytes:,}-byte limit")
        manifest = load_json_capped(mpath.read_bytes(), LIMITS.manifest_bytes)
        if not isinstance(manifest, dict):
            raise ValueError("not a JSON object")
        files, version = manifest["files"], int(manifest["schema_version"])
        if not isinstance(files, dict):
            raise ValueError("'files' is not an object")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{mpath} is not a readable bundle manifest ({exc})") from exc
    if version > BUNDLE_SCHEMA:
        raise BundleError(f"{mpath}: bundle schema version {version} is newer than this "
                          f"synthmed reads ({BUNDLE_SCHEMA}); update synthmed to import it")
    reasons: list[str] = []
    tables: dict[str, pd.DataFrame] = {}
    for table, filename in FILES.items():
        try:
            tables[table] = _read_file(path / filename, files.get(filename), table, tables)
        except BundleError as exc:
            reasons.append(str(exc))
    try:
        expected = bundle_id(files)
    except (AttributeError, TypeError, KeyError):
        expected = None
    if expected != manifest.get("bundle_id"):
        reasons.append(f"{mpath}: bundle_id {manifest.get('bundle_id')!r} does not match its "
                       f"files ({expected})")
    if reasons:
        raise refusal(path, reasons)
    return Bundle(path, manifest, tables)


def load_json_capped(data: bytes | str, max_bytes: int, what: str = "JSON") -> object:
    """``json.loads`` of at most ``max_bytes`` bytes nested at most LIMITS.json_depth deep;
    ValueError otherwise (never RecursionError)."""
    if len(data) > max_bytes:
        raise ValueError(f"{what} of {len(data):,} bytes is over the {max_bytes:,}-byte limit")
    try:
        obj = json.loads(data)
    except RecursionError:
        raise ValueError(f"{what} nested too deep") from None
    if json_depth(obj) > LIMITS.json_depth:
        raise ValueError(f"{what} nested deeper than {LIMITS.json_depth} levels")
    return obj


def json_depth(obj: object) -> int:
    """How deep lists and objects nest in ``obj`` (0 for a scalar), without recursion."""
    deepest, todo = 0, [(obj, 0)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth + 1)
            todo += [(v, depth + 1) for v in (item.values() if isinstance(item, dict) else item)]
    return deepest


def _read_file(fpath: Path, entry: object, table: str, done: dict[str, pd.DataFrame]
               ) -> pd.DataFrame:
    """One table of a bundle, checked against its manifest entry and the caps before and
    after it is read."""
    if not isinstance(entry, dict):
        raise BundleError(f"{fpath}: missing from the manifest")
    if not fpath.is_file():
        raise BundleError(f"{fpath}: listed in the manifest but missing")
    size = fpath.stat().st_size
    if size > LIMITS.file_bytes:
        raise BundleError(f"{fpath} is {size:,} bytes, over the {LIMITS.file_bytes:,}-byte "
                          "limit of a bundle file")
    data = fpath.read_bytes()
    if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
        raise BundleError(f"{fpath} does not match the manifest (its sha256 differs: the "
                          "file was changed, truncated or replaced after export)")
    runs = len(done["runs"]) if "runs" in done else None
    return _read_parquet(fpath, data, table, entry, row_cap(table, runs, done.get("sets")))


def row_cap(table: str, runs: int | None, sets: pd.DataFrame | None) -> int:
    """The most rows table ``table`` may hold, given the bundle's run and set counts."""
    if table == "runs":
        return LIMITS.runs
    if table == "sets":
        return LIMITS.sets
    if table == "samples":
        return (len(sets) if sets is not None else LIMITS.sets) * LIMITS.samples_per_set
    return (runs if runs is not None else LIMITS.runs) * LIMITS.rows_per_run[table]


def _read_parquet(fpath: Path, data: bytes, table: str, entry: dict, cap: int) -> pd.DataFrame:
    import pyarrow.parquet as pq
    try:
        pfile = pq.ParquetFile(io.BytesIO(data))
        meta = pfile.metadata
        declared = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        if meta.num_rows > cap:
            raise BundleError(f"{fpath} holds {meta.num_rows:,} rows, over its limit of "
                              f"{cap:,} for this bundle")
        most = min(LIMITS.table_bytes,
                   LIMITS.table_overhead_bytes + meta.num_rows * LIMITS.row_bytes[table])
        if declared > most:
            raise BundleError(f"{fpath} unpacks to {declared:,} bytes, over its limit of "
                              f"{most:,} for {meta.num_rows:,} rows")
        arrow = pfile.read()
    except BundleError:
        raise
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise BundleError(f"{fpath} is not a readable Parquet file ({type(exc).__name__}: "
                          f"{exc})") from exc
    want = TABLE_TYPES[table]
    missing = [c for c in want if c not in arrow.column_names]
    if missing:
        raise BundleError(f"{fpath} lacks columns {missing}")
    wrong = [f"{c} is {arrow.schema.field(c).type}, not {kind}" for c, kind in want.items()
             if arrow.num_rows and not _type_ok(arrow.schema.field(c).type, kind)]
    if wrong:
        raise BundleError(f"{fpath} has columns of the wrong type: {'; '.join(wrong)}")
    if arrow.num_rows != entry.get("rows"):
        raise BundleError(f"{fpath} has {arrow.num_rows} rows; the manifest says "
                          f"{entry.get('rows')}")
    nulls = [c for c, kind in want.items() if not kind.endswith("?") and arrow[c].null_count]
    if nulls:
        raise BundleError(f"{fpath} has empty values in columns that need one: {nulls}")
    # the file's pandas metadata is a stranger's JSON too (a flipped byte there broke to_pandas):
    # the columns and their Arrow types are all that is read
    return arrow.select(list(want)).replace_schema_metadata(None).to_pandas()


def _type_ok(arrow_type, kind: str) -> bool:
    import pyarrow as pa
    if pa.types.is_null(arrow_type):
        return kind.endswith("?")
    test = {"str": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
            "int": pa.types.is_integer,
            "float": lambda t: pa.types.is_floating(t) or pa.types.is_integer(t),
            "time": pa.types.is_timestamp,
            "bytes": lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t)}
    return test[kind.rstrip("?")](arrow_type)
