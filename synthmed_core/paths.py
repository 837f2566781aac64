"""Every file location synthmed uses, derived from the environment.

``SYNTHMED_DATA`` (default ``<repo>/data``) holds everything synthmed writes;
``SYNTHMED_MEDMNIST_ROOT`` (default ``$SYNTHMED_DATA/medmnist``) holds medmnist npz files;
``SYNTHMED_DB`` (default ``$SYNTHMED_DATA/synthmed.duckdb``) is the results database.
Functions, not constants: tests and the app may change the environment at run time.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser().resolve() if value else default


def data_root() -> Path:
    """Root folder for everything synthmed writes (created on demand by callers)."""
    return _env_path("SYNTHMED_DATA", REPO_ROOT / "data")


def medmnist_root() -> Path:
    """Folder holding medmnist npz files (``pneumoniamnist.npz``, ``chestmnist.npz``)."""
    return _env_path("SYNTHMED_MEDMNIST_ROOT", data_root() / "medmnist")


def db_path() -> Path:
    """The DuckDB results database."""
    return _env_path("SYNTHMED_DB", data_root() / "synthmed.duckdb")


def runs_dir() -> Path:
    """One sub-folder per run: checkpoints and the frozen spec."""
    return data_root() / "runs"


def run_dir(run_id: str) -> Path:
    return runs_dir() / run_id


def synthetic_dir() -> Path:
    """One sub-folder per synthetic set: ``images.npz`` + ``card.json``."""
    return data_root() / "synthetic"


def models_dir() -> Path:
    """Weights that came in bundles (``<run id>-<sha16>.safetensors`` + a JSON sidecar):
    Grad-CAM and Predict use them for runs not trained here."""
    return data_root() / "models"


def pretrained_dir() -> Path:
    """Our own pretraining checkpoints (init ``chestmnist``)."""
    return data_root() / "pretrained"


def weights_dir() -> Path:
    """Where a user puts ImageNet weights for offline use: ``<timm model name>.(pth|safetensors|bin)``."""
    return _env_path("SYNTHMED_WEIGHTS", data_root() / "weights")


def offline() -> bool:
    """True when ``SYNTHMED_OFFLINE=1``: never attempt a download."""
    return os.environ.get("SYNTHMED_OFFLINE", "").strip().lower() in {"1", "true", "yes"}


def jobs_dir() -> Path:
    """Background jobs: ``logs/`` (one file per job), ``workers/`` (each worker's own output)."""
    return data_root() / "jobs"


def job_log(job_id: int) -> Path:
    """The log of one job: what it did, attempt by attempt, with the traceback of a failure."""
    return jobs_dir() / "logs" / f"{int(job_id)}.log"


def worker_log_dir() -> Path:
    """stdout/stderr of each detached worker process."""
    return jobs_dir() / "workers"


def shipped_results_dir() -> Path | None:
    """The results bundles shipped with synthmed, which every data root imports once:
    ``SYNTHMED_SHIPPED`` (a folder; empty or "none" turns the import off), default
    ``<repo>/results``."""
    value = os.environ.get("SYNTHMED_SHIPPED")
    if value is not None and value.strip().lower() in {"", "none", "0", "off"}:
        return None
    return _env_path("SYNTHMED_SHIPPED", REPO_ROOT / "results")
