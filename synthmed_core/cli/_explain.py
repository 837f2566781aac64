"""Verb: cam-bench, the CAM latency per image on this machine's CPU."""
from __future__ import annotations

import argparse
import os

DEFAULT_ARCHS = ("resnet50", "deit_tiny")


def register(sub) -> None:
    p = sub.add_parser("cam-bench", help="CAM latency per image on the CPU, per arch and method",
                       description="Time pytorch-grad-cam on one image per call (median of "
                                   "--repeats, after one warm-up) for models built at a "
                                   "profile's input size. Weights are random: the cost of a CAM "
                                   "does not depend on their values.")
    p.add_argument("--arch", nargs="+", default=list(DEFAULT_ARCHS))
    p.add_argument("--profile", default="quick", choices=["paper", "quick", "smoke"],
                   help="its input size is used (quick/smoke 28 px, paper 224 px)")
    p.add_argument("--input-size", type=int, help="override the profile's input size")
    p.add_argument("--methods", nargs="+", help="default: every method of the registry")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.set_defaults(func=cmd_cam_bench)


def cmd_cam_bench(a: argparse.Namespace) -> int:
    import torch

    from ..errors import SpecError
    from ..explain import CAM_METHODS, cam_bench
    from ..grid import get_profile

    bad = sorted(set(a.methods or ()) - set(CAM_METHODS))
    if bad:
        raise SpecError(f"unknown CAM methods {bad}; choose from {list(CAM_METHODS)}")
    if a.threads:
        torch.set_num_threads(a.threads)
    size = a.input_size or get_profile(a.profile).input_size
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"CAM latency per image, CPU, {torch.get_num_threads()} torch threads, load average "
          f"{load} ({os.cpu_count()} CPUs); random-init weights; input {size} px; median of "
          f"{a.repeats} after 1 warm-up; includes the overlay")
    print(f"{'arch':<10} {'layer (map)':<24} {'method':<10} {'ms/image':>9}")
    for r in cam_bench(tuple(a.arch), size, tuple(a.methods) if a.methods else None, a.repeats):
        where = f"{r['layer']} ({r['map_side']}x{r['map_side']})"
        print(f"{r['arch']:<10} {where:<24} {r['method']:<10} {r['ms']:>9.1f}", flush=True)
    return 0
