"""A grid on a lent GPU machine in one call, its results bundle brought back as it grows.

The device machine (see the device tool) is bare each time: its python has torch, timm, pandas,
pyarrow, scikit-learn and scipy, but not duckdb or medmnist, and it reaches no registry. So:

    # here, once: wheels for the device's Python 3.12, the real data and the synthetic set,
    # into .device/ (ignored by git; the device tool's `carry` takes it, ~40 MB)
    python scripts/device_grid.py prepare --synthetic cyclegan_cpu

    # there (the device tool's run, carry [".device"]), e.g. the study's own configuration:
    python3 scripts/device_grid.py run --out "$OUT" --minutes 8 --profile paper \
        --arch resnet50 deit_tiny --setting base synthetic_base augment synthetic_ft \
        --ratio 1 2 3 --synthetic cyclegan_cpu --seeds 0

``run`` installs the wheels into /tmp, makes a fresh data root under /tmp, registers the carried
synthetic set, queues the grid through the jobs layer (``jobs submit grid``, run ids are spec
hashes: the same runs as here), starts ``jobs worker`` (``--per-gpu`` workers per GPU), and
re-exports the finished runs as ONE bundle, ``OUT/NAME/`` (7 files), each time a run finishes,
so a call cut short still brings back every run it finished. At ``--minutes`` it stops the
workers (their runs resume elsewhere from their spec) and prints runs/minute. Back here:
copy the bundle into results/, ``python -m synthmed_core results import results/NAME``, commit.

Tested here on the CPU with ``--profile smoke --device cpu`` (tests do not run it: it needs a
machine to itself for minutes).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from synthmed_core import catalog  # noqa: E402  (names only: no torch, no duckdb)
CARRY = REPO / ".device"  # what travels: whl/, medmnist/, synthetic/<set>/
WHEELS = {"duckdb": "duckdb==2.0.1", "medmnist": "medmnist==3.0.2"}  # as requirements.txt
DEVICE_PYTHON = ["--python-version", "3.12", "--implementation", "cp", "--platform",
                 "manylinux_2_28_x86_64", "--platform", "manylinux_2_27_x86_64", "--platform",
                 "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64"]


def prepare(a: argparse.Namespace) -> int:
    (CARRY / "whl").mkdir(parents=True, exist_ok=True)
    for spec in WHEELS.values():
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--only-binary=:all:", *DEVICE_PYTHON, "-d", str(CARRY / "whl"), spec],
                       check=True)
    real = Path(a.medmnist) / "pneumoniamnist.npz"
    if not real.is_file():
        sys.exit(f"no {real}: put PneumoniaMNIST's pneumoniamnist.npz there or pass --medmnist")
    (CARRY / "medmnist").mkdir(exist_ok=True)
    shutil.copy2(real, CARRY / "medmnist" / real.name)
    for name in a.synthetic:
        source = REPO / "data" / "synthetic" / name
        if not source.is_dir():
            sys.exit(f"no synthetic set {source}: generate or import it first (`synth list`)")
        shutil.copytree(source, CARRY / "synthetic" / name, dirs_exist_ok=True)
    size = sum(f.stat().st_size for f in CARRY.rglob("*") if f.is_file())
    print(f"{CARRY}: {size / 2**20:.1f} MiB to carry (the device tool takes 64 MiB in all)")
    return 0


def _env(data: Path) -> dict[str, str]:
    """The environment of every command ``run`` starts: the fresh data root ``data``, the
    carried real data, offline; and, where this python lacks duckdb or medmnist (the device's),
    those installed from the carried wheels into /tmp and put on PYTHONPATH."""
    env = {**os.environ, "SYNTHMED_DATA": str(data), "SYNTHMED_DB": "",
           "SYNTHMED_MEDMNIST_ROOT": str(CARRY / "medmnist"), "SYNTHMED_SHIPPED": "none",
           "SYNTHMED_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    site = "/tmp/synthmed-site"
    missing = [name for name in WHEELS if importlib.util.find_spec(name) is None]
    wheels = [w for name in missing for w in sorted((CARRY / "whl").glob(f"{name}-*.whl"))]
    if len(wheels) < len(missing):
        sys.exit(f"this python lacks {', '.join(missing)} and {CARRY / 'whl'} has no wheel "
                 "for it: run `python scripts/device_grid.py prepare` on the machine you work on")
    if wheels:  # the device's python: install what it lacks, from the carried wheels
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                        "--no-compile", "--no-cache-dir", "--upgrade", "--target", site,
                        *map(str, wheels)], check=True)
    env["PYTHONPATH"] = os.pathsep.join([*([site] if wheels else []), str(REPO)])
    return env


def _py(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, check=check, text=True,
                          capture_output=True)


FINISHED = ("from synthmed_core.store import Store; import json; "
            "print(json.dumps(sorted(Store().runs('finished')['run_id'])))")


def run(a: argparse.Namespace) -> int:
    out = Path(a.out)
    data = Path(a.data)
    data.mkdir(parents=True, exist_ok=True)
    env = _env(data)
    for name in a.synthetic or []:  # the carried set, registered in the fresh store
        target = data / "synthetic" / name
        shutil.copytree(CARRY / "synthetic" / name, target, dirs_exist_ok=True)
        _py(env, "-c", "import sys; from synthmed_core.store import Store; "
                       "from synthmed_core.synth.sets import load_set; "
                       "_, card = load_set(sys.argv[1]); "
                       "Store().register_synthetic_set(sys.argv[1], card, sys.argv[2])",
            name, str(target))
    grid = ["--arch", *a.arch, "--init", *a.init, "--setting", *a.setting, "--seeds", *a.seeds,
            "--profile", a.profile, "--device", a.device, "--no-progress"]
    grid += ["--ratio", *a.ratio] if a.ratio else []
    grid += ["--synthetic", a.synthetic[0]] if a.synthetic else []
    workers = ["--device", a.device]
    workers += ["--per-gpu", str(a.per_gpu)] if a.device.startswith("cuda") else ["--workers", "1"]
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "jobs", "worker", *workers, "--idle-exit",
                             "20"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)
    queued = _py(env, "-m", "jobs", "submit", "grid", *grid)  # the worker is up: it takes them
    print(queued.stdout.strip())
    shipped: list[str] = []

    def export_new() -> None:
        nonlocal shipped
        done = json.loads(_py(env, "-c", FINISHED).stdout)
        if done == shipped:
            return
        exported = _py(env, "-m", "synthmed_core", "results", "export", "--out",
                       str(out / a.name), "--name", a.name, "--profile", a.profile)
        shipped = done
        minutes = (time.monotonic() - t0) / 60
        print(f"[{minutes:5.1f} min] {len(done)} runs finished, {len(done) / minutes:.2f} "
              f"runs/minute: {exported.stdout.strip()}", flush=True)

    try:
        while proc.poll() is None and time.monotonic() - t0 < a.minutes * 60:
            export_new()  # each time a run finished: the bundle again, with it
            time.sleep(a.poll)
    finally:
        if proc.poll() is None:
            proc.terminate()  # its runs go back to the queue; elsewhere they resume anew
            proc.wait(timeout=120)
    export_new()  # what finished in the last interval
    jobs = _py(env, "-m", "jobs", "list", check=False).stdout.splitlines()
    states = {s: sum(f" {s} " in line and " train " in line for line in jobs)
              for s in ("finished", "failed", "cancelled", "queued", "running")}
    print(f"{len(shipped)} runs in {out / a.name} after {(time.monotonic() - t0) / 60:.1f} min; "
          f"train jobs: {states}")
    for line in jobs:
        if " failed " in line and " train " in line:
            job_id = line.split()[0]
            error = json.loads(_py(env, "-m", "jobs", "show", job_id, check=False).stdout
                               or "{}").get("error")
            print(f"  job {job_id} failed: {error}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="verb", required=True)
    pre = sub.add_parser("prepare", help="here: wheels, real data and synthetic sets into "
                                         ".device/")
    pre.add_argument("--synthetic", nargs="*", default=[], metavar="SET")
    pre.add_argument("--medmnist", default=str(REPO.parent / "shared" / "data"),
                     help="folder with pneumoniamnist.npz (default ../shared/data)")
    pre.set_defaults(func=prepare)
    r = sub.add_parser("run", help="there: queue the grid, train, export as runs finish")
    r.add_argument("--out", required=True, help="where the bundle goes ($OUT on the device)")
    r.add_argument("--name", default="device-grid", help="the bundle's name")
    r.add_argument("--data", default="/tmp/synthmed-device-data", help="a fresh data root")
    r.add_argument("--minutes", type=float, default=8.0, help="stop the workers after this")
    r.add_argument("--poll", type=float, default=10.0, help="seconds between looks")
    r.add_argument("--profile", default="paper")
    r.add_argument("--arch", nargs="+", default=list(catalog.STUDY_ARCHS))
    r.add_argument("--init", nargs="+", default=["scratch"])
    r.add_argument("--setting", nargs="+",
                   default=["base", "synthetic_base", "augment", "synthetic_ft"])
    r.add_argument("--ratio", nargs="*", default=["1", "2", "3"])
    r.add_argument("--synthetic", nargs="*", default=["cyclegan_cpu"], metavar="SET")
    r.add_argument("--seeds", nargs="+", default=["0"])
    r.add_argument("--device", default="cuda")
    r.add_argument("--per-gpu", type=int, default=4, help="worker processes per GPU")
    r.set_defaults(func=run)
    a = p.parse_args(argv)
    return a.func(a)


if __name__ == "__main__":
    raise SystemExit(main())
