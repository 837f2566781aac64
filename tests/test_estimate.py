"""A job's time on this machine, said before it is queued: the images each epoch trains on
(as compose draws them), times the seconds per image of runs trained here, else of a one-off
measurement kept in the data root."""
from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from synthmed_core.data.real import Split, load_real
from synthmed_core.bench import estimate as est
from synthmed_core.grid import SETTINGS, get_profile, make_run_spec
from synthmed_core.store import Store
from synthmed_core.training.compose import compose

from grid_helpers import labels, probs_with_accuracy
from synthmed_core.analysis.metrics import run_metrics
from synthmed_core.records.events import RunResult


@pytest.mark.parametrize("setting, ratio, profile", [
    ("base", None, "quick"), ("base", None, "smoke"), ("augment", 1.0, "quick"),
    ("augment", 2.0, "smoke"), ("synthetic_base", None, "quick"),
    ("synthetic_base", 0.5, "smoke"), ("synthetic_ft", None, "smoke"),
    ("duplicate_control", 1.0, "quick"), ("synthetic_pretrain", None, "quick")])
def test_the_images_per_epoch_are_those_compose_draws(real_data, setting, ratio, profile):
    real = load_real("train")
    rng = np.random.default_rng(0)
    fake = Split(rng.integers(0, 256, (9000, 28, 28), dtype=np.uint8),
                 (rng.random(9000) < 0.7).astype(np.int64))
    prof = get_profile(profile)
    counted = est.phase_images({"setting": setting, "ratio": ratio, "profile": profile},
                               est.real_count(), len(fake.labels))
    drawn = [(len(compose(phase.source, real, fake, ratio=ratio, train_limit=prof.train_limit
                          ).labels), getattr(prof, phase.epochs_field))
             for phase in SETTINGS[setting].phases]
    assert counted == drawn


def _local_run(store: Store, arch: str, setting: str, epoch_s: float, epochs: int = 3) -> None:
    spec = make_run_spec(arch, "scratch", setting, seed=0, profile="quick")
    store.start_run(spec, "cpu")
    store.add_epochs(spec.run_id, [{"phase": 0, "epoch": e, "seconds": epoch_s}
                                   for e in range(epochs)])
    y = labels()
    p = probs_with_accuracy(y, 0.8, 0)
    store.finish_run(RunResult(spec.run_id, run_metrics(y, p), y, p, y, p, best_epoch=0,
                               best_phase=0, wall_s=epochs * epoch_s, device="cpu",
                               checkpoint="best.pt"))


def test_runs_trained_here_give_the_speed_and_the_estimate_follows_epochs_and_images(real_data):
    store = Store()
    n = est.real_count()
    _local_run(store, "resnet18", "base", epoch_s=n * 0.002)  # 2 ms per training image
    _local_run(store, "resnet50", "base", epoch_s=n * 0.02)  # another arch: not used
    times = store.local_epoch_times()
    base = est.estimate_run(times, {}, "resnet18", "base", None, None, "quick")
    assert base.seconds == pytest.approx(20 * n * 0.002)  # quick: 20 epochs
    assert "2 resnet18" not in base.speed.source and "1 resnet18 run" in base.speed.source
    double = est.estimate_run(times, {}, "resnet18", "augment", 1.0, "some-set", "quick")
    assert double.seconds == pytest.approx(2 * base.seconds)  # real + as many synthetic
    assert est.estimate_run(times, {}, "resnet18", "base", None, None, "smoke").seconds == \
        pytest.approx(2 * 256 * 0.002)  # smoke: 2 epochs of 256 images
    assert est.estimate_run(times, {}, "deit_tiny", "base", None, None, "quick") is None


@pytest.mark.train  # the measurement trains a few batches
def test_without_a_run_here_one_short_measurement_is_made_then_kept(real_data, monkeypatch):
    times = Store().local_epoch_times()
    assert est.estimate_run(times, {}, "resnet18", "base", None, None, "quick") is None
    speed = est.measure("resnet18", 28, 128)  # real: a few batches in a subprocess
    assert 0 < speed.per_image_s < 1 and speed.per_epoch_s > 0
    assert "short measurement of resnet18" in speed.source
    kept = json.loads((real_data / est.SPEED_FILE).read_text())
    assert list(kept) == ["resnet18@28px/b128"]

    def no_subprocess(*args, **kwargs):
        raise AssertionError("measured again")
    monkeypatch.setattr(subprocess, "run", no_subprocess)
    again = est.estimate_run(times, {}, "resnet18", "base", None, None, "quick")
    assert again.seconds == pytest.approx(20 * (est.real_count() * speed.per_image_s
                                                + speed.per_epoch_s))


def test_a_damaged_speed_file_is_ignored_and_a_failed_measurement_says_why(real_data):
    real_data.mkdir(parents=True, exist_ok=True)
    (real_data / est.SPEED_FILE).write_text("{not json")
    assert est.measured_speed("resnet18", 28, 128) is None
    with pytest.raises(est.SynthmedError, match="measuring no_such_arch_here failed"):
        est.measure("no_such_arch_here", 28, 128)


def test_a_dry_run_grid_says_each_runs_time_here_and_their_sum(real_data, capsys):
    from synthmed_core.cli import main as cli
    store = Store()
    n = est.real_count()
    _local_run(store, "resnet18", "base", epoch_s=n * 0.002)  # seed 0 done: 2 ms per image
    assert cli(["grid", "--arch", "resnet18", "deit_tiny", "--setting", "base",
                "duplicate_control", "--ratio", "1", "--seeds", "0", "1", "--profile", "quick",
                "--dry-run"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()[1:] if "profile=" in line}
    done = make_run_spec("resnet18", "scratch", "base", seed=0, profile="quick").run_id
    todo = make_run_spec("resnet18", "scratch", "base", seed=1, profile="quick").run_id
    dup = make_run_spec("resnet18", "scratch", "duplicate_control", ratio=1.0, seed=1,
                        profile="quick").run_id
    base_s = 20 * n * 0.002  # quick: 20 epochs of the real split
    assert "done" in lines[done] and "~" not in lines[done]
    assert lines[todo].endswith(f"~{est.duration_text(base_s)}")
    assert lines[dup].endswith(f"~{est.duration_text(2 * base_s)}")  # real + as many re-drawn
    deit = [line for line in lines.values() if "deit_tiny" in line]
    assert len(deit) == 4 and all("no estimate: no deit_tiny run trained here" in line
                                  for line in deit)
    assert (f"the 3 runs left with an estimate: ~{est.duration_text(5 * base_s)} of one worker "
            "here; 4 more without one") in out
    assert "resnet18: seconds per training image from the finished epochs of 1 resnet18" in out
    assert cli(["grid", "--arch", "resnet18", "--measure", "--seeds", "1"]) == 2  # not alone


def test_a_dry_run_with_measure_times_each_arch_without_runs_once_then_estimates(
        real_data, capsys, monkeypatch):
    from synthmed_core.cli import main as cli
    measured = []

    def fake_measure(arch, input_size, batch_size):  # what measure() keeps, without torch
        measured.append((arch, input_size, batch_size))
        (real_data / est.SPEED_FILE).write_text(json.dumps({
            f"{arch}@{input_size}px/b{batch_size}": {"per_image_s": 0.001, "per_epoch_s": 0.5,
                                                     "when": "now"}}))
        return est.measured_speed(arch, input_size, batch_size)
    monkeypatch.setattr(est, "measure", fake_measure)
    real_data.mkdir(parents=True, exist_ok=True)
    assert cli(["grid", "--arch", "deit_tiny", "--setting", "base", "--seeds", "0", "1",
                "--profile", "quick", "--dry-run", "--measure"]) == 0
    out = capsys.readouterr().out
    assert measured == [("deit_tiny", 28, 128)]  # once for the arch, not per run
    one = 20 * (est.real_count() * 0.001 + 0.5)
    assert out.count(f"~{est.duration_text(one)}") == 2 and "no estimate" not in out
    assert "short measurement of deit_tiny" in out


@pytest.mark.parametrize("seconds, text", [(0.2, "1 s"), (42, "42 s"), (420, "7 min"),
                                           (3900, "1 h 05 min")])
def test_durations_read_as_people_say_them(seconds, text):
    assert est.duration_text(seconds) == text
