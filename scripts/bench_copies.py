"""How well the copy guard (synthmed_core.synth.copies) sees through light edits, on the real
PneumoniaMNIST: the share of edited copies of real TEST images it catches, per edit family
(synth.copy_edits), the share of real TRAIN images it wrongly flags as copies of test images,
and its time per 1000 candidate images.

    SYNTHMED_MEDMNIST_ROOT=../shared/data .venv/bin/python scripts/bench_copies.py [--test N]
        [--train N] [--seed S]

Defaults use every test image once per family and every train image; --test/--train take a
seeded sample instead (for a quick look). docs/synthetic.md holds the figures it printed.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synthmed_core.data.real import load_real  # noqa: E402
from synthmed_core.synth import copies  # noqa: E402
from synthmed_core.synth.copy_edits import DESCRIPTION, EDITS, edited_copy  # noqa: E402


def _sample(n_all: int, n: int | None, rng: np.random.Generator) -> np.ndarray:
    return np.arange(n_all) if n is None or n >= n_all else np.sort(
        rng.choice(n_all, size=n, replace=False))


def _ncc_quantiles(images: np.ndarray, refs: np.ndarray) -> str:
    ncc, _ = copies.aligned_ncc(images, refs)
    q = np.quantile(ncc, [0.0, 0.01, 0.5, 0.99, 1.0])
    return "min {:.4f}, 1% {:.4f}, median {:.4f}, 99% {:.4f}, max {:.4f}".format(*q)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--test", type=int, default=None, help="test images per family (default all)")
    p.add_argument("--train", type=int, default=None, help="train images (default all)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch
    torch.set_num_threads(1)
    rng = np.random.default_rng(a.seed)
    test, train = load_real("test").images, load_real("train").images
    print(f"copy guard: {copies.METHOD}")
    print(f"edits: {DESCRIPTION}")
    rows = _sample(len(test), a.test, rng)
    caught_all = n_all = 0
    copies.count_eval_copies(test[:2])  # the real splits' features, computed once per process
    for family in EDITS:
        edited = np.stack([edited_copy(test[i], family, rng) for i in rows])
        report = copies.count_eval_copies(edited)["test"]
        caught = report["exact"] + report["near"]
        caught_all, n_all = caught_all + caught, n_all + len(rows)
        print(f"  {family:<10} caught {caught}/{len(rows)} = {caught / len(rows):.2%}   "
              f"aligned NCC to the test set: {_ncc_quantiles(edited, test)}")
    print(f"edited copies of real TEST images caught: {caught_all}/{n_all} = "
          f"{caught_all / n_all:.2%} (threshold NCC >= {copies.MATCH_NCC:g})")
    picked = train[_sample(len(train), a.train, rng)]
    t0, c0 = time.perf_counter(), time.process_time()
    report = copies.count_eval_copies(picked)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    flagged = report["test"]["exact"] + report["test"]["near"]
    print(f"real TRAIN images flagged as copies of test: {flagged}/{len(picked)} = "
          f"{flagged / len(picked):.2%}   aligned NCC to the test set: "
          f"{_ncc_quantiles(picked, test)}")
    print(f"  (and as copies of val: {report['val']['exact']} exact + {report['val']['near']} "
          "near; PneumoniaMNIST's val holds 8 train images)")
    print(f"time per 1000 candidate images (val and test checked, one thread, {len(picked)} "
          f"train images): {1000 * wall / len(picked):.2f} s wall, {1000 * cpu / len(picked):.2f}"
          f" s CPU (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
