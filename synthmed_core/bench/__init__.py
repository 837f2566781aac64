"""``python -m synthmed_core bench``: how fast synthmed trains, evaluates and explains, and what
the trainer costs on top of the model's own arithmetic, measured side by side in one process.

Per arch x input size (x compile mode): trainer and pure training images/s and their ratio
(the trainer overhead, ``_trainer``), evaluation images/s, peak memory, a reference-style
PIL + DataLoader pipeline on the same model and images (``_reference``), Grad-CAM ms per image
and the store's grid query ms (``_extras``); optionally the aggregate throughput of K trainer
processes sharing the device (``_concurrent``). Needs torch and timm only: duckdb,
pytorch-grad-cam and medmnist are optional (their rows are skipped with a note).
"""
from __future__ import annotations

import importlib

# Lazy: importing ``synthmed_core.bench`` (e.g. for ``bench.estimate``, which the explorer's
# launch form uses) must not load torch; the names below load it on first use.
_EXPORTS = {"BenchConfig": "_run", "run_bench": "_run", "write_json": "_run",
            "report_text": "_table", "concurrent_throughput": "_concurrent",
            "TrainerJob": "_concurrent"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
