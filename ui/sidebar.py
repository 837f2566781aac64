"""The sidebar drawn on every page: the launch form and the running jobs with live progress.

The launch form sits in a collapsed expander that builds it when opened (``LAUNCH_OPEN``): a
new tab of any page has a dozen widgets less to draw, and the running jobs show without a
scroll. It stays open for the session once opened.

The job list is a fragment that reruns by itself every ``POLL_S`` seconds, so progress bars
move without a reload. When a job it saw active is no longer active, the cached results are
dropped and the whole app reruns: a finished run shows up on the page at once.
"""
from __future__ import annotations

import streamlit as st

import jobs
from synthmed_core.catalog import INITS, PROFILE_HELP, SETTINGS
from synthmed_core.errors import SynthmedError
from synthmed_core.bench import estimate
from synthmed_core.text import md_literal

from . import launch, readers

LAUNCH_OPEN = "launch_open"  # the launch form's expander: open (built) or collapsed (not sent)
POLL_S = 2.0
SHOWN_JOBS = 8
NO_SET = "(none)"


def _synthetic_names() -> list[str]:
    from synthmed_core.data.synthetic import list_sets  # light: reads cards only
    return [c["name"] for c in list_sets() if "error" not in c and c.get("name")]


@st.fragment
def launch_form(db: str) -> None:
    """The launch form. A fragment, not an st.form: a change reruns the form alone, so the
    estimate below it follows the chosen cell before anything is queued."""
    arch = st.selectbox("Architecture", launch.ARCH_CHOICES, key="launch_arch")
    other = st.text_input("…or any timm model", key="launch_arch_other",
                          placeholder="e.g. efficientnet_b0", max_chars=80)
    init = st.selectbox("Initialisation", INITS, key="launch_init")
    setting = st.selectbox("Setting", list(SETTINGS), key="launch_setting",
                           help="; ".join(f"{k}: {v.description}" for k, v in SETTINGS.items()))
    ratio = st.number_input("Ratio synthetic : real", min_value=0.0,
                            max_value=launch.MAX_RATIO, value=1.0, step=0.5,
                            key="launch_ratio", help="augment and duplicate_control need "
                            "one; 0 = the whole set for the other synthetic settings")
    synthetic = st.selectbox("Synthetic set", [NO_SET, *_synthetic_names()],
                             key="launch_synthetic")
    seeds = st.text_input("Seeds", value="0", key="launch_seeds", max_chars=200,
                          help="e.g. `0`, `0 1 2` or `0-4`: one run per seed")
    profile = st.selectbox("Profile", launch.PROFILE_CHOICES, key="launch_profile",
                           index=launch.PROFILE_CHOICES.index(launch.DEFAULT_PROFILE),
                           format_func=lambda p: launch.PROFILE_LABELS.get(p, p),
                           help="; ".join(f"{name} = {text}" for name, text
                                          in PROFILE_HELP.items()))
    values = (other.strip() or arch, init, setting, ratio,
              None if synthetic == NO_SET else synthetic, seeds, profile)
    estimate_line(db, *values)
    if st.button("Queue", type="primary", width="stretch", key="launch_queue"):
        _submit(db, *values)


def estimate_line(db: str, arch: str, init: str, setting: str, ratio: float,
                  synthetic: str | None, seeds: str, profile: str) -> None:
    """The chosen cell's estimated time on this machine, or a button that measures the arch
    here when no run of it was trained here yet."""
    try:
        done = readers.estimate(db, arch, setting, ratio, synthetic, profile)
    except SynthmedError as exc:
        st.caption(f"No time estimate: {exc}")
        return
    if done is None:
        st.caption(f"No {arch} run was trained here yet, so its time here is unknown.")
        if st.button(f"Measure {arch} here (a short run)", key="launch_measure"):
            with st.spinner(f"Timing a few {arch} training batches..."):
                try:
                    readers.measure_speed(arch, profile)
                except SynthmedError as exc:
                    st.caption(f"Could not measure: {exc}")
                    return
            st.rerun(scope="fragment")
        return
    try:
        n = len(launch.parse_seeds(seeds))
    except SynthmedError:
        n = 1
    total = f" ({n} runs: {estimate.duration_text(n * done.seconds)} one after another)" \
        if n > 1 else ""
    st.caption(f"About **{estimate.duration_text(done.seconds)}** a run here{total}, from "
               f"{done.speed.source}.")


def _submit(db: str, *values) -> None:
    try:
        request = launch.build_request(*values)
        done = launch.launch(request, readers.store(db))
    except SynthmedError as exc:
        st.error(f"Nothing queued: {md_literal(exc)}")
        return
    if done.ids:
        st.success(done.message)
        readers.jobs.clear()
    else:
        st.info(done.message)


@st.fragment(run_every=POLL_S)
def live_jobs(db: str) -> None:
    """The active jobs with progress bars; reruns the app when one of them ends."""
    try:
        table = readers.jobs(db)
    except SynthmedError as exc:
        st.caption(f"Jobs cannot be read right now: {md_literal(exc)}")
        return
    active = table[table["status"].isin(jobs.ACTIVE)]
    ids = set(active["id"].tolist())
    seen = st.session_state.setdefault("_active_jobs", ids)
    st.session_state["_active_jobs"] = ids
    if seen - ids:  # something ended: fresh results everywhere
        readers.refresh()
        st.rerun(scope="app")
    st.markdown(f"**Jobs** · {len(active)} active")
    if active.empty:
        st.caption("Nothing queued or running.")
        return
    top = active[active["parent_id"].isna()]  # a grid stands for its runs
    for row in top.head(SHOWN_JOBS).to_dict("records"):
        text = jobs.progress_text(row) or row["status"]
        st.progress(jobs.progress_fraction(row), text=f"#{row['id']} {row['label'] or ''}: "
                                                      f"{text}")


def render() -> None:
    db = readers.db()
    readers.keep_fresh(db)  # every page's results reads: current, from cache while unchanged
    with st.sidebar:
        form = st.expander("Train a cell", icon=":material/model_training:", key=LAUNCH_OPEN,
                           on_change="rerun")
        if form.open:
            with form:
                launch_form(db)
        st.divider()
        live_jobs(db)
        st.caption("All jobs, logs, cancel and retry: the Jobs page.")
