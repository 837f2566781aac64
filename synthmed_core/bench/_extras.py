"""The table's two non-training figures, each optional: Grad-CAM latency (needs
pytorch-grad-cam) and the explorer's grid query on a scratch store (needs duckdb). A missing
package skips the figure with a note instead of failing the benchmark."""
from __future__ import annotations

import importlib.util
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _missing(*modules: str) -> str | None:
    gone = [m for m in modules if importlib.util.find_spec(m) is None]
    return f"skipped: {', '.join(gone)} not installed" if gone else None


def cam_ms(model: torch.nn.Module, image: np.ndarray, n: int = 10) -> tuple[float | None, str]:
    """Median ms of one Grad-CAM of one uint8 image on ``model`` (uncompiled, fp32), through
    ``explain.cam_latency_ms`` when that module is present, else pytorch-grad-cam directly
    on ``cam.cam_target_layer``. Returns (ms or None, what was measured)."""
    gone = _missing("pytorch_grad_cam")
    if gone:
        return None, gone
    try:
        from ..explain.cams import cam_latency_ms
    except ImportError:
        return _direct_cam_ms(model, image, n)
    from ..explain.layers import cam_target_layer

    _, layer, side = cam_target_layer(model, int(model.synthmed["input_size"]))
    return (cam_latency_ms(model, image, "GradCAM", n=n),
            f"explain.cam_latency_ms (GradCAM + overlay), {layer} {side}x{side}")


def _direct_cam_ms(model: torch.nn.Module, image: np.ndarray, n: int) -> tuple[float, str]:
    from pytorch_grad_cam import GradCAM

    from ..explain.layers import cam_reshape_transform, cam_target_layer
    from ..training.loop import Preprocess
    from ..training.models import model_input_stats

    size = int(model.synthmed["input_size"])
    layer, name, side = cam_target_layer(model, size)
    mean, std = model_input_stats(model)
    device = next(model.parameters()).device
    x = Preprocess(mean, std, size, channels_last=False)(torch.from_numpy(image[None]).to(device))
    times = []
    with GradCAM(model=model, target_layers=[layer],
                 reshape_transform=cam_reshape_transform(model)) as cam:
        for i in range(n + 1):
            t0 = time.perf_counter()
            cam(input_tensor=x)  # returns numpy: the device is drained
            if i:
                times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), f"pytorch_grad_cam GradCAM, {name} {side}x{side}"


def store_query_ms(n_runs: int = 1000, reps: int = 5) -> tuple[float | None, str]:
    """Median ms of the explorer's grid query (``Store.grid_cell_stats``) on a scratch store of
    ``n_runs`` fake finished runs (``store._fill.fill_scratch_store``). Where those do not
    exist yet, ``report.report_table`` over a scratch store of a few real-format runs is timed
    instead, and the note says so."""
    gone = _missing("duckdb", "filelock", "pandas")
    if gone:
        return None, gone
    from ..store import Store

    with tempfile.TemporaryDirectory(prefix="synthmed-bench-store-") as tmp:
        store = Store(Path(tmp) / "scratch.duckdb")
        if hasattr(store, "grid_cell_stats") and \
                importlib.util.find_spec("synthmed_core.store._fill") is not None:
            from ..store._fill import fill_scratch_store
            fill_scratch_store(store, n_runs=n_runs)
            query, what = (lambda: store.grid_cell_stats("accuracy"),
                           f"Store.grid_cell_stats on {n_runs} scratch runs")
        else:
            from ..explorer.report import report_table
            query, what = (lambda: report_table(store, "accuracy"),
                           "report.report_table on an empty scratch store "
                           "(no grid query function found)")
        query()  # warm-up: first connection, catalog
        times = []
        for _ in range(max(1, reps)):
            t0 = time.perf_counter()
            query()
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), what
