"""Verb: compare two cells with paired tests on the same test images."""
from __future__ import annotations

import argparse

from . import _common as c


def register(sub) -> None:
    p = sub.add_parser("compare", help="paired test of two cells on the same test images",
                       description="Match the runs of two cells by seed and compare them on the "
                                   "real test images: the accuracy difference with a paired t-test "
                                   "over images (seeds averaged per image), exact McNemar (pooled "
                                   "and per seed) and a bootstrap 95% interval of the AUROC "
                                   "difference. Cells are "
                                   "written arch/init/setting[@ratio][/synthetic].")
    p.add_argument("a", help="e.g. resnet18/scratch/augment@1/my-set")
    p.add_argument("b", help="e.g. resnet18/scratch/base")
    p.add_argument("--profile", default="quick")
    p.add_argument("--n-boot", type=int, default=2000)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_compare)


def cmd_compare(a: argparse.Namespace) -> int:
    from ..compare import CellKey, compare_cells, format_comparison
    from ..store import Store
    res = compare_cells(Store(), CellKey.parse(a.a, a.profile), CellKey.parse(a.b, a.profile),
                        n_boot=a.n_boot)
    c.print_json(res) if a.json else print(format_comparison(res))
    return 0
