"""Look at the explorer as a user would: full-page screenshots of pages at several widths.

    python scripts/look.py [--data DIR] [--widths 1280 1920] [--pages home accuracy_grid ...]
                           [--out data/screenshots/look] [--shipped DIR|none]

Starts ``streamlit run app.py`` on the data root ``--data`` (default: a fresh temporary one,
which imports the shipped results on first open, as a new user's would), opens each page in
headless chromium at each width (900 px tall, the page grown to its full height) and saves
``<out>/<page>-<width>.png``. Prints each page's time until its script finished. Needs
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

from browser_helpers import (IDLE, app_env, assert_no_exception, chromium_browser,  # noqa: E402
                             running_app)

PAGES = ("home", "accuracy_grid", "gallery", "gradcam", "predict", "jobs")


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
    env["SYNTHMED_SHIPPED"] = a.shipped if a.shipped is not None else str(REPO / "results")
    a.out.mkdir(parents=True, exist_ok=True)
    with running_app(env, a.out / "streamlit.log") as app, chromium_browser() as browser:
        for width in a.widths:
            page = browser.new_page(viewport={"width": width, "height": 900})
            for name in a.pages:
                t0 = time.perf_counter()
                page.goto(f"{app.url}/{'' if name == 'home' else name}",
                          wait_until="domcontentloaded")
                page.wait_for_selector(IDLE, state="attached", timeout=120_000)
                page.wait_for_timeout(1500)  # charts finish drawing after the script ends
                done = time.perf_counter() - t0
                assert_no_exception(page)
                path = a.out / f"{name}-{width}.png"
                page.screenshot(path=str(path), full_page=True)
                print(f"{name:<14} {width:>5} px  script done after {done:5.1f} s  -> {path}")
            page.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
