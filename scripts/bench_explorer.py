"""Benchmark the Accuracy grid at scale, in a real browser and on the server side.

    python scripts/bench_explorer.py [--runs 10000 --preds 6000000] [--loads 5] [--queries 10]
                                     [--data DIR] [--profile-query]

1. Fills a scratch store (a temporary folder, or ``--data DIR``, reused when it already holds
   the requested counts) with ``--runs`` fake finished runs and ``--preds`` test prediction rows
   in total (``synthmed_core.store._fill.fill_scratch_store``).
2. Server side: times ``heatmap_view.grid_cells(store, metric, profile)`` (what the page calls)
   and the store query under it, ``Store.grid_cell_stats``, median of ``--queries`` calls,
   each on a fresh connection as in the app.
3. Browser, once per grid renderer (``--renderers``, default altair and plotly, side by side
   on the same store): starts ``streamlit run app.py`` with ``SYNTHMED_GRID_CHART`` set and,
   with Playwright + Debian's chromium, times navigation to ``/accuracy_grid`` (a new tab
   each time) until the chart's squares are rendered, and says where the time went (server's
   last message, the download of Streamlit's chart chunk: Plotly's is 4.7 MB of JavaScript,
   Vega's is smaller). "cold" loads follow a clear of Streamlit's caches (the app's "Clear
   caches" command), "warm" loads come straight after one; "first" is the first grid load
   after the server started (only Home ran before it). "nav" is what a user does between
   pages: in an open tab on the Jobs page, a click on the sidebar's "Accuracy grid" link.
   "floor" (altair only) is the least any Vega grid can take in this browser on this machine:
   a second server runs a one-file app of a title and one 48-square Altair chart, nothing of
   synthmed, and its new-tab loads alternate with the grid's warm ones.
4. First visits (altair, beside the floor): a third server on a brand-new data root (it imports
   the shipped results while it starts, as a new user's does) opens every page once, each in a
   new tab at 1280 x 900, Home first: seconds to the page's title.

Aims of issue 26, as ratios within one run: the grid's warm load <= 1.3x the floor, nav <= the
floor, every page's first visit <= the floor + 1 s to its title (the "aims" line).

Aim (issue 15): query under 100 ms, grid visible under 1 s (median of warm loads), script
done under 2 s. Needs chromium (scripts/setup_browser.sh) and the playwright package
(requirements-test.txt).
"""
from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "browser"))

from browser_helpers import (IDLE, PAGES, PLOT_MARKERS, SHARED_DATA, TITLE,  # noqa: E402
                             VEGA_MARKERS, app_env, chromium_browser, running_app)

GRID_PATH = "accuracy_grid"
AIM_BROWSER_S, AIM_DONE_S, AIM_QUERY_MS = 1.0, 2.0, 100.0
AIM_WARM_X_FLOOR, AIM_FIRST_OVER_FLOOR_S = 1.3, 1.0  # issue 26, within one run
# what shows a renderer's squares, and the name of the JavaScript chunk that draws them
RENDERED = {"plotly": (PLOT_MARKERS, "PlotlyChart"), "altair": (VEGA_MARKERS, "VegaLite")}
FLOOR_APP = """import altair as alt
import pandas as pd
import streamlit as st

st.set_page_config(layout="wide")
st.title("Accuracy grid")
cells = pd.DataFrame({"init": ["scratch", "imagenet", "chestmnist"] * 16,
                      "row": [f"setting {i // 3}" for i in range(48)], "mean": range(48)})
st.altair_chart(alt.Chart(cells).mark_square(size=56 ** 2).encode(
    x="init:N", y="row:N", color="mean:Q"), width=500)
"""


def fill(data: Path, n_runs: int, n_preds: int, seed: int = 0):
    """A Store at ``data`` holding ``n_runs`` fake runs (reused when it already does)."""
    from synthmed_core.store import Store
    from synthmed_core.store._fill import fill_scratch_store

    store = Store(data / "synthmed.duckdb")
    counts = store.store_counts()
    if counts["runs"] == n_runs and counts["predictions"] >= n_preds:
        print(f"store   reused {store.path}: {counts}")
        return store
    if counts["runs"]:
        raise SystemExit(f"{store.path} already holds {counts['runs']} runs: give an empty "
                         "--data folder (or the one an earlier bench filled with these counts)")
    t = time.perf_counter()
    counts = fill_scratch_store(store, n_runs, max(1, n_preds // n_runs), seed)
    size_mb = store.path.stat().st_size / 2**20
    print(f"store   filled {store.path} in {time.perf_counter() - t:.1f} s ({size_mb:.0f} MB): "
          f"{counts}")
    return store


def _median_ms(fn, n: int) -> tuple[float, float, float]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), min(times), max(times)


def bench_query(store, metric: str, n: int, profile_query: bool) -> float:
    from synthmed_core.explorer import heatmap_view

    profile = (heatmap_view.profiles(store) or [None])[0]
    t = time.perf_counter()
    cells = heatmap_view.grid_cells(store, metric, profile=profile)
    first = (time.perf_counter() - t) * 1000
    print(f"query   grid_cells(store, {metric!r}, profile={profile!r}): {len(cells)} cells; "
          f"first call {first:.0f} ms")
    med, lo, hi = _median_ms(lambda: heatmap_view.grid_cells(store, metric, profile=profile), n)
    print(f"query   grid_cells            median {med:6.1f} ms  (min {lo:.1f}, max {hi:.1f}, "
          f"n={n})")
    sql, slo, shi = _median_ms(lambda: store.grid_cell_stats(metric, profile=profile), n)
    print(f"query   Store.grid_cell_stats median {sql:6.1f} ms  (min {slo:.1f}, max {shi:.1f}, "
          f"n={n})  <- the SQL alone")
    if profile_query:
        prof = cProfile.Profile()
        prof.enable()
        heatmap_view.grid_cells(store, metric, profile=profile)
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(15)
        print(out.getvalue())
    return med


def load_tab(context, url: str, timeout_ms: int, renderer: str, path: str = GRID_PATH
             ) -> dict[str, float]:
    """One navigation to the grid in a new tab: seconds to the first rendered square
    (``markers``), to the script's end (``done``), and where the time went: the last message
    from the server before the squares showed (``server``: the script ran and sent the
    figures by then) and the end of the download of the renderer's chunk (``chart_js``)."""
    selector, chunk_name = RENDERED[renderer]
    page = context.new_page()
    frames: list[float] = []
    page.on("websocket", lambda ws: ws.on("framereceived",
                                          lambda _: frames.append(time.perf_counter())))
    try:
        t = time.perf_counter()
        page.goto(f"{url}/{path}", wait_until="commit")
        page.locator(selector).first.wait_for(state="visible", timeout=timeout_ms)
        markers = time.perf_counter() - t
        page.wait_for_selector(IDLE, state="attached", timeout=timeout_ms)
        done = time.perf_counter() - t
        server = max((f - t for f in frames if f - t <= markers), default=float("nan"))
        chunk = page.evaluate("name => performance.getEntriesByType('resource')"
                              ".filter(r => r.name.includes(name))"
                              ".map(r => r.responseEnd / 1000)", chunk_name)
        return {"markers": markers, "done": done, "server": server,
                "chart_js": chunk[0] if chunk else float("nan")}
    finally:
        page.close()


def _navigate(context, url: str, timeout_ms: int, renderer: str) -> dict[str, float]:
    """What a user does between pages: from the Jobs page (no chart) of an open tab, a click
    on the sidebar's "Accuracy grid" link. Seconds to the first rendered square and to the
    script's end; Streamlit swaps the page in place (no new tab, its JavaScript is loaded)."""
    selector, _ = RENDERED[renderer]
    page = context.new_page()
    try:
        page.goto(f"{url}/jobs", wait_until="domcontentloaded")
        page.wait_for_selector(IDLE, state="attached", timeout=timeout_ms)
        t = time.perf_counter()
        page.get_by_role("link", name="Accuracy grid").click()
        page.get_by_role("heading", name="Accuracy grid").wait_for(timeout=timeout_ms)
        page.locator(selector).first.wait_for(state="visible", timeout=timeout_ms)
        markers = time.perf_counter() - t
        page.wait_for_selector(IDLE, state="attached", timeout=timeout_ms)
        return {"markers": markers, "done": time.perf_counter() - t}
    finally:
        page.close()


def _clear_caches(context, url: str) -> None:
    """Streamlit's "Clear caches" (its keyboard shortcut C, then the dialog's button): empties
    st.cache_data and st.cache_resource in the server."""
    page = context.new_page()
    try:
        page.goto(f"{url}/{GRID_PATH}", wait_until="domcontentloaded")
        page.wait_for_selector(IDLE, state="attached", timeout=60_000)
        page.locator("body").press("c")
        button = page.get_by_role("button", name="Clear caches")
        button.click(timeout=10_000)
        button.wait_for(state="detached", timeout=10_000)
    finally:
        page.close()


def _summary(renderer: str, label: str, rows: list[dict[str, float]]) -> dict[str, float]:
    def med(key: str) -> float:
        return statistics.median(r[key] for r in rows)
    marks = [r["markers"] for r in rows]
    print(f"browser {renderer:6s} {label:5s} grid rendered median {med('markers'):5.2f} s (min "
          f"{min(marks):.2f}, max {max(marks):.2f}, n={len(rows)}) | server's last message "
          f"{med('server'):4.2f} s, chart JS downloaded {med('chart_js'):4.2f} s, script done "
          f"{med('done'):4.2f} s")
    return {"markers": med("markers"), "done": med("done")}


def first_visits(browser, timeout_ms: int) -> dict[str, float]:
    """Every page's first visit on a fresh server over a brand-new data root, each in a new
    tab at 1280 x 900, Home first: seconds from navigation to the page's title."""
    root = Path(tempfile.mkdtemp(prefix="synthmed-bench-fresh-"))
    env = app_env(root, Path(os.environ.get("SYNTHMED_MEDMNIST_ROOT") or SHARED_DATA))
    times: dict[str, float] = {}
    try:
        with running_app(env, root / "bench-streamlit-fresh.log", start_timeout_s=120) as app:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            for name in PAGES:
                page = context.new_page()
                t = time.perf_counter()
                page.goto(f"{app.url}/{'' if name == 'home' else name}", wait_until="commit")
                page.wait_for_selector(TITLE, timeout=timeout_ms)
                times[name] = time.perf_counter() - t
                page.wait_for_selector(IDLE, state="attached", timeout=timeout_ms)
                page.close()
            context.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return times


def aims_line(warm: float, nav: float, floor: float, firsts: dict[str, float]) -> str:
    """The issue's aims as ratios against this run's floor, MET or MISSED each."""
    worst = max(firsts, key=firsts.get)
    parts = [(f"grid warm {warm / floor:.2f}x floor (aim <= {AIM_WARM_X_FLOOR:g}x)",
              warm <= AIM_WARM_X_FLOOR * floor),
             (f"nav {nav:.2f} s vs floor {floor:.2f} s (aim <= floor)", nav <= floor),
             (f"slowest first visit {worst} floor {firsts[worst] - floor:+.2f} s (aim <= "
              f"+{AIM_FIRST_OVER_FLOOR_S:g} s)",
              firsts[worst] - floor <= AIM_FIRST_OVER_FLOOR_S)]
    return "aims    " + "; ".join(f"{text}: {'MET' if ok else 'MISSED'}" for text, ok in parts)


def bench_browser(data: Path, loads: int, timeout_s: float, renderer: str
                  ) -> tuple[dict[str, float], dict[str, float]]:
    from ui.heatmap_chart import RENDERER_ENV
    timeout_ms = int(timeout_s * 1000)
    log = data / f"bench-streamlit-{renderer}.log"
    # the scratch store alone: the shipped bundles would add their runs to it on first open
    env = {**app_env(data), RENDERER_ENV: renderer, "SYNTHMED_SHIPPED": "none"}
    floor_app = data / "bench-floor-app.py"
    floor_app.write_text(FLOOR_APP)
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(running_app(env, log))
        floor = (stack.enter_context(running_app(env, data / "bench-streamlit-floor.log",
                                                 script=floor_app))
                 if renderer == "altair" else None)
        browser = stack.enter_context(chromium_browser())
        context = browser.new_context(viewport={"width": 1600, "height": 1000})
        # Home first: the first load of a fresh server is not counted (server warm-up).
        warm_up = context.new_page()
        warm_up.goto(server.url, wait_until="commit")
        warm_up.wait_for_selector(IDLE, state="attached", timeout=timeout_ms)
        warm_up.close()
        _summary(renderer, "first", [load_tab(context, server.url, timeout_ms, renderer)])
        cold, warm, nav, bare = [], [], [], []
        firsts: dict[str, float] = {}
        if floor:
            load_tab(context, floor.url, timeout_ms, renderer, path="")  # its server's first run
            firsts = first_visits(browser, timeout_ms)
            for name, seconds in firsts.items():
                print(f"first   {name:14s} title after {seconds:5.2f} s on a fresh server, new "
                      "root, 1280 px", flush=True)
        for i in range(loads):
            _clear_caches(context, server.url)
            cold.append(load_tab(context, server.url, timeout_ms, renderer))
            warm.append(load_tab(context, server.url, timeout_ms, renderer))
            nav.append(_navigate(context, server.url, timeout_ms, renderer))
            if floor:
                bare.append(load_tab(context, floor.url, timeout_ms, renderer, path=""))
            print(f"load {i + 1}/{loads}: cold {cold[-1]['markers']:.2f} s, warm "
                  f"{warm[-1]['markers']:.2f} s, nav {nav[-1]['markers']:.2f} s"
                  + (f", floor {bare[-1]['markers']:.2f} s" if bare else ""), flush=True)
        context.close()
        marks = [r["markers"] for r in nav]
        print(f"browser {renderer:6s} nav   grid rendered median {statistics.median(marks):5.2f} "
              f"s (min {min(marks):.2f}, max {max(marks):.2f}, n={len(nav)}) after a click on "
              f"the sidebar's link from the Jobs page, script done "
              f"{statistics.median(r['done'] for r in nav):4.2f} s")
        # each warm load beside the floor load of the same round: the floor moves too
        per_round = sorted(w["markers"] / f["markers"] for w, f in zip(warm, bare))
        cold, warm = _summary(renderer, "cold", cold), _summary(renderer, "warm", warm)
        if bare:
            low = _summary(renderer, "floor", bare)
            extra = warm["markers"] - low["markers"]
            print(f"browser {renderer:6s} floor: a title and one 48-square chart alone, same "
                  f"browser; the grid page's warm load takes {extra:+.2f} s more")
            print(f"browser {renderer:6s} warm/floor per round: "
                  f"{', '.join(f'{r:.2f}' for r in per_round)} (median "
                  f"{statistics.median(per_round):.2f}x)")
            for name, seconds in firsts.items():
                print(f"first   {name:14s} the floor {seconds - low['markers']:+.2f} s")
            print(aims_line(warm["markers"], statistics.median(marks), low["markers"], firsts))
        return cold, warm


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=10_000)
    p.add_argument("--preds", type=int, default=6_000_000, help="test prediction rows in all")
    p.add_argument("--metric", default="accuracy")
    p.add_argument("--loads", type=int, default=5, help="cold and warm browser loads each")
    p.add_argument("--queries", type=int, default=10, help="timed calls of the grid query")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per browser load")
    p.add_argument("--data", type=Path, help="data folder to fill and keep (default: a "
                   "temporary folder, removed at the end)")
    p.add_argument("--profile-query", action="store_true",
                   help="print a cProfile of one grid_cells call")
    p.add_argument("--no-browser", action="store_true", help="server-side timings only")
    p.add_argument("--renderers", nargs="+", default=["altair", "plotly"],
                   choices=sorted(RENDERED), help="grid renderers to time in the browser")
    a = p.parse_args(argv)

    data = a.data or Path(tempfile.mkdtemp(prefix="synthmed-bench-"))
    data.mkdir(parents=True, exist_ok=True)
    try:
        store = fill(data, a.runs, a.preds)
        query_ms = bench_query(store, a.metric, a.queries, a.profile_query)
        verdict = [f"query {query_ms:.0f} ms (aim < {AIM_QUERY_MS:.0f})"]
        ok = query_ms < AIM_QUERY_MS
        for renderer in ([] if a.no_browser else a.renderers):
            cold, warm = bench_browser(data, a.loads, a.timeout, renderer)
            verdict.append(f"{renderer}: warm grid {warm['markers']:.2f} s (aim < "
                           f"{AIM_BROWSER_S:g}), script done {warm['done']:.2f} s (aim < "
                           f"{AIM_DONE_S:g}), cold grid {cold['markers']:.2f} s")
            ok = ok and warm["markers"] < AIM_BROWSER_S and warm["done"] < AIM_DONE_S
        print(f"result  {'; '.join(verdict)}: {'MET' if ok else 'MISSED'}")
    finally:
        if a.data is None:
            shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
