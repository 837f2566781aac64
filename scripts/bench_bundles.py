"""Benchmark result bundles: export and import of many runs, and what a bundle weighs.

    python scripts/bench_bundles.py [--runs 1000] [--preds 1148] [--repeat 3]

Fills a scratch store (a temporary folder) with ``--runs`` fake finished runs made by
``synthmed_core.store._fill.fill_scratch_store``, each with ``--preds`` prediction rows (1,148
= a real run's 624 test + 524 val images), then times, median of ``--repeat``:
export into a bundle; import into an empty store; the same import again (already imported:
nothing to do); and the shipped-bundle check an open of the data root pays when nothing is new.
Prints the bundle's size, per run and per file. Aim: import of 1,000 runs under 10 s,
bundle under 20 MB.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ["SYNTHMED_SHIPPED"] = "none"  # only the bundles this script makes

from synthmed_core import bundle  # noqa: E402
from synthmed_core.store import Store  # noqa: E402
from synthmed_core.store._fill import fill_scratch_store  # noqa: E402


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=1000)
    p.add_argument("--preds", type=int, default=1148, help="prediction rows per run")
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="synthmed-bench-bundles-"))
    try:
        os.environ["SYNTHMED_DATA"] = str(root / "data")
        source = Store(root / "source.duckdb")
        fill_s, counts = timed(lambda: fill_scratch_store(source, a.runs, a.preds))
        print(f"scratch store: {counts['runs']} runs, {counts['predictions']:,} prediction rows "
              f"({fill_s:.1f} s to fill); load average {os.getloadavg()[0]:.2f}, "
              f"{os.cpu_count()} cores")
        exports, imports, again = [], [], []
        for i in range(a.repeat):
            out = root / f"bundle-{i}"
            t, manifest = timed(lambda: bundle.export_bundle(source, out))
            exports.append(t)
            target = Store(root / f"target-{i}.duckdb")
            t, report = timed(lambda: bundle.import_bundle(target, out))
            imports.append(t)
            assert len(report.added) == a.runs, report.lines()[0]
            t, report = timed(lambda: bundle.import_bundle(target, out))
            again.append(t)
            assert report.already_imported
        shipped = root / "shipped"
        shutil.copytree(root / "bundle-0", shipped / "bundle-0")
        target = Store(root / "target-0.duckdb")
        checks = [timed(lambda: bundle.import_shipped(target, shipped))[0] for _ in range(5)]
        files = manifest["files"]
        size = sum(f["bytes"] for f in files.values())
        med = statistics.median
        print(f"export of {a.runs} runs       median {med(exports):6.2f} s  "
              f"(each: {', '.join(f'{x:.2f}' for x in exports)})")
        print(f"import into an empty store  median {med(imports):6.2f} s  "
              f"(each: {', '.join(f'{x:.2f}' for x in imports)})")
        print(f"import again (idempotent)   median {med(again):6.2f} s")
        print(f"shipped check, nothing new  median {1000 * med(checks):6.1f} ms")
        print(f"bundle {manifest['bundle_id']}: {size / 2**20:.2f} MiB, "
              f"{size / 1024 / a.runs:.1f} KiB per run; ids of the {a.repeat} exports equal: "
              f"{len({bundle.read_bundle(root / f'bundle-{i}').id for i in range(a.repeat)}) == 1}")
        for name, f in sorted(files.items(), key=lambda kv: -kv[1]["bytes"]):
            print(f"  {name:<24} {f['bytes'] / 1024:9.1f} KiB  {f['rows']:>10,} rows")
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
