"""Grad-CAM: where finished runs look on real test images and on synthetic images.

It opens on a comparison: every run whose weights are here (the shipped models first) on one
normal and one pneumonia real test image and on two CycleGAN samples, each beside the real image
it was translated from. Each map names its layer and map size, and says how faithful it is
(ROAD combined, the confidence change with only the map's region kept); a map that comes out
constant is reported instead of drawn. Logic: synthmed_core.explain (cams, faithfulness, stats).
"""
from __future__ import annotations

import streamlit as st

from synthmed_core.catalog import CAM_METHODS, CAM_TARGETS
from synthmed_core.data.real import CLASS_NAMES
from synthmed_core.errors import SynthmedError
from synthmed_core.explain.overlays import panel_png
from synthmed_core.explorer import gallery
from synthmed_core.text import md_literal
from ui import images as ux
from ui import readers
from ui.launch import parse_numbers
from ui.url_state import Param, publish, restore

INTRO = ("Class activation maps (pytorch-grad-cam) of the class each run predicts, or of a "
         "class you choose. Each overlay "
         "names the layer it was taken from and that layer's map size: at 28 px a ResNet's last "
         "stage is 1x1, so a shallower layer with a map of at least 4x4 is used. Choose several "
         "runs to compare models trained in different settings on the same image.")
FAITHFULNESS = (
    "**Are the maps evidence?** Under each map: **ROAD** (pytorch-grad-cam's ROAD combined): "
    "the change in the explained class's probability when the pixels the map ranks lowest are "
    "removed, minus the change when those it ranks highest are removed, halved and averaged "
    "over 20-80% removed. Above 0: what the map highlights matters more to the model than the "
    "rest; about 0: no better than any other ranking. **Map-kept change** "
    "(CamMultImageConfidenceChange): the probability change when the image is multiplied by "
    "its map; near 0 or above: the highlighted region alone carries the decision. Limits at "
    "28 px: a 4x4 map ranks 16 blocks, not pixels; removed blocks are filled in from a few "
    "neighbours (a large part of a lung at this size); the model never saw such images, so "
    "part of any drop is the change itself. Compare images, models and real vs synthetic here, "
    "not with figures published at 224 px; docs/models.md says more.")
MAX_RUNS = 4  # preselected: the shipped models and the newest local runs


def _ids(text: str) -> list[str]:
    return [t for t in text.split(",") if t]


# The view in the URL (ui.url_state): a link or a reload shows the same runs and images.
VIEW = (Param("runs", "cam_runs", parse=_ids, dump=",".join),
        Param("method", "cam_method", options=lambda: list(CAM_METHODS)),
        Param("target", "cam_target", options=lambda: list(CAM_TARGETS)),
        Param("test", "cam_test_rows"),
        Param("set", "cam_set"),
        Param("synthetic", "cam_synth_rows"))


def pick_runs(db: str) -> list[str]:
    return ux.pick_runs(db, "cam_runs", MAX_RUNS, "No finished run in the store yet: train "
                        "one (profile `smoke` takes seconds), then come back.")


MAX_IMAGES = 6  # columns per side of the runs x images panel


def pick_real() -> list[tuple[str, object]]:
    """The real test images chosen (each run sees them at its own data size)."""
    test = readers.real_split("test")
    st.session_state.setdefault("cam_test_rows", ux.one_per_class(test.labels))  # or the URL's
    rows = parse_numbers(st.text_input(f"Real test images (rows 0-{len(test.labels) - 1}, e.g. "
                                       "`7 12 40`)", key="cam_test_rows"),
                         "test image row", len(test.labels) - 1, MAX_IMAGES)
    return [(f"real test #{i} ({ux.class_caption(test.labels[i])})", readers.RealImage("test", i))
            for i in rows]


def pick_synthetic(db: str) -> list[tuple[str, object]]:
    """The synthetic image picked, and (unless unticked) its real partner: the real train
    image a CycleGAN translated it from, or its nearest real train image."""
    sets = readers.local_synthetic_sets(db)
    names = ["(none)", *sets["name"]]
    if st.session_state.get("cam_set") not in names:  # first visit, or the URL's set is not here
        st.session_state["cam_set"] = names[ux.preferred_set(names)]
    name = st.selectbox("Synthetic set", names, key="cam_set")
    if name == "(none)":
        return []
    row = sets[sets["name"] == name].iloc[0]
    split, card = readers.synthetic_set(name, row["path"])
    st.session_state.setdefault("cam_synth_rows", ux.one_per_class(split.labels))
    rows = parse_numbers(st.text_input(f"Synthetic images (rows 0-{len(split.labels) - 1})",
                                       key="cam_synth_rows"),
                         "synthetic image row", len(split.labels) - 1, MAX_IMAGES)
    partner = st.checkbox("each with its real partner", value=True, key="cam_partner",
                          help="a CycleGAN image beside the real train image it was translated "
                               "from; any other beside its nearest real train image")
    picked = []
    for j in rows:
        picked.append((f"{name} #{j} ({ux.class_caption(split.labels[j])})", split.images[j]))
        if partner:
            images, train = readers.same_size_train(split.images, (j,))
            k, how = gallery.real_partner(card, j, images, train)
            picked.append((f"real train #{k} ({how})", readers.RealImage("train", k)))
    return picked


def show_run(db: str, run_id: str, label: str, images: list[tuple[str, object]],
             method: str, target: str, opacity: float) -> list | None:
    """One run's row of CAMs; returns its results (None when it has none)."""
    st.subheader(label)
    try:
        results = readers.cams(db, run_id, readers.finished_at(db, run_id), method, target,
                               tuple(img for _, img in images))
    except SynthmedError as exc:
        st.error(f"No CAM for this run: {md_literal(exc)}")
        return None
    try:
        scores = readers.cam_faithfulness(db, run_id, readers.finished_at(db, run_id), method,
                                          target, tuple(img for _, img in images))
    except SynthmedError as exc:
        st.warning(f"No faithfulness figures for this run: {exc}")
        scores = [None] * len(results)
    for col, (title, _), result, score in zip(st.columns(len(images)), images, results, scores):
        with col:
            ux.show_cam(result, title, opacity, scores=score)
    return results


def main() -> None:
    st.title("Grad-CAM")
    st.caption(INTRO)
    db = readers.db()
    restore(VIEW, "gradcam")
    try:
        run_ids = pick_runs(db)
        left, right, third = st.columns(3)
        with left:
            method = st.selectbox("CAM method", list(CAM_METHODS), key="cam_method")
            target = st.selectbox("Class explained", list(CAM_TARGETS), key="cam_target")
        with right:
            images = pick_real()
        with third:
            images += pick_synthetic(db)
    except SynthmedError as exc:
        st.error(f"Cannot read the images or runs: {md_literal(exc)}")
        return
    publish(VIEW)
    if not run_ids:
        return
    note = ux.synthetic_model_note(db)
    if note:
        st.caption(note)
    with st.expander("What the faithfulness figures under each map mean"):
        st.markdown(FAITHFULNESS)
    opacity = ux.opacity_slider("cam_opacity")
    runs = readers.finished_runs(db).set_index("run_id")
    panel = []
    for run_id in run_ids:
        label = ux.run_label(runs.loc[run_id].to_dict() | {"run_id": run_id})
        results = show_run(db, run_id, label, images, method, target, opacity)
        if results:
            panel.append((label, [(title, r) for (title, _), r in zip(images, results)]))
    if panel:
        st.download_button("Download this panel (PNG)", panel_png(panel, opacity),
                           file_name="synthmed-gradcam.png", mime="image/png",
                           key="cam_download", on_click="ignore")
    many_images(db, run_ids, method, target)


def many_images(db: str, run_ids: list[str], method: str, target: str) -> None:
    """Over many images: the first run's mean map on real vs synthetic images of a class, and
    (with two runs) how far their maps agree on the same real images."""
    with st.expander("Over many images: mean maps, faithfulness, and two runs' agreement"):
        sets = readers.local_synthetic_sets(db)
        if sets.empty:
            st.caption("Needs a synthetic set on this machine.")
            return
        left, mid, right = st.columns(3)
        name = left.selectbox("Synthetic set", list(sets["name"]), key="cam_many_set")
        cls = mid.radio("Class", CLASS_NAMES, index=1, horizontal=True, key="cam_many_class")
        n = right.slider("Images per side", 8, 128, 32, 8, key="cam_many_n")
        if not st.button("Compute", key="cam_many_go"):
            st.caption("Uses the first run picked above (and the second, for agreement), the "
                       "same method and class; the first N images of the class on each side. "
                       "Faithfulness costs about 0.5 s per image and run on a 2-core CPU.")
            return
        folder = sets.loc[sets["name"] == name, "path"].iloc[0]
        ids = tuple(run_ids[:2])
        try:
            versions = tuple(readers.finished_at(db, r) for r in ids)
            res = readers.cam_summary(db, ids, versions, name, folder, CLASS_NAMES.index(cls), n,
                                      method, target)
        except SynthmedError as exc:
            st.error(f"Cannot compute: {md_literal(exc)}")
            return
        m = res["means"]
        st.image(res["png"], caption=f"mean {method} map of {ids[0][:8]} on {m.n_real} real "
                 f"test (left) and {m.n_synthetic} {name} (right) {cls} images")
        st.markdown(f"Spearman correlation of the two mean maps: **{m.rho:.3f}** [95% "
                    f"{m.rho_lo:.3f}, {m.rho_hi:.3f}] (bootstrap over images; {m.left_out} "
                    "constant maps left out)")
        for run_id, lines in res["faithfulness"].items():
            st.markdown(f"Faithfulness of {run_id[:8]}'s maps, mean [95% interval] over "
                        "images (see above for what the scores mean):\n"
                        + "\n".join(f"- {line}" for line in lines))
        if "agreement" in res:
            s, t = res["agreement"]["spearman"], res["agreement"]["top20"]
            st.markdown(f"Agreement of {ids[0][:8]} and {ids[1][:8]} on the same {s['n']} real "
                        f"images: Spearman **{s['mean']:.3f}** [95% {s['lo']:.3f}, "
                        f"{s['hi']:.3f}], top-20% pixels shared **{t['mean']:.3f}** "
                        f"[{t['lo']:.3f}, {t['hi']:.3f}]")


main()
