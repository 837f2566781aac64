"""Widgets of the image pages (Gallery, Grad-CAM, Predict): run pickers, the reproduce offer, CAM
and image tiles, the opacity slider. What they show is read through ``ui.readers``."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import streamlit as st

from synthmed_core.data.real import CLASS_NAMES
from synthmed_core.errors import SynthmedError
from synthmed_core.explain import overlays
from synthmed_core.explorer import gallery
from synthmed_core.text import md_literal

from . import launch
from .readers import runs_with_weights, store


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
                st.caption(md_literal(launch.reproduce(run_id, store(db_path))))
            except SynthmedError as exc:
                st.error(f"Cannot reproduce {run_id} here: {md_literal(exc)}")


def run_label(run: Any) -> str:
    """One line naming a run: arch, init, setting (ratio, set), seed, profile and id."""
    setting = run["setting"]
    ratio = run.get("ratio")
    if ratio is not None and not math.isnan(ratio):  # pandas gives NaN for "no ratio"
        setting += f" x{ratio:g}"
    synthetic = run.get("synthetic")
    if isinstance(synthetic, str) and synthetic:  # pandas gives NaN for "no set"
        setting += f" [{synthetic}]"
    recipe = run.get("recipe_label")  # the profile, and what the run changed of it
    recipe = recipe if isinstance(recipe, str) and recipe else run["profile"]
    return (f"{run['arch']} · {run['init']} · {setting} · seed {run['seed']} · "
            f"{recipe} · {run['run_id'][:8]}")


def class_caption(label: int) -> str:
    return CLASS_NAMES[int(label)]


def opacity_slider(key: str) -> float:
    """The heat map's opacity over the X-ray, one slider per page."""
    return st.slider("Heat map opacity", 0.0, 1.0, overlays.DEFAULT_OPACITY, 0.05, key=key,
                     help="0 shows the X-ray alone, 1 the heat map alone; images are enlarged "
                          "smoothly for display, the models saw them at their own input size")


def show_cam(result: overlays.CamResult, title: str, opacity: float = 0.45,
             width: int | str = "content") -> None:
    """One CAM: the image and its overlay side by side, with P(pneumonia), layer and map
    size, or a warning when the map is flat. At its own size unless its column is narrower
    (several images side by side), then shrunk to the column: never over its neighbour."""
    caption = (f"{title} — P(pneumonia) = {result.prob:.3f} · {result.method} of class "
               f"{result.target} on layer {result.layer} ({result.map_side}x{result.map_side} map)")
    if result.constant:
        st.warning(f"{title}: the {result.method} map of class {result.target} on layer "
                   f"`{result.layer}` ({result.map_side}x{result.map_side}) came out constant, "
                   f"so there is nothing to show; P(pneumonia) = {result.prob:.3f}. Try another "
                   "method (EigenCAM needs no gradients) or class.")
        return
    st.image(overlays.beside(result, opacity), caption=caption, width=width)


def image_tile(image: np.ndarray, caption: str, width: int = 112) -> None:
    st.image(gallery.enlarge(image[None], width)[0], caption=caption, width=width)


