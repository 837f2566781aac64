"""accuracy_grid page (scaffold: being built)."""
import streamlit as st

st.title("accuracy_grid")
