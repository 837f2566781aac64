"""Look at the explorer as a user would: full-page screenshots of pages at several widths.

    python scripts/look.py [--data DIR] [--widths 1280 1920] [--pages home accuracy_grid ...]
                           [--out data/screenshots/look] [--shipped DIR|none]

Starts ``streamlit run app.py`` on the data root ``--data`` (default: a fresh temporary one,
which imports the shipped results on first open, as a new user's would), opens each page in
headless chromium at each width (900 px tall, the page grown to its full height) and saves
``<out>/<page>-<width>.png``. Prints, for each page, the time from navigation to its title
(first render) and to its script's end in the browser, and the script's own time on the server
(app.py's ``[timing]`` line, with SYNTHMED_TIMING set). Needs
chromium (scripts/setup_browser.sh).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "browser"))

from browser_helpers import (IDLE, PAGES, app_env, assert_no_exception,  # noqa: E402
                             chromium_browser, running_app)
from browser_helpers import TITLE as FIRST_RENDER  # noqa: E402


def _server_seconds(log: Path) -> str:
    """The page script's own time, from the server's last ``[timing]`` line (app.py)."""
    lines = [line for line in log.read_text(errors="replace").splitlines()
             if line.startswith("[timing]")]
    return lines[-1].split(": script ")[-1] if lines else "?"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, help="data root (default: a fresh temporary one)")
    p.add_argument("--widths", type=int, nargs="+", default=[1280, 1920])
    p.add_argument("--pages", nargs="+", default=list(PAGES), choices=PAGES)
    p.add_argument("--out", type=Path, default=REPO / "data" / "screenshots" / "look")
    p.add_argument("--shipped", help="SYNTHMED_SHIPPED for the app (default: results/)")
    a = p.parse_args()
    data = a.data or Path(tempfile.mkdtemp(prefix="synthmed-look-"))
    env = app_env(data, Path(os.environ.get("SYNTHMED_MEDMNIST_ROOT")
                             or REPO.parent / "shared" / "data"))
    env.pop("SYNTHMED_DB", None)
    env["SYNTHMED_TIMING"] = "1"
    env["SYNTHMED_SHIPPED"] = a.shipped if a.shipped is not None else str(REPO / "results")
    a.out.mkdir(parents=True, exist_ok=True)
    with (running_app(env, a.out / "streamlit.log", start_timeout_s=300) as app,  # loaded box
          chromium_browser() as browser):
        for width in a.widths:
            page = browser.new_page(viewport={"width": width, "height": 900})
            for name in a.pages:
                t0 = time.perf_counter()
                page.goto(f"{app.url}/{'' if name == 'home' else name}",
                          wait_until="domcontentloaded")
                page.wait_for_selector(FIRST_RENDER, timeout=120_000)
                first = time.perf_counter() - t0
                page.wait_for_selector(IDLE, state="attached", timeout=120_000)
                done = time.perf_counter() - t0
                page.wait_for_timeout(1500)  # charts finish drawing after the script ends
                assert_no_exception(page)
                path = a.out / f"{name}-{width}.png"
                page.screenshot(path=str(path), full_page=True)
                print(f"{name:<14} {width:>5} px  first render {first:4.1f} s, script done "
                      f"{done:4.1f} s (server: {_server_seconds(app.log)})  -> {path}")
            page.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
