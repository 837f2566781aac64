"""The sidebar drawn on every page: the launch form and the running jobs with live progress."""
from __future__ import annotations

import streamlit as st


def render() -> None:
    with st.sidebar:
        st.caption("synthmed")
