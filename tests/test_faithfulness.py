"""Are the maps evidence? pytorch-grad-cam's ROAD combined and map-kept confidence change per
map (seeded, NaN for a flat map), ROAD's sign flipping with the map's ranking, and the
real-vs-synthetic summary."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from synthmed_core.data.real import load_real
from synthmed_core.explain import faithfulness as fa
from synthmed_core.explain.cams import cam_overlays

from explain_helpers import seeded_resnet18


@pytest.fixture(scope="module")
def model():
    return seeded_resnet18()


@pytest.fixture
def results(model, shared_medmnist, one_thread):
    return cam_overlays(model, load_real("test").images[:3], "EigenCAM")


def test_each_informative_map_gets_both_scores_and_the_same_maps_the_same_scores(model,
                                                                                   results):
    scores = fa.faithfulness(model, results)
    assert len(scores) == 3
    for s in scores:
        assert set(s) == set(fa.METRICS)
        assert all(np.isfinite(v) and -1.0 <= v <= 1.0 for v in s.values())
    assert fa.faithfulness(model, results) == scores  # ROAD's imputation noise is seeded


def test_a_constant_map_has_no_scores(model, results):
    flat = dataclasses.replace(results[0], cam=np.zeros_like(results[0].cam), constant=True)
    scores = fa.faithfulness(model, [flat, results[1]])
    assert all(np.isnan(v) for v in scores[0].values())
    assert all(np.isfinite(v) for v in scores[1].values())


def test_road_of_a_maps_inverse_is_its_negative(model, results):
    """The inverse map (1 - map) ranks the same pixels the other way round, so its most
    relevant pixels are the map's least relevant: ROAD swaps its two terms and changes sign
    (up to the imputer's small noise), whatever the model."""
    inverse = [dataclasses.replace(r, cam=(1.0 - r.cam).astype(np.float32)) for r in results]
    ours = [s["road"] for s in fa.faithfulness(model, results)]
    theirs = [s["road"] for s in fa.faithfulness(model, inverse)]
    assert np.allclose(np.array(ours), -np.array(theirs), atol=0.05)  # the two swap roles


def test_the_summary_gives_each_side_its_interval_and_the_difference(model, results):
    real = [{"road": 0.1, "confidence_change": 0.0}, {"road": 0.3, "confidence_change": -0.2},
            {"road": float("nan"), "confidence_change": float("nan")}]
    synthetic = [{"road": 0.0, "confidence_change": 0.1}, {"road": 0.2, "confidence_change": 0.1}]
    res = fa.summary(real, synthetic)
    assert res["road"]["real"]["n"] == 2 and res["road"]["real"]["mean"] == pytest.approx(0.2)
    assert res["road"]["difference"]["mean"] == pytest.approx(0.1)
    d = res["road"]["difference"]
    assert d["lo"] < d["mean"] < d["hi"]
    lines = fa.summary_lines(res)
    assert lines[0].startswith("ROAD combined: real +0.200") and "(n=2)" in lines[0]
