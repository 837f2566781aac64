"""Cached readers of the image pages (Gallery, Grad-CAM, Predict): the store, finished runs,
synthetic sets, real splits and run models. Keyed on the database path, so a page pointed at
another database never sees this one's rows; models are ``cache_resource`` (heavy, shared)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import streamlit as st

from synthmed_core import gallery, overlays
from synthmed_core.data import CLASS_NAMES, Split, load_real
from synthmed_core.errors import DataError, SpecError, SynthmedError
from synthmed_core.synth.sets import load_set
from synthmed_core.uploads import to_dataset_image

from . import launch
from .readers import db, store  # noqa: F401  (one cached Store per database, re-exported)

if TYPE_CHECKING:
    import pandas as pd

CACHE_TTL_S = 5


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def finished_runs(db_path: str) -> pd.DataFrame:
    return store(db_path).runs("finished")


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def synthetic_sets(db_path: str) -> pd.DataFrame:
    """The sets whose images are on this machine (a set known only from an imported bundle
    has no path; its sample, ``NAME-sample``, is a set of its own)."""
    sets = store(db_path).synthetic_sets()
    return sets[sets["path"].notna()].reset_index(drop=True)


@st.cache_resource(show_spinner="Loading the run's model...", max_entries=8)
def run_model(db_path: str, run_id: str, finished_at: str):
    # finished_at keys the cache: a run id re-trained after a delete has new weights.
    from synthmed_core import explain  # torch: loaded with the first model, not on page open
    return explain.load_run_model(store(db_path), run_id)


def has_weights(run: Any) -> bool:
    """Whether a finished run's checkpoint file is on this machine (runs trained on another
    machine, or whose files were deleted, are in the store without it)."""
    path = run.get("checkpoint")
    return isinstance(path, str) and bool(path) and Path(path).is_file()


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def runs_with_weights(db_path: str) -> tuple[list[dict], list[dict]]:
    """The finished runs whose checkpoint file is here and those whose file is not (oldest
    first); cached like ``finished_runs``, so a rerun does not stat every file again."""
    runs = finished_runs(db_path).to_dict("records")
    return [r for r in runs if has_weights(r)], [r for r in runs if not has_weights(r)]


def pick_runs(db_path: str, key: str, preselect: int, empty: str) -> list[str]:
    """A multiselect of the finished runs whose weights are here, newest first, with the
    newest ``preselect`` chosen; the runs without weights here (e.g. shipped results) are
    offered for reproduction on this machine."""
    usable, away = runs_with_weights(db_path)
    if not usable and not away:
        st.info(empty)
        return []
    if away:
        reproduce_offer(db_path, away, key)
    if not usable:
        st.info("No finished run has its weights on this machine yet: reproduce one above, or "
                "train one here (profile `smoke` takes seconds).")
        return []
    labels = {r["run_id"]: run_label(r) for r in usable}
    ids = list(reversed(list(labels)))  # newest first
    return st.multiselect("Runs", ids, default=ids[:preselect], format_func=labels.get, key=key)


def reproduce_offer(db_path: str, away: list[dict], key: str) -> None:
    """Runs whose weights are elsewhere (shipped or imported bundles, deleted files): pick one
    and queue it to be trained again here, after which it can draw maps and predict."""
    with st.expander(f"{len(away)} finished runs have no weights on this machine (results "
                     "from a bundle, or deleted files): reproduce one here"):
        labels = {r["run_id"]: run_label(r) for r in reversed(away)}
        run_id = st.selectbox("Run", list(labels), format_func=labels.get,
                              key=f"{key}_away")
        if st.button("Reproduce here", key=f"{key}_reproduce",
                     help="Queues its exact spec as a job here; when it finishes it is listed "
                          "above, and its numbers are compared with the shipped ones."):
            try:
                st.caption(launch.reproduce(run_id, store(db_path)))
            except SynthmedError as exc:
                st.error(f"Cannot reproduce {run_id} here: {exc}")


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


def run_label(run: Any) -> str:
    """One line naming a run: arch, init, setting (ratio, set), seed, profile and id."""
    setting = run["setting"]
    ratio = run.get("ratio")
    if ratio is not None and not math.isnan(ratio):  # pandas gives NaN for "no ratio"
        setting += f" x{ratio:g}"
    synthetic = run.get("synthetic")
    if isinstance(synthetic, str) and synthetic:  # pandas gives NaN for "no set"
        setting += f" [{synthetic}]"
    return (f"{run['arch']} · {run['init']} · {setting} · seed {run['seed']} · "
            f"{run['profile']} · {run['run_id'][:8]}")


def class_caption(label: int) -> str:
    return CLASS_NAMES[int(label)]


def opacity_slider(key: str) -> float:
    """The heat map's opacity over the X-ray, one slider per page."""
    return st.slider("Heat map opacity", 0.0, 1.0, overlays.DEFAULT_OPACITY, 0.05, key=key,
                     help="0 shows the X-ray alone, 1 the heat map alone; images are enlarged "
                          "smoothly for display, the models saw them at their own input size")


def show_cam(result: overlays.CamResult, title: str, opacity: float = 0.45,
             width: int = 452) -> None:
    """One CAM: the image and its overlay side by side, with P(pneumonia), layer and map
    size, or a warning when the map is flat."""
    caption = (f"{title} — P(pneumonia) = {result.prob:.3f} · {result.method} of class "
               f"{result.target} on layer {result.layer} ({result.map_side}x{result.map_side} map)")
    if result.constant:
        st.warning(f"{title}: the {result.method} map of class {result.target} on layer "
                   f"`{result.layer}` ({result.map_side}x{result.map_side}) came out constant, "
                   f"so there is nothing to show; P(pneumonia) = {result.prob:.3f}. Try another "
                   "method (EigenCAM needs no gradients) or class.")
        return
    st.image(overlays.beside(result, opacity), caption=caption, width=width)


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
    from synthmed_core import explain
    model = run_model(db_path, run_id, version)
    size = int(model.synthmed.get("data_size", 28))
    return [explain.cam_overlays(model, at_data_size(image, size), method, target)[0]
            for image in images]


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


def image_tile(image: np.ndarray, caption: str, width: int = 112) -> None:
    st.image(gallery.enlarge(image[None], width)[0], caption=caption, width=width)


@st.cache_data(max_entries=16, show_spinner="Computing CAMs over many images...")
def cam_summary(db_path: str, run_ids: tuple, versions: tuple, set_name: str, folder: str,
                cls: int, n: int, method: str, target: str) -> dict:
    """``cam_stats`` for the first run (mean maps on real vs synthetic images of class ``cls``)
    and, with a second run, their agreement on the same real images; ``versions`` are the
    runs' ``finished_at`` (cache keys)."""
    from synthmed_core import cam_stats as cs
    model = run_model(db_path, run_ids[0], versions[0])
    size = int(model.synthmed.get("data_size", 28))
    test = load_real("test", size=size)
    split, _ = synthetic_set(set_name, folder)
    real = test.images[cs.class_rows(test.labels, cls, n)]
    fake = cs.images_for(model, split.images[cs.class_rows(split.labels, cls, n)])
    out = {"means": cs.mean_maps(model, real, fake, method, target)}
    if len(run_ids) > 1:
        other = run_model(db_path, run_ids[1], versions[1])
        out["agreement"] = cs.agreement(model, other, real, method, target)
    out["png"] = cs.mean_maps_png(out["means"])
    return out
