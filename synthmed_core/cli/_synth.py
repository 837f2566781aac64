"""Verbs about synthetic sets: synth import|list|show|generate|quality|select|copies."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .. import catalog
from . import options as c
from .options import add_generate_args, add_quality_args, generate_request


def register(sub) -> None:
    synth = sub.add_parser("synth", help="synthetic sets: import, generate, rebuild, measure, "
                                         "select, list"
                           ).add_subparsers(dest="synth_verb", required=True, metavar="VERB")
    p = synth.add_parser("import", help="build a synthetic set from a folder of images or a CSV",
                         description="SOURCE is a folder with class sub-folders normal/ and "
                                     "pneumonia/ (any depth inside), or a CSV of path,label. Any "
                                     "size or mode, PNG/JPEG/...; converted to 28x28 grayscale "
                                     "(centre crop, resize). Unreadable files are listed and skipped.")
    p.add_argument("source", type=Path)
    p.add_argument("--name", required=True, help="name of the new set (letters, digits, . _ -)")
    p.add_argument("--force", action="store_true", help="replace a set of the same name")
    p.add_argument("--allow-test-copies", action="store_true", help=c.ALLOW_TEST_COPIES)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_import)

    p = synth.add_parser("generate", help="train a generator on real train and sample a set",
                         description="Train a CycleGAN (normal <-> pneumonia translation) or a "
                                     "class-conditional DDPM on the REAL train split, then sample a "
                                     "set. The generator checkpoint is kept: the same method, "
                                     "profile and seed later sample without retraining. Default "
                                     "count: as many images as real train (smoke: 32), "
                                     "class-stratified like it.")
    add_generate_args(p)
    p.set_defaults(func=cmd_generate)

    p = synth.add_parser("rebuild", help="make a set again from its card (e.g. a shipped one)",
                         description="Generate the set NAME again with the method, profile, "
                                     "seeds, count and settings its card records (a set that "
                                     "came with a results bundle has its card here, not its "
                                     "images), then compare the content hash with the card's.")
    p.add_argument("name")
    p.add_argument("--allow-test-copies", action="store_true", help=c.ALLOW_TEST_COPIES)
    c.add_device(p)
    p.set_defaults(func=cmd_rebuild)

    p = synth.add_parser("quality", help="FID, KID, precision/recall, TSTR, memorisation",
                         description="Measure a set against the real train split (TSTR on real "
                                     "val) and store the figures in its card and the store.")
    add_quality_args(p)
    p.set_defaults(func=cmd_quality)

    p = synth.add_parser("select", help="keep the most typical / most confirmed images of a set",
                         description="Write a new set with the fraction --keep of each class of "
                                     "--name: nearest the real class centroid in the domain "
                                     "encoder's space (centroid) or most confidently confirmed by "
                                     "a real-trained classifier (confidence).")
    p.add_argument("--name", required=True, help="the parent set")
    p.add_argument("--by", required=True, choices=["centroid", "confidence"])
    p.add_argument("--keep", required=True, type=float, help="fraction kept per class, (0, 1]")
    p.add_argument("--out", required=True, help="name of the new set")
    p.add_argument("--profile", default="quick", choices=list(catalog.GENERATOR_PROFILES),
                   help="domain encoder size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="replace a set named --out")
    p.add_argument("--allow-test-copies", action="store_true", help=c.ALLOW_TEST_COPIES)
    c.add_device(p)
    p.set_defaults(func=cmd_select)

    p = synth.add_parser("list", help="the synthetic sets")
    p.add_argument("--markdown", action="store_true",
                   help="a table of every set the store knows (shipped ones included) with its "
                        "quality card's figures")
    p.set_defaults(func=cmd_list)
    p = synth.add_parser("show", help="a set's card")
    p.add_argument("name")
    p.add_argument("--full", action="store_true", help="print long per-image lists in full")
    p.add_argument("--grid", type=Path, metavar="PNG",
                   help="also save an 8x8 grid of its images (normal rows above pneumonia rows)")
    p.set_defaults(func=cmd_show)
    p = synth.add_parser("copies", help="count copies of real val/test images in a set written "
                         "before sets were checked, into its card")
    p.add_argument("name")
    p.set_defaults(func=cmd_copies)


def cmd_import(a: argparse.Namespace) -> int:
    from ..errors import DataError
    from ..store import Store
    from ..synth import copies
    from ..synth.importer import import_csv, import_folder
    from ..synth.sets import load_set
    source = a.source.expanduser()
    if source.is_file() and source.suffix.lower() in {".csv", ".tsv", ".txt"}:
        importer = import_csv
    elif source.is_dir():
        importer = import_folder
    else:
        raise DataError(f"{source} is neither a folder (with normal/ and pneumonia/ sub-folders) "
                        "nor a CSV file of path,label")
    path, report = importer(source, a.name, force=a.force, progress=not a.no_progress,
                            allow_test_copies=a.allow_test_copies)
    _, card = load_set(a.name)
    Store().register_synthetic_set(a.name, card, str(path))
    print(report.summary())
    print(copies.summary(card))
    print(f"registered synthetic set {a.name!r} at {path}")
    return 0


def cmd_generate(a: argparse.Namespace) -> int:
    print("\n".join(_generate(generate_request(a), a).lines()))
    return 0


def _generate(req, a: argparse.Namespace):
    """Run the ``generate`` operation with a progress bar per phase (or lines off a terminal)."""
    from tqdm.auto import tqdm

    from ..operations.synth import generate
    from ..store import Store
    from ..training.console import ConsoleProgress
    console = ConsoleProgress(f"train {req.method} {req.profile}",
                              disable=True if a.no_progress else None)
    bar = tqdm(unit="img", desc=f"sample {req.name}", disable=console.disable, leave=False)

    t0, n0, tenths = 0.0, 0, 0  # time and images at the first batch; tenths reported

    def on_batch(done: int, total: int) -> None:
        nonlocal t0, n0, tenths
        bar.total = total
        bar.update(done - bar.n)
        if not t0:
            t0, n0 = time.perf_counter(), done
        if console.lines and done * 10 // total > tenths:  # off a terminal: a line per 10%
            tenths = done * 10 // total
            seconds = time.perf_counter() - t0
            rate = (done - n0) / seconds if seconds > 0 else float("nan")
            print(f"sample {req.name}: {done}/{total} images ({rate:.1f} images/s)",
                  file=sys.stderr, flush=True)

    try:
        return generate(req, Store(), a.device, emit=console, on_batch=on_batch)
    finally:
        console.close()
        bar.close()


def cmd_rebuild(a: argparse.Namespace) -> int:
    import dataclasses

    from ..operations.synth import rebuild_request, rebuilt_verdict
    from ..store import Store
    req, want = rebuild_request(Store(), a.name)
    req = dataclasses.replace(req, allow_test_copies=a.allow_test_copies)
    print(f"rebuilding {a.name!r}: {req.method} {req.profile} seed {req.seed}, "
          f"{req.count} images" + (f", {req.overrides}" if req.overrides else ""))
    print("\n".join(_generate(req, a).lines()))
    same, line = rebuilt_verdict(a.name, want)
    print(line)
    return 0 if same else 1


def cmd_quality(a: argparse.Namespace) -> int:
    from ..operations.synth import quality
    from ..store import Store
    print("\n".join(quality(a.name, a.profile, a.feature, a.seed, Store(), a.device).lines()))
    return 0


def cmd_select(a: argparse.Namespace) -> int:
    from ..store import Store
    from ..synth import copies
    from ..synth.select import select
    path, card = select(a.name, a.by, a.keep, a.out, profile=a.profile, seed=a.seed,
                        force=a.force, device=a.device, store=Store(),
                        allow_test_copies=a.allow_test_copies)
    print(f"kept {card['n']} of {card['parent']['n']} images of {a.name!r} by {a.by} "
          f"{card['counts']}, dropped {card['dropped_counts']}")
    print(copies.summary(card))
    print(f"registered synthetic set {a.out!r} at {path}")
    return 0


def _shipped_sets_here() -> None:
    """Open the data root's store once: on a fresh root that imports the shipped bundles and
    writes their sample sets, which the set verbs then list like any other."""
    from ..store import Store
    Store()


def cmd_list(a: argparse.Namespace) -> int:
    from ..synth.sets import list_sets
    if a.markdown:
        from ..store import Store
        from ..analysis.report import quality_table
        print(quality_table(Store().synthetic_sets()))
        return 0
    _shipped_sets_here()
    cards = list_sets()
    if not cards:
        print("no synthetic sets yet: `python -m synthmed_core synth import FOLDER --name NAME` "
              "or `synth generate --method ddpm --name NAME`")
    for card in cards:
        counts, q = card.get("counts", {}), card.get("quality") or {}
        fid = f" fid={q['fid']:.2f}" if "fid" in q else ""
        print(f"{card['name']:<24} {card.get('method', '?'):<10} n={card.get('n')} {counts}{fid}")
    return 0


def cmd_show(a: argparse.Namespace) -> int:
    from ..synth import copies
    from ..synth.sets import load_set
    _shipped_sets_here()
    _, card = load_set(a.name)
    c.print_json(card if a.full else _shorten(card))
    print(copies.summary(card), file=sys.stderr)  # stdout stays one JSON document
    if a.grid:
        from ..synth.mosaic import save_grid
        print(f"saved {save_grid(a.name, a.grid)}")
    return 0


def cmd_copies(a: argparse.Namespace) -> int:
    from ..store import Store
    from ..synth import copies
    card = {copies.CARD_KEY: copies.record_eval_copies(a.name, store=Store())}
    print(copies.summary(card))
    if copies.test_copies(card):
        print(f"set {a.name!r} holds copies of real TEST images: its runs are flagged in the "
              "grid and left out of `claims`")
    return 0


def _shorten(obj, limit: int = 8):
    """Per-image lists (source_index, dropped_index...) as their first items and a count."""
    if isinstance(obj, dict):
        return {k: _shorten(v, limit) for k, v in obj.items()}
    if isinstance(obj, list) and len(obj) > limit:
        return obj[:limit] + [f"... {len(obj)} items in all (--full shows them)"]
    return obj
