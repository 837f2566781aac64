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
import subprocess
import sys
from importlib import metadata
from typing import Any

from .. import paths

# What must be equal for two runs to count as computed in the same context.
CONTEXT_KEYS = ("device_type", "device_name", "threads", "torch", "timm", "commit")


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
    thread count, library versions, the code commit (and whether the checkout was edited)."""
    import torch
    return {**device_description(device), "threads": torch.get_num_threads(),
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
    return (f"{ctx.get('device_type', '?')} ({ctx.get('device_name', '?')}, "
            f"{ctx.get('threads', '?')} threads), torch {ctx.get('torch', '?')}, "
            f"timm {ctx.get('timm', '?')}, commit {commit}")
