"""A page's view in its URL (``st.query_params``), so that reloading the page or opening a
shared link shows the same view.

A page names its URL parameters once (``Param``: the name in the URL, the widget's key, how to
read and write the value, the values it may take). ``restore`` runs before the widgets are
drawn: on a session's first run of the page it puts each parameter of the URL into its
widget's session state (a value the widget does not offer is ignored; the page drops values
that went stale, as it does for any). ``publish`` runs after them and writes the widgets'
values back into the URL, without a rerun.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Collection

import streamlit as st


@dataclass(frozen=True)
class Param:
    """One widget's value in the URL: ``?name=text``."""

    name: str
    key: str
    parse: Callable[[str], Any] = str
    dump: Callable[[Any], str] = str
    options: Callable[[], Collection] | None = None  # the values it may take, when fixed


def flag(text: str) -> bool:
    """``1``/``true``/``yes`` (any case) as True, anything else as False."""
    return text.strip().lower() in {"1", "true", "yes", "on"}


def restore(params: tuple[Param, ...], page: str) -> None:
    """On the session's first run of ``page``: each parameter in the URL sets its widget's
    value (before the widget is drawn); a value it cannot take is ignored."""
    done = f"_url_restored_{page}"
    if st.session_state.get(done):
        return
    st.session_state[done] = True
    for p in params:
        raw = st.query_params.get(p.name)
        if raw is None:
            continue
        try:
            value = p.parse(raw)
        except (TypeError, ValueError):
            continue
        if p.options is None or value in p.options():
            st.session_state[p.key] = value


def publish(params: tuple[Param, ...]) -> None:
    """The widgets' current values into the URL (a parameter whose widget is unset or not
    drawn is removed)."""
    for p in params:
        value = st.session_state.get(p.key)
        if value is None:
            if p.name in st.query_params:
                del st.query_params[p.name]
            continue
        text = p.dump(value)
        if st.query_params.get(p.name) != text:
            st.query_params[p.name] = text
