"""The Accuracy grid page, run headless with AppTest on a store of fake finished runs: three
seeds each of base, a cell with the SAME predictions as base, and a cell that is clearly
worse. AppTest cannot click a chart, so the cell detail is opened with the page's cell picker
(the click path runs in the browser tests)."""
from __future__ import annotations

import time

import pandas as pd
import pytest

from synthmed_core.analysis.metrics import aggregate
from synthmed_core.store import Store
from ui import readers

from app_helpers import assert_ok, grid_panels, opened, panel_data, run_app, texts
from grid_helpers import CONTRAST, add_run, contrast_root, labels, probs_with_accuracy

PAGE = "app_pages/accuracy_grid.py"


@pytest.fixture
def names(data_root, prefilled) -> dict[str, str]:
    prefilled(contrast_root, data_root)
    return CONTRAST


def squares(at) -> pd.DataFrame:
    """The squares of the first panel (cell, text, ink, edge, value: the colour's, ran: False
    where it has no colour, e.g. only the study ran), as the browser receives them."""
    panels = grid_panels(at)
    assert panels, "no chart drawn"
    return panel_data(panels[0])


def markers(at) -> dict[str, dict]:
    """Per cell we ran: its text, text colour and outline width."""
    df = squares(at)
    ours = df[df["ran"]]
    return {r["cell"]: {"text": r["text"], "outline": r["edge"], "ink": r["ink"]}
            for r in ours.to_dict("records")}


def study_only(at) -> pd.DataFrame:
    """The grey squares: cells only the study ran."""
    df = squares(at)
    return df[~df["ran"]]


def options(at):
    """``at`` with the grid's options popover open: source, study, α, correction and colouring
    (its widgets are built only while it is open; their values live on without them)."""
    return opened(at, "grid_options_open")


def option(at, key: str):
    """The value the options popover's widget for ``key`` shows."""
    return next(w.value for w in options(at).main if getattr(w, "key", None) == f"{key}__widget")


def options_button(at) -> str:
    """The popover's label: what the options are while it is closed."""
    return next(b.proto.popover.label for b in at.main if b.type == "popover")


def grid_table(at):
    """The grid as a table (the page's first dataframe, in its expander, opened)."""
    return opened(at, "grid_table_open").dataframe[0].value.set_index("cell")


def claims_table(at):
    """The claims' verdict table, in its expander, opened."""
    return next(d.value for d in opened(at, "grid_claims_open").dataframe
                if "verdict" in d.value.columns)


def ran(at) -> list[str]:
    """The cells of the grid table that have runs."""
    table = grid_table(at)
    return table.index[table["runs"] > 0].tolist()


def test_one_panel_per_arch_with_one_square_per_cell_and_the_study_beside(names):
    at = run_app(PAGE)
    assert at.title[0].value == "Accuracy grid"
    assert len(grid_panels(at)) == 1  # resnet50 is the only arch with runs
    assert set(markers(at)) == set(names.values())
    grey = study_only(at)["text"]  # study cells nobody ran: grey squares with the study's value
    assert len(grey) and all("study" in t for t in grey)
    assert "study 0.837" in markers(at)[names["base"]]["text"]


def test_a_clearly_worse_cell_is_marked_and_one_identical_to_base_is_not(names):
    at = run_app(PAGE)
    cells = markers(at)
    assert cells[names["worse"]]["outline"] > 0 and "▼" in cells[names["worse"]]["text"]
    assert cells[names["worse"]]["ink"] == "white"  # the lowest mean, on the dark red end
    for same in (names["same"], names["base"]):
        assert cells[same]["outline"] == 0 and "▼" not in cells[same]["text"]
        assert "▲" not in cells[same]["text"]
    table = grid_table(at)
    assert table.loc[names["worse"], "significant"]
    assert not table.loc[names["same"], "significant"]
    assert table.loc[names["same"], "wins"] == table.loc[names["same"], "losses"] == 0


def test_each_cell_shows_its_mean_and_n_over_seeds_for_the_chosen_metric(names):
    at = run_app(PAGE)
    at.selectbox(key="grid_metric").set_value("auroc").run()
    assert_ok(at)
    runs = Store().runs("finished")
    want = aggregate(runs[runs["setting"] == "synthetic_base"]["auroc"])
    text = markers(at)[names["worse"]]["text"]
    assert text.startswith(f"{want['mean']:.3f}") and "n=3" in text and "study" not in text
    row = grid_table(at).loc[names["worse"]]
    assert (row["lo"], row["hi"]) == pytest.approx((want["lo"], want["hi"]))
    assert study_only(at).empty  # no grey squares: the study published accuracy only


def test_a_rerun_sends_the_same_panels_without_building_them_again(names, monkeypatch):
    import streamlit as st

    from ui import heatmap_chart
    st.cache_data.clear()  # another test may have drawn the same grid in this process
    built = []
    panel = heatmap_chart.altair_panel
    monkeypatch.setattr(heatmap_chart, "altair_panel", lambda *a: built.append(a[1]) or panel(*a))
    at = run_app(PAGE)
    first = [panel_data(c) for c in grid_panels(at)]
    assert built == ["resnet50"]
    at.run()  # what every widget change, click and new tab does
    assert_ok(at)
    assert built == ["resnet50"]
    for before, after in zip(first, [panel_data(c) for c in grid_panels(at)], strict=True):
        pd.testing.assert_frame_equal(before, after)
    at.selectbox(key="grid_metric").set_value("auroc").run()  # another grid: built anew
    assert built == ["resnet50", "resnet50"]
    assert "study" not in " ".join(panel_data(grid_panels(at)[0])["text"])


def test_the_grid_downloads_as_csv(names):
    at = run_app(PAGE)
    assert [b.label for b in at.download_button] == ["Download the grid (CSV)"]


def test_picking_a_cell_opens_its_runs_curves_confusion_and_wrong_images(names):
    at = run_app(PAGE)
    assert at.selectbox(key="grid_cell").value is None
    assert not [s for s in texts(at.subheader) if s.startswith("Cell ")]
    at.selectbox(key="grid_cell").set_value(names["worse"]).run()
    assert_ok(at)
    assert f"Cell {names['worse']}" in texts(at.subheader)
    assert sorted(at.tabs[0].dataframe[0].value["seed"]) == [0, 1, 2]  # tab "Runs"
    charts = [c.key for c in at.get("plotly_chart")]
    assert "cell_curves" in charts and "cell_calibration" in charts
    confusion = at.table[0].value
    assert confusion.shape == (2, 2) and confusion.to_numpy().astype(int).sum() == 3 * len(labels())
    captions = at.image[0].proto.imgs
    assert 0 < len(captions) <= 24
    assert all(" true " in img.caption and "p=" in img.caption for img in captions)


def test_an_empty_store_says_how_to_fill_the_grid_and_shows_the_study(data_root):
    at = run_app(PAGE)
    assert any("No finished runs yet" in i for i in texts(at.info))
    assert len(grid_panels(at)) == 2  # the study's archs, its values only
    assert not markers(at) and len(study_only(at))
    at.selectbox(key="grid_metric").set_value("f1").run()
    assert not grid_panels(at) and not at.get("selectbox")[-1].key == "grid_cell"


def test_a_job_that_finishes_refreshes_the_grid_without_a_reload(data_root):
    store = Store()
    y = labels()
    add_run(store, "base", 0, probs_with_accuracy(y, 0.8, 0), y)
    job_id = store.add_jobs([{"kind": "train", "label": "a worse cell", "spec": {}}])[0]
    at = run_app(PAGE)
    assert ran(at) == ["resnet50/scratch/base (smoke)"]
    assert store.claim_job("w1", 1)["id"] == job_id
    add_run(store, "synthetic_base", 0, probs_with_accuracy(y, 0.5, 1), y, synthetic="s")
    store.finish_job(job_id, "w1", "finished")
    time.sleep(readers.LIVE_TTL_S + 0.1)  # the sidebar polls every 2 s, past the queue's TTL
    at.run()  # the sidebar's poll, as its timer would run it: the job ended
    assert_ok(at)
    assert ran(at) == ["resnet50/scratch/base (smoke)", "resnet50/scratch/synthetic_base/s (smoke)"]


def test_the_first_finished_run_fills_an_empty_grid_and_its_profile_is_picked(data_root):
    store = Store()
    job_id = store.add_jobs([{"kind": "train", "label": "the first run", "spec": {}}])[0]
    at = run_app(PAGE)
    assert any("No finished runs yet" in i for i in texts(at.info))
    store.claim_job("w1", 1)
    y = labels()
    add_run(store, "base", 0, probs_with_accuracy(y, 0.8, 0), y, arch="resnet18")
    store.finish_job(job_id, "w1", "finished")
    time.sleep(readers.LIVE_TTL_S + 0.1)
    at.run()
    assert_ok(at)
    assert at.selectbox(key="grid_profile").value == "smoke"
    assert ran(at) == ["resnet18/scratch/base (smoke)"]
    assert not any("No finished runs yet" in i for i in texts(at.info))


def test_the_studys_conclusions_are_checked_on_the_runs_shown(names):
    at = run_app(PAGE)
    assert_ok(at)
    claims = claims_table(at)
    only = claims[claims["statement"].str.startswith("Training on synthetic images alone")]
    # the clearly worse cell: on accuracy at 0.5 and AUROC (its val thresholds are all over)
    assert only["verdict"].str.startswith("supported on accuracy at 0.5, AUROC").tolist() == [True]
    assert only["synthetic"].tolist() == ["fake-set"] and only["seeds"].tolist() == [3]
    assert "resnet50 scratch 0.662 vs 0.837" in only["study"].iloc[0]


def test_a_new_tab_builds_the_tables_and_the_claims_only_when_their_expanders_open(
        names, monkeypatch):
    computed = []
    claims = readers.claims
    monkeypatch.setattr(readers, "claims", lambda *a: computed.append(a) or claims(*a))
    at = run_app(PAGE)
    assert [e.label for e in at.main.expander] == [
        "The grid as a table", "The study's conclusions, checked on these runs"]
    assert not at.dataframe and not computed  # a new tab draws the grid, not the tables
    assert len(grid_table(at)) and not computed
    assert len(claims_table(at)) and len(computed) == 1
    assert len(at.dataframe) == 2  # both stay open on the next reruns


def test_a_new_tab_draws_the_metric_and_profile_and_keeps_the_finer_options_in_a_popover(names):
    at = run_app(PAGE)
    assert [w.key for w in at.selectbox] == ["grid_metric", "grid_profile", "grid_cell"]
    assert not at.toggle and not at.radio
    assert options_button(at) == "all sources · study shown · α 0.05 · Holm · colour: value"
    at = options(at)
    assert [w.label for w in at.selectbox][2:5] == ["Source", "α", "Correction"]
    assert at.selectbox(key="grid_source__widget").index == 0  # shows "all sources", not blank
    at.selectbox(key="grid_alpha__widget").set_value(0.01)
    at.radio(key="grid_colour__widget").set_value("vs_base").run()
    at.session_state["grid_options_open"] = False  # the popover closes: its widgets go
    at.run()
    assert_ok(at)
    assert not at.radio and at.query_params["alpha"] == "0.01"
    assert options_button(at) == "all sources · study shown · α 0.01 · Holm · colour: Δ base"
    assert markers(at)[names["worse"]]["text"].startswith("Δ-")  # still coloured by Δ
    assert option(at, "grid_alpha") == 0.01 and option(at, "grid_colour") == "vs_base"


def test_a_run_recorded_by_another_process_shows_at_the_next_rerun_and_an_unchanged_store_is_not_read_again(
        data_root, monkeypatch):
    """The results reads are cached until the store's results change (``keep_fresh``), not for
    a fixed time: a run the CLI or a worker recorded, with no job the sidebar saw end, is on
    the grid at the next rerun; with nothing changed, the grid is not queried again."""
    store = Store()
    y = labels()
    add_run(store, "base", 0, probs_with_accuracy(y, 0.8, 0), y)
    at = run_app(PAGE)
    assert ran(at) == ["resnet50/scratch/base (smoke)"]
    calls = []
    real = readers.heatmap_view.grid_cells
    monkeypatch.setattr(readers.heatmap_view, "grid_cells",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    at.run()
    assert calls == []  # unchanged: from the cache
    add_run(store, "synthetic_base", 0, probs_with_accuracy(y, 0.5, 1), y, synthetic="s")
    time.sleep(readers.FRESH_CHECK_S)  # the store is looked at every FRESH_CHECK_S at most
    at.run()
    assert_ok(at)
    assert calls and ran(at) == ["resnet50/scratch/base (smoke)",
                                 "resnet50/scratch/synthetic_base/s (smoke)"]


def test_a_run_finished_by_a_writer_that_does_not_publish_the_snapshot_still_shows(
        data_root, monkeypatch):
    """A worker still running older code records results without publishing the results
    snapshot; the app's periodic check (every CHECK_SNAPSHOT_S) finds the snapshot behind the
    database, drops it, and the grid shows what the database holds."""
    store = Store()
    y = labels()
    add_run(store, "base", 0, probs_with_accuracy(y, 0.8, 0), y)
    add_run(store, "synthetic_base", 0, probs_with_accuracy(y, 0.5, 1), y, synthetic="s")
    at = run_app(PAGE)
    assert len(ran(at)) == 2
    with store._connect(write=True) as con:  # what an older writer does: no publish
        con.execute("UPDATE runs SET status = 'failed' WHERE setting = 'synthetic_base'")
    monkeypatch.setattr(readers, "CHECK_SNAPSHOT_S", 0.0)
    time.sleep(readers.FRESH_CHECK_S)
    at.run()
    assert_ok(at)
    assert ran(at) == ["resnet50/scratch/base (smoke)"]


VIEW = {"metric": "auroc", "study": "0", "alpha": "0.01", "correction": "bh",
        "colour": "vs_base"}


def test_a_link_with_the_views_parameters_opens_that_view_and_its_cell(names):
    at = run_app(PAGE, {**VIEW, "cell": names["worse"]})
    assert at.selectbox(key="grid_metric").value == "auroc"
    assert options_button(at) == ("all sources · study hidden · α 0.01 · Benjamini-Hochberg · "
                                  "colour: Δ base")
    assert at.selectbox(key="grid_cell").value == names["worse"]
    assert f"Cell {names['worse']}" in texts(at.subheader)
    shown = markers(at)
    assert shown[names["worse"]]["text"].startswith("Δ-")  # coloured by the difference
    assert shown[names["base"]]["text"].startswith("0.")  # base keeps its own value
    assert study_only(at).empty
    assert option(at, "grid_alpha") == 0.01 and option(at, "grid_correction") == "bh"
    assert option(at, "grid_colour") == "vs_base" and option(at, "grid_study") is False


def test_the_views_choices_are_written_back_to_the_url(names):
    at = run_app(PAGE)
    at.selectbox(key="grid_metric").set_value("f1")
    options(at).radio(key="grid_colour__widget").set_value("vs_base")
    at.selectbox(key="grid_cell").set_value(names["same"]).run()
    assert_ok(at)
    url = {k: at.query_params[k] for k in ("metric", "colour", "cell", "alpha", "correction")}
    assert {k: v if isinstance(v, str) else v[0] for k, v in url.items()} == {
        "metric": "f1", "colour": "vs_base", "cell": names["same"], "alpha": "0.05",
        "correction": "holm"}


def test_values_a_widget_does_not_offer_are_ignored(names):
    at = run_app(PAGE, {"metric": "nonsense", "alpha": "0.5", "colour": "rainbow",
                        "cell": "no/such/cell", "profile": "no-such-profile"})
    assert at.selectbox(key="grid_metric").value == "accuracy"
    assert at.selectbox(key="grid_cell").value is None
    assert option(at, "grid_alpha") == 0.05 and option(at, "grid_colour") == "value"
    assert at.selectbox(key="grid_profile").value == "smoke"  # the only one here
