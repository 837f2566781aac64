"""Analysis of finished runs: what the numbers say and how sure we are.

- ``metrics``: per-run metrics, aggregation over seeds, paired tests over images;
- ``compare``: two cells on the same test images; ``claims``: the study's conclusions checked;
- ``report``: the setting x init table beside the study; ``calibration``: reliability, ECE and
  thresholds picked on val; ``corrections``: Holm / Benjamini-Hochberg over many tests.
"""
__all__ = ["calibration", "claims", "compare", "corrections", "metrics", "report"]
