"""Shared by the AppTest files of the explorer: the app run headless (its fixtures, a scratch
data root and a stand-in worker starter, are in conftest.py)."""
from __future__ import annotations

import re

from streamlit.testing.v1 import AppTest

from synthmed_core.paths import REPO_ROOT

APP = str(REPO_ROOT / "app.py")
TIMEOUT_S = 180  # a script run on the shared 2-core box under other work took over 60 s


# AppTest reruns a page switched to by st.navigation without app.py after the first run, so
# the sidebar would be missing from later runs. The tests run this stand-in for app.py, which
# draws the sidebar and then the page on every run, as app.py does. (The pages live in
# app_pages/, not pages/: Streamlit 1.67 would serve a pages/ folder's files by URL without
# app.py.)
HARNESS = """
import runpy
import streamlit as st
from ui import sidebar
st.set_page_config(page_title="synthmed", layout="wide")
sidebar.render()
runpy.run_path({page!r}, run_name="__main__")
"""


def run_app(page: str = "app_pages/home.py", query: dict[str, str] | None = None) -> AppTest:
    """The sidebar and ``page`` (a path under the repository), run once without exception;
    ``query``: the URL's parameters it is opened with."""
    at = AppTest.from_string(HARNESS.format(page=str(REPO_ROOT / page)), default_timeout=TIMEOUT_S)
    at.query_params.update(query or {})
    at.run()
    assert_ok(at)
    return at


def run_entry() -> AppTest:
    """The real entry point (app.py), run once: navigation, sidebar and the default page."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S).run()
    assert_ok(at)
    return at


def assert_ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def opened(at: AppTest, key: str) -> AppTest:
    """``at`` after a click that opens the expander or popover ``key``, whose content the app
    builds only while it is open (``st.expander(..., key=key, on_change="rerun")``, the same
    for ``st.popover``)."""
    if not at.session_state[key]:
        at.session_state[key] = True
        at.run()
        assert_ok(at)
    return at


def texts(elements) -> list[str]:
    """What each element shows: its markdown with backslash escapes resolved (text from a
    bundle or an error reaches the page escaped: ``synthmed_core.text.md_literal``)."""
    return [re.sub(r"\\(.)", r"\1", e.value) for e in elements]


def grid_panels(at: AppTest) -> list:
    """The accuracy grid's panels on the page: its Vega-Lite charts whose squares name their
    cell (one chart per arch)."""
    return [c for c in at.get("vega_lite_chart")
            if c.proto.datasets and "cell" in panel_data(c).columns]


def panel_data(chart) -> "pd.DataFrame":
    """The rows a grid panel draws (one per square), as the browser receives them."""
    import pyarrow as pa
    return pa.ipc.open_stream(chart.proto.datasets[0].data.data).read_all().to_pandas()
