"""The statistics of finished runs, pure functions of arrays and tables (no store here: the
tables that read it, ``claims`` and ``report``, are in ``explorer``).

- ``metrics``: per-run metrics, aggregation over seeds, paired tests over images;
- ``compare``: two cells on the same test images; ``seeds``, ``evidence``, ``delong``: the
  seed-aware tests; ``calibration``: reliability, ECE and thresholds picked on val;
  ``corrections``: Holm / Benjamini-Hochberg over many tests.
"""
__all__ = ["calibration", "compare", "corrections", "delong", "evidence", "generators",
           "metrics", "seeds"]
