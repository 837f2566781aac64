"""A fresh data root opens on the shipped results: the Home page says where its runs come from,
the Accuracy grid filters by source, and a shipped run can be queued for reproduction here."""
from __future__ import annotations

import pytest

from synthmed_core.bundle import export_bundle
from synthmed_core.store import Store

from app_helpers import grid_panels, opened, run_app, texts
from grid_helpers import fill_contrast

BUNDLE = "quick-contrast"


@pytest.fixture
def shipped(data_root, tmp_path, monkeypatch) -> dict[str, str]:
    """The repository's results/ as a folder with one bundle of 9 runs made elsewhere; the
    app's data root is empty until the app opens it."""
    names = fill_contrast(Store(tmp_path / "made-elsewhere.duckdb"), real=True)
    export_bundle(Store(tmp_path / "made-elsewhere.duckdb"), tmp_path / "results" / BUNDLE)
    monkeypatch.setenv("SYNTHMED_SHIPPED", str(tmp_path / "results"))
    return names


def test_home_on_a_fresh_data_root_shows_the_shipped_grid_and_its_source(shipped):
    at = run_app()
    assert grid_panels(at), "the headline grid is drawn"
    assert any(f"9 from shipped: {BUNDLE}" in c for c in texts(at.caption))
    assert at.metric[0].value == "9"  # finished runs, without training anything


def test_the_grid_filters_by_source_and_a_shipped_run_can_be_reproduced_here(
        shipped, workers_started):
    at = opened(run_app("app_pages/accuracy_grid.py"), "grid_options_open")
    source = at.selectbox(key="grid_source__widget")
    assert source.options == ["all sources", f"shipped: {BUNDLE}"]
    source.select_index(1).run()
    at.selectbox(key="grid_cell").set_value(shipped["worse"]).run()
    runs = at.tabs[0].dataframe[0].value  # the cell detail's tab "Runs"
    assert set(runs["source"]) == {f"shipped: {BUNDLE}"} and not runs["weights_here"].any()
    at.button(key="cell_reproduce").click().run()  # its synthetic set is not on this machine
    assert any("fake-set" in e and "not on this machine" in e for e in texts(at.error))
    assert Store().jobs().empty
    at.selectbox(key="grid_cell").set_value(shipped["base"]).run()
    at.button(key="cell_reproduce").click().run()
    jobs = Store().jobs()
    assert len(jobs) == 1 and jobs["label"].iloc[0].startswith("reproduce ")
    assert workers_started
