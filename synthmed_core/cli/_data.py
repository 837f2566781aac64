"""Verbs about data: data check, pretrain chestmnist (synthetic sets: ``_synth``)."""
from __future__ import annotations

import argparse
from pathlib import Path

from . import options as c


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
    c.add_profile_name(p, "quick", "the training profile whose input size and scale to use")
    p.add_argument("--epochs", type=int)
    p.add_argument("--input-size", type=int, help="default: the training profile's input size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="checkpoint path (default: where init chestmnist looks)")
    c.add_device(p)
    p.set_defaults(func=cmd_pretrain)


def cmd_data_check(a: argparse.Namespace) -> int:
    from ..data.real import check_real
    for flag in a.flag:
        c.print_json(check_real(flag, root=a.root))
    return 0


def cmd_pretrain(a: argparse.Namespace) -> int:
    from ..operations.pretrain import pretrain
    from ..store import Store
    from ..training.pretrain import make_pretrain_spec
    spec = make_pretrain_spec(a.arch, a.profile, a.seed, a.epochs, a.input_size)
    print(pretrain(spec, Store(), a.out, a.device, progress=not a.no_progress).summary)
    return 0
