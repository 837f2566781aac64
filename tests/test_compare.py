"""Paired comparison of two cells: runs matched by seed, on the same real test images."""
from __future__ import annotations

import numpy as np
import pytest

from synthmed_core.analysis.compare import CellKey, compare_cells, format_comparison
from synthmed_core.analysis.metrics import mcnemar, run_metrics
from synthmed_core.errors import SpecError
from synthmed_core.grid import make_run_spec
from synthmed_core.store import Store
from synthmed_core.records.events import RunResult

LABELS = np.r_[np.zeros(40), np.ones(60)].astype(np.int64)


def _record(store, setting, seed, probs, synthetic=None, ratio=None):
    spec = make_run_spec("resnet18", "scratch", setting, seed, "smoke", ratio=ratio, synthetic=synthetic)
    store.start_run(spec, "cpu")
    store.finish_run(RunResult(spec.run_id, run_metrics(LABELS, probs), LABELS, probs, LABELS,
                               probs, 0, 0, 1.0, "cpu", "best.pt"))
    return probs


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "db.duckdb")


def test_cells_are_matched_by_seed_and_mcnemar_counts_discordant_images(store):
    rng = np.random.default_rng(0)
    noisy = lambda s: np.clip(LABELS * 0.6 + 0.2 + rng.normal(0, s, LABELS.size), 0, 1)  # noqa: E731
    a = [_record(store, "base", seed, noisy(0.3)) for seed in (0, 1, 2)]
    b = [_record(store, "augment", seed, noisy(0.1), "set", 1.0) for seed in (1, 2, 3)]
    res = compare_cells(store, CellKey.parse("resnet18/scratch/base", "smoke"),
                        CellKey.parse("resnet18/scratch/augment@1/set", "smoke"), n_boot=200)
    assert res["seeds"] == [1, 2]
    ok_a = (np.stack(a[1:]) >= 0.5) == LABELS
    ok_b = (np.stack(b[:2]) >= 0.5) == LABELS
    assert res["mcnemar"] == mcnemar(ok_a, ok_b)
    assert res["auroc"]["lo"] <= res["auroc"]["diff"] <= res["auroc"]["hi"]
    assert "matched seeds [1, 2]" in format_comparison(res)


def test_a_bootstrap_p_beyond_the_resampling_resolution_reads_as_a_bound_not_zero(store):
    rng = np.random.default_rng(1)
    _record(store, "base", 0, np.clip(LABELS * 0.2 + 0.4 + rng.normal(0, 0.3, LABELS.size), 0, 1))
    _record(store, "augment", 0, LABELS * 0.8 + 0.1, "set", 1.0)  # ranks every image right
    res = compare_cells(store, CellKey.parse("resnet18/scratch/augment@1/set", "smoke"),
                        CellKey.parse("resnet18/scratch/base", "smoke"), n_boot=200)
    assert res["auroc"]["p"] == 0 and res["auroc"]["n_boot"] == 200
    auroc_line = format_comparison(res).splitlines()[-1]
    assert auroc_line.endswith("p < 0.005 (none of 200 resamples crossed 0)"), auroc_line


def test_cells_without_a_common_seed_are_a_clear_error(store):
    _record(store, "base", 0, np.full(LABELS.size, 0.7))
    with pytest.raises(SpecError, match="no finished runs with matching seeds"):
        compare_cells(store, CellKey.parse("resnet18/scratch/base", "smoke"),
                      CellKey.parse("resnet18/scratch/base", "quick"))


@pytest.mark.parametrize("text", ["resnet18/base", "resnet18/scratch/nosuch", "a/b/augment@x"])
def test_unreadable_cell_names_are_refused(text):
    with pytest.raises(SpecError):
        CellKey.parse(text, "quick")


def test_predictions_split_per_run_come_in_image_order_whatever_order_they_arrive_in():
    import pandas as pd

    from synthmed_core.analysis.compare import by_run
    rows = pd.DataFrame({"run_id": ["b", "b", "a", "a", "b"], "idx": [1, 0, 1, 0, 2],
                         "label": [0, 1, 0, 1, 1], "prob": [0.1, 0.2, 0.3, 0.4, 0.5]})
    out = by_run(rows)
    assert sorted(out) == ["a", "b"]
    assert out["a"]["idx"].tolist() == [0, 1] and out["b"]["idx"].tolist() == [0, 1, 2]
    assert out["b"]["prob"].tolist() == [0.2, 0.1, 0.5]  # each row kept with its image
    ordered = rows.sort_values(["run_id", "idx"])
    assert {k: v.equals(ordered[ordered["run_id"] == k]) for k, v in by_run(ordered).items()} == {
        "a": True, "b": True}
    assert by_run(rows.iloc[0:0]) == {}
