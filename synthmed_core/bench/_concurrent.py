"""Aggregate throughput of K trainer processes sharing one device: the figure that says how
many job workers per GPU (``python -m jobs worker --per-gpu K``) keep a card busy with small
models. Each process runs the real trainer epoch (``_trainer.trainer_pass``); they start their
timed passes together at a barrier, and the aggregate is all their images over the span from
the first start to the last finish."""
from __future__ import annotations

import multiprocessing as mp
import os
import queue as queue_mod
import time
import traceback
from dataclasses import dataclass

import torch

from ._data import bench_arrays
from ._measure import peak_memory, synchronize

TIMEOUT_S = 900.0


@dataclass(frozen=True)
class TrainerJob:
    """What every one of the K processes trains."""

    arch: str
    size: int
    device: str
    batches: int = 8
    batch_size: int = 128
    passes: int = 2
    augment: bool = True
    compile: str = "off"
    threads: int = 1


def _worker(job: TrainerJob, rank: int, barrier, out) -> None:
    try:
        torch.set_num_threads(job.threads)
        from ._trainer import build_rig, trainer_pass
        device = torch.device(job.device)
        images, labels, _ = bench_arrays(job.batches * job.batch_size, seed=rank)
        rig = build_rig(job.arch, job.size, device, images, labels, job.batch_size,
                        job.augment, job.compile, seed=rank)
        trainer_pass(rig, 0, limit=2 * job.batch_size)  # warm-up (and compilation)
        synchronize(device)
        gauge = peak_memory(device)
        barrier.wait(timeout=TIMEOUT_S)
        t0 = time.time()
        for p in range(job.passes):
            trainer_pass(rig, p + 1)
        synchronize(device)
        out.put((rank, t0, time.time(), rig.n * job.passes, gauge.mib(), None))
    except BaseException:
        out.put((rank, 0.0, 0.0, 0, 0.0, traceback.format_exc()))
        barrier.abort()


def concurrent_throughput(job: TrainerJob, k: int) -> dict:
    """Run ``k`` trainer processes of ``job`` at once (spawned: safe with CUDA). Returns the
    aggregate images/s, the per-process mean, the sum of the processes' peak memory (MiB,
    ``_measure.peak_memory`` of each) and the wall span. Raises RuntimeError with the failing
    process's traceback."""
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(k), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(job, r, barrier, out), daemon=True)
             for r in range(k)]
    for p in procs:
        p.start()
    results = []
    try:
        for _ in range(k):
            results.append(out.get(timeout=TIMEOUT_S))
    except queue_mod.Empty:
        raise RuntimeError(f"{k} concurrent trainers gave no answer within {TIMEOUT_S:.0f} s")
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.terminate()
    errors = [r[5] for r in results if r[5]]
    if errors:
        raise RuntimeError(f"a concurrent trainer failed:\n{errors[0]}")
    span = max(r[2] for r in results) - min(r[1] for r in results)
    images = sum(r[3] for r in results)
    return {"k": k, "aggregate_ips": images / span,
            "per_process_ips": sum(r[3] / (r[2] - r[1]) for r in results) / k,
            "peak_mem_mib_sum": sum(r[4] for r in results), "span_s": span,
            "threads_each": job.threads}


def threads_each(k: int) -> int:
    """CPU threads per process when ``k`` share this machine (as jobs' default_threads)."""
    return max(1, (os.cpu_count() or 1) // max(1, k))
