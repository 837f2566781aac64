"""scripts/app.sh starts the explorer through ui.serve: `streamlit run app.py` with app.py's
and its pages' own modules imported, and the data root's store opened (migrated, the shipped results
imported), while the server starts, not when the first visitor arrives."""
from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys

from synthmed_core.paths import REPO_ROOT

PROBE = """
import sys
from streamlit.web import cli
seen = {}
def fake_main():
    seen["argv"] = list(sys.argv)
    seen["loaded"] = [m for m in ("pandas", "ui.readers", "ui.sidebar", "synthmed_core.store",
                                  "ui.heatmap_chart", "ui.cell_view", "ui.url_state", "altair",
                                  "torch") if m in sys.modules]
    from synthmed_core import paths
    from synthmed_core.store import Store
    seen["opened"] = paths.db_path().is_file()
    seen["bundles"] = sorted(Store().imported_bundle_ids())
cli.main = fake_main
from ui import serve
serve.main(["--server.port", "9999"])
print(seen)
"""


def test_serve_runs_the_app_with_its_modules_imported_and_its_store_opened_and_passes_options_on(
        tmp_path, shared_medmnist):  # the bundle's predictions are checked against the real labels
    shipped = tmp_path / "results"  # the smallest of the project's own bundles, shipped alone
    smallest = min((REPO_ROOT / "results").glob("*/manifest.json"),
                   key=lambda m: sum(f.stat().st_size for f in m.parent.iterdir()))
    shutil.copytree(smallest.parent, shipped / "tiny")
    env = {**os.environ, "SYNTHMED_DATA": str(tmp_path / "root"), "SYNTHMED_DB": "",
           "SYNTHMED_SHIPPED": str(shipped)}
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    seen = ast.literal_eval(out.stdout.strip().splitlines()[-1])  # the dict the probe printed
    assert seen["argv"] == ["streamlit", "run", str(REPO_ROOT / "app.py"), "--server.port",
                            "9999"]
    # app.py's and every page's own imports, Altair warmed; torch stays for the pages that
    # load a model, when they do
    assert seen["loaded"] == ["pandas", "ui.readers", "ui.sidebar", "synthmed_core.store",
                              "ui.heatmap_chart", "ui.cell_view", "ui.url_state", "altair"]
    assert "No runtime found" not in out.stderr  # the decorators' warning is kept quiet
    bundle = json.loads((shipped / "tiny" / "manifest.json").read_text())["bundle_id"]
    assert seen["opened"] and seen["bundles"] == [bundle]  # before the server took a visitor


def test_app_sh_starts_the_app_through_serve():
    assert "-m ui.serve" in (REPO_ROOT / "scripts" / "app.sh").read_text()
