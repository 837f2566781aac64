"""Clocks and memory gauges that mean the same on every device: device work is asynchronous,
so a clock is read only after the device has finished (``torch.cuda.synchronize``)."""
from __future__ import annotations

import resource
import time
from pathlib import Path
from typing import Callable

import torch

_PROC_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device) -> float:
    """Wall seconds of ``fn()``, the device drained before and after."""
    synchronize(device)
    t0 = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - t0


def timed_both(fn: Callable[[], object], device: torch.device) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds) of ``fn()``, the device drained before and
    after. On a CPU shared with other work, CPU seconds count only what this process did:
    with one torch thread they are the least disturbed measure of work (with several, threads
    spinning while they wait for a preempted sibling add to them)."""
    synchronize(device)
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    synchronize(device)
    return time.perf_counter() - t0, time.process_time() - c0


def _status_kib(field: str) -> int | None:
    try:
        for line in _PROC_STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


class _CudaPeak:
    kind = "cuda max_memory_allocated"

    def __init__(self, device: torch.device) -> None:
        self.device = device
        torch.cuda.reset_peak_memory_stats(device)

    def mib(self) -> float:
        return torch.cuda.max_memory_allocated(self.device) / 2**20


class _CpuPeak:
    """Peak resident memory of this process above its level at the start. Linux resets the
    high-water mark (VmHWM) when "5" is written to /proc/self/clear_refs; elsewhere the
    process-lifetime ru_maxrss is used, which only rises (so a smaller row reads 0)."""

    def __init__(self, device: torch.device) -> None:
        self.start_kib = _status_kib("VmRSS")
        try:
            _CLEAR_REFS.write_text("5")
            self.kind = "cpu peak RSS above start (VmHWM)"
            self._read = lambda: _status_kib("VmHWM")
        except OSError:
            self.kind = "cpu peak RSS rise (ru_maxrss)"
            self.start_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            self._read = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def mib(self) -> float:
        peak = self._read()
        if peak is None or self.start_kib is None:
            return float("nan")
        return max(0, peak - self.start_kib) / 1024


# Which gauge a device type gets.
PEAK_GAUGES = {"cuda": _CudaPeak, "cpu": _CpuPeak}


def peak_memory(device: torch.device):
    """A gauge started now: ``.mib()`` is the peak since then, ``.kind`` says what it counts."""
    return PEAK_GAUGES.get(device.type, _CpuPeak)(device)
