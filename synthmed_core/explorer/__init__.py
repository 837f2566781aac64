"""What the explorer's pages show, as plain tables and values (no Streamlit, no SQL here):

- ``heatmap_view``: the accuracy heatmap (the grid of cells), every cell against base, with intervals and marks;
- ``cell_detail``: one cell's runs, curves, confusion matrix and calibration;
- ``views``: run lists and provenance cut down for a page; ``gallery``: images by class, their
  nearest real train images and a set's card figures;
- ``report``: the setting x init table beside the study; ``claims`` (+ ``claims_text``): the
  study's conclusions checked on the store's runs; ``shift``: sensitivity and specificity on
  val and test. The statistics they use are ``analysis``'s.
"""
__all__ = ["cell_detail", "claims", "claims_text", "gallery", "heatmap_view", "report", "shift",
           "views"]
