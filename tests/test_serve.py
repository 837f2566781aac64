"""scripts/app.sh starts the explorer through ui.serve: `streamlit run app.py` with app.py's
own modules imported while the server starts, not when the first visitor arrives."""
from __future__ import annotations

import ast
import subprocess
import sys

from synthmed_core.paths import REPO_ROOT

PROBE = """
import sys
from streamlit.web import cli
seen = {}
def fake_main():
    seen["argv"] = list(sys.argv)
    seen["loaded"] = [m for m in ("pandas", "ui.readers", "ui.sidebar", "synthmed_core.store")
                      if m in sys.modules]
cli.main = fake_main
from ui import serve
serve.main(["--server.port", "9999"])
print(seen)
"""


def test_serve_runs_the_app_with_its_modules_already_imported_and_passes_options_on():
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    seen = ast.literal_eval(out.stdout.strip().splitlines()[-1])  # the dict the probe printed
    assert seen["argv"] == ["streamlit", "run", str(REPO_ROOT / "app.py"), "--server.port",
                            "9999"]
    assert seen["loaded"] == ["pandas", "ui.readers", "ui.sidebar", "synthmed_core.store"]
    assert "No runtime found" not in out.stderr  # the decorators' warning is kept quiet


def test_app_sh_starts_the_app_through_serve():
    assert "-m ui.serve" in (REPO_ROOT / "scripts" / "app.sh").read_text()
