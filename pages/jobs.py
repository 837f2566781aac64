"""jobs page (scaffold: being built)."""
import streamlit as st

st.title("jobs")
