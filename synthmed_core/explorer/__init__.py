"""What the explorer's pages show, as plain tables and values (no Streamlit, no SQL here):

- ``grid_view``: the accuracy grid, every cell against base, with intervals and marks;
- ``cell_detail``: one cell's runs, curves, confusion matrix and calibration;
- ``views``: run lists and provenance cut down for a page; ``gallery``: images by class, their
  nearest real train images and a set's card figures.
"""
__all__ = ["cell_detail", "gallery", "grid_view", "views"]
