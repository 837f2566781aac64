"""Shared pytest fixtures. Each block belongs to one area; add yours as a new block."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

import pytest

from synthmed_core.paths import REPO_ROOT

# No test store imports the repository's shipped results bundles (results/) unless the test
# asks for it (tests/test_bundles.py): set before any Store opens, inherited by subprocesses.
os.environ["SYNTHMED_SHIPPED"] = "none"

# ---- data layer (test_data_real, test_compose, test_synthetic_sets, test_importer) ----------

# The real PneumoniaMNIST: ../shared/data beside the repository, or SYNTHMED_TEST_MEDMNIST.
SHARED_DATA = Path(os.environ.get("SYNTHMED_TEST_MEDMNIST") or REPO_ROOT.parent / "shared" / "data")


@pytest.fixture
def shared_medmnist(monkeypatch) -> Path:
    """The shared real PneumoniaMNIST folder as SYNTHMED_MEDMNIST_ROOT, with downloads off."""
    if not (SHARED_DATA / "pneumoniamnist.npz").is_file():
        pytest.fail(f"shared real data not found at {SHARED_DATA}: the tests need "
                "../shared/data/pneumoniamnist.npz beside the repository")
    monkeypatch.setenv("SYNTHMED_MEDMNIST_ROOT", str(SHARED_DATA))
    monkeypatch.setenv("SYNTHMED_OFFLINE", "1")
    return SHARED_DATA


@pytest.fixture
def synth_data_root(tmp_path, monkeypatch) -> Path:
    """A fresh, empty SYNTHMED_DATA folder; synthetic sets go to ``<it>/synthetic``."""
    root = tmp_path / "synthmed-data"
    monkeypatch.setenv("SYNTHMED_DATA", str(root))
    return root


# ---- training and CLI (test_train, test_pretrain, test_cli) ----------------------------------


@pytest.fixture
def real_data(shared_medmnist, synth_data_root) -> Path:
    """Real PneumoniaMNIST from ../shared/data, and a fresh, empty data root for everything
    synthmed writes (runs, sets, the database)."""
    return synth_data_root


@pytest.fixture
def synthetic_set(real_data) -> str:
    """A small registered-on-disk synthetic set (60 normal, 60 pneumonia): real train images
    blurred and noised, so it differs from the real split. Returns its name."""
    from synth_helpers import write_blurred_real_set

    write_blurred_real_set("test-synth", 60, "test-fixture")
    return "test-synth"


# ---- synthetic generators, quality and selection (test_generators, test_quality, test_select)


@pytest.fixture
def one_thread():
    """One torch thread: these tests run beside other work on 2 cores, where two threads per
    process oversubscribe the CPU and run several times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_encoder():
    """A domain encoder trained for seconds (resnet18, 1 epoch on 512 real train images):
    enough for the metrics to rank real, blurred and noise images, meaningless otherwise."""
    import torch

    from synthmed_core.data.real import load_real
    from synthmed_core.synth.encoder import ClassifierConfig, DomainEncoder, train_classifier

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    train = load_real("train", root=SHARED_DATA)
    cfg = ClassifierConfig(epochs=1, batch_size=64, warmup_epochs=0, train_limit=512)
    model = train_classifier(train.images, train.labels, cfg, device="cpu")
    torch.set_num_threads(before)
    return DomainEncoder(model, {"kind": "domain", "arch": "resnet18", "profile": "test"})


# ---- the explorer's AppTests (test_app, test_app_grid, test_app_jobs) -----------------------


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    """An empty SYNTHMED_DATA for the app (and the default Store) to use; real test images
    from ../shared/data, never a download."""
    root = tmp_path / "data"
    monkeypatch.setenv("SYNTHMED_DATA", str(root))
    monkeypatch.delenv("SYNTHMED_DB", raising=False)
    monkeypatch.setenv("SYNTHMED_MEDMNIST_ROOT", str(SHARED_DATA))
    monkeypatch.setenv("SYNTHMED_OFFLINE", "1")
    return root


@pytest.fixture
def workers_started(monkeypatch) -> list:
    """Replaces jobs.ensure_worker: records each call instead of starting a process."""
    import jobs

    calls = []
    monkeypatch.setattr(jobs, "ensure_worker", lambda store=None, **kw: calls.append(kw))
    return calls


# ---- bundles from strangers (test_bundle_checks, test_bundle_safety, test_bundle_fuzz) -------


@pytest.fixture(scope="session")
def tiny_bundle_template(tmp_path_factory) -> Path:
    """A genuine tiny bundle (bundle_helpers.make_tiny_bundle), made once per session."""
    if not (SHARED_DATA / "pneumoniamnist.npz").is_file():
        pytest.fail(f"shared real data not found at {SHARED_DATA}")
    from bundle_helpers import make_tiny_bundle
    base = tmp_path_factory.mktemp("tiny-bundle")
    return make_tiny_bundle(base / "tiny", base / "source-root", SHARED_DATA)


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> tuple[Path, str]:
    """A resnet18 smoke run trained here (3 epochs of 128 images: seconds) and exported with its
    weights, once per session (test_bundle_weights, test_app_models): (bundle folder, run id)."""
    from synthmed_core.bundle import export_bundle
    from synthmed_core.cli import main as cli
    from synthmed_core.store import Store

    root = tmp_path_factory.mktemp("trainer")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {"SYNTHMED_DATA": str(root), "SYNTHMED_MEDMNIST_ROOT": str(SHARED_DATA),
                           "SYNTHMED_OFFLINE": "1", "SYNTHMED_SHIPPED": "none"}.items():
            mp.setenv(key, value)
        assert cli(["train", "--arch", "resnet18", "--profile", "smoke", "--epochs", "3",
                    "--train-limit", "128", "--no-progress"]) == 0
        store = Store()
        run_id = store.runs("finished")["run_id"].iloc[0]
        out = root / "bundles" / "models"
        export_bundle(store, out, run_ids=[run_id], with_weights=[run_id[:8]])
    return out, run_id


@pytest.fixture
def tiny_bundle(tiny_bundle_template, real_data, tmp_path) -> Path:
    """A fresh copy of the tiny bundle to damage, and an empty data root to import into."""
    import shutil
    return Path(shutil.copytree(tiny_bundle_template, tmp_path / "bundle"))


# ---- data roots built once per session (test_app_grid, test_heatmap_view, test_claims, ...) --


@pytest.fixture(scope="session")
def prefilled(tmp_path_factory) -> Callable[[Callable[[Path], object], Path], Path]:
    """``prefilled(build, dest)``: the data root ``build(root)`` makes (a store of tens of runs,
    a synthetic set), built once per session with SYNTHMED_DATA at a template folder, then
    copied to ``dest`` for each test that asks (every store call closes its connection, so the
    folder is a consistent copy). Writing nine runs costs seconds; copying them, milliseconds.
    ``build`` is a module-level function: it is the template's key."""
    templates: dict[Callable, Path] = {}

    def copy(build: Callable[[Path], object], dest: Path) -> Path:
        if build not in templates:
            root = tmp_path_factory.mktemp(f"prefilled-{build.__name__}")
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("SYNTHMED_DATA", str(root))
                mp.delenv("SYNTHMED_DB", raising=False)
                build(root)
            templates[build] = root
        shutil.copytree(templates[build], dest, dirs_exist_ok=True)
        return dest
    return copy


@pytest.fixture
def contrast(prefilled, tmp_path):
    """A store holding grid_helpers.fill_contrast's nine runs (base, a cell identical to it, a
    clearly worse one; 3 seeds each), copied from the session's template."""
    from grid_helpers import contrast_root

    from synthmed_core.store import Store
    return Store(prefilled(contrast_root, tmp_path / "contrast-root") / "synthmed.duckdb")
