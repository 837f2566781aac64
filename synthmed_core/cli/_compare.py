"""Verb: compare two cells with paired tests on the same test images."""
from __future__ import annotations

import argparse

from ..analysis.corrections import CORRECTIONS, DEFAULT_CORRECTION

CLAIM_METRICS = ("accuracy", "accuracy_val", "auroc")  # evidence.METRICS (light to import here)
from . import options as c


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
    register_claims(sub)


def cmd_compare(a: argparse.Namespace) -> int:
    from ..analysis.compare import CellKey, compare_cells, format_comparison
    from ..store import Store
    res = compare_cells(Store(), CellKey.parse(a.a, a.profile), CellKey.parse(a.b, a.profile),
                        n_boot=a.n_boot)
    c.print_json(res) if a.json else print(format_comparison(res))
    return 0


def register_claims(sub) -> None:
    p = sub.add_parser("claims", help="the study's conclusions checked on this store's runs",
                       description="Each conclusion of the study (and a few questions it did not "
                                   "ask) as a paired contrast of two cells on the real test "
                                   "images, on accuracy at 0.5, accuracy at the val-picked "
                                   "threshold and AUROC side by side: the difference with its "
                                   "95% interval and p from the seed-aware test (the trained "
                                   "model is the unit), the minimal detectable difference, a "
                                   "TOST against the declared margin for 'no gain' claims, a "
                                   "verdict per metric (supported, contradicted or "
                                   "inconclusive) and whether the metrics agree.")
    p.add_argument("--profile", help="only runs of this profile (default: every profile)")
    p.add_argument("--arch", nargs="+", help="only these archs")
    p.add_argument("--correction", default=DEFAULT_CORRECTION, choices=list(CORRECTIONS),
                   help="adjust the p-values for checking every claim at once (default "
                        f"{DEFAULT_CORRECTION}: family-wise; bh: false discovery rate; none)")
    p.add_argument("--metric", choices=list(CLAIM_METRICS),
                   help="one metric with all its figures (compact view; default: all three "
                        "side by side)")
    p.add_argument("--json", action="store_true", help="print JSON rows instead of markdown "
                   "(one per claim, contrast and metric)")
    p.set_defaults(func=cmd_claims)


def cmd_claims(a: argparse.Namespace) -> int:
    from ..explorer.claims import check_claims
    from ..explorer.claims_text import format_claims
    from ..store import Store
    df = check_claims(Store(), profile=a.profile, archs=a.arch, correction=a.correction)
    if a.metric:
        df = df[df["metric"] == a.metric].reset_index(drop=True)
    c.print_json(df.to_dict("records")) if a.json else print(format_claims(df, a.metric))
    return 0
