"""The catalog holds each offered name once; every name works everywhere it is offered. Adding
a name to the catalog without its code (or offering one the catalog lacks) fails here."""
from __future__ import annotations

import argparse

import numpy as np
import pytest

from synthmed_core import catalog
from synthmed_core.cli import build_parser, main
from synthmed_core.explorer import grid_view
from synthmed_core.store import Store

from grid_helpers import add_run, labels, probs_with_accuracy


def _choices(parser: argparse.ArgumentParser, path: list[str], option: str) -> list[str]:
    """The choices of ``option`` of the sub-command at ``path`` (e.g. ["report"], "--metric")."""
    for name in path:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return list(next(a for a in parser._actions if option in a.option_strings).choices)


def test_the_catalog_is_importable_without_torch():
    import subprocess
    import sys
    code = ("import sys, synthmed_core.catalog; "
            "print(sorted(m for m in ('torch', 'timm', 'duckdb') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---- metrics: computed for every run, offered by the grid, the home page and `report` ----------


def test_every_metric_is_computed_for_a_run_and_recorded_by_the_store(tmp_path):
    from synthmed_core.analysis.metrics import run_metrics
    y = labels()
    assert set(catalog.METRICS) <= set(run_metrics(y, probs_with_accuracy(y, 0.8, 0)))
    store = Store(tmp_path / "s.duckdb")
    add_run(store, "base", 0, probs_with_accuracy(y, 0.8, 0), y)
    runs = store.runs("finished")
    assert all(np.isfinite(runs[m].iloc[0]) for m in catalog.METRICS)


@pytest.mark.parametrize("metric", list(catalog.METRICS))
def test_every_metric_is_in_the_grid_picker_and_reported(metric, tmp_path, monkeypatch, capsys):
    assert metric in grid_view.METRICS
    assert metric in _choices(build_parser(), ["report"], "--metric")
    monkeypatch.setenv("SYNTHMED_DATA", str(tmp_path))
    y = labels()
    add_run(Store(), "base", 0, probs_with_accuracy(y, 0.8, 0), y)
    assert main(["report", "--metric", metric, "--threshold", "0.5"]) == 0
    assert f"test {metric}" in capsys.readouterr().out


# ---- archs, profiles, generators, CAM methods -------------------------------------------------


@pytest.mark.train
@pytest.mark.parametrize("arch", list(catalog.ARCHS))
def test_every_arch_builds_and_is_offered_by_the_sidebar(arch):
    from synthmed_core.training.models import build_model, get_arch
    from ui import launch
    assert arch in launch.ARCH_CHOICES
    assert get_arch(arch) is catalog.ARCHS[arch]
    assert build_model(arch, "scratch", 28, num_classes=2) is not None


@pytest.mark.parametrize("profile", list(catalog.PROFILES))
def test_every_profile_is_offered_by_every_verb_and_the_sidebar(profile):
    import jobs._cli
    from synthmed_core.training.pretrain import make_pretrain_spec
    from ui import launch
    parser = build_parser()
    for path in (["train"], ["grid"], ["pretrain", "chestmnist"], ["cam-bench"]):
        assert profile in _choices(parser, path, "--profile"), path
    for path in (["submit", "train"], ["submit", "grid"], ["submit", "pretrain"]):
        assert profile in _choices(jobs._cli.build_parser(), path, "--profile"), path
    assert profile in launch.PROFILE_CHOICES and profile in catalog.PROFILE_HELP
    assert make_pretrain_spec("resnet18", profile).profile == profile


def test_every_generator_method_has_its_class_and_is_offered():
    from synthmed_core.synth.generators import GENERATORS
    assert tuple(GENERATORS) == catalog.GENERATOR_METHODS
    assert _choices(build_parser(), ["synth", "generate"], "--method") == list(
        catalog.GENERATOR_METHODS)


@pytest.mark.parametrize("method", catalog.GENERATOR_METHODS)
def test_every_generator_has_a_config_for_each_generator_profile(method):
    from synthmed_core.synth.generators import GENERATORS, generator_config
    assert tuple(GENERATORS[method].PROFILES) == catalog.GENERATOR_PROFILES
    for profile in catalog.GENERATOR_PROFILES:
        assert generator_config(method, profile).profile == profile


def test_the_encoders_and_quality_share_the_generator_profiles_and_are_offered():
    from synthmed_core.synth import quality
    from synthmed_core.synth.encoder import ENCODER_PROFILES
    assert tuple(ENCODER_PROFILES) == catalog.GENERATOR_PROFILES
    assert tuple(quality.PROFILES) == catalog.GENERATOR_PROFILES
    for path in (["synth", "generate"], ["synth", "quality"]):
        assert _choices(build_parser(), path, "--profile") == list(catalog.GENERATOR_PROFILES)


def test_active_and_terminal_job_statuses_split_the_job_statuses():
    import jobs
    assert set(catalog.ACTIVE_JOB_STATUSES).isdisjoint(catalog.TERMINAL_JOB_STATUSES)
    assert catalog.ACTIVE_JOB_STATUSES + catalog.TERMINAL_JOB_STATUSES == catalog.JOB_STATUSES
    assert jobs.ACTIVE is catalog.ACTIVE_JOB_STATUSES
    assert jobs.TERMINAL is catalog.TERMINAL_JOB_STATUSES


def test_every_cam_method_is_a_pytorch_grad_cam_class():
    from pytorch_grad_cam.base_cam import BaseCAM

    from synthmed_core.explain import cams as explain
    assert list(explain.CAM_METHODS) == list(catalog.CAM_METHODS)
    assert all(issubclass(cls, BaseCAM) for cls in explain.CAM_METHODS.values())
    assert explain.CAM_TARGETS is catalog.CAM_TARGETS


def test_every_status_is_a_filter_of_the_store(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    for status in catalog.RUN_STATUSES:
        assert store.runs(status).empty
    for status in catalog.JOB_STATUSES:
        assert store.jobs(status).empty
