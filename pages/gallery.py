"""gallery page (scaffold: being built)."""
import streamlit as st

st.title("gallery")
