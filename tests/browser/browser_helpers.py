"""Driving the explorer in a real browser: find Debian's chromium, start `streamlit run app.py`
on a free port and stop it, open a page and wait for its script to finish, take screenshots,
read back rendered pixels. Used by the browser tests (conftest.py) and by
scripts/bench_explorer.py."""
from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
# the real PneumoniaMNIST: beside the repo, or SYNTHMED_TEST_MEDMNIST (as tests/conftest.py)
SHARED_DATA = Path(os.environ.get("SYNTHMED_TEST_MEDMNIST") or REPO_ROOT.parent / "shared" / "data")
# `playwright install` cannot download a browser on these machines: drive Debian's chromium.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
EXCEPTION = '[data-testid="stException"]'
# Streamlit marks its root with the script state: "initial", "running", "notRunning".
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
PLOT_MARKERS = ".js-plotly-plot .scatterlayer path.point"
VEGA_MARKERS = '[data-testid="stVegaLiteChart"] svg g.mark-symbol.role-mark path'  # an Altair grid's squares
VEGA_TEXTS = '[data-testid="stVegaLiteChart"] svg g.mark-text.role-mark text'
GRID_SQUARES, GRID_TEXTS = VEGA_MARKERS, VEGA_TEXTS  # the grid's renderer (ui.heatmap_chart)
PAGES = ("home", "accuracy_grid", "gallery", "gradcam", "predict", "jobs")  # url paths (app.py)
TITLE = '[data-testid="stMain"] h1'  # every page starts with its title: its first render


def find_chromium() -> str | None:
    """$SYNTHMED_CHROMIUM, else a chromium on PATH, else Debian's /usr/bin/chromium."""
    candidates = [os.environ.get("SYNTHMED_CHROMIUM", ""), shutil.which("chromium") or "",
                  shutil.which("chromium-browser") or "", "/usr/bin/chromium"]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def screenshot_dir() -> Path:
    """$SYNTHMED_SCREENSHOTS, default <repo>/data/screenshots (ignored by git)."""
    folder = Path(os.environ.get("SYNTHMED_SCREENSHOTS") or REPO_ROOT / "data" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# ---- the server -------------------------------------------------------------------------------


def app_env(data: Path, medmnist: Path | None = None) -> dict[str, str]:
    """Our environment with synthmed pointed at the data root ``data`` (offline)."""
    path = os.environ.get("PYTHONPATH", "")
    env = {**os.environ, "SYNTHMED_DATA": str(data), "SYNTHMED_DB": "", "SYNTHMED_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), path) if p)}
    if medmnist is not None:
        env["SYNTHMED_MEDMNIST_ROOT"] = str(medmnist)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def stop_process(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class AppServer:
    """A running `streamlit run app.py`: its ``url``, its process and its log file."""

    def __init__(self, url: str, proc: subprocess.Popen, log: Path):
        self.url, self.proc, self.log = url, proc, log

    def log_tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.is_file() else ""


@contextmanager
def running_app(env: dict[str, str], log: Path, start_timeout_s: float = 60.0,
                script: Path | None = None, cwd: Path = REPO_ROOT) -> Iterator[AppServer]:
    """Start the explorer in ``cwd`` (another checkout, for scripts/bench_variants.py), or
    another Streamlit ``script``, on a free local port with ``env``; wait for /_stcore/health,
    yield it, stop it. Raises RuntimeError (with the log's end) when it does not come up."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    start = ["-m", "ui.serve"] if script is None else ["-m", "streamlit", "run", str(script)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, *start, "--server.port", str(port),  # as scripts/app.sh
             "--server.address", "127.0.0.1", "--server.headless", "true",
             "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
            cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT)
    server = AppServer(url, proc, log)
    try:
        deadline = time.monotonic() + start_timeout_s
        while not healthy(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not come up on {url}:\n{server.log_tail()}")
            time.sleep(0.2)
        yield server
    finally:
        stop_process(proc)


@contextmanager
def chromium_browser() -> Iterator[object]:
    """A headless Debian chromium under Playwright. Raises RuntimeError when none is found."""
    from playwright.sync_api import sync_playwright

    path = find_chromium()
    if path is None:
        raise RuntimeError("no chromium found: set SYNTHMED_CHROMIUM or run "
                           "`bash scripts/setup_browser.sh`")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


# ---- pages ------------------------------------------------------------------------------------


def open_page(page, url: str, path: str = "", timeout_ms: int = 30_000) -> None:
    """Load ``path`` (a page's url path, "" for Home) and wait until its first run finished."""
    page.goto(f"{url}/{path}", wait_until="domcontentloaded")
    page.wait_for_selector(IDLE, state="attached", timeout=timeout_ms)


def assert_no_exception(page) -> None:
    boxes = page.locator(EXCEPTION)
    assert boxes.count() == 0, f"exception on the page: {boxes.first.inner_text()[:2000]}"


def shot(page, name: str, locator=None) -> Path:
    """Save a PNG of the viewport (or of ``locator``) as <screenshot dir>/<name>.png."""
    path = screenshot_dir() / f"{name}.png"
    (locator if locator is not None else page).screenshot(path=str(path))
    return path


def element_pixels(locator) -> np.ndarray:
    """The rendered pixels of one element, as a (H, W, 3) float array."""
    from PIL import Image

    png = locator.screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float64)


def click_square(page, square) -> None:
    """Click a grid square (a Vega mark) at its centre, like a person: move onto it first."""
    square.scroll_into_view_if_needed()
    box = square.bounding_box()
    assert box is not None, "the square has no box (not rendered?)"
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x - 3, y - 3)
    page.mouse.move(x, y, steps=3)
    page.mouse.click(x, y)


def choose(page, label: str, option: str, within=None) -> None:
    """Pick ``option`` in the Streamlit selectbox labelled ``label`` (inside ``within``, e.g.
    the sidebar, when the label is not unique on the page)."""
    box = (within or page).get_by_role("combobox", name=label, exact=True)
    item = page.get_by_role("option", name=option, exact=True)
    for _ in range(3):  # a click that lands while the page re-lays itself out opens nothing
        box.click()
        try:
            item.wait_for(timeout=3_000)
        except Exception:
            continue
        item.click()
        break
    assert box.input_value() == option, f"{label}: {box.input_value()!r} chosen, not {option!r}"
