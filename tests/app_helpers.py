"""Shared by the AppTest files of the explorer: a scratch data root, the app run headless on it,
and a stand-in for ``jobs.ensure_worker`` so that no worker process starts."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

import jobs
from synthmed_core.paths import REPO_ROOT

APP = str(REPO_ROOT / "app.py")
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    """An empty SYNTHMED_DATA for the app (and the default Store) to use; real test images
    from ../shared/data, never a download."""
    root = tmp_path / "data"
    monkeypatch.setenv("SYNTHMED_DATA", str(root))
    monkeypatch.delenv("SYNTHMED_DB", raising=False)
    monkeypatch.setenv("SYNTHMED_MEDMNIST_ROOT", str(SHARED_DATA))
    monkeypatch.setenv("SYNTHMED_OFFLINE", "1")
    return root


@pytest.fixture
def workers_started(monkeypatch) -> list:
    """Replaces jobs.ensure_worker: records each call instead of starting a process."""
    calls = []
    monkeypatch.setattr(jobs, "ensure_worker", lambda store=None, **kw: calls.append(kw))
    return calls


# AppTest reruns a multipage app by running the page's file alone: with a pages/ folder beside
# app.py, its second run skips the entry script (and so the sidebar). So the tests run this
# stand-in for app.py, which draws the sidebar and then the page on every run, as app.py does.
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
