"""synthmed core: train the synthetic-vs-real experiment grid on PneumoniaMNIST and store
every metric and per-image prediction in DuckDB. No Streamlit, no job scheduling here."""

__version__ = "0.1.0"
