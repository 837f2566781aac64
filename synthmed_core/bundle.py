"""Results that travel: a *bundle* is a folder of Parquet tables and a ``manifest.json``.

A bundle holds finished runs (frozen spec, status, execution context, test and val metrics,
epochs, every test and val per-image probability), the cards of the synthetic sets those runs
used (with each set's content hash) and a small fixed sample of each set's images; never
checkpoints. Its id is a hash of its files, so exporting the same runs twice gives the same id,
and run ids are spec hashes, so merging bundles from many machines is a union:

- a run not in the store is added, remembering the bundle it came from (its *origin*);
- the same run with the same numbers is already here: nothing changes;
- the same run with other numbers computed in another context (device, threads, library
  versions, code commit) is a *replicate*, kept beside the local record;
- other numbers in the same context are a *conflict*: the local run is kept and reported.

A damaged bundle (a file missing or changed since the manifest, a truncated Parquet file, a
newer schema) or one whose runs used another set under a name this machine already knows is
refused whole: nothing of it is imported. ``results/`` in the repository ships the project's
own bundles; every data root imports them once (``import_shipped``).
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import paths
from .context import code_version, describe, device_description, same_context
from .errors import BundleError, DataError, SpecError
from .store import BUNDLE_COLUMNS, LOCAL_ORIGIN, ImportPlan, Store

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


# --------------------------------------------------------------------------------------------
# Export


def export_bundle(store: Store, out: Path, *, profile: str | None = None,
                  archs: list[str] | None = None, synthetic: list[str] | None = None,
                  run_ids: list[str] | None = None, name: str | None = None) -> dict:
    """Write the finished runs matching every filter given into the bundle folder ``out``
    (created; an existing bundle there is replaced, anything else refused) and return its
    manifest. BundleError when no run matches."""
    out = Path(out)
    ids = store.finished_run_rows(profile, archs, synthetic, _full_ids(store, run_ids))
    if not ids:
        raise BundleError("no finished run matches the filters given; nothing to export "
                          "(`python -m synthmed_core runs list --status finished`)")
    if out.exists() and not (out / MANIFEST).is_file() and any(out.iterdir()):
        raise BundleError(f"{out} exists and is not a bundle; choose an empty or new folder")
    tables = store.bundle_tables(ids)
    tables["sets"], tables["samples"] = _set_tables(store, tables["runs"])
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for table, filename in FILES.items():
        data = _parquet_bytes(tables[table])
        (out / filename).write_bytes(data)
        files[filename] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                           "rows": int(len(tables[table]))}
    manifest = {
        "bundle_id": bundle_id(files), "name": name or out.name, "schema_version": BUNDLE_SCHEMA,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "code": code_version(), "versions": _versions(),
        "device": {**device_description("cpu"), **_gpu_name()},
        "run_devices": sorted({describe(json.loads(c)) for c in tables["runs"]["context_json"]
                               if isinstance(c, str)} or {"context not recorded"}),
        "counts": {t: int(len(tables[t])) for t in FILES}, "files": files}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def bundle_id(files: dict[str, dict]) -> str:
    """The id of a bundle: a hash of its schema version and its files' hashes."""
    blob = json.dumps({"schema": BUNDLE_SCHEMA,
                       "files": {k: v["sha256"] for k, v in sorted(files.items())}},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _full_ids(store: Store, run_ids: list[str] | None) -> list[str] | None:
    """Run ids given by unique prefixes, expanded; SpecError for an unknown or ambiguous one."""
    if not run_ids:
        return None
    return [store.resolve_run_id(prefix, status="finished") for prefix in run_ids]


def _parquet_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    # No pandas index and a fixed codec: the same rows always give the same bytes (and id).
    df.reset_index(drop=True).to_parquet(buf, engine="pyarrow", compression="zstd", index=False)
    return buf.getvalue()


def _versions() -> dict[str, str | None]:
    out = {"python": platform.python_version()}
    for pkg in ("torch", "timm", "duckdb", "numpy", "pandas", "pyarrow"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def _gpu_name() -> dict[str, str]:
    """The exporting machine's GPUs, from nvidia-smi (importing torch would cost seconds)."""
    import subprocess
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    names = [line.strip() for line in out.splitlines() if line.strip()]
    return {"gpu": ", ".join(names)} if names else {}


# ---- synthetic sets: the cards, and a fixed sample of each set's images ---------------------


def _set_tables(store: Store, runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    sets, samples = [], []
    for name in sorted({s for s in runs["synthetic"].dropna()}):
        trained_on = _trained_on(runs[runs["synthetic"] == name], name)
        card, split = _set_card(store, name)
        if card is None or (trained_on and card.get("content_sha256") != trained_on):
            # The set is gone, or holds other images now: say what the runs recorded.
            card, split = {"name": name, "content_sha256": trained_on,
                           "note": "the runs' set was not on the exporting machine as they "
                                   "used it: no card, no sample"}, None
        sample_card = None
        if split is not None:
            rows = sample_rows(split.labels)
            sample_card = _sample_card(card, rows)
            for r in rows:
                img = np.ascontiguousarray(split.images[r])
                samples.append({"set": name, "row": int(r), "label": int(split.labels[r]),
                                "height": img.shape[0], "width": img.shape[1],
                                "image": img.tobytes()})
        sets.append({"name": name, "content_sha256": card.get("content_sha256"),
                     "card_json": json.dumps(strip_per_image(card), sort_keys=True),
                     "sample_card_json": json.dumps(sample_card, sort_keys=True)
                     if sample_card else None})
    return (pd.DataFrame(sets, columns=list(SET_COLUMNS)),
            pd.DataFrame(samples, columns=list(SAMPLE_COLUMNS)))


def _trained_on(runs: pd.DataFrame, name: str) -> str | None:
    """The content hash of set ``name`` that its runs recorded (None for runs made before
    runs recorded it); BundleError when they trained on different contents of that name."""
    hashes = {json.loads(c).get("synthetic_sha256") for c in runs["context_json"]
              if isinstance(c, str)} - {None}
    if len(hashes) > 1:
        raise BundleError(f"the runs on synthetic set {name!r} trained on {len(hashes)} "
                          "different sets of that name (it was replaced in between); export "
                          "them apart with --run")
    return next(iter(hashes), None)


def _set_card(store: Store, name: str) -> tuple[dict | None, Any]:
    """The set's card and images when it is here, its registered card only when it came from
    a bundle, (None, None) when this machine does not know it."""
    from .synth.sets import load_set
    try:
        split, card = load_set(name)
        return card, split
    except DataError:
        registered = store.synthetic_sets().set_index("name")
        if name in registered.index:
            return json.loads(registered.loc[name, "card_json"]), None
    return None, None


def sample_rows(labels: np.ndarray, per_class: int = SAMPLE_PER_CLASS) -> np.ndarray:
    """A fixed sample of a set: up to ``per_class`` rows of each class, evenly spaced over the
    class's rows (the same set always gives the same rows), sorted."""
    labels = np.asarray(labels).reshape(-1)
    out = []
    for cls in np.unique(labels):
        rows = np.flatnonzero(labels == cls)
        k = min(per_class, len(rows))
        out.append(rows[np.unique(np.linspace(0, len(rows) - 1, k).round().astype(int))])
    return np.sort(np.concatenate(out)) if out else np.zeros(0, dtype=int)


def strip_per_image(obj: Any, limit: int = _PER_IMAGE_LIMIT) -> Any:
    """A card without its per-image lists (source_index, nearest neighbours...): each list
    longer than ``limit`` becomes a note of its length."""
    if isinstance(obj, dict):
        return {k: strip_per_image(v, limit) for k, v in obj.items()}
    if isinstance(obj, list) and len(obj) > limit:
        return f"{len(obj)} per-image values, not in the bundle"
    return obj


def _sample_card(card: dict, rows: np.ndarray) -> dict:
    """The card of a sample: the parent's card with each per-image list cut to ``rows``."""
    n = card.get("n")

    def cut(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: cut(v) for k, v in obj.items()}
        if isinstance(obj, list) and n is not None and len(obj) == n:
            return [obj[int(r)] for r in rows]
        return strip_per_image(obj)
    keep = {k: v for k, v in card.items()
            if k not in ("name", "n", "counts", "image_size", "sha256", "content_sha256",
                         "created_at")}
    return {**cut(keep), "sample_of": {"name": card.get("name"), "n": n,
                                      "content_sha256": card.get("content_sha256"),
                                      "rows": [int(r) for r in rows]}}


# --------------------------------------------------------------------------------------------
# Reading and validating a bundle


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


# --------------------------------------------------------------------------------------------
# Import


@dataclass
class ImportReport:
    """What importing one bundle did (or would have done, for one already imported)."""

    bundle_id: str
    name: str
    path: str
    already_imported: bool = False
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)  # local failed/cancelled runs
    same: list[str] = field(default_factory=list)  # already here with the same numbers
    replicates: list[dict] = field(default_factory=list)  # {"run_id", "diff", "contexts"}
    conflicts: list[dict] = field(default_factory=list)  # {"run_id", "diff", "context"}
    running: list[str] = field(default_factory=list)  # being trained here now: left alone
    samples: list[str] = field(default_factory=list)  # sample sets written

    def lines(self) -> list[str]:
        """The report for people, one line per fact."""
        head = f"bundle {self.name} ({self.bundle_id}, {self.path})"
        if self.already_imported:
            return [f"{head}: already imported; nothing to do"]
        out = [f"{head}: {len(self.added)} runs added, {len(self.same)} already here, "
               f"{len(self.replicates)} replicates, {len(self.conflicts)} conflicts"
               + (f", {len(self.replaced)} failed/cancelled local runs replaced"
                  if self.replaced else "")
               + (f", {len(self.running)} left alone (running here)" if self.running else "")]
        out += [f"  sample images: synthetic set {s}" for s in self.samples]
        out += [f"  replicate {r['run_id']}: {r['diff']} ({r['contexts']})"
                for r in self.replicates]
        out += [f"  CONFLICT {c['run_id']}: same context ({c['context']}) but {c['diff']}; "
                "the local run is kept" for c in self.conflicts]
        return out


def import_bundle(store: Store, path: Path, shipped: bool = False) -> ImportReport:
    """Import one bundle folder into ``store`` (see the module docstring for what each run
    becomes). Idempotent: a bundle already imported is skipped. BundleError, and nothing
    imported, for a damaged bundle or a clashing synthetic set."""
    bundle = read_bundle(path)
    report = ImportReport(bundle.id, bundle.name, str(Path(path).resolve()))
    if store.bundle_imported(bundle.id):
        report.already_imported = True
        return report
    samples = _sample_sets(bundle)
    plan = ImportPlan(bundle.id, bundle.name, report.path, shipped, bundle.manifest,
                      bundle.tables, sets=_set_rows(store, bundle, samples))
    _classify(store, plan, report)
    for name, (images, labels, card) in samples.items():
        _write_sample(name, images, labels, card)
        report.samples.append(name)
    if not store.apply_import(plan):  # another process imported it meanwhile
        return ImportReport(bundle.id, bundle.name, report.path, already_imported=True)
    return report


def import_shipped(store: Store, folder: Path | None = None) -> list[ImportReport]:
    """Import every bundle under ``folder`` (default ``paths.shipped_results_dir()``) that this
    store has not imported yet, as shipped results. Cheap when there is nothing new (one small
    JSON read per bundle, one query). A damaged shipped bundle is reported on stderr and
    skipped: it must not keep the app from opening."""
    import sys
    folder = folder if folder is not None else paths.shipped_results_dir()
    if folder is None or not Path(folder).is_dir():
        return []
    done = store.imported_bundle_ids()
    reports = []
    for sub in sorted(p for p in Path(folder).iterdir() if (p / MANIFEST).is_file()):
        try:
            if json.loads((sub / MANIFEST).read_text(encoding="utf-8")).get("bundle_id") in done:
                continue
            reports.append(import_bundle(store, sub, shipped=True))
        except (BundleError, DataError, SpecError, ValueError, OSError) as exc:
            print(f"synthmed: shipped results bundle {sub} not imported: {exc}", file=sys.stderr)
    return reports


def _classify(store: Store, plan: ImportPlan, report: ImportReport) -> None:
    runs, metrics = plan.tables["runs"], plan.tables["metrics"]
    local_runs, local_metrics = store.local_records(list(runs["run_id"]))
    local = local_runs.set_index("run_id")
    theirs = _metric_dicts(metrics)
    ours = _metric_dicts(local_metrics)
    for row in runs.itertuples(index=False):
        rid = row.run_id
        if rid not in local.index:
            plan.new.append(rid)
            report.added.append(rid)
            continue
        status = local.loc[rid, "status"]
        if status == "running":
            report.running.append(rid)
            continue
        if status != "finished":
            plan.replace.append(rid)
            report.replaced.append(rid)
            continue
        diff = metric_diff(ours.get(rid, {}), theirs.get(rid, {}))
        if not diff:
            report.same.append(rid)
            continue
        mine = _json(local.loc[rid, "context_json"])
        other = _json(row.context_json)
        if same_context(mine, other):
            report.conflicts.append({"run_id": rid, "diff": diff, "context": describe(mine)})
        else:
            plan.replicates.append(rid)
            report.replicates.append({"run_id": rid, "diff": diff,
                                      "contexts": f"here: {describe(mine)}; bundle: "
                                                  f"{describe(other)}"})


def _metric_dicts(df: pd.DataFrame) -> dict[str, dict[tuple[str, str], float]]:
    out: dict[str, dict[tuple[str, str], float]] = {}
    for rid, split, name, value in zip(df["run_id"], df["split"], df["name"], df["value"]):
        out.setdefault(rid, {})[(split, name)] = float(value)
    return out


def metric_diff(a: dict, b: dict) -> str:
    """'' when two runs' metrics are equal (NaN equals NaN), else the test accuracy and AUROC
    differences (or the first differing metric) as text."""
    keys = set(a) | set(b)

    def equal(k) -> bool:
        x, y = a.get(k), b.get(k)
        if x is None or y is None:
            return x is y
        return x == y or (math.isnan(x) and math.isnan(y))
    differing = sorted(k for k in keys if not equal(k))
    if not differing:
        return ""
    shown = [k for k in (("test", "accuracy"), ("test", "auroc")) if k in differing]
    shown = shown or differing[:1]
    return ", ".join(f"{s} {n} {a.get((s, n), float('nan')):.4f} here vs "
                     f"{b.get((s, n), float('nan')):.4f} in the bundle" for s, n in shown)


def _json(value: Any) -> dict | None:
    return json.loads(value) if isinstance(value, str) and value else None


# ---- synthetic sets on import ----------------------------------------------------------------


def _local_set_hash(store_sets: pd.DataFrame, name: str) -> tuple[str | None, str | None]:
    """(content hash, origin) of the set ``name`` as this machine knows it: its registry row,
    else its folder on disk; (None, None) when unknown."""
    from .synth.sets import list_sets
    hit = store_sets[store_sets["name"] == name]
    if len(hit) and isinstance(hit["content_sha256"].iloc[0], str):
        return hit["content_sha256"].iloc[0], hit["origin"].iloc[0]
    for card in list_sets():
        if card.get("name") == name and "error" not in card:
            if card.get("content_sha256"):
                return card["content_sha256"], LOCAL_ORIGIN
            from .synth.sets import load_set
            return load_set(name)[1].get("content_sha256"), LOCAL_ORIGIN
    return None, None


def _set_rows(store: Store, bundle: Bundle, samples: dict) -> list[dict]:
    """The synthetic_sets rows to write; BundleError when a set name is taken by other
    images here (that would confuse two sets' runs)."""
    known = store.synthetic_sets()
    rows = []
    for s in bundle.tables["sets"].itertuples(index=False):
        local_hash, _origin = _local_set_hash(known, s.name)
        if local_hash and s.content_sha256 and local_hash != s.content_sha256:
            raise BundleError(
                f"{bundle.path / FILES['sets']}: its runs used synthetic set {s.name!r} with "
                f"content {s.content_sha256[:12]}, but this machine's set {s.name!r} holds "
                f"other images ({local_hash[:12]}). Rename the local set (import it again "
                "under another name) before importing this bundle; nothing was imported")
        if local_hash is None:  # known from the bundle only: its card, no images here
            rows.append({"name": s.name, "card": json.loads(s.card_json), "path": None,
                         "origin": bundle.id})
    for name, (_images, _labels, card) in samples.items():
        from .synth.sets import set_dir
        rows.append({"name": name, "card": card, "path": str(set_dir(name)),
                     "origin": bundle.id})
    return rows


def _sample_sets(bundle: Bundle) -> dict[str, tuple[np.ndarray, np.ndarray, dict]]:
    """The sample sets this bundle brings, by set name (``NAME-sample``): images, labels and
    a card whose content hash is filled in. BundleError for damaged sample rows or a sample
    name taken by other images here."""
    from .synth.sets import content_sha256, list_sets, validate_name
    samples, sets = bundle.tables["samples"], bundle.tables["sets"]
    on_disk = {c.get("name"): c for c in list_sets() if "error" not in c}
    out = {}
    for s in sets.itertuples(index=False):
        rows = samples[samples["set"] == s.name]
        if not len(rows) or not s.sample_card_json:
            continue
        try:
            images = np.stack([np.frombuffer(b, np.uint8).reshape(h, w) for b, h, w in
                               zip(rows["image"], rows["height"], rows["width"])])
        except ValueError as exc:
            raise BundleError(f"{bundle.path / FILES['samples']}: the sample of {s.name!r} "
                              f"has a damaged image ({exc})") from exc
        labels = rows["label"].to_numpy(np.uint8)
        name = validate_name(s.name[:64 - len(SAMPLE_SUFFIX)] + SAMPLE_SUFFIX)
        card = {**json.loads(s.sample_card_json), "method": "sample",
                "source": f"a fixed sample of synthetic set {s.name!r} from results bundle "
                          f"{bundle.name} ({bundle.id}); rebuild the whole set with the "
                          "generator, seed and parameters below",
                "content_sha256": content_sha256(images, labels)}
        there = on_disk.get(name)
        if there is not None and there.get("content_sha256") != card["content_sha256"]:
            raise BundleError(f"synthetic set {name!r} exists here with other images; it "
                              f"would be replaced by the sample in {bundle.path}. Rename or "
                              "delete it first; nothing was imported")
        out[name] = (images, labels, card)
    return out


def _write_sample(name: str, images: np.ndarray, labels: np.ndarray, card: dict) -> None:
    from .synth.sets import load_set, set_dir, write_set
    if set_dir(name).is_dir():
        return  # the same images (checked in _sample_sets)
    clean = {k: v for k, v in card.items() if k != "content_sha256"}  # write_set derives it
    try:
        write_set(name, images, labels.reshape(-1, 1), clean)
    except SpecError:  # another process wrote it a moment ago: fine if it holds these images
        if load_set(name)[1].get("content_sha256") != card["content_sha256"]:
            raise


# --------------------------------------------------------------------------------------------
# Reproducing a run here, and reading how its records compare


def reproduction(run: dict) -> list[str]:
    """How a run's current record compares with each of its replicates (e.g. the shipped
    numbers after it was reproduced here), one line each: equal, or the differences, with
    both contexts and whether they ran on the same kind of device."""
    lines = []
    here = {(s, n): v for s, d in run["metrics_by_split"].items() for n, v in d.items()}
    for rep in run.get("replicates", []):
        theirs = {(s, n): v for s, d in rep["metrics"].items() for n, v in d.items()}
        diff = metric_diff(here, theirs).replace("in the bundle", "in the other record")
        a, b = run.get("context") or {}, rep.get("context") or {}
        kind = ("the same kind of device" if a.get("device_name") and
                a.get("device_name") == b.get("device_name") else "another kind of device")
        where = "this machine" if rep["origin"] == LOCAL_ORIGIN else f"bundle {rep['origin']}"
        verdict = ("identical numbers" if not diff else
                   f"different numbers: {diff}" + (" (same context: a conflict)"
                                                   if same_context(a, b) else ""))
        lines.append(f"vs the record from {where} ({describe(b)}), {kind}: {verdict}")
    return lines


def rebuild_hint(store: Store, name: str) -> str:
    """How to make synthetic set ``name`` on this machine, from the card the store holds
    (e.g. one that came with a bundle): the generate command with its seed and count."""
    sets = store.synthetic_sets().set_index("name")
    card = json.loads(sets.loc[name, "card_json"]) if name in sets.index else {}
    params = card.get("parameters") or {}
    if card.get("method") in ("cyclegan", "ddpm") and params.get("profile"):
        return (f"rebuild it first with `python -m synthmed_core synth generate --method "
                f"{card['method']} --profile {params['profile']} --seed {card.get('seed', 0)} "
                f"--count {card.get('n')} --name {name}` (its card's recipe; the content hash "
                f"should come out {str(card.get('content_sha256'))[:12]})")
    return ("import or generate it under that name first (`python -m synthmed_core synth "
            "list` shows the sets here)")
