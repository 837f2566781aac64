"""Checksums of what a restructure must not change: ``report``, ``claims`` (quick and strong
profiles) and the accuracy heatmap's cells (the store's cell query and the explorer's table, as
CSV), on a fresh data root holding only the shipped results/ bundles.

    .venv/bin/python scripts/behaviour_checksums.py        # prints one sha256 per output

Run it before and after a change: every line must be identical."""
from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CLI_OUTPUTS = {
    "report": ["report"],
    "report-auroc-csv": ["report", "--metric", "auroc", "--format", "csv"],
    "claims-quick": ["claims", "--profile", "quick"],
    "claims-strong": ["claims", "--profile", "strong"],
}
METRICS = ("accuracy", "auroc")


def _cli(argv: list[str]) -> str:
    from synthmed_core.cli import main
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(argv)
    if rc:
        raise SystemExit(f"{argv} exited {rc}")
    return out.getvalue()


def _explorer_cells():
    # The explorer's heatmap table, under its old or new module name.
    for name in ("synthmed_core.explorer.heatmap_view", "synthmed_core.explorer.grid_view"):
        with contextlib.suppress(ModuleNotFoundError):
            module = importlib.import_module(name)
            return getattr(module, "heatmap_cells", None) or module.grid_cells
    raise SystemExit("no explorer heatmap module")


def outputs() -> dict[str, str]:
    from synthmed_core.bundle import import_shipped
    from synthmed_core.store import Store
    store = Store()
    import_shipped(store)  # a no-op where the store's opening already imported them
    found = {name: _cli(argv) for name, argv in CLI_OUTPUTS.items()}
    cells = _explorer_cells()
    for metric in METRICS:
        found[f"store-cells-{metric}"] = store.grid_cell_stats(metric).to_csv(index=False)
        found[f"explorer-cells-{metric}"] = cells(store, metric).to_csv(index=False)
    return found


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="synthmed-checksums-") as root:
        os.environ["SYNTHMED_DATA"] = root
        os.environ.pop("SYNTHMED_DB", None)
        os.environ.pop("SYNTHMED_SHIPPED", None)
        for name, text in outputs().items():
            digest = hashlib.sha256(text.encode()).hexdigest()
            print(f"{digest}  {name} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
