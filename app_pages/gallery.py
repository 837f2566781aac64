"""Gallery: real and synthetic images by class and by set, paged; each synthetic image beside
its nearest real training image and their distance; below them, the set's card (folded).
Logic: synthmed_core.explorer.gallery.
"""
from __future__ import annotations

import streamlit as st

from synthmed_core.data.real import CLASS_NAMES
from synthmed_core.errors import SynthmedError
from synthmed_core.explorer import gallery
from synthmed_core.synth import copies
from synthmed_core.text import md_literal
from ui import images as ux
from ui import readers

PAIRS_PER_ROW = 4
PAGE_KEY = "gallery_page"


def _reset_page() -> None:
    st.session_state[PAGE_KEY] = 0


def _step_page(delta: int) -> None:
    st.session_state[PAGE_KEY] = max(0, st.session_state.get(PAGE_KEY, 0) + delta)


def controls(set_names: list[str]) -> tuple[str | None, int, int]:
    c1, c2, c3 = st.columns(3)
    with c1:
        name = (st.selectbox("Synthetic set", set_names, key="gallery_set", on_change=_reset_page)
                if set_names else None)
    with c2:
        cls = st.radio("Class", CLASS_NAMES, horizontal=True, key="gallery_class",
                       on_change=_reset_page)
    with c3:
        size = st.selectbox("Images per page", gallery.PAGE_SIZES, index=1,
                            key="gallery_page_size", on_change=_reset_page)
    return name, CLASS_NAMES.index(cls), int(size)


def pager(page: int, n_pages: int) -> None:
    prev, info, nxt = st.columns([1, 2, 1])
    prev.button("Previous", key="gallery_prev", disabled=page <= 0, on_click=_step_page,
                args=(-1,))
    info.markdown(f"Page **{page + 1}** of {n_pages}")
    nxt.button("Next", key="gallery_next", disabled=page >= n_pages - 1, on_click=_step_page,
               args=(1,))


def test_copies_warning(card: dict) -> None:
    n_test = copies.test_copies(card)
    if n_test:
        st.error(f"Set {md_literal(card.get('name'))} holds {n_test} copies of real TEST images: runs on it "
                 "are flagged in the accuracy grid and left out of the claims.")


def card_section(card: dict) -> None:
    """The set's card (how it was made, quality figures), folded: the images come first."""
    with st.expander(f"Card of set {md_literal(card.get('name'))} (how it was made, quality)"):
        st.dataframe([{"field": k, "value": str(v)} for k, v in gallery.card_facts(card).items()],
                     hide_index=True)
        rows = gallery.quality_rows(card)
        if rows:
            st.markdown("**Quality** (against the real train split)")
            st.dataframe(rows, hide_index=True)
        else:
            st.caption("No quality figures yet: `python -m synthmed_core synth quality NAME`.")
        if card.get("parameters"):
            st.markdown("**Parameters**")
            st.json(card["parameters"], expanded=False)


def pairs_section(name: str, folder: str, split, card: dict, cls: int, size: int, space: str,
                  train) -> None:
    rows, page, n_pages = gallery.page_rows(split.labels, cls, st.session_state[PAGE_KEY], size)
    st.session_state[PAGE_KEY] = page
    st.subheader(f"{md_literal(name)}: {CLASS_NAMES[cls]} images beside their nearest real train image")
    pager(page, n_pages)
    if len(rows) == 0:
        st.caption(f"Set {md_literal(name)} has no {CLASS_NAMES[cls]} image.")
        return
    found = readers.neighbours(name, folder, card["sha256"], tuple(int(r) for r in rows), space)
    how = "stored by the quality run" if found[0].stored else "computed for this page"
    st.caption(f"Distance: {gallery.SPACES[space]}; neighbours {how}.")
    for start in range(0, len(found), PAIRS_PER_ROW):
        cols = st.columns(2 * PAIRS_PER_ROW)
        for k, nb in enumerate(found[start:start + PAIRS_PER_ROW]):
            flag = " · near-copy" if nb.near_copy else ""
            with cols[2 * k]:
                ux.image_tile(split.images[nb.synthetic_row], f"synthetic #{nb.synthetic_row}")
            with cols[2 * k + 1]:
                ux.image_tile(train.images[nb.train_row],
                              f"train #{nb.train_row} · d={nb.distance:.3f}{flag}")


def real_section(train, cls: int, size: int) -> None:
    rows, page, _ = gallery.page_rows(train.labels, cls, st.session_state[PAGE_KEY], size)
    st.subheader(f"Real train split: {CLASS_NAMES[cls]} images (page {page + 1})")
    per_row = 2 * PAIRS_PER_ROW
    for start in range(0, len(rows), per_row):
        for col, r in zip(st.columns(per_row), rows[start:start + per_row]):
            with col:
                ux.image_tile(train.images[r], f"train #{r}")


def main() -> None:
    st.title("Gallery")
    st.caption("Synthetic images beside the real training image each is closest to (the "
               "memorisation check of the quality card), and real images of the same class.")
    st.session_state.setdefault(PAGE_KEY, 0)
    db = readers.db()
    try:
        sets = readers.local_synthetic_sets(db)
        train = readers.real_split("train")
        name, cls, size = controls(list(sets["name"]))
        if name is None:
            st.info("No synthetic set registered yet. Import one with `python -m synthmed_core "
                    "synth import FOLDER --name NAME`, or generate one from the sidebar.")
        else:
            folder = sets.loc[sets["name"] == name, "path"].iloc[0]
            split, card = readers.synthetic_set(name, folder)
            spaces = ["pixel"] + (["feature"] if gallery.encoder_file(card) else [])
            space = st.selectbox("Distance", spaces, format_func=gallery.SPACES.get,
                                 key="gallery_space")
            test_copies_warning(card)
            pairs_section(name, folder, split, card, cls, size, space, train)
            card_section(card)
        real_section(train, cls, size)
    except SynthmedError as exc:
        st.error(f"Cannot show the gallery: {md_literal(exc)}")


main()
