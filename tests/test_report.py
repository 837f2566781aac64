"""The results table: aggregation over seeds, the study beside it, and its three renderings."""
from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest

from synthmed_core.analysis.metrics import aggregate
from synthmed_core.explorer.report import format_table, report_table
from synthmed_core.errors import SynthmedError
from synthmed_core.grid import make_run_spec
from synthmed_core.store import Store
from synthmed_core.records.events import RunResult


def add_run(store, accuracy, arch="resnet50", init="scratch", setting="base", seed=0,
            ratio=None, synthetic=None, profile="smoke", finish=True, wall_s=1.0):
    sp = make_run_spec(arch, init, setting, seed=seed, profile=profile, ratio=ratio,
                       synthetic=synthetic)
    store.start_run(sp, "cpu")
    if finish:
        y, p = np.array([0, 1]), np.array([0.2, 0.8])
        store.finish_run(RunResult(sp.run_id, {"accuracy": accuracy, "auroc": 0.9}, y, p,
                                   y, p, 0, 0, wall_s, "cpu", "best.pt"))


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "r.duckdb")


def row(df, **match):
    sel = df
    for k, v in match.items():
        sel = sel[sel[k].isna()] if v is None else sel[sel[k] == v]
    assert len(sel) == 1, sel
    return sel.iloc[0]


def test_an_empty_store_shows_the_whole_published_grid(store):
    df = report_table(store)
    assert len(df) == 36 and (df["n"] == 0).all()
    assert set(df["arch"]) == {"resnet50", "deit_tiny"}
    assert row(df, arch="resnet50", setting="base", init="imagenet")["study"] == 0.875


def test_seeds_of_a_cell_are_aggregated_beside_the_study_value(store):
    for seed, acc in enumerate([0.80, 0.84, 0.88]):
        add_run(store, acc, seed=seed)
    r = row(report_table(store), arch="resnet50", setting="base", init="scratch")
    want = aggregate([0.80, 0.84, 0.88])
    assert r["n"] == 3 and r["mean"] == pytest.approx(want["mean"])
    assert (r["lo"], r["hi"]) == (pytest.approx(want["lo"]), pytest.approx(want["hi"]))
    assert r["study"] == pytest.approx(0.83654) and r["profile"] == "smoke"


def test_unfinished_runs_are_left_out(store):
    add_run(store, 0.9, seed=0)
    add_run(store, 0.1, seed=1, finish=False)
    assert row(report_table(store), setting="base", init="scratch")["n"] == 1


def test_study_rows_are_added_only_for_the_archs_present(store):
    add_run(store, 0.9)
    df = report_table(store)
    assert set(df["arch"]) == {"resnet50"}
    assert len(df) == 18  # the study's 18 resnet50 cells, one of them ours
    assert (df["n"] > 0).sum() == 1


def test_augment_matches_the_study_by_ratio_and_synthetic_settings_without(store):
    add_run(store, 0.8, setting="augment", ratio=2, synthetic="cg")
    add_run(store, 0.7, setting="synthetic_ft", synthetic="cg")
    add_run(store, 0.6, setting="synthetic_base", ratio=0.5, synthetic="cg")
    df = report_table(store)
    assert row(df, setting="augment", ratio=2.0, init="scratch", n=1)["study"] == 0.84455
    assert row(df, setting="synthetic_ft", init="scratch", n=1)["study"] == 0.66506
    assert math.isnan(row(df, setting="synthetic_base", ratio=0.5, init="scratch")["study"])
    # the study's synthetic_base (ratio none) still shows, unmatched
    assert row(df, setting="synthetic_base", ratio=None, init="scratch")["n"] == 0


def test_settings_beyond_the_study_have_no_study_value(store):
    add_run(store, 0.8, setting="duplicate_control", ratio=1)
    assert math.isnan(row(report_table(store), setting="duplicate_control")["study"])


def test_other_metrics_show_no_study_value_and_no_study_only_rows(store):
    add_run(store, 0.8)
    df = report_table(store, metric="auroc")
    assert len(df) == 1
    assert df["mean"].iloc[0] == 0.9 and math.isnan(df["study"].iloc[0])


def test_filters_by_arch_and_profile(store):
    add_run(store, 0.8, arch="resnet18")
    add_run(store, 0.7, arch="resnet18", profile="quick")
    df = report_table(store, archs=["resnet18"], profile="quick")
    assert len(df) == 1 and df["mean"].iloc[0] == 0.7
    assert len(report_table(store, archs=["deit_tiny"])) == 18


def test_a_synthetic_set_filter_keeps_its_cells_and_those_without_a_set(store):
    add_run(store, 0.8, setting="base")
    add_run(store, 0.7, setting="augment", ratio=1, synthetic="cg")
    add_run(store, 0.6, setting="augment", ratio=1, synthetic="ddpm")
    add_run(store, 0.9, setting="duplicate_control", ratio=1)
    df = report_table(store, synthetic=["cg"])
    ran = df[df["n"] > 0]
    assert sorted(ran["setting"]) == ["augment", "base", "duplicate_control"]
    assert set(ran["synthetic"].dropna()) == {"cg"}


def test_each_markdown_table_ends_with_its_runs_and_their_wall_time(store):
    for seed, wall in enumerate([600.0, 1200.0, 1800.0]):
        add_run(store, 0.8, seed=seed, wall_s=wall)
    add_run(store, 0.7, setting="augment", ratio=1, synthetic="cg", wall_s=3600.0)
    add_run(store, 0.7, arch="resnet18", wall_s=90.0)
    df = report_table(store)
    assert row(df, arch="resnet50", setting="base", init="scratch")["wall_s"] == 3600.0
    text = format_table(df)
    assert "4 runs; run wall time 2.0 h in all (30.0 min per run)" in text
    assert "1 run; run wall time 1.5 min in all (1.5 min per run)" in text


def test_rows_follow_the_setting_order_then_init_order(store):
    add_run(store, 0.8, setting="synthetic_ft", synthetic="cg", init="imagenet")
    add_run(store, 0.8, setting="base", init="chestmnist")
    add_run(store, 0.8, setting="base", init="scratch")
    df = report_table(store)
    assert list(dict.fromkeys(df["setting"])) == ["base", "synthetic_base", "augment",
                                                  "synthetic_ft"]
    assert df[df["setting"] == "base"]["init"].tolist() == ["scratch", "imagenet", "chestmnist"]


def test_markdown_has_a_setting_by_init_table_per_arch(store):
    for seed, acc in enumerate([0.80, 0.84, 0.88]):
        add_run(store, acc, seed=seed)
    add_run(store, 0.9, setting="augment", ratio=1, synthetic="cg")
    text = format_table(report_table(store))
    lines = text.splitlines()
    assert lines[0] == "### resnet50 (profile smoke), synthetic set cg: test accuracy"
    assert lines[2] == "| setting | scratch | imagenet | chestmnist |"
    base = next(ln for ln in lines if ln.startswith("| base |"))
    assert "| 0.840 ± 0.040 [0.741, 0.939] n=3 (study 0.837) |" in base
    assert "| — (study 0.875) |" in base
    assert "| 0.900 n=1 (study 0.830) |" in next(ln for ln in lines if "augment ×1" in ln)
    labels = [ln.split("|")[1].strip() for ln in lines[4:] if ln.startswith("|")]
    assert labels == ["base", "synthetic_base", "augment ×1", "augment ×2", "augment ×3",
                      "synthetic_ft"]


def test_several_synthetic_sets_are_named_in_the_row_labels(store):
    add_run(store, 0.8, setting="augment", ratio=1, synthetic="cg")
    add_run(store, 0.7, setting="augment", ratio=1, synthetic="ddpm")
    text = format_table(report_table(store))
    assert "| augment ×1 · cg | 0.800 n=1 (study 0.830) |" in text
    assert "| augment ×1 · ddpm | 0.700 n=1 (study 0.830) |" in text


def test_latex_is_a_tabular_with_escaped_names(store):
    add_run(store, 0.8, setting="synthetic_ft", synthetic="cg")
    text = format_table(report_table(store), fmt="latex")
    assert text.count(r"\begin{tabular}{llll}") == 1 and r"\end{tabular}" in text
    assert r"synthetic\_ft & 0.800 n=1 (study 0.665) &" in text
    assert "augment $\\times$2 & -- (study 0.845)" in text


def test_csv_is_the_tidy_table_with_its_metric(store):
    add_run(store, 0.8)
    df = report_table(store)
    back = pd.read_csv(io.StringIO(format_table(df, fmt="csv")))
    assert len(back) == len(df) and set(back["metric"]) == {"accuracy"}
    assert list(back.columns[:6]) == ["arch", "setting", "ratio", "init", "synthetic", "profile"]


def test_an_unknown_format_is_refused(store):
    with pytest.raises(SynthmedError, match="unknown table format"):
        format_table(report_table(store), fmt="html")


def test_every_study_arch_shows_the_published_grid_beside_an_arch_the_study_did_not_run(store):
    add_run(store, 0.9, arch="resnet18")
    plain = report_table(store)
    both = report_table(store, every_study_arch=True)
    assert set(plain["arch"]) == {"resnet18"}
    assert set(both["arch"]) == {"resnet18", "resnet50", "deit_tiny"}
    assert (both[both["arch"] != "resnet18"]["n"] == 0).all()
    assert both["study"].notna().sum() == 36


def test_val_figures_are_their_own_table_and_may_show_more_decimals(store, capsys):
    add_run(store, 0.8)
    df = report_table(store, split="val")
    df.attrs["digits"] = 4
    text = format_table(df)
    assert "val accuracy at the chosen checkpoint" in text and "not a test result" in text
    mean = row(df, arch="resnet50", setting="base", init="scratch")["mean"]
    assert f"| {mean:.4f} n=1 |" in text


def test_the_quality_table_gives_each_sets_card_figures_and_leaves_out_shipped_samples():
    import json

    from synthmed_core.explorer.report import quality_table
    card = {"quality": {"fid": 11.2682, "kid_mean": 0.0312, "precision": 0.824, "recall": 0.665,
                        "baseline_real_val": {"fid": 7.433},
                        "memorisation": {"near_copy_share": 0.00347},
                        "tstr": {"accuracy": 0.9561, "auroc": 0.9972}}}
    sets = pd.DataFrame([
        {"name": "cg", "method": "cyclegan", "n": 10, "n_normal": 4, "n_pneumonia": 6,
         "card_json": json.dumps(card), "content_sha256": "3e84c190ead8ffff"},
        {"name": "cg-sample", "method": "sample", "n": 2, "n_normal": 1, "n_pneumonia": 1,
         "card_json": "{}", "content_sha256": "aa"},
        {"name": "plain", "method": "import", "n": 3, "n_normal": 1, "n_pneumonia": 2,
         "card_json": "{}", "content_sha256": None}])
    lines = quality_table(sets).splitlines()
    assert len(lines) == 4 and "cg-sample" not in "".join(lines)
    assert lines[2] == ("| cg | cyclegan | 10 (4 / 6) | 11.27 (7.43) | 0.0312 | 0.824 | 0.665 | "
                        "0.3% | 0.956 / 0.997 | `3e84c190ead8` |")
    assert lines[3].startswith("| plain | import | 3 (1 / 2) | — | — |")
