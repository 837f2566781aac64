"""Shared by the AppTest files of the explorer: the app run headless (its fixtures, a scratch
data root and a stand-in worker starter, are in conftest.py)."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest

from synthmed_core.paths import REPO_ROOT

APP = str(REPO_ROOT / "app.py")


# With a pages/ folder beside app.py, Streamlit runs a page asked for by its URL on its own
# (the old pages-folder convention), skipping app.py and so the sidebar; AppTest does that on
# every rerun after the first. So the tests run this stand-in for app.py, which draws the
# sidebar and then the page on every run, as app.py does.
HARNESS = """
import runpy
import streamlit as st
from ui import sidebar
st.set_page_config(page_title="synthmed", layout="wide")
sidebar.render()
runpy.run_path({page!r}, run_name="__main__")
"""


def run_app(page: str = "pages/home.py") -> AppTest:
    """The sidebar and ``page`` (a path under the repository), run once without exception."""
    at = AppTest.from_string(HARNESS.format(page=str(REPO_ROOT / page)), default_timeout=60)
    at.run()
    assert_ok(at)
    return at


def run_entry() -> AppTest:
    """The real entry point (app.py), run once: navigation, sidebar and the default page."""
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert_ok(at)
    return at


def assert_ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def texts(elements) -> list[str]:
    return [e.value for e in elements]
