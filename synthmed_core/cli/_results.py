"""Verbs for results that travel: results export | import | list | reproduce."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    res = sub.add_parser("results", help="export, import and list result bundles; reproduce "
                                         "a shipped run here").add_subparsers(
        dest="results_verb", required=True, metavar="{export,import,list,reproduce}")
    p = res.add_parser("export", help="write finished runs into a bundle folder",
                       description="Write the finished runs chosen (all by default) into a "
                                   "bundle: Parquet tables of runs, metrics, epochs, test and "
                                   "val predictions, the synthetic sets' cards and a small "
                                   "sample of their images, and manifest.json. No checkpoints, "
                                   "except --with-weights: those runs' final weights as "
                                   "float16 safetensors, checked against their predictions.")
    p.add_argument("--out", type=Path, required=True, help="the bundle folder, e.g. results/NAME")
    p.add_argument("--name", help="the bundle's name (default: the folder's)")
    p.add_argument("--profile", help="only runs of this profile")
    p.add_argument("--arch", nargs="+", help="only these archs")
    p.add_argument("--synthetic", nargs="+", metavar="SET",
                   help="only runs on these sets (and runs that use none, e.g. base)")
    p.add_argument("--run", nargs="+", metavar="ID", help="only these runs (unique prefixes)")
    p.add_argument("--with-weights", nargs="+", metavar="RUN", default=[],
                   help="also ship these runs' weights (unique prefixes; their checkpoints "
                        "must be here), so Grad-CAM and Predict work where the bundle goes")
    p.set_defaults(func=cmd_export)

    p = res.add_parser("import", help="import bundle folders into the store",
                       description="Import bundles (idempotent). A run already here with other "
                                   "numbers from another context is kept as a replicate; with "
                                   "other numbers from the same context it is a conflict: the "
                                   "local run is kept and the exit status is 1. A damaged "
                                   "bundle is refused whole (exit 2).")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    p.set_defaults(func=cmd_import)

    p = res.add_parser("list", help="the bundles imported and the runs per origin")
    p.set_defaults(func=cmd_list)

    p = res.add_parser("reproduce", help="train a run again here from its frozen spec",
                       description="Train the exact spec of a run (e.g. a shipped one) on this "
                                   "machine, inline; its checkpoint is then here (Grad-CAM, "
                                   "Predict). The record it replaces is kept as a replicate and "
                                   "the numbers are compared. To queue it as a background job "
                                   "instead: `python -m jobs submit reproduce ID`.")
    p.add_argument("run_id", help="run id (a unique prefix is enough)")
    p.add_argument("--device", default="auto", help="auto (cuda when present), cpu, cuda")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_reproduce)


def _store():
    from ..store import Store
    return Store()


def cmd_export(a: argparse.Namespace) -> int:
    from ..bundle import export_bundle
    m = export_bundle(_store(), a.out, profile=a.profile, archs=a.arch, synthetic=a.synthetic,
                      run_ids=a.run, name=a.name, with_weights=a.with_weights)
    size = sum(f["bytes"] for f in m["files"].values())
    for name, w in (m.get("weights") or {}).items():
        f = w["fidelity"]
        print(f"weights of run {w['run_id']}: {a.out}/{name} ({m['files'][name]['bytes'] / 1e6:.1f}"
              f" MB, {w['dtype']}); on the real test split max |delta p| {f['max_abs_dp']:.2g}, "
              f"accuracy {f['accuracy_here']:.4f} vs {f['accuracy_stored']:.4f} stored, "
              f"{f['flipped']} decisions flipped")
    print(f"wrote bundle {m['name']} ({m['bundle_id']}) to {a.out}: {m['counts']['runs']} runs, "
          f"{m['counts']['predictions']} predictions, {m['counts']['sets']} synthetic sets "
          f"({m['counts']['samples']} sample images); {size / 1024:.0f} KiB, "
          f"{size / 1024 / max(1, m['counts']['runs']):.1f} KiB per run")
    return 0


def cmd_import(a: argparse.Namespace) -> int:
    from ..bundle import import_bundle
    store, conflicts = _store(), 0
    for path in a.paths:
        report = import_bundle(store, path)
        print("\n".join(report.lines()))
        conflicts += len(report.conflicts)
    if conflicts:
        print(f"{conflicts} conflicting runs: the local records were kept")
    return 1 if conflicts else 0


def cmd_list(a: argparse.Namespace) -> int:
    store = _store()
    bundles, origins = store.bundles(), store.origins()
    if bundles.empty:
        print("no bundle imported yet")
    else:
        print(bundles.to_string(index=False))
    print()
    print(origins.to_string(index=False) if not origins.empty else "no finished runs")
    from .. import paths
    from ..bundle import weights_total
    from ..bundle._weights import MAX_BUNDLE_BYTES
    folder = paths.shipped_results_dir() or paths.REPO_ROOT / "results"
    size, n = weights_total(folder)
    print(f"\nmodel weights in the shipped results ({folder}): {size / 1e6:.1f} MB in {n} "
          f"files (budget {MAX_BUNDLE_BYTES / 1e6:.0f} MB"
          + (", OVER IT)" if size > MAX_BUNDLE_BYTES else ")"))
    return 0


def cmd_reproduce(a: argparse.Namespace) -> int:
    import shutil

    from .. import paths
    from ..bundle import reproduction
    from ..grid import RunSpec
    from ..training.runner import run_one
    store = _store()
    spec = RunSpec.from_dict(store.run(store.resolve_run_id(a.run_id))["spec"])
    shutil.rmtree(paths.run_dir(spec.run_id), ignore_errors=True)  # start from zero, not a resume
    run_one(spec, store, a.device, progress=not a.no_progress)
    run = store.run(spec.run_id)
    print(f"run {spec.run_id} ({spec.cell.key} seed={spec.seed} {spec.profile.name}) trained "
          f"here: test accuracy {run['metrics']['accuracy']:.4f}, AUROC "
          f"{run['metrics']['auroc']:.4f}")
    for line in reproduction(run, store) or ["no earlier record of this run to compare with"]:
        print("  " + line)
    return 0
