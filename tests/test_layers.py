"""The architecture, checked: import-linter's contracts (.importlinter) hold, and opening a page
loads no torch (its imports stay light; models load on demand)."""
from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(p for p in (ROOT / "app_pages").glob("*.py") if p.name != "__init__.py")


def test_the_import_contracts_hold():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    out = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "BROKEN" not in out.stdout and out.stdout.count("KEPT") >= 5


def _top_level_imports(page: Path) -> list[str]:
    """The page's module-level import statements, as source lines (the page's own code is a
    Streamlit script: importing the file would run it)."""
    tree = ast.parse(page.read_text())
    return [ast.unparse(node) for node in tree.body
            if isinstance(node, (ast.Import, ast.ImportFrom)) and not (isinstance(node, ast.ImportFrom) and node.module == "__future__")]


PROBE = """
import json, sys, time
t = time.perf_counter()
{imports}
print(json.dumps({{"seconds": time.perf_counter() - t,
                   "heavy": sorted(m for m in ("torch", "timm", "pytorch_grad_cam", "sklearn",
                                               "scipy.stats")
                                   if m in sys.modules)}}))
"""


def page_imports(page: Path) -> dict:
    """Seconds to run a page's imports in a fresh interpreter, and which heavy modules they load."""
    code = PROBE.format(imports="\n".join(_top_level_imports(page)))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_opening_a_page_loads_no_torch(page):
    assert page_imports(page)["heavy"] == []


def _heavy_after(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint(sorted(m for m in "
                          "('torch', 'timm', 'medmnist', 'scipy.stats') if m in sys.modules))"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return ast.literal_eval(out.stdout.strip().splitlines()[-1])


def test_the_splits_expected_sizes_come_from_medmnist_without_importing_it():
    """medmnist's package imports torch (~3 s) for a table of counts in its info module."""
    assert _heavy_after(
        "from synthmed_core.data import real\n"
        "assert real._info('pneumoniamnist')['n_samples']['test'] == 624") == []


def test_finding_a_sets_encoder_file_imports_no_torch():
    card = {"quality": {"feature": {"kind": "domain", "encoder": {
        "profile": "quick", "config": {"arch": "resnet18", "seed": 0}}}}}
    assert _heavy_after("from synthmed_core.explorer import gallery\n"
                        f"gallery.encoder_file({card!r})") == []


def test_the_grids_statistics_import_no_scipy_stats():
    assert _heavy_after("from synthmed_core.explorer import heatmap_view\n"
                        "from synthmed_core.analysis import compare\n"
                        "from synthmed_core.explorer import claims") == []


if __name__ == "__main__":  # python tests/test_layers.py: the import time of each page
    for page in PAGES:
        r = page_imports(page)
        heavy = ", ".join(r["heavy"]) or "none"
        print(f"{page.stem:14s} imports {r['seconds']:.2f} s  heavy modules: {heavy}")
