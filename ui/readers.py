"""Every cached read of the pages, in one place with one lifetime policy.

Keyed on the database path, so a page pointed at another database never sees this one's rows.
Results (``st.cache_data``) stay until the store's results change: ``keep_fresh()`` (every
full rerun, from the sidebar) compares ``Store.results_version`` with the one this server saw
last and ``refresh()`` drops every results read at once when it moved (a run ended, a bundle
was imported, a set was measured: by this app, a worker or the CLI); the sidebar's job
fragment also calls ``refresh()`` when it sees a job end. The queue lives LIVE_TTL_S, read from
the store's queue snapshot. What is keyed on a version (a run's ``finished_at``, a set's
sha256: CAMs, nearest neighbours) never goes stale and is only bounded in size. Handles and models
(``st.cache_resource``: the Store, run models, encoders, the test images) live as long as the
server. Torch is imported by the reads that need a model, when they are first called."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from synthmed_core import paths
from synthmed_core.analysis.corrections import DEFAULT_CORRECTION
from synthmed_core.bundle import weights_file
from synthmed_core.data.real import Split, load_real
from synthmed_core.data.uploads import to_dataset_image
from synthmed_core.errors import DataError, SpecError, SynthmedError
from synthmed_core.grid import get_profile
from synthmed_core.explain import overlays
from synthmed_core.explorer import claims as claims_mod
from synthmed_core.bench import estimate as est
from synthmed_core.explorer import gallery, heatmap_view, report, views
from synthmed_core.explorer.cell_detail import CellDetail, cell_detail
from synthmed_core.store import Store
from synthmed_core.data.synthetic import load_set

CACHE_TTL_S = 3600  # bounds memory, not staleness: keep_fresh() drops them when results change
LIVE_TTL_S = 1  # the queue: the sidebar polls it every couple of seconds
LOCK_TIMEOUT_S = 10.0  # a busy database gives a warning within seconds, not a hung page


def db() -> str:
    """The database path the app reads (SYNTHMED_DB / SYNTHMED_DATA), as a cache key."""
    return str(paths.db_path())


@st.cache_resource(show_spinner=False)
def store(db: str) -> Store:
    """One Store per database file and server: its constructor migrates, which needs a write.
    The data root's own store also imports the shipped results bundles it lacks (the app is an
    entry point, like ``ui.serve``, the CLI and a job worker)."""
    opened = Store(Path(db), lock_timeout=LOCK_TIMEOUT_S)
    if opened.path == paths.db_path():
        from synthmed_core.bundle import import_shipped  # reads Parquet: only where it may be needed
        import_shipped(opened)
    return opened


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def grid_cells(db: str, metric: str, profile: str | None, alpha: float,
               with_study_only: bool = False, origin: str | None = None,
               correction: str = DEFAULT_CORRECTION) -> pd.DataFrame:
    return heatmap_view.grid_cells(store(db), metric, profile, alpha, with_study_only, origin,
                                correction)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def claims(db: str, profile: str | None, origin: str | None = None,
           correction: str = DEFAULT_CORRECTION) -> pd.DataFrame:
    """The study's conclusions checked on the runs of ``profile`` (``claims.check_claims``)."""
    return claims_mod.check_claims(store(db), profile, origin=origin, correction=correction)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def sources(db: str) -> pd.DataFrame:
    """Finished runs per source (``views.sources_table`` of ``Store.origins``)."""
    return views.sources_table(store(db).origins())


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def bundles(db: str) -> pd.DataFrame:
    """The result bundles imported into the store, with their provenance."""
    return views.bundles_table(store(db).bundles())


def refused_bundles(db: str) -> list[dict]:
    """The shipped bundles this data root skipped, and why (one small file read: not cached,
    so a fixed bundle's warning goes as soon as it imports)."""
    from synthmed_core.bundle import refused_shipped
    return refused_shipped(store(db))


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def profiles(db: str) -> list[str]:
    """Profiles with finished runs, the most used first."""
    return heatmap_view.profiles(store(db))


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False, max_entries=32)
def detail(db: str, cell: tuple) -> CellDetail:
    """One cell's detail; ``cell`` is a tuple of (key, value) pairs (hashable)."""
    return cell_detail(store(db), dict(cell))


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def report_table(db: str, metric: str) -> pd.DataFrame:
    """The results table (every cell, every profile) beside the study's grid."""
    return report.report_table(store(db), metric, every_study_arch=True)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def runs(db: str) -> pd.DataFrame:
    return store(db).runs()


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def counts(db: str) -> dict[str, int]:
    return store(db).store_counts()


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def synthetic_sets(db: str) -> pd.DataFrame:
    return store(db).synthetic_sets()


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def local_epoch_times(db: str) -> pd.DataFrame:
    return store(db).local_epoch_times()


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False, max_entries=256)
def estimate(db: str, arch: str, setting: str, ratio: float | None, synthetic: str | None,
             profile: str) -> est.Estimate | None:
    """One run's estimated time here (``estimate.estimate_run``); None until the arch has a
    speed here (a run trained here, or ``measure_speed``)."""
    return est.estimate_run(local_epoch_times(db), est.set_sizes(synthetic_sets(db)), arch,
                            setting, ratio, synthetic, profile)


def measure_speed(arch: str, profile: str) -> None:
    """Measure ``arch`` here once at the profile's input size and batch (seconds, in a
    subprocess; kept in the data root), and drop the cached estimates."""
    prof = get_profile(profile)
    est.measure(arch, prof.input_size, prof.batch_size)
    estimate.clear()


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def jobs(db: str, status: str | None = None, limit: int = 200) -> pd.DataFrame:
    return store(db).live_jobs(status=status, limit=limit)  # the snapshot: no lock wait


@st.cache_resource(show_spinner=False)
def test_images(medmnist_root: str) -> np.ndarray:
    """The real PneumoniaMNIST test images (uint8 N x 28 x 28), read once per server."""
    from synthmed_core.data.real import load_real
    return load_real("test", root=Path(medmnist_root)).images


# ---- the image pages: runs with weights, models, images, CAMs, neighbours ---------------------


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def finished_runs(db_path: str) -> pd.DataFrame:
    return store(db_path).runs("finished")


def local_synthetic_sets(db_path: str) -> pd.DataFrame:
    """The sets whose images are on this machine (a set known only from an imported bundle
    has no path; its sample, ``NAME-sample``, is a set of its own)."""
    sets = synthetic_sets(db_path)
    return sets[sets["path"].notna()].reset_index(drop=True)


@st.cache_resource(show_spinner="Loading the run's model...", max_entries=8)
def run_model(db_path: str, run_id: str, finished_at: str):
    # finished_at keys the cache: a run id re-trained after a delete has new weights.
    # torch: loaded with the first model, not on page open
    from synthmed_core.explain import cams as explain
    return explain.load_run_model(store(db_path), run_id)


def has_weights(run: Any) -> bool:
    """Whether a finished run's weights are on this machine: its checkpoint file, or weights
    a bundle brought (runs trained on another machine, or whose files were deleted, are in
    the store without either)."""
    return _has_checkpoint(run) or weights_file(run["run_id"]) is not None


def _has_checkpoint(run: Any) -> bool:
    path = run.get("checkpoint")
    return isinstance(path, str) and bool(path) and Path(path).is_file()


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def runs_with_weights(db_path: str) -> tuple[list[dict], list[dict]]:
    """The finished runs whose checkpoint file is here and those whose file is not (oldest
    first); cached like ``finished_runs``, so a rerun does not stat every file again."""
    runs = finished_runs(db_path).to_dict("records")
    return [r for r in runs if has_weights(r)], [r for r in runs if not has_weights(r)]


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def val_thresholds(db_path: str) -> dict[str, float]:
    """Each finished run's decision threshold picked on val (its recipe's rule), by run id;
    for a shipped model, that of the record its weights came with (another record of the
    same run, e.g. made on another CPU, may have picked another)."""
    from synthmed_core.analysis.calibration import VAL_THRESHOLD_SPLIT
    from synthmed_core.bundle._weights import weights_record
    ids = list(finished_runs(db_path)["run_id"])
    out = store(db_path).metric_of(ids, VAL_THRESHOLD_SPLIT, "threshold")
    for run_id in shipped_model_ids(db_path):
        record = weights_record(run_id) or {}
        if record.get("val_threshold") is not None:
            out[run_id] = float(record["val_threshold"])
    return out


def shipped_model_ids(db_path: str) -> list[str]:
    """The finished runs whose weights came in a bundle (shipped models), not trained here."""
    usable, _ = runs_with_weights(db_path)
    return [r["run_id"] for r in usable if not _has_checkpoint(r)]


def finished_at(db_path: str, run_id: str) -> str:
    """When a finished run finished (its weights' version), "" when it is not finished."""
    runs = finished_runs(db_path)
    hit = runs.loc[runs["run_id"] == run_id, "finished_at"]
    return str(hit.iloc[0]) if len(hit) else ""


def real_split(split: str) -> Split:
    return load_real(split)  # cached by synthmed_core per file version


def synthetic_set(name: str, folder: str) -> tuple[Split, dict]:
    """A registered set, read from the folder the store recorded (cached per file version)."""
    return load_set(name, root=Path(folder).parent)


@st.cache_resource(show_spinner="Loading the set's domain encoder...", max_entries=2)
def encoder(path: str):
    return gallery.load_encoder(Path(path))


@dataclass(frozen=True)
class RealImage:
    """A real MedMNIST image by split and row: each run sees it in the file of its own data
    size (28 px, or the MedMNIST+ 64/128/224 file it trained on)."""

    split: str
    index: int


def at_data_size(image: RealImage | np.ndarray, size: int) -> np.ndarray:
    """The image a run trained on ``size`` px data sees: a real image from that size's file;
    any other image (a synthetic one, an upload) as is when it has that size, else resized the
    importer's way (centre square, bicubic), as MedMNIST-style data is made."""
    if isinstance(image, RealImage):
        return load_real(image.split, size=size).images[image.index]
    image = np.asarray(image, dtype=np.uint8)
    return image if image.shape == (size, size) else to_dataset_image(image, size)


@st.cache_data(max_entries=256, show_spinner="Computing CAMs...")
def cams(db_path: str, run_id: str, version: str, method: str, target: str, images: tuple
         ) -> list[overlays.CamResult]:
    """The CAM of each image (``RealImage`` or a uint8 H x W array) under one run's model, at
    the run's data size (``at_data_size``); ``version`` is the run's ``finished_at``."""
    from synthmed_core.explain import cams as explain
    model = run_model(db_path, run_id, version)
    size = int(model.synthmed.get("data_size", 28))
    return [explain.cam_overlays(model, at_data_size(image, size), method, target)[0]
            for image in images]


@st.cache_data(max_entries=256, show_spinner="Measuring how faithful the maps are...")
def cam_faithfulness(db_path: str, run_id: str, version: str, method: str, target: str,
                     images: tuple) -> list[dict[str, float]]:
    """ROAD combined and the map-kept confidence change of each of ``cams``' maps
    (``explain.faithfulness``)."""
    from synthmed_core.explain import faithfulness as fa
    results = cams(db_path, run_id, version, method, target, images)
    return fa.faithfulness(run_model(db_path, run_id, version), results)


@st.cache_data(max_entries=64, show_spinner="Finding the nearest real train images...")
def neighbours(name: str, folder: str, sha256: str, rows: tuple, space: str
               ) -> list[gallery.Neighbour]:
    """Nearest real train image of each shown synthetic image (``sha256`` keys the set's
    version), from the card when stored, else computed for these rows only."""
    split, card = synthetic_set(name, folder)
    enc_path = gallery.encoder_file(card) if space == "feature" else None
    images, train = same_size_train(split.images, rows)
    return gallery.nearest_real(images, list(rows), card, train, space,
                                encoder(str(enc_path)) if enc_path else None)


def same_size_train(images: np.ndarray, rows: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic images (those of ``rows`` at least) and real train images of one size, to
    compare pixel by pixel: the MedMNIST(+) file of the set's size when it is here, else the
    28 px file, with the rows' images brought to 28 px the importer's way."""
    size = int(images.shape[1])
    try:
        return images, load_real("train", size=size).images
    except (DataError, SpecError):
        small = np.zeros((len(images), 28, 28), dtype=np.uint8)
        for r in rows:
            small[r] = at_data_size(images[r], 28)
        return small, real_split("train").images


@st.cache_data(max_entries=16, show_spinner="Computing CAMs over many images...")
def cam_summary(db_path: str, run_ids: tuple, versions: tuple, set_name: str, folder: str,
                cls: int, n: int, method: str, target: str) -> dict:
    """``cam_stats`` for the first run (mean maps on real vs synthetic images of class ``cls``)
    and, with a second run, their agreement on the same real images; the faithfulness of each
    run's maps on real vs synthetic images (lines by run id); ``versions`` are the runs'
    ``finished_at`` (cache keys)."""
    from synthmed_core.explain import stats as cs
    model = run_model(db_path, run_ids[0], versions[0])
    size = int(model.synthmed.get("data_size", 28))
    test = load_real("test", size=size)
    split, _ = synthetic_set(set_name, folder)
    real = test.images[cs.class_rows(test.labels, cls, n)]
    fake = cs.images_for(model, split.images[cs.class_rows(split.labels, cls, n)])
    from synthmed_core.explain import faithfulness as fa
    out = {"means": cs.mean_maps(model, real, fake, method, target),
           "faithfulness": {run_ids[0]: fa.summary_lines(fa.over_images(model, real, fake,
                                                                        method, target))}}
    if len(run_ids) > 1:
        other = run_model(db_path, run_ids[1], versions[1])
        out["agreement"] = cs.agreement(model, other, real, method, target)
        out["faithfulness"][run_ids[1]] = fa.summary_lines(fa.over_images(
            other, real, cs.images_for(other, fake), method, target))
    out["png"] = cs.mean_maps_png(out["means"])
    return out


_prewarm_started = False


def prewarm() -> None:
    """Once per server, after a page has rendered: read the real splits in a background thread.
    That imports medmnist, and with it torch (~3.4 s of imports on the 2-core box), which the
    Gallery, Grad-CAM and Predict pages paid on their first open; Home and the grid need
    neither, so they go first. A page that needs the data before the thread is done waits for
    the same import, never does it twice."""
    global _prewarm_started
    if _prewarm_started:
        return
    _prewarm_started = True
    threading.Thread(target=_warm, name="synthmed-prewarm", daemon=True).start()


def _warm() -> None:
    try:
        load_real("train")  # every split is read and cached at once
    except Exception:  # noqa: BLE001 - the page that needs the data says what is wrong
        pass


FRESH_CHECK_S = 0.5  # keep_fresh looks at the store at most this often (a file read; the
# database, under its lock, where the data root keeps no results snapshot)
CHECK_SNAPSHOT_S = 30.0  # and checks the snapshot against the database this often (locked)
_seen_version: dict[str, tuple[str, float]] = {}  # per database: version the caches hold, when
_snapshot_checked: dict[str, float] = {}


def keep_fresh(db: str) -> None:
    """Drop the cached results reads if the store's results changed since the last look (at
    most one small read per FRESH_CHECK_S), so a cached claims table (seconds at 10k runs) is
    reused for as long as it is true, not for a fixed time. Every CHECK_SNAPSHOT_S it also
    has the store compare its results snapshot with the database (a writer running older code
    does not publish one): a stale snapshot is dropped, which changes the version."""
    seen, at = _seen_version.get(db, (None, -FRESH_CHECK_S))
    if time.monotonic() - at < FRESH_CHECK_S:
        return
    try:
        if time.monotonic() - _snapshot_checked.get(db, -CHECK_SNAPSHOT_S) >= CHECK_SNAPSHOT_S:
            _snapshot_checked[db] = time.monotonic()
            store(db).check_results_snapshot()
        version = store(db).results_version()
    except SynthmedError:  # a busy or unreadable store: the pages say so themselves
        return
    if seen is not None and seen != version:
        refresh()
    _seen_version[db] = (version, time.monotonic())


def refresh() -> None:
    """Drop every cached results read (not the handles, models, images, nor the reads keyed on
    a version, which cannot go stale)."""
    for reader in (grid_cells, claims, sources, bundles, profiles, detail, report_table, runs,
                   counts, synthetic_sets, jobs, finished_runs, runs_with_weights,
                   local_epoch_times, estimate, val_thresholds):
        reader.clear()
