"""ChestMNIST pretraining with the study's recipe, on a tiny ChestMNIST-schema file the test
makes, and its checkpoint used as init ``chestmnist`` for a PneumoniaMNIST run."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA

from synthmed_core.errors import ModelError
from synthmed_core.grid import make_run_spec
from synthmed_core.paths import REPO_ROOT
from synthmed_core.training.compose import build_plan
from synthmed_core.training.models import build_model, chestmnist_checkpoint_path
from synthmed_core.training.pretrain import N_FINDINGS, make_pretrain_spec, pretrain_chestmnist

pytestmark = pytest.mark.train

N_RANDOM = 256  # the smoke profile trains and validates on the first 256 rows


@pytest.fixture(scope="module")
def chestmnist_file(tmp_path_factory):
    """chestmnist.npz with medmnist's row counts (the loader checks them): the first rows of
    each split random images and findings, the rest zeros, so it compresses to almost nothing."""
    import medmnist

    path = tmp_path_factory.mktemp("chestmnist") / "chestmnist.npz"
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in medmnist.INFO["chestmnist"]["n_samples"].items():
        k = N_RANDOM if split != "test" else 16
        images = np.zeros((n, 28, 28), np.uint8)
        labels = np.zeros((n, N_FINDINGS), np.uint8)
        images[:k] = rng.integers(0, 256, (k, 28, 28), dtype=np.uint8)
        labels[:k] = rng.random((k, N_FINDINGS)) < 0.3
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels
    np.savez_compressed(path, **arrays)
    return path


@pytest.fixture
def medmnist_root(real_data, chestmnist_file, tmp_path, monkeypatch):
    """One medmnist folder with the tiny ChestMNIST file and the shared real PneumoniaMNIST."""
    root = tmp_path / "medmnist"
    root.mkdir()
    (root / "chestmnist.npz").symlink_to(chestmnist_file)
    (root / "pneumoniamnist.npz").symlink_to(SHARED_DATA / "pneumoniamnist.npz")
    monkeypatch.setenv("SYNTHMED_MEDMNIST_ROOT", str(root))
    return root


@pytest.fixture(autouse=True)
def one_torch_thread():
    # On a 2-core machine shared with other training, two torch threads oversubscribe the cores
    # and an epoch takes ~10x longer; one thread gives the same results.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _backbone(state: dict) -> dict:
    return {k: v for k, v in state.items() if not k.startswith("fc.")}


def test_smoke_pretrain_saves_the_recipe_and_its_weights_become_init_chestmnist(
        medmnist_root, monkeypatch):
    spec = make_pretrain_spec("resnet18", "smoke")
    assert (spec.optimizer, spec.lr, spec.batch_size, spec.decay_rate) == ("adam", 1e-3, 128, 0.1)
    assert spec.decay_at == (0.5, 0.75) and spec.input_size == 28
    assert make_pretrain_spec("resnet18", "paper").milestones == [50, 75]  # of 100 epochs

    card = pretrain_chestmnist(spec, device="cpu")
    path = chestmnist_checkpoint_path("resnet18", 28, "smoke")
    assert card["path"] == str(path) and path.is_file()
    assert card["metrics"]["train_images"] == N_RANDOM and card["metrics"]["val_images"] == N_RANDOM
    assert 0.0 <= card["metrics"]["val_macro_auroc"] <= 1.0
    ckpt = torch.load(path, map_location="cpu", weights_only=True)  # tensors + plain values only
    assert ckpt["spec"] == dataclasses.asdict(spec)
    assert {k: ckpt["spec"][k] for k in ("optimizer", "lr", "batch_size", "decay_at", "decay_rate")
            } == {"optimizer": "adam", "lr": 1e-3, "batch_size": 128, "decay_at": (0.5, 0.75),
                  "decay_rate": 0.1}
    assert (ckpt["arch"], ckpt["input_size"]) == ("resnet18", 28)
    assert ckpt["model"]["fc.weight"].shape == (N_FINDINGS, 512)  # the 14-finding head
    pretrained = _backbone(ckpt["model"])

    # Init chestmnist: every backbone tensor is the checkpoint's, the head is a fresh 2-class one.
    model = build_model("resnet18", "chestmnist", 28, chestmnist_checkpoint=str(path))
    assert model.synthmed["weights"] == str(path)
    torch.testing.assert_close(model.conv1.weight, pretrained["conv1.weight"], rtol=0, atol=0)
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in pretrained.items())
    assert state["fc.weight"].shape == (2, 512)
    # Without an explicit path it finds the one checkpoint for this arch and input size.
    found = build_model("resnet18", "chestmnist", 28)
    assert torch.equal(found.conv1.weight, pretrained["conv1.weight"])
    with pytest.raises(ModelError, match="input size 28"):
        build_model("resnet18", "chestmnist", 64, chestmnist_checkpoint=str(path))

    # A smoke PneumoniaMNIST run with init chestmnist starts from exactly those weights.
    from synthmed_core.training import train as train_mod

    at_start = {}
    build = train_mod._build_model

    def spy(run_spec):
        net = build(run_spec)
        at_start.update({k: v.detach().clone() for k, v in net.state_dict().items()})
        return net

    monkeypatch.setattr(train_mod, "_build_model", spy)
    run = make_run_spec("resnet18", "chestmnist", "base", seed=0, profile="smoke", epochs=1)
    result = train_mod.train_run(run, build_plan(run), medmnist_root.parent / "run", device="cpu")
    assert all(torch.equal(at_start[k], v) for k, v in pretrained.items())
    assert at_start["fc.weight"].shape == (2, 512)
    assert 0.0 <= result.metrics["accuracy"] <= 1.0 and len(result.test_probs) == 624
    trained = torch.load(result.checkpoint, map_location="cpu", weights_only=False)["model"]
    assert not torch.equal(trained["conv1.weight"], pretrained["conv1.weight"])  # it did train


def test_lr_drops_tenfold_after_half_and_three_quarters_of_the_epochs(medmnist_root, tmp_path):
    spec = make_pretrain_spec("resnet18", "smoke", epochs=4)
    assert spec.milestones == [2, 3]
    card = pretrain_chestmnist(spec, tmp_path / "four-epochs.pt", device="cpu")
    # The lr each epoch trained with: 1e-3 for epochs 1-2, x0.1 after epoch 2, x0.1 after 3.
    assert [h["lr"] for h in card["history"]] == pytest.approx([1e-3, 1e-3, 1e-4, 1e-5])
    assert [h["epoch"] for h in card["history"]] == [0, 1, 2, 3]
    assert card["path"] == str(tmp_path / "four-epochs.pt")
    assert not chestmnist_checkpoint_path("resnet18", 28, "smoke").exists()  # --out respected


def test_init_chestmnist_without_a_checkpoint_names_the_pretrain_command(real_data, tmp_path):
    command = "python -m synthmed_core pretrain chestmnist --arch resnet18"
    with pytest.raises(ModelError, match="found none") as none:
        build_model("resnet18", "chestmnist", 28)
    assert command in str(none.value)
    missing = tmp_path / "nowhere.pt"
    with pytest.raises(ModelError, match="ChestMNIST checkpoint not found") as gone:
        build_model("resnet18", "chestmnist", 28, chestmnist_checkpoint=str(missing))
    assert command in str(gone.value) and str(missing) in str(gone.value)
    # What a training run hits: it looks for this profile's checkpoint and says how to make it.
    from synthmed_core.training.train import train_run
    run = make_run_spec("resnet18", "chestmnist", "base", seed=0, profile="smoke")
    with pytest.raises(ModelError) as in_run:
        train_run(run, build_plan(run), tmp_path / "run", device="cpu")
    assert command in str(in_run.value)
    assert str(chestmnist_checkpoint_path("resnet18", 28, "smoke")) in str(in_run.value)


def test_cli_pretrain_chestmnist_saves_and_registers_the_checkpoint(medmnist_root, real_data):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHMED_")}
    env["SYNTHMED_SHIPPED"] = "none"  # a test's data root holds only what the test made
    env.update(SYNTHMED_DATA=str(real_data), SYNTHMED_MEDMNIST_ROOT=str(medmnist_root),
               SYNTHMED_OFFLINE="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "synthmed_core", "pretrain", "chestmnist",
                           "--arch", "resnet18", "--profile", "smoke", "--device", "cpu",
                           "--no-progress"], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    path = real_data / "pretrained" / "chestmnist-resnet18-28-smoke.pt"
    assert f"saved {path}" in proc.stdout and "val macro AUROC" in proc.stdout

    from synthmed_core.store import Store
    rows = Store().pretrains()
    assert list(rows["name"]) == ["chestmnist-resnet18-28-smoke"]
    assert rows["path"].iloc[0] == str(path) and path.is_file()
    assert '"optimizer": "adam"' in rows["card_json"].iloc[0]

    # data check validates both files of the folder
    proc = subprocess.run([sys.executable, "-m", "synthmed_core", "data", "check", "--flag",
                           "pneumoniamnist", "chestmnist"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert '"flag": "chestmnist"' in proc.stdout and '"rows": 78468' in proc.stdout
