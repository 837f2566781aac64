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
from .readers import runs_with_weights, shipped_model_ids, store


def pick_runs(db_path: str, key: str, preselect: int, empty: str) -> list[str]:
    """A multiselect of the finished runs whose weights are here, those a bundle brought
    (shipped models: a base one, then the newest) first, then the newest trained here, with the
    first ``preselect`` chosen; the runs without weights here (e.g. shipped results) are
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
    not_base = {r["run_id"]: r.get("setting") != "base" for r in usable}
    shipped = set(shipped_model_ids(db_path))
    newest = list(reversed(list(labels)))
    ids = sorted((i for i in newest if i in shipped), key=not_base.get) + [
        i for i in newest if i not in shipped]  # the shipped reference (base) leads
    if key in st.session_state:  # set by the URL or an earlier run: keep what is still here
        st.session_state[key] = [i for i in st.session_state[key] if i in labels]
        return st.multiselect("Runs", ids, format_func=labels.get, key=key)
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


def faithfulness_text(scores: dict[str, float] | None) -> str:
    """`` · ROAD +0.123 · map-kept change -0.045`` for one map's faithfulness scores
    (``explain.faithfulness``), empty without them."""
    if not scores:
        return ""
    def f(v: float) -> str:
        return "n/a" if not math.isfinite(v) else f"{v:+.3f}"
    return f" · ROAD {f(scores['road'])} · map-kept change {f(scores['confidence_change'])}"


def show_cam(result: overlays.CamResult, title: str, opacity: float = 0.45,
             width: int | str = "content", scores: dict[str, float] | None = None) -> None:
    """One CAM: the image and its overlay side by side, with P(pneumonia), layer and map
    size (and its faithfulness ``scores`` when given), or a warning when the map is flat. At
    its own size unless its column is narrower (several images side by side), then shrunk to
    the column: never over its neighbour."""
    caption = (f"{title} — P(pneumonia) = {result.prob:.3f} · {result.method} of class "
               f"{result.target} on layer {result.layer} ({result.map_side}x{result.map_side} map)"
               + faithfulness_text(scores))
    if result.constant:
        st.warning(f"{title}: the {result.method} map of class {result.target} on layer "
                   f"`{result.layer}` ({result.map_side}x{result.map_side}) came out constant, "
                   f"so there is nothing to show; P(pneumonia) = {result.prob:.3f}. Try another "
                   "method (EigenCAM needs no gradients) or class.")
        return
    st.image(overlays.beside(result, opacity), caption=caption, width=width)


def image_tile(image: np.ndarray, caption: str, width: int = 112) -> None:
    st.image(gallery.enlarge(image[None], width)[0], caption=caption, width=width)


def one_per_class(labels: np.ndarray) -> str:
    """The first row of each class, e.g. ``"0 3"``: the default images of a picker."""
    flat = np.asarray(labels).reshape(-1)
    return " ".join(str(r) for r in sorted(int(np.flatnonzero(flat == c)[0])
                                           for c in range(len(CLASS_NAMES)) if (flat == c).any()))


def preferred_set(names: list[str]) -> int:
    """Index of the set a picker opens on: a CycleGAN one (the study's kind, whose images record
    their real source), else the first after "(none)"."""
    hit = [i for i, n in enumerate(names) if n.startswith("cyclegan")]
    return hit[0] if hit else min(1, len(names) - 1)


def synthetic_model_note(db_path: str) -> str:
    """One line when no run trained on synthetic images has its weights here (e.g. its
    shipped bundle was removed), else ''."""
    usable, _ = runs_with_weights(db_path)
    if any(isinstance(r.get("synthetic"), str) and r["synthetic"] for r in usable):
        return ""
    return ("No model trained on synthetic images has its weights here (the repository ships "
            "two, on cyclegan_cpu_s1: docs/models.md): the models below are shown on real "
            "and synthetic images.")


def decisions(prob: float, val_threshold: float | None) -> str:
    """The decision at 0.5 and at the run's val-picked threshold, as one line of markdown."""
    def says(t: float) -> str:
        return CLASS_NAMES[int(prob >= t)]
    out = f"at 0.5: **{says(0.5)}**"
    if val_threshold is None or not math.isfinite(val_threshold):
        return out + " · no val threshold recorded"
    return out + f" · at its val threshold {val_threshold:.3f}: **{says(val_threshold)}**"

