"""Verbs about data: data check, pretrain chestmnist, synth import|list|show."""
from __future__ import annotations

import argparse
from pathlib import Path

from . import _common as c


def register(sub) -> None:
    data = sub.add_parser("data", help="check the real medmnist files").add_subparsers(
        dest="data_verb", required=True, metavar="{check}")
    p = data.add_parser("check", help="validate pneumoniamnist (and chestmnist) and print a summary",
                        description="Validate the medmnist npz files (download them when absent "
                                    "and online) and print rows and class counts per split.")
    p.add_argument("--flag", nargs="+", default=["pneumoniamnist"],
                   choices=["pneumoniamnist", "chestmnist"])
    p.add_argument("--root", type=Path, help="folder with the npz files (default SYNTHMED_MEDMNIST_ROOT)")
    p.set_defaults(func=cmd_data_check)

    pre = sub.add_parser("pretrain", help="pretrain on ChestMNIST (init chestmnist)").add_subparsers(
        dest="pretrain_verb", required=True, metavar="{chestmnist}")
    p = pre.add_parser("chestmnist", help="the study's ChestMNIST pretraining recipe",
                       description="Multi-label (14 findings) BCE, Adam lr 1e-3, batch 128, lr x0.1 "
                                   "after 50% and 75% of the epochs (100 in profile paper). The "
                                   "checkpoint is chosen on ChestMNIST val and becomes init chestmnist.")
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--profile", default="quick", choices=["paper", "quick", "smoke"])
    p.add_argument("--epochs", type=int)
    p.add_argument("--input-size", type=int, help="default: the training profile's input size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="checkpoint path (default: where init chestmnist looks)")
    c.add_device(p)
    p.set_defaults(func=cmd_pretrain)

    synth = sub.add_parser("synth", help="synthetic sets: import, list, show").add_subparsers(
        dest="synth_verb", required=True, metavar="{import,list,show}")
    p = synth.add_parser("import", help="build a synthetic set from a folder of images or a CSV",
                         description="SOURCE is a folder with class sub-folders normal/ and "
                                     "pneumonia/ (any depth inside), or a CSV of path,label. Any "
                                     "size or mode, PNG/JPEG/...; converted to 28x28 grayscale "
                                     "(centre crop, resize). Unreadable files are listed and skipped.")
    p.add_argument("source", type=Path)
    p.add_argument("--name", required=True, help="name of the new set (letters, digits, . _ -)")
    p.add_argument("--force", action="store_true", help="replace a set of the same name")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_synth_import)
    p = synth.add_parser("list", help="the registered synthetic sets")
    p.set_defaults(func=cmd_synth_list)
    p = synth.add_parser("show", help="a set's card")
    p.add_argument("name")
    p.set_defaults(func=cmd_synth_show)


def cmd_data_check(a: argparse.Namespace) -> int:
    from ..data import check_real
    for flag in a.flag:
        c.print_json(check_real(flag, root=a.root))
    return 0


def cmd_pretrain(a: argparse.Namespace) -> int:
    from ..console import ConsoleProgress
    from ..pretrain import make_pretrain_spec, pretrain_chestmnist
    from ..store import Store
    spec = make_pretrain_spec(a.arch, a.profile, a.seed, a.epochs, a.input_size)
    console = ConsoleProgress(f"pretrain {a.arch}", disable=True if a.no_progress else None)
    try:
        out = a.out.expanduser().resolve() if a.out else None  # the store keeps an absolute path
        card = pretrain_chestmnist(spec, out, console, a.device)
    finally:
        console.close()
    Store().register_pretrain(Path(card["path"]).stem, card, card["path"])
    print(f"saved {card['path']}: ChestMNIST val macro AUROC {card['metrics']['val_macro_auroc']:.4f} "
          f"after {spec.epochs} epochs on {card['metrics']['train_images']} images "
          f"({card['wall_s']:.1f} s on {card['device']})")
    return 0


def cmd_synth_import(a: argparse.Namespace) -> int:
    from ..errors import DataError
    from ..store import Store
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
    path, report = importer(source, a.name, force=a.force, progress=not a.no_progress)
    _, card = load_set(a.name)
    Store().register_synthetic_set(a.name, card, str(path))
    print(report.summary())
    print(f"registered synthetic set {a.name!r} at {path}")
    return 0


def cmd_synth_list(a: argparse.Namespace) -> int:
    from ..synth.sets import list_sets
    cards = list_sets()
    if not cards:
        print("no synthetic sets yet: `python -m synthmed_core synth import FOLDER --name NAME`")
    for card in cards:
        counts = card.get("counts", {})
        print(f"{card['name']:<24} {card.get('method', '?'):<10} n={card.get('n')} {counts}")
    return 0


def cmd_synth_show(a: argparse.Namespace) -> int:
    from ..synth.sets import load_set
    _, card = load_set(a.name)
    c.print_json(card)
    return 0
