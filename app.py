"""synthmed's explorer: the navigation entry point. Start it with `bash scripts/app.sh`.

Every page lives in app_pages/ and is thin: it lays out widgets over synthmed_core and jobs (through
the cached readers of ui/), never SQL or torch. The sidebar (launch form and running jobs) is
drawn here once, so it is on every page.
"""
from __future__ import annotations

import os
import sys
import time

import streamlit as st

from ui import readers, sidebar

PAGES = [  # (file, title, icon); the first is the default page
    ("app_pages/home.py", "Home", ":material/home:"),
    ("app_pages/accuracy_grid.py", "Accuracy grid", ":material/grid_on:"),
    ("app_pages/gallery.py", "Gallery", ":material/photo_library:"),
    ("app_pages/gradcam.py", "Grad-CAM", ":material/visibility:"),
    ("app_pages/predict.py", "Predict", ":material/upload_file:"),
    ("app_pages/jobs.py", "Jobs", ":material/work_history:"),
]


def main() -> None:
    st.set_page_config(page_title="synthmed", layout="wide")
    nav = st.navigation([st.Page(path, title=title, icon=icon, default=(i == 0))
                         for i, (path, title, icon) in enumerate(PAGES)])
    t0 = time.perf_counter()
    sidebar.render()
    t1 = time.perf_counter()
    nav.run()
    if os.environ.get("SYNTHMED_TIMING"):  # scripts/look.py reads it from the server's log
        print(f"[timing] {nav.title}: script {time.perf_counter() - t0:.2f} s (sidebar "
              f"{t1 - t0:.2f} s)", file=sys.stderr, flush=True)
    readers.prewarm()  # after the first page: the image pages' imports, in the background


main()
