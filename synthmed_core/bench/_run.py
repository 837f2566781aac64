"""The bench itself: ``run_bench`` over a ``BenchConfig`` (see the package's docstring)."""
from __future__ import annotations

import dataclasses
import gc
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..training.loop import compile_mode, resolve_device
from ..training.models import build_model, model_input_stats
from ._concurrent import TrainerJob, concurrent_throughput, threads_each
from ._data import bench_arrays
from ._extras import cam_ms, store_query_ms
from ._reference import measure_reference
from ._trainer import build_rig, measure_eval, measure_training


@dataclass(frozen=True)
class BenchConfig:
    """What to measure. ``batches`` per timed pass (None: 4 on CPU, 20 on CUDA);
    ``ref_workers`` DataLoader workers of the reference (None: 0 on CPU, up to 8 on CUDA);
    ``concurrent``: the K values of the concurrent-trainer table (empty: skipped)."""

    device: str = "auto"
    archs: tuple[str, ...] = ("resnet18", "resnet50")
    sizes: tuple[int, ...] = (28,)
    batch_size: int = 128
    batches: int | None = None
    rounds: int = 8
    augment: bool = True
    compile: tuple[str, ...] = ("off",)
    reference: bool = True
    ref_workers: int | None = None
    cam: bool = True
    store_runs: int = 1000  # 0: skip the store row
    concurrent: tuple[int, ...] = ()
    concurrent_passes: int = 2

    def resolved(self) -> "BenchConfig":
        dev = resolve_device(self.device)
        cuda = dev.type == "cuda"
        return dataclasses.replace(
            self, device=str(dev), compile=tuple(compile_mode(m) for m in self.compile),
            batches=self.batches or (20 if cuda else 4),
            ref_workers=self.ref_workers if self.ref_workers is not None else
            (min(8, os.cpu_count() or 1) if cuda else 0))


def _machine(dev: torch.device) -> dict:
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    return {"device": str(dev), "device_name": name, "torch": torch.__version__,
            "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(),
            "load_avg": " ".join(f"{x:.2f}" for x in os.getloadavg())}


def _free(dev: torch.device) -> None:
    gc.collect()
    if dev.type == "cuda":
        torch.cuda.empty_cache()


def _row(cfg: BenchConfig, dev: torch.device, arch: str, size: int, mode: str, images, labels,
         ref_ips: float | None) -> dict:
    rig = build_rig(arch, size, dev, images, labels, cfg.batch_size, cfg.augment, mode)
    row = {"arch": arch, "size": size, "compile": rig.compile, **measure_training(rig, cfg.rounds),
           "eval_ips": measure_eval(rig), "ref_train_ips": ref_ips,
           "progress_events": len(rig.events)}
    row["speedup_vs_ref"] = row["train_ips"] / ref_ips if ref_ips else None
    del rig
    _free(dev)
    return row


def _failed_row(arch: str, size: int, mode: str, error: str) -> dict:
    nan = float("nan")
    return {"arch": arch, "size": size, "compile": mode, "error": error,
            **{k: nan for k in ("train_ips", "pure_ips", "overhead", "overhead_min",
                                "overhead_cpu", "eval_ips",
                                "peak_mem_mib", "ref_train_ips", "speedup_vs_ref", "cam_ms",
                                "warmup_s")},
            "overhead_rounds": [], "peak_mem_kind": "-", "cam_note": "-"}


def _fresh_model(arch: str, size: int, dev: torch.device) -> torch.nn.Module:
    torch.manual_seed(0)  # the rig's seed: the same initial weights
    return build_model(arch, "scratch", size).to(dev)


def run_bench(config: BenchConfig = BenchConfig(), log: Callable[[str], None] = print) -> dict:
    """Measure everything ``config`` asks for; returns the report (JSON-ready dict with
    ``machine``, ``config``, ``data``, ``rows``, ``store``, ``concurrent``). ``log`` gets a
    line as each figure is done."""
    cfg = config.resolved()
    dev = torch.device(cfg.device)
    machine = _machine(dev)  # before anything below can change the thread count
    images, labels, data_note = bench_arrays(cfg.batches * cfg.batch_size)
    rows = []
    for arch in cfg.archs:
        for size in cfg.sizes:
            ref_ips, model = None, _fresh_model(arch, size, dev)
            if cfg.reference:
                mean, std = model_input_stats(model)
                ref_ips = measure_reference(model, images, labels, mean, std, size,
                                            cfg.batch_size, cfg.augment, dev, cfg.ref_workers)
                log(f"{arch}@{size}: reference pipeline {ref_ips:.0f} img/s")
            cam, cam_note = (cam_ms(model.eval(), images[0]) if cfg.cam else (None, "not asked"))
            del model
            for mode in cfg.compile:
                try:
                    row = _row(cfg, dev, arch, size, mode, images, labels, ref_ips)
                except Exception as exc:  # e.g. a compiler bug in one mode: report, go on
                    _free(dev)
                    error = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
                    rows.append(_failed_row(arch, size, mode, error))
                    log(f"{arch}@{size}/{mode}: FAILED {error}")
                    continue
                row.update(cam_ms=cam, cam_note=cam_note)
                rows.append(row)
                log(f"{arch}@{size}/{mode}: trainer {row['train_ips']:.0f} img/s, pure "
                    f"{row['pure_ips']:.0f} img/s, overhead {row['overhead']:.3f}")
    store_ms, store_note = (store_query_ms(cfg.store_runs) if cfg.store_runs
                            else (None, "not asked"))
    concurrent = []
    for arch in cfg.archs if cfg.concurrent else ():
        for size in cfg.sizes:
            for k in cfg.concurrent:
                job = TrainerJob(arch, size, cfg.device, cfg.batches, cfg.batch_size,
                                 cfg.concurrent_passes, cfg.augment, cfg.compile[0],
                                 threads_each(k))
                try:
                    res = {"arch": arch, "size": size, **concurrent_throughput(job, k)}
                except RuntimeError as exc:  # one K failing (e.g. out of memory): go on
                    log(f"{arch}@{size}: {k} concurrent trainers FAILED: {str(exc)[-300:]}")
                    continue
                concurrent.append(res)
                base = next((c for c in concurrent if c["arch"] == arch and c["size"] == size
                             and c["k"] == 1), None)
                res["vs_k1"] = res["aggregate_ips"] / base["aggregate_ips"] if base else None
                log(f"{arch}@{size}: {k} concurrent trainers {res['aggregate_ips']:.0f} img/s")
    return {"machine": machine, "config": dataclasses.asdict(cfg), "data": data_note,
            "rows": rows, "store": {"ms": store_ms, "note": store_note},
            "concurrent": concurrent}


def write_json(report: dict, path: str | Path) -> Path:
    """Write the report as JSON (NaN becomes null); returns the path."""
    def clean(v):
        if isinstance(v, float) and v != v:
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(clean(report), indent=2, default=str))
    return path
