"""A grid's wall time beside its pure-compute bound, from a results bundle.

    python scripts/grid_bound.py results/quick-resnet18 [--workers 2] [--threads 1]
                                 [--pure-ips N]

For each run of the bundle: the images it trained on (each phase's composed training set, as
the trainer builds it from the run's spec, times the epochs the bundle recorded for that phase)
and the seconds its epochs took (training plus each epoch's val pass). The bound is those images
at the pure training speed (forward + backward + optimizer step, no data pipeline, no eval) of
one trainer with ``--threads`` CPU threads, measured here by ``synthmed_core bench`` in the same
call (or given with ``--pure-ips``), divided among ``--workers`` trainers side by side, as the
grid ran. Needs the real data and the bundle's synthetic sets in this data root (a set that is
missing is reported and its runs left out). Prints one line per (arch, setting) and the totals.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402

from synthmed_core.errors import DataError  # noqa: E402
from synthmed_core.grid import RunSpec  # noqa: E402
from synthmed_core.training.compose import build_plan  # noqa: E402


def trained_images(spec: RunSpec, epochs_per_phase: dict[int, int]) -> int:
    """Images the run's trainer went through: each phase's set times its recorded epochs."""
    plan = build_plan(spec)
    return sum(len(p.labels) * epochs_per_phase.get(i, 0) for i, p in enumerate(plan.phases))


def pure_ips(arch: str, size: int, threads: int) -> float:
    """One trainer's pure training images/s here with ``threads`` CPU threads, by the
    project's own bench (no reference pipeline, no Grad-CAM, no store)."""
    import torch

    from synthmed_core.bench import BenchConfig, run_bench
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        report = run_bench(BenchConfig(device="cpu", archs=(arch,), sizes=(size,),
                                       reference=False, cam=False, store_runs=0),
                           log=lambda _: None)
    finally:
        torch.set_num_threads(before)
    return float(report["rows"][0]["pure_ips"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--workers", type=int, default=2, help="trainers side by side (default 2)")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads each (default 1)")
    ap.add_argument("--pure-ips", type=float, help="skip the bench: one trainer's pure img/s")
    args = ap.parse_args(argv)

    runs = pd.read_parquet(args.bundle / "runs.parquet")
    epochs = pd.read_parquet(args.bundle / "epochs.parquet")
    recorded = epochs.groupby(["run_id", "phase"]).agg(n=("epoch", "size"),
                                                       seconds=("seconds", "sum"))
    rows, missing = defaultdict(lambda: [0, 0, 0.0, 0.0]), set()
    archs_sizes = set()
    for run in runs.itertuples():
        spec = RunSpec.from_dict(json.loads(run.spec_json))
        mine = recorded.loc[run.run_id]
        try:
            images = trained_images(spec, mine["n"].to_dict())
        except DataError as exc:
            missing.add(f"{run.synthetic}: {str(exc).splitlines()[0]}")
            continue
        archs_sizes.add((run.arch, spec.profile.input_size))
        label = run.setting if pd.isna(run.ratio) else f"{run.setting} x{run.ratio:g}"
        r = rows[(run.arch, label if pd.isna(run.synthetic) else f"{label} {run.synthetic}")]
        r[0] += 1
        r[1] += images
        r[2] += float(mine["seconds"].sum())
        r[3] += float(run.wall_s or 0)
    if not rows:
        print("no run of the bundle could be planned here:", *sorted(missing), sep="\n  ")
        return 1
    if args.pure_ips:
        ips = {a: args.pure_ips for a, _ in archs_sizes}
        how = "given"
    else:
        ips = {a: pure_ips(a, s, args.threads) for a, s in sorted(archs_sizes)}
        how = f"measured now, bench, {args.threads} thread(s)"
    print(f"{'arch':10} {'setting':34} {'runs':>4} {'images':>12} {'epochs s':>10} "
          f"{'pure s':>9} {'ratio':>6}")
    tot = [0, 0, 0.0, 0.0]
    for (arch, setting), (n, images, seconds, wall) in sorted(rows.items()):
        pure = images / ips[arch]
        print(f"{arch:10} {setting:34} {n:4d} {images:12,d} {seconds:10.0f} {pure:9.0f} "
              f"{seconds / pure:6.2f}")
        tot = [tot[0] + n, tot[1] + images, tot[2] + seconds, tot[3] + wall]
    bound = sum(images / ips[a] for (a, _), (_, images, _, _) in rows.items())
    w = args.workers
    print(f"pure img/s per trainer ({how}): " + ", ".join(f"{a} {v:.0f}" for a, v in ips.items()))
    print(f"total: {tot[0]} runs, {tot[1]:,} images trained; epochs {tot[2] / 3600:.2f} h, "
          f"runs' wall time {tot[3] / 3600:.2f} h (one trainer's time added up); pure-compute "
          f"bound {bound / 3600:.2f} h; ratio {tot[2] / bound:.2f}")
    print(f"on {w} trainers side by side: about {tot[3] / w / 3600:.2f} h of wall time vs a bound "
          f"of {bound / w / 3600:.2f} h")
    for m in sorted(missing):
        print(f"left out (set not here): {m}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
