"""Start the explorer: ``python -m ui.serve [streamlit run options]`` is ``streamlit run app.py``
with the app's and its pages' modules imported (Altair's chart validator warmed), and the data
root's store opened, while the server starts, not when the first visitor arrives. Streamlit
runs app.py only when a browser connects; its imports (pandas, DuckDB, Arrow, the store, the
readers and the sidebar: ~0.7 s on the 2-core box) and a new data root's first open then
delayed every fresh server's first page.
``scripts/app.sh`` and the browser tests start the app this way.
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import logging
import sys
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app.py"
PAGES = APP.parent / "app_pages"


def preload() -> None:
    """Import what app.py imports. Outside a running server, st.cache_data's decorators warn
    that they check their parameters against a stand-in cache; the caches themselves are made
    on first call, inside the server, so the warning is silenced here."""
    import pandas  # noqa: F401  every page reads with it
    import streamlit  # noqa: F401  sets up its loggers, which the next lines quieten

    log = logging.getLogger("streamlit.runtime.caching.cache_data_api")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        from ui import readers, sidebar  # noqa: F401  app.py's own imports
        for module in page_imports():
            importlib.import_module(module)
        from ui import heatmap_chart
        heatmap_chart.warm()
    finally:
        log.setLevel(level)


def page_imports() -> list[str]:
    """The modules the pages import at their top, read from their source (not run): a page's
    first visit otherwise paid for them before its title showed. A name imported from a
    package is taken as its submodule when it is one."""
    names: list[str] = []
    for page in sorted(PAGES.glob("*.py")):
        for node in ast.parse(page.read_text()).body:
            if isinstance(node, ast.Import):
                names += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.append(node.module)
                names += [f"{node.module}.{alias.name}" for alias in node.names
                          if importlib.util.find_spec(node.module) is not None
                          and _is_submodule(node.module, alias.name)]
    return list(dict.fromkeys(n for n in names if n != "__future__"))


def _is_submodule(package: str, name: str) -> bool:
    spec = importlib.util.find_spec(package)
    return bool(spec.submodule_search_locations) and importlib.util.find_spec(
        f"{package}.{name}") is not None


def open_store() -> None:
    """Open the data root's store once. Its first open ever migrates it and imports the shipped
    results bundles (1.1-1.35 s for the three in results/), which the first page otherwise
    waited for; later opens find them imported. A store that cannot be opened now (locked by a
    writer, a folder we cannot write) is left to the pages, which say why."""
    from synthmed_core.bundle import import_shipped
    from synthmed_core.errors import SynthmedError
    from synthmed_core.store import Store
    try:
        import_shipped(Store(lock_timeout=10.0))  # busy: the app says so, the server starts
    except (SynthmedError, OSError) as exc:
        print(f"synthmed: the results database is not ready yet ({exc}); the app will retry",
              file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    preload()
    open_store()
    from streamlit.web import cli  # the `streamlit` command itself

    sys.argv = ["streamlit", "run", str(APP), *(sys.argv[1:] if argv is None else argv)]
    cli.main()


if __name__ == "__main__":
    main()
