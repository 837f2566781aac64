"""Where and how a run was computed: its execution context, stored with every run.

Two runs of the same spec (same run id) may differ in their numbers when the context differs
(another device, thread count, library version or code commit): that is a *replicate*, kept
beside the run. Different numbers in the same context are a *conflict* (something is not
deterministic, or a file was edited). ``CONTEXT_KEYS`` says what "the same context" means.
"""
from __future__ import annotations

import functools
import os
import platform
import re
import subprocess
import sys
from importlib import metadata
from typing import Any

from .. import paths

# What must be equal for two runs to count as computed in the same context.
# ``cpu_capability`` is the kernel family PyTorch (and so oneDNN) dispatches to: AVX2 and AVX512
# machines of one model name pick other kernels and give other last bits.
CONTEXT_KEYS = ("device_type", "device_name", "cpu_capability", "threads", "torch", "timm",
                "commit")
# CPU flags that change which kernels oneDNN and PyTorch pick (recorded, shown when they differ).
_ISA_FLAGS = re.compile(r"^(avx2|fma|f16c|avx512\w*|avx_vnni\w*|amx\w*)$")


@functools.lru_cache(maxsize=1)
def code_version() -> dict[str, Any]:
    """The git commit of this checkout and whether its tracked code differs from it (results/
    left out) (``{"commit": None}`` outside a git checkout)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=paths.REPO_ROOT, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        # results/ is what synthmed writes into the repository (bundles): not code.
        dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", ".",
                         ":(exclude)results"))
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty}


@functools.lru_cache(maxsize=1)
def cpu_name() -> str:
    """The CPU model as the kernel names it (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


@functools.lru_cache(maxsize=1)
def cpu_isa() -> list[str]:
    """The vector-instruction flags of this CPU that kernel choice depends on (Linux; [] where
    /proc/cpuinfo is absent), e.g. ``["avx2", "avx512_bf16", "avx512f", "fma"]``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return sorted(f for f in line.split(":", 1)[1].split() if _ISA_FLAGS.match(f))
    except OSError:
        pass
    return []


@functools.lru_cache(maxsize=1)
def cpu_kernels() -> dict[str, Any]:
    """What decides which CPU kernels torch runs: ``cpu_capability`` (torch's dispatch level,
    e.g. AVX2 or AVX512), the CPU's ISA flags, and the oneDNN and MKL versions it was built with."""
    import torch
    config = torch.__config__.show()
    onednn = re.search(r"MKL-DNN v([\w.]+)", config)
    mkl = re.search(r"Math Kernel Library Version ([\w.]+)", config)
    return {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "cpu_isa": cpu_isa(),
            "onednn": onednn.group(1) if onednn else None, "mkl": mkl.group(1) if mkl else None}


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def device_description(device: str = "cpu") -> dict[str, Any]:
    """``device_type`` (cpu, cuda, ...), ``device_name`` (GPU or CPU model) and ``cores``."""
    dtype = str(device).split(":")[0] or "cpu"
    name = cpu_name()
    if dtype == "cuda":
        import torch
        index = int(str(device).split(":")[1]) if ":" in str(device) else 0
        name = torch.cuda.get_device_name(index)
    return {"device_type": dtype, "device_name": name, "cores": os.cpu_count()}


def execution_context(device: str = "cpu") -> dict[str, Any]:
    """Everything about this process that can change a run's numbers: the device, the torch
    thread count, the CPU's kernel family (and its oneDNN/MKL versions), library versions, the
    code commit (and whether the checkout was edited)."""
    import torch
    return {**device_description(device), **cpu_kernels(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "timm": _version("timm"), "numpy": _version("numpy"),
            "python": sys.version.split()[0], **code_version()}


def same_context(a: dict | None, b: dict | None) -> bool:
    """True when both contexts are known and agree on every ``CONTEXT_KEYS`` entry."""
    if not a or not b:
        return False
    return all(a.get(k) == b.get(k) for k in CONTEXT_KEYS)


def describe(ctx: dict | None) -> str:
    """One line for people: ``cpu (AMD EPYC ..., 2 threads), torch 2.14.1, commit 1a2b3c4``."""
    if not ctx:
        return "context not recorded"
    commit = (ctx.get("commit") or "?")[:7] + ("+edits" if ctx.get("dirty") else "")
    isa = f" {ctx['cpu_capability']}" if ctx.get("cpu_capability") else ""
    return (f"{ctx.get('device_type', '?')} ({ctx.get('device_name', '?')}{isa}, "
            f"{ctx.get('threads', '?')} threads), torch {ctx.get('torch', '?')}, "
            f"timm {ctx.get('timm', '?')}, commit {commit}")
