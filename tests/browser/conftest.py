"""Browser tests: one `streamlit run app.py` per test module (keep them in one module: the
server, its seeded store and chromium are set up once, ~20-40 s, and torn down as soon as the
module ends, before the rest of the suite runs), driven by Playwright through Debian's
chromium (`playwright install` cannot download a browser on these machines).

The server runs against a scratch SYNTHMED_DATA filled by seed_store.py (fake finished runs,
a small synthetic set, one real smoke run with a checkpoint) and the shared real
PneumoniaMNIST. Without a chromium the tests skip and say why, except under CI, where a
missing browser fails them. Screenshots go to $SYNTHMED_SCREENSHOTS (default
<repo>/data/screenshots, which git ignores); a failing test also leaves FAILED-<test>.png there
and prints the end of the server log.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from browser_helpers import (CHROMIUM_ARGS, REPO_ROOT, SHARED_DATA, app_env, find_chromium,
                             open_page, running_app, screenshot_dir)

VIEWPORT = {"width": 1600, "height": 1000}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _unavailable(reason: str) -> None:
    if in_ci():
        pytest.fail(f"{reason} (CI is set: the browser tests must run here; "
                    "scripts/setup_browser.sh installs chromium)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    """A headless Debian chromium driven by Playwright, shared by every browser test."""
    for stale in screenshot_dir().glob("FAILED-*.png"):  # from an earlier session
        stale.unlink()
    path = find_chromium()
    if path is None:
        _unavailable("no chromium found (set SYNTHMED_CHROMIUM, or run "
                     "`bash scripts/setup_browser.sh`, which apt-installs Debian's chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the Python package playwright is not installed "
                     "(pip install -r requirements-test.txt)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def explorer_data(tmp_path_factory) -> dict:
    """A scratch data root filled by seed_store.py in a subprocess (the test process's
    environment is left alone). Returns seed_store's JSON summary plus ``root``."""
    if not (SHARED_DATA / "pneumoniamnist.npz").is_file():
        pytest.fail(f"shared real data not found at {SHARED_DATA}")
    root = tmp_path_factory.mktemp("explorer") / "data"
    done = subprocess.run([sys.executable, str(Path(__file__).with_name("seed_store.py"))],
                          cwd=REPO_ROOT, env=app_env(root, SHARED_DATA), capture_output=True,
                          text=True, timeout=400)
    if done.returncode != 0:
        pytest.fail(f"seeding the browser-test store failed:\n{done.stderr[-3000:]}")
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    return {**summary, "root": root}


def _stop_workers(db: Path) -> None:
    """Job workers the app started run detached (their own session), so stopping the server
    leaves them running; stop each one the scratch store lists, by pid, if it is a jobs
    worker."""
    from synthmed_core.store import Store

    if not db.is_file():
        return
    for pid in Store(db).live_workers(stale_s=3600)["pid"]:
        pid = int(pid)
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"jobs" in cmdline and b"worker" in cmdline:
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def app_server(browser, explorer_data):
    """`streamlit run app.py` on a free port against the scratch data root, for the session.
    ``.data`` is explorer_data. ``.first_visit_sidebar`` says whether the very first page
    opened on the fresh server (the Accuracy grid, by its URL) had the app's sidebar: see
    test_a_page_opened_by_its_url_on_a_fresh_server_has_the_sidebar."""
    root = explorer_data["root"]
    try:
        with running_app(app_env(root, SHARED_DATA), root.parent / "streamlit.log") as server:
            server.data = explorer_data
            tab = browser.new_page(viewport=VIEWPORT)
            open_page(tab, server.url, "accuracy_grid", timeout_ms=180_000)
            server.first_visit_sidebar = tab.get_by_text("Train a cell").count() > 0
            open_page(tab, server.url, "", timeout_ms=180_000)  # runs app.py's st.navigation
            tab.close()
            yield server
    except RuntimeError as exc:
        pytest.fail(str(exc))
    finally:
        _stop_workers(root / "synthmed.duckdb")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture
def page(browser, app_server, request):
    """A fresh browser tab (own context) on the session's server. On failure it saves
    FAILED-<test>.png and prints the end of the server log and any page errors."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(20_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        try:
            tab.screenshot(path=str(screenshot_dir() / f"FAILED-{request.node.name}.png"))
        except Exception as exc:  # the page may be gone; the log still helps
            print(f"no failure screenshot: {exc}")
        print(f"---- streamlit log (end) ----\n{app_server.log_tail()}")
        if errors:
            print("---- page errors ----\n" + "\n".join(errors))
    context.close()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Every test in tests/browser drives chromium: marked `browser` here, so a new file needs
    no `pytestmark` of its own to stay out of the fast loop."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
