"""Verbs for results that travel: results export | import | list | remove | reproduce."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..text import plain


def register(sub) -> None:
    res = sub.add_parser("results", help="export, import and list result bundles; reproduce "
                                         "a shipped run here").add_subparsers(
        dest="results_verb", required=True, metavar="{export,import,list,remove,reproduce}")
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
    p.add_argument("--no-samples", dest="samples", action="store_false",
                   help="ship the synthetic sets' cards without their sample images (for a "
                        "bundle that goes beside one that already ships them, as the per-seed "
                        "bundles in results/ do)")
    p.set_defaults(func=cmd_export)

    p = res.add_parser("import", help="import bundle folders into the store",
                       description="Import bundles (idempotent). A run already here with other "
                                   "numbers from another context is kept as a replicate; with "
                                   "other numbers from the same context it is a conflict: the "
                                   "local run is kept and the exit status is 1. A bundle that "
                                   "is damaged, over a limit or does not agree with itself or "
                                   "the real data is refused whole with every reason (exit 2, "
                                   "nothing written): docs/bundles.md.")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    p.set_defaults(func=cmd_import)

    p = res.add_parser("list", help="the bundles imported, the runs per origin, and the "
                                    "shipped bundles refused")
    p.set_defaults(func=cmd_list)

    p = res.add_parser("remove", help="undo the import of a bundle",
                       description="Remove an imported bundle's runs with all their rows, the "
                                   "replicate records it added and the synthetic sets it "
                                   "brought that no remaining run uses. Local runs and other "
                                   "bundles stay as they were. A shipped bundle removed stays "
                                   "removed in this data root.")
    p.add_argument("bundle", metavar="BUNDLE", help="bundle id (a unique prefix) or name, "
                                                    "as `results list` shows them")
    p.set_defaults(func=cmd_remove)

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
                      run_ids=a.run, name=a.name, with_weights=a.with_weights,
                      with_samples=a.samples)
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
        print("\n".join(plain(line) for line in report.lines()))
        conflicts += len(report.conflicts) + bool(report.metadata_conflict)
    if conflicts:
        print(f"{conflicts} conflicts: the records imported first were kept")
    return 1 if conflicts else 0


def cmd_list(a: argparse.Namespace) -> int:
    from ..bundle import refused_shipped
    store = _store()
    bundles, origins = store.bundles(), store.origins()
    if bundles.empty:
        print("no bundle imported yet")
    else:
        print("\n".join(plain(line) for line in bundles.to_string(index=False).splitlines()))
    print()
    print("\n".join(plain(line) for line in origins.to_string(index=False).splitlines())
          if not origins.empty else "no finished runs")
    for r in refused_shipped(store):
        print(plain(f"shipped bundle {r['name']} ({r['path']}) skipped: {r['reason']}"))
    from .. import paths
    from ..bundle import weights_total
    from ..bundle._weights import MAX_BUNDLE_BYTES
    folder = paths.shipped_results_dir() or paths.REPO_ROOT / "results"
    size, n = weights_total(folder)
    print(f"\nmodel weights in the shipped results ({folder}): {size / 1e6:.1f} MB in {n} "
          f"files (budget {MAX_BUNDLE_BYTES / 1e6:.0f} MB"
          + (", OVER IT)" if size > MAX_BUNDLE_BYTES else ")"))
    return 0


def cmd_remove(a: argparse.Namespace) -> int:
    from ..bundle import remove_bundle
    done = remove_bundle(_store(), a.bundle)
    sets = ", ".join(s["name"] for s in done["sets"]) or "none"
    print(plain(f"removed bundle {done['name']} ({done['bundle_id']}): {done['runs']} runs, "
                f"{done['replicates']} replicate records, synthetic sets: {sets}"))
    return 0


def cmd_reproduce(a: argparse.Namespace) -> int:
    from ..grid import RunSpec
    from ..operations.train import reproduce
    store = _store()
    spec = RunSpec.from_dict(store.run(store.resolve_run_id(a.run_id))["spec"])
    outcome = reproduce(spec, store, a.device, progress=not a.no_progress)
    print("\n".join([outcome.summary, *("  " + line for line in outcome.details)]))
    return 0
