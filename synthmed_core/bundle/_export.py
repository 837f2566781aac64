"""Writing a bundle: the finished runs chosen, the cards of the synthetic sets they used and a
fixed sample of each set's images, and the manifest."""
from __future__ import annotations

import hashlib
import json
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import BundleError, DataError
from ..store import Store
from ..records.context import code_version, describe, device_description
from ._format import (_PER_IMAGE_LIMIT, BUNDLE_SCHEMA, FILES, MANIFEST, SAMPLE_COLUMNS,
                      SAMPLE_PER_CLASS, SET_COLUMNS, bundle_id, parquet_bytes)
from ._weights import export_weights


def export_bundle(store: Store, out: Path, *, profile: str | None = None,
                  archs: list[str] | None = None, synthetic: list[str] | None = None,
                  run_ids: list[str] | None = None, name: str | None = None,
                  with_weights: list[str] | None = None, with_samples: bool = True) -> dict:
    """Write the finished runs matching every filter given into the bundle folder ``out``
    (created; an existing bundle there is replaced, anything else refused) and return its
    manifest; ``with_weights`` (run ids or unique prefixes, among those runs) adds their
    weights (``_weights.export_weights``); ``with_samples=False`` ships each set's card without
    its sample images (for a bundle beside one that already ships them). BundleError when no
    run matches."""
    out = Path(out)
    from ._checks import NAME
    if not NAME.fullmatch(name or out.name):
        raise BundleError(f"bundle name {name or out.name!r} is not valid: use 1-64 letters, "
                          "digits, '.', '_' or '-', not starting with '.' or '-' (--name NAME)")
    ids = store.finished_run_rows(profile, archs, synthetic, _full_ids(store, run_ids))
    if not ids:
        raise BundleError("no finished run matches the filters given; nothing to export "
                          "(`python -m synthmed_core runs list --status finished`)")
    if out.exists() and not (out / MANIFEST).is_file() and any(out.iterdir()):
        raise BundleError(f"{out} exists and is not a bundle; choose an empty or new folder")
    tables = store.bundle_tables(ids)
    tables["sets"], tables["samples"] = _set_tables(store, tables["runs"], with_samples)
    # Weights first: their fidelity check may refuse them before any file is written.
    weights = export_weights(store, _full_ids(store, with_weights) or [], out, tables)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for table, filename in FILES.items():
        data = parquet_bytes(tables[table])
        (out / filename).write_bytes(data)
        files[filename] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                           "rows": int(len(tables[table]))}
    files.update({n: {"sha256": e["sha256"], "bytes": e["bytes"]} for n, e in weights.items()})
    manifest = {
        "bundle_id": bundle_id(files), "name": name or out.name, "schema_version": BUNDLE_SCHEMA,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "code": code_version(), "versions": _versions(),
        "device": {**device_description("cpu"), **_gpu_name()},
        "run_devices": sorted({describe(json.loads(c)) for c in tables["runs"]["context_json"]
                               if isinstance(c, str)} or {"context not recorded"}),
        "counts": {t: int(len(tables[t])) for t in FILES}, "files": files,
        **({"weights": {n: {k: v for k, v in e.items() if k not in ("sha256", "bytes")}
                        for n, e in weights.items()}} if weights else {})}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest



def _full_ids(store: Store, run_ids: list[str] | None) -> list[str] | None:
    """Run ids given by unique prefixes, expanded; SpecError for an unknown or ambiguous one."""
    if not run_ids:
        return None
    return [store.resolve_run_id(prefix, status="finished") for prefix in run_ids]


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


def _set_tables(store: Store, runs: pd.DataFrame,
                with_samples: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
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
        if split is not None and with_samples:
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
    from ..data.synthetic import load_set
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
