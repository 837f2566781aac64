"""Verb: bench — training/eval throughput, trainer overhead, reference pipeline, Grad-CAM and
store query timings, and K concurrent trainers per device."""
from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser(
        "bench", help="measure training/eval speed, trainer overhead and more",
        description="Per arch x input size: trainer and pure (forward+backward+optimizer) "
                    "training images/s and their ratio (the trainer overhead, 1.00 = none), eval "
                    "images/s, peak memory, a reference-style PIL+DataLoader fp32 pipeline on the "
                    "same model and images, Grad-CAM ms per image and the store's grid query ms. "
                    "--concurrent K... adds aggregate images/s of K trainer processes on one "
                    "device (pick `python -m jobs worker --per-gpu K` from it).")
    p.add_argument("--device", default="auto", help="auto (cuda when present), cpu, cuda, cuda:1")
    p.add_argument("--arch", nargs="+", default=["resnet18", "resnet50"])
    p.add_argument("--size", type=int, nargs="+", default=[28],
                   help="model input sizes in px (28 native; larger are upsampled on the device)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--batches", type=int,
                   help="batches per timed pass (default 4 on CPU, 20 on CUDA)")
    p.add_argument("--rounds", type=int, default=8, help="pure/trainer pass pairs (median)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own)")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True,
                   help="random affine augmentation in both pipelines (default on)")
    p.add_argument("--compile", nargs="+", default=["off"],
                   help="compile modes to measure, e.g. off default reduce-overhead")
    p.add_argument("--no-reference", action="store_true", help="skip the reference pipeline")
    p.add_argument("--ref-workers", type=int,
                   help="DataLoader workers of the reference (default 0 on CPU, 8 on CUDA)")
    p.add_argument("--no-cam", action="store_true", help="skip the Grad-CAM timing")
    p.add_argument("--store-runs", type=int, default=1000,
                   help="scratch-store size for the grid query (0 skips it)")
    p.add_argument("--concurrent", type=int, nargs="+", default=[], metavar="K",
                   help="also measure K trainer processes at once, e.g. 1 2 4 8")
    p.add_argument("--json", metavar="PATH", help="also write the full report as JSON")
    p.set_defaults(func=cmd_bench, store=False)  # runs on a bare GPU machine (torch + timm)


def cmd_bench(a: argparse.Namespace) -> int:
    import sys

    from ..bench import BenchConfig, report_text, run_bench, write_json
    if a.threads:
        import torch
        torch.set_num_threads(a.threads)
    cfg = BenchConfig(device=a.device, archs=tuple(a.arch), sizes=tuple(a.size),
                      batch_size=a.batch_size, batches=a.batches, rounds=a.rounds,
                      augment=a.augment, compile=tuple(a.compile), reference=not a.no_reference,
                      ref_workers=a.ref_workers, cam=not a.no_cam, store_runs=a.store_runs,
                      concurrent=tuple(a.concurrent))
    report = run_bench(cfg, log=lambda line: print(line, file=sys.stderr, flush=True))
    print(report_text(report))
    if a.json:
        print(f"\nJSON: {write_json(report, a.json)}")
    return 0
