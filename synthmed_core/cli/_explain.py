"""Verbs: cam-bench, the CAM latency per image on this machine's CPU; cam-stats, CAMs over many
images (mean maps, agreement, faithfulness)."""
from __future__ import annotations

import argparse
import os

from .. import catalog
from . import options as c

def register(sub) -> None:
    p = sub.add_parser("cam-bench", help="CAM latency per image on the CPU, per arch and method",
                       description="Time pytorch-grad-cam on one image per call (median of "
                                   "--repeats, after one warm-up) for models built at a "
                                   "profile's input size. Weights are random: the cost of a CAM "
                                   "does not depend on their values.")
    p.add_argument("--arch", nargs="+", default=list(catalog.STUDY_ARCHS))
    c.add_profile_name(p, "quick", "its input size is used")
    p.add_argument("--input-size", type=int, help="override the profile's input size")
    p.add_argument("--methods", nargs="+", help="default: every method of the registry")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--run", nargs="+", metavar="ID",
                   help="time these finished runs' own models (weights here, e.g. shipped) on "
                        "the first real test image, instead of random-init archs")
    p.set_defaults(func=cmd_cam_bench)

    p = sub.add_parser("cam-stats", help="CAMs over many images: real vs synthetic, run vs run",
                       description="For a run and a class: the mean CAM on the first N real test "
                                   "images of that class and on the first N synthetic images of "
                                   "it, and the Spearman correlation of the two means (bootstrap "
                                   "95% interval over images). With a second run: how far the "
                                   "two runs' maps agree on the same images (Spearman and the "
                                   "overlap of their top 20% pixels, mean and 95% interval, n).")
    p.add_argument("run", help="run id (a unique prefix is enough; its weights must be here)")
    p.add_argument("other", nargs="?", help="a second run to compare the maps with")
    p.add_argument("--synthetic", required=True, metavar="SET", help="the synthetic set")
    p.add_argument("--class", dest="cls", default="pneumonia", choices=["normal", "pneumonia"])
    p.add_argument("--n", type=int, default=64, help="images per side (default 64)")
    p.add_argument("--method", default="GradCAM")
    p.add_argument("--target", default="predicted", help="predicted, pneumonia or normal")
    p.add_argument("--out", help="save the two mean maps side by side as this PNG")
    p.add_argument("--no-faithfulness", action="store_true",
                   help="skip the faithfulness scores (ROAD combined and the confidence change "
                        "with only the map's region kept; ~0.5 s per image on a 2-core CPU)")
    p.set_defaults(func=cmd_cam_stats)


def cmd_cam_bench(a: argparse.Namespace) -> int:
    import torch

    from ..errors import SpecError
    from ..explain.cams import CAM_METHODS
    from ..grid import get_profile

    bad = sorted(set(a.methods or ()) - set(CAM_METHODS))
    if bad:
        raise SpecError(f"unknown CAM methods {bad}; choose from {list(CAM_METHODS)}")
    if a.threads:
        torch.set_num_threads(a.threads)
    size = a.input_size or get_profile(a.profile).input_size
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    methods = tuple(a.methods) if a.methods else None
    print(f"CAM latency per image, CPU, {torch.get_num_threads()} torch threads, load average "
          f"{load} ({os.cpu_count()} CPUs); "
          + ("the runs' own weights, real test image #0" if a.run else
             f"random-init weights; input {size} px")
          + f"; median of {a.repeats} after 1 warm-up; ms/image is cam_overlays (map, P(pneumonia), "
          "flat-map check; the overlay is drawn when shown), library ms "
          "is pytorch-grad-cam's own call on a ready input, timed in alternation")
    print(f"{'model':<22} {'layer (map)':<24} {'method':<10} {'ms/image':>9} {'library ms':>11} "
          f"{'ratio':>6}")
    for label, r in _bench_rows(a, size, methods):
        where = f"{r['layer']} ({r['map_side']}x{r['map_side']})"
        print(f"{label:<22} {where:<24} {r['method']:<10} {r['ms']:>9.1f} "
              f"{r['library_ms']:>11.1f} {r['ratio']:>6.2f}", flush=True)
    return 0


def _bench_rows(a: argparse.Namespace, size: int, methods):
    """(label, row) per timed model and method: the runs given, else random-init archs."""
    from ..explain.cams import bench_model, cam_bench
    if not a.run:
        for r in cam_bench(tuple(a.arch), size, methods, a.repeats):
            yield r["arch"], r
        return
    from ..data.real import load_real
    from ..explain.cams import load_run_model
    from ..store import Store
    store = Store()
    for prefix in a.run:
        model = load_run_model(store, store.resolve_run_id(prefix, status="finished"))
        image = load_real("test", size=int(model.synthmed.get("data_size", 28))).images[0]
        label = (f"{model.synthmed['arch']} {model.synthmed['input_size']}px "
                 f"{model.synthmed['run_id'][:8]}")
        for r in bench_model(model, image, methods, a.repeats):
            yield label, r


def cmd_cam_stats(a: argparse.Namespace) -> int:
    from pathlib import Path

    from ..data.real import CLASS_NAMES, load_real
    from ..explain import stats as cs
    from ..explain.cams import load_run_model
    from ..store import Store
    from ..synth.sets import load_set
    store = Store()
    model = load_run_model(store, store.resolve_run_id(a.run, status="finished"))
    cls = CLASS_NAMES.index(a.cls)
    test = load_real("test", size=int(model.synthmed.get("data_size", 28)))
    synthetic, _ = load_set(a.synthetic)
    real = test.images[cs.class_rows(test.labels, cls, a.n)]
    fake = cs.images_for(model, synthetic.images[cs.class_rows(synthetic.labels, cls, a.n)])
    res = cs.mean_maps(model, real, fake, a.method, a.target)
    run = model.synthmed["run_id"]
    print(f"run {run}, {a.method} of class {a.target}, {a.cls} images: mean map on {res.n_real} "
          f"real test vs {res.n_synthetic} {a.synthetic} images ({res.left_out} constant maps "
          f"left out): Spearman {res.rho:.3f} [95% {res.rho_lo:.3f}, {res.rho_hi:.3f}]")
    _print_faithfulness(model, real, fake, a)
    if a.out:
        Path(a.out).write_bytes(cs.mean_maps_png(res))
        print(f"saved {a.out} (left: real, right: synthetic)")
    if a.other:
        other = load_run_model(store, store.resolve_run_id(a.other, status="finished"))
        for name, images in (("real test", real), (a.synthetic, cs.images_for(other, fake))):
            ag = cs.agreement(model, other, images, a.method, a.target)
            s, t = ag["spearman"], ag["top20"]
            print(f"agreement of {run} and {other.synthmed['run_id']} on {name} images: "
                  f"Spearman {s['mean']:.3f} [95% {s['lo']:.3f}, {s['hi']:.3f}], top-20% "
                  f"overlap {t['mean']:.3f} [{t['lo']:.3f}, {t['hi']:.3f}], n={s['n']} "
                  f"({ag['left_out']['n']} left out)")
        _print_faithfulness(other, real, cs.images_for(other, fake), a)
    return 0


def _print_faithfulness(model, real, fake, a: argparse.Namespace) -> None:
    """ROAD combined and the map-kept confidence change on the real vs the synthetic images
    (``explain.faithfulness``; what they mean: docs/models.md)."""
    if a.no_faithfulness:
        return
    from ..explain import faithfulness as fa
    print(f"faithfulness of {model.synthmed['run_id']}'s maps ({a.method}, class {a.target}), "
          "change of the explained class's probability, mean [95% interval] over images:")
    for line in fa.summary_lines(fa.over_images(model, real, fake, a.method, a.target)):
        print("  " + line)
