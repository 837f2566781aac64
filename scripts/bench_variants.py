"""Time new-tab loads of the Accuracy grid across code variants, side by side in one browser.

    python scripts/bench_variants.py NAME=PATH [NAME=PATH ...] --data DIR [--rounds 25]

Each PATH is a checkout of this repository (e.g. a ``git worktree`` with an edit to try: its
explorer is served with ``ui.serve`` and its /accuracy_grid page loaded) or a one-file
Streamlit app (``*.py``, loaded at /). Every variant gets its own server on the same data
folder (a store ``bench_explorer.py --data DIR`` filled and kept), plus the bench's floor (a
title and one 48-square chart). Each round opens one new tab of every variant and of the floor,
in turn, and times it to the first square drawn. It prints each variant's median and every load,
and the median over rounds of (variant / floor in the same round): the host's load moves the
floor from round to round as much as any change moves the page, so only per-round ratios are
compared. About 2 s per load: 25 rounds of three variants take ~4 minutes.

Eight rounds are not enough on the 2-core box: two servers of the same code came out 1.24x
and 1.43x the floor in one 8-round run (docs/explorer.md, "Where the rest goes").
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "browser"))
sys.path.insert(0, str(REPO / "scripts"))

from bench_explorer import FLOOR_APP, GRID_PATH, load_tab  # noqa: E402
from browser_helpers import app_env, chromium_browser, running_app  # noqa: E402

RENDERER = "altair"


def variant(spec: str) -> tuple[str, Path]:
    name, sep, path = spec.partition("=")
    if not sep or not name or not Path(path).exists():
        raise argparse.ArgumentTypeError(f"{spec!r}: give NAME=PATH, PATH a repository "
                                         "checkout or a one-file Streamlit app")
    return name, Path(path).resolve()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="+", type=variant, metavar="NAME=PATH")
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--data", type=Path, required=True,
                        help="a data folder with a store (bench_explorer.py --data fills one)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per load")
    args = parser.parse_args(argv)
    if not (args.data / "synthmed.duckdb").exists():
        parser.error(f"no store in {args.data}: fill one with "
                     f"`python scripts/bench_explorer.py --data {args.data} --no-browser`")
    env = {**app_env(args.data), "SYNTHMED_SHIPPED": "none"}
    floor_app = args.data / "bench-floor-app.py"
    floor_app.write_text(FLOOR_APP)
    timeout_ms = int(args.timeout * 1000)
    with ExitStack() as stack:
        targets: dict[str, tuple[str, str]] = {}
        for name, path in [*args.variants, ("floor", floor_app)]:
            script = path if path.suffix == ".py" else None
            server = stack.enter_context(running_app(
                {**env, "PYTHONPATH": str(path if script is None else REPO)},
                args.data / f"bench-variant-{name}.log", start_timeout_s=120.0, script=script,
                cwd=path if script is None else REPO))
            targets[name] = (server.url, "" if script else GRID_PATH)
        browser = stack.enter_context(chromium_browser())
        context = browser.new_context(viewport={"width": 1600, "height": 1000})
        for _ in range(2):  # each server's first runs and the browser's caches
            for url, path in targets.values():
                load_tab(context, url, timeout_ms, RENDERER, path=path)
        loads: dict[str, list[float]] = {name: [] for name in targets}
        for i in range(args.rounds):
            for name, (url, path) in targets.items():
                loads[name].append(load_tab(context, url, timeout_ms, RENDERER, path)["markers"])
            print(f"round {i + 1}/{args.rounds}: " + ", ".join(
                f"{n} {v[-1]:.2f} s" for n, v in loads.items()), file=sys.stderr, flush=True)
    for name, values in loads.items():
        print(f"{name:16s} median {statistics.median(values):.2f} s  "
              f"[{', '.join(f'{v:.2f}' for v in values)}]")
    for name, _ in args.variants:
        ratios = [v / f for v, f in zip(loads[name], loads["floor"])]
        print(f"{name:16s} / floor per round: median {statistics.median(ratios):.3f}x "
              f"(min {min(ratios):.2f}, max {max(ratios):.2f}, n={len(ratios)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
