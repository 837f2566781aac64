"""Shared by the bundle-safety tests: a tiny genuine bundle (three runs on the real test and val
splits, one synthetic set with its sample), and the edits a hostile user makes to one while
keeping its manifest consistent (file hashes, row counts and bundle id recomputed)."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pandas as pd

from synthmed_core import bundle as bd
from synthmed_core.bundle._format import parquet_bytes
from synthmed_core.store import Store

from grid_helpers import add_run, probs_with_accuracy, real_labels
from synth_helpers import write_blurred_real_set

SET = "fake-set"


def make_tiny_bundle(out: Path, root: Path, medmnist: Path) -> Path:
    """Export bundle ``out`` from a fresh data root ``root`` (SYNTHMED_DATA and the medmnist
    folder are set for the duration): base seeds 0 and 1 and augment@1 seed 0 on set SET (20
    images per class)."""
    before = {k: os.environ.get(k) for k in ("SYNTHMED_DATA", "SYNTHMED_MEDMNIST_ROOT")}
    os.environ.update(SYNTHMED_DATA=str(root), SYNTHMED_MEDMNIST_ROOT=str(medmnist))
    try:
        store = Store(root / "synthmed.duckdb")
        write_blurred_real_set(SET, 20, "bundle test")
        from synthmed_core.synth.sets import load_set, set_dir
        store.register_synthetic_set(SET, load_set(SET)[1], str(set_dir(SET)))
        y, y_val = real_labels("test"), real_labels("val")
        for seed, setting, kw in ((0, "base", {}), (1, "base", {}),
                                  (0, "augment", {"ratio": 1.0, "synthetic": SET})):
            add_run(store, setting, seed, probs_with_accuracy(y, 0.8, seed), y, arch="resnet18",
                    val=(y_val, probs_with_accuracy(y_val, 0.8, 10 + seed)), **kw)
        bd.export_bundle(store, out, name="tiny")
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return out


def copy_bundle(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def table(bundle: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(bundle / bd.FILES[name])


def write_table(bundle: Path, name: str, df: pd.DataFrame) -> None:
    """Replace table ``name`` with ``df`` and fix the manifest up as an attacker would."""
    (bundle / bd.FILES[name]).write_bytes(parquet_bytes(df))
    rehash(bundle)


def rehash(bundle: Path, **fields) -> dict:
    """Recompute every file's sha256, size and rows, the counts and the bundle id (after
    ``fields`` are set on the manifest): what anyone can do to a changed bundle."""
    m = json.loads((bundle / bd.MANIFEST).read_text())
    for key, filename in bd.FILES.items():
        data = (bundle / filename).read_bytes()
        try:
            rows = len(pd.read_parquet(bundle / filename))
        except Exception:  # a deliberately damaged file: keep what the manifest said
            rows = m["files"][filename]["rows"]
        m["files"][filename] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                                "rows": rows}
        m["counts"][key] = rows
    m.update(fields)
    m["bundle_id"] = bd.bundle_id(m["files"])
    (bundle / bd.MANIFEST).write_text(json.dumps(m, indent=2, sort_keys=True))
    return m


def edit(bundle: Path, name: str, fn) -> Path:
    """Apply ``fn`` to a copy of table ``name`` (it returns the new frame) and rehash."""
    write_table(bundle, name, fn(table(bundle, name).copy()))
    return bundle
