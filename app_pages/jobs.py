"""Jobs: the whole queue with a status filter and progress, and one job's log, cancel and retry.
The queue and the chosen job redraw themselves every couple of seconds."""
from __future__ import annotations

import streamlit as st

import jobs
from synthmed_core.catalog import JOB_STATUSES
from synthmed_core.errors import SynthmedError
from synthmed_core.text import md_literal
from ui import readers

POLL_S = 2.0
LOG_BYTES = 20_000
START = """\
Queue work from the sidebar of any page, or from a shell:

    python -m jobs submit train --arch resnet18 --setting base --seed 0 --profile smoke
    python -m jobs worker --detach      # a worker; the sidebar starts one for you

`python -m jobs --help` lists every verb (list, show, logs, cancel, retry, workers)."""


def _flash() -> None:
    """The message of the last cancel/retry (set by its button), shown once."""
    kind, text = st.session_state.pop("_jobs_flash", (None, None))
    if kind:
        getattr(st, kind)(text)


def _act(action, job_id: int, db: str) -> None:
    try:
        st.session_state["_jobs_flash"] = ("success", action(job_id, readers.store(db)))
    except SynthmedError as exc:
        st.session_state["_jobs_flash"] = ("error", str(exc))
    readers.jobs.clear()


def job_panel(db: str, job: dict) -> None:
    job_id = int(job["id"])
    st.subheader(f"Job {job_id}: {md_literal(job['label'] or job['kind'])}")
    st.progress(jobs.progress_fraction(job), text=f"{job['status']} · {jobs.progress_text(job)}")
    if isinstance(job.get("error"), str) and job["error"]:
        st.error(job["error"])
    active = job["status"] in jobs.ACTIVE
    left, right = st.columns(2)
    left.button("Cancel", key="job_cancel", disabled=not active, on_click=_act,
                args=(jobs.cancel, job_id, db), width="stretch")
    right.button("Retry", key="job_retry", disabled=active, on_click=_act,
                 args=(jobs.retry, job_id, db), width="stretch")
    st.caption("Log (last part)")
    st.code(jobs.log_tail(job_id, readers.store(db), LOG_BYTES) or "(empty)", language=None)


@st.fragment(run_every=POLL_S)
def queue(db: str) -> None:
    status = st.selectbox("Status", ["all", *JOB_STATUSES], key="jobs_status")
    table = readers.jobs(db, None if status == "all" else status)
    _flash()
    if table.empty:
        st.info("No jobs" + ("" if status == "all" else f" {status}") + " yet.")
        st.markdown(START)
        return
    shown = jobs.queue_table(table)
    st.caption(f"{len(shown)} jobs, newest first.")
    st.dataframe(shown, hide_index=True, key="jobs_table", column_config={
        "done": st.column_config.ProgressColumn("done", min_value=0.0, max_value=1.0),
        "created_at": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD HH:mm:ss"),
        "finished_at": st.column_config.DatetimeColumn("finished", format="HH:mm:ss")})
    ids = shown["id"].tolist()
    if st.session_state.get("jobs_pick") not in ids:
        st.session_state.pop("jobs_pick", None)
    pick = st.selectbox("Job", ids, key="jobs_pick", format_func=lambda i: f"#{i}")
    row = table[table["id"] == pick].iloc[0].to_dict()
    job_panel(db, row)


def main() -> None:
    st.title("Jobs")
    db = readers.db()
    try:
        queue(db)
    except SynthmedError as exc:
        st.warning(f"The job queue cannot be read right now: {md_literal(exc)}")


main()
