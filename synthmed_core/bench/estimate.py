"""What a training job will cost on this machine, said before it is queued.

A run's time is its phases' epochs x the images each epoch trains on x the seconds one
training image takes here. The images per epoch follow the setting's phases and the profile
as ``training.compose`` draws them (counts only: no data is loaded, no torch is imported).
The seconds per image come from the finished epochs of runs trained on this machine (origin
local; their epoch times include each epoch's val pass), median over the runs of the same arch
and input size; where there are none, from a one-off short measurement of the arch here
(``measure``: a few training batches and one eval pass of ``bench``'s trainer rig, in a
subprocess so the app never imports torch), kept in ``<data root>/speed.json``.
"""
from __future__ import annotations

import dataclasses
import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import paths
from ..errors import DataError, SynthmedError
from ..grid import SETTINGS, Profile, RunSpec, get_profile

MEASURE_IMAGES = 256  # images of the one-off measurement (two batches of the quick profile)
MEASURE_TIMEOUT_S = 600  # a loaded 2-core box took 66 s, 13 of them importing torch
SPEED_FILE = "speed.json"


@dataclass(frozen=True)
class Speed:
    """Seconds per training image (and per epoch beyond that, e.g. the val pass), and where
    the figure comes from."""

    per_image_s: float
    per_epoch_s: float
    source: str


def real_count(split: str = "train") -> int:
    """Images in a real split (its labels only are read; every MedMNIST size has as many)."""
    path = paths.medmnist_root() / "pneumoniamnist.npz"
    try:
        with np.load(path, allow_pickle=False) as npz:
            return int(npz[f"{split}_labels"].shape[0])
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"cannot read the real train split's size from {path}: {exc}") from exc


def set_sizes(sets) -> dict[str, int]:
    """Images per registered synthetic set, by name, from ``Store.synthetic_sets`` rows."""
    sizes = {}
    for name, n in zip(sets["name"], sets["n"]):
        try:
            sizes[name] = int(n)
        except (TypeError, ValueError):  # unknown (NaN, NA): the set's size is not known here
            continue
    return sizes


def phase_images(spec: dict, n_real: int, n_synthetic: int | None) -> list[tuple[int, int]]:
    """(images per epoch, epochs) of each phase of the run ``spec`` (keys setting, ratio and
    profile: a name, or a dict of profile fields), counted as ``training.compose`` draws
    them. Raises DataError when a phase needs the synthetic set's size and it is unknown."""
    profile = spec["profile"]
    if isinstance(profile, str):
        profile = dataclasses.asdict(get_profile(profile))
    limit, ratio = profile.get("train_limit"), spec.get("ratio")
    rows = min(limit, n_real) if limit else n_real
    out = []
    for phase in SETTINGS[spec["setting"]].phases:
        drawn = round(ratio * rows) if ratio else None
        if "synthetic" in phase.source and drawn is None:
            if n_synthetic is None:
                raise DataError("the synthetic set's size is not known here")
            drawn = min(limit, n_synthetic) if limit else n_synthetic
        images = {"real": rows, "synthetic": drawn}.get(phase.source, rows + (drawn or 0))
        out.append((int(images), int(profile[phase.epochs_field])))
    return out


def seconds(phases: list[tuple[int, int]], speed: Speed) -> float:
    """Estimated seconds of a run of these phases at ``speed``."""
    return sum(epochs * (images * speed.per_image_s + speed.per_epoch_s)
               for images, epochs in phases)


def speed_from_epochs(epochs, set_sizes: dict[str, int], n_real: int, arch: str,
                      input_size: int) -> Speed | None:
    """The median seconds per training image over this machine's finished runs of ``arch`` at
    ``input_size``, from ``Store.local_epoch_times`` rows; None when there is none."""
    per_run = []
    for run in epochs.to_dict("records"):
        spec = json.loads(run["spec_json"])
        if spec["cell"]["arch"] != arch or spec["profile"].get("input_size") != input_size:
            continue
        try:
            phases = phase_images({**spec["cell"], "profile": spec["profile"]}, n_real,
                                  set_sizes.get(spec["cell"].get("synthetic")))
        except (DataError, KeyError, IndexError):
            continue
        images, done = phases[int(run["phase"])][0], int(run["epochs"])
        if images and done and run["seconds"] > 0:
            per_run.append(run["seconds"] / (images * done))
    if not per_run:
        return None
    runs = len(per_run)
    return Speed(statistics.median(per_run), 0.0,
                 f"the finished epochs of {runs} {arch} run phase{'s' if runs > 1 else ''} "
                 "trained here")


def _speed_file() -> Path:
    return paths.data_root() / SPEED_FILE


def _measure_key(arch: str, input_size: int, batch_size: int) -> str:
    return f"{arch}@{input_size}px/b{batch_size}"


def measured_speed(arch: str, input_size: int, batch_size: int) -> Speed | None:
    """The one-off measurement kept for this arch, size and batch, if any."""
    try:
        kept = json.loads(_speed_file().read_text()).get(_measure_key(arch, input_size,
                                                                      batch_size))
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(kept, dict):
        return None
    try:
        return Speed(float(kept["per_image_s"]), float(kept["per_epoch_s"]),
                     f"a short measurement of {arch} here ({kept.get('when', '?')})")
    except (KeyError, TypeError, ValueError):
        return None


def measure(arch: str, input_size: int, batch_size: int) -> Speed:
    """Time a few training batches and an eval pass of ``arch`` here, in a subprocess, keep the
    result in ``<data root>/speed.json`` and return it. Raises SynthmedError when it fails."""
    cmd = [sys.executable, "-m", "synthmed_core.bench.estimate", arch, str(input_size),
           str(batch_size)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=MEASURE_TIMEOUT_S,
                              cwd=paths.REPO_ROOT)
    except subprocess.TimeoutExpired:
        raise SynthmedError(f"measuring {arch} took over {MEASURE_TIMEOUT_S} s") from None
    try:
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        per_image, per_epoch = float(figures["per_image_s"]), float(figures["per_epoch_s"])
    except (IndexError, KeyError, TypeError, ValueError):
        raise SynthmedError(f"measuring {arch} failed: {done.stderr.strip()[-400:]}") from None
    if not (per_image > 0 and per_epoch >= 0):
        raise SynthmedError(f"measuring {arch} gave no usable figure: {figures}")
    path = _speed_file()
    try:
        kept = json.loads(path.read_text())
    except (OSError, ValueError):
        kept = {}
    import datetime as dt
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    kept[_measure_key(arch, input_size, batch_size)] = {
        "per_image_s": per_image, "per_epoch_s": per_epoch, "when": when}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(kept, indent=1))
    tmp.replace(path)
    return measured_speed(arch, input_size, batch_size)


def _measure_here(arch: str, input_size: int, batch_size: int) -> dict:
    """Seconds per training image (the trainer's own epoch path) and per val pass."""
    import torch

    from ._data import bench_arrays
    from ._trainer import build_rig, measure_eval, measure_training

    images, labels, _ = bench_arrays(MEASURE_IMAGES)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rig = build_rig(arch, input_size, device, images, labels, batch_size, augment=False)
    train = measure_training(rig, rounds=1, warmup_batches=1)
    return {"per_image_s": 1.0 / train["train_ips"],
            "per_epoch_s": real_count("val") / measure_eval(rig, reps=1)}


@dataclass(frozen=True)
class Estimate:
    """One run's estimated seconds here, and the speed it was computed from."""

    seconds: float
    speed: Speed


def estimate_run(epochs, set_sizes: dict[str, int], arch: str, setting: str,
                 ratio: float | None, synthetic: str | None, profile: str) -> Estimate | None:
    """One run of this cell and profile here: from ``Store.local_epoch_times`` rows (the
    speed of runs of the arch trained here), else the kept measurement; None when neither
    exists (``measure`` makes one). ``ratio`` 0 or None: none (the whole set)."""
    return _estimate(epochs, set_sizes, arch, setting, ratio, synthetic, get_profile(profile))


def estimate_spec(epochs, set_sizes: dict[str, int], spec: RunSpec) -> Estimate | None:
    """``estimate_run`` for one frozen run spec, its profile as it stands (overrides such as
    ``--epochs`` included): what ``grid --dry-run`` prints per run."""
    cell = spec.cell
    return _estimate(epochs, set_sizes, cell.arch, cell.setting, cell.ratio, cell.synthetic,
                     spec.profile)


def _estimate(epochs, set_sizes: dict[str, int], arch: str, setting: str,
              ratio: float | None, synthetic: str | None, prof: Profile) -> Estimate | None:
    n_real = real_count()
    ratio = ratio if SETTINGS[setting].ratio != "none" and ratio else None
    phases = phase_images({"setting": setting, "ratio": ratio,
                           "profile": dataclasses.asdict(prof)}, n_real, set_sizes.get(synthetic))
    speed = (speed_from_epochs(epochs, set_sizes, n_real, arch, prof.input_size)
             or measured_speed(arch, prof.input_size, prof.batch_size))
    return None if speed is None else Estimate(seconds(phases, speed), speed)


def duration_text(s: float) -> str:
    """``42 s``, ``7 min``, ``1 h 05 min``."""
    if s < 90:
        return f"{max(1, round(s))} s"
    if s < 3600:
        return f"{round(s / 60)} min"
    return f"{int(s // 3600)} h {round(s % 3600 / 60):02d} min"


if __name__ == "__main__":  # measure(): python -m synthmed_core.bench.estimate ARCH SIZE B
    print(json.dumps(_measure_here(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
