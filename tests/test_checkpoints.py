"""Checkpoints are loaded weights-only: a file whose unpickling would run code is refused before
any of it runs, wherever its path came from (a --checkpoint option, a set's card); everything
synthmed writes still loads, and ``save`` refuses what a weights-only load could not read."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from synthmed_core.errors import DataError, SynthmedError
from synthmed_core.explorer import gallery
from synthmed_core.training import checkpoints as ck


class _Payload:
    """Unpickles as ``exec(code)``: what a hostile .pt file holds."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self):
        return (exec, (self.code,))


def evil_checkpoint(path: Path, marker: Path, **fields) -> Path:
    """A torch.save'd dict that creates ``marker`` when unpickled with weights_only=False."""
    torch.save({**fields, "x": _Payload(f"open({str(marker)!r}, 'w').write('ran')")}, path)
    return path


def test_a_checkpoint_whose_unpickling_runs_code_is_refused_before_the_code_runs(tmp_path):
    path = evil_checkpoint(tmp_path / "evil.pt", tmp_path / "ran")
    with pytest.raises(DataError, match="not loaded") as info:
        ck.load(path)
    assert "exec" in str(info.value)  # it names what it refused
    assert not (tmp_path / "ran").exists()


def test_a_training_checkpoint_with_optimizer_scheduler_and_rng_state_loads_weights_only(tmp_path):
    from synthmed_core.training.loop import make_optimizer
    model = torch.nn.Linear(3, 2)
    opt, sched = make_optimizer(model, 1e-3, 0.05, 2, 1, 4)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    state = {"run_id": "r", "spec": {"seed": 0, "extra": [["a", 1]]}, "epoch": 0,
             "model": model.state_dict(), "optimizer": opt.state_dict(),
             "scheduler": sched.state_dict(), "rng": ck.rng_state(torch.Generator()),
             "best": {"score": (0.5, -0.7), "epoch": 0, "phase": 0},
             "history": [{"epoch": 0, "val_auroc": float("nan")}], "elapsed_s": 1.5}
    ck.save(state, tmp_path / "last.pt")
    loaded = torch.load(tmp_path / "last.pt", weights_only=True)
    assert loaded["best"] == state["best"] and loaded["scheduler"] == state["scheduler"]


def test_a_generator_checkpoint_loads_weights_only(tmp_path, one_thread):
    from synthmed_core.synth.generators import make_generator
    for method in ("cyclegan", "ddpm"):
        make_generator(method, "smoke", 0, "cpu").save(tmp_path / f"{method}.pt")
        assert torch.load(tmp_path / f"{method}.pt", weights_only=True)["method"] == method


def test_save_refuses_a_value_a_weights_only_load_could_not_read(tmp_path):
    with pytest.raises(TypeError, match=r"\['metrics'\]\['auroc'\].*numpy"):
        ck.save({"metrics": {"auroc": np.float64(0.9)}}, tmp_path / "x.pt")
    assert not list(tmp_path.iterdir())  # nothing written, not even a temporary file


def test_synth_generate_refuses_a_checkpoint_with_a_payload_without_running_it(real_data, tmp_path,
                                                                              one_thread):
    from synthmed_core.synth.generate import generate
    path = evil_checkpoint(tmp_path / "evil.pt", tmp_path / "ran", method="cyclegan")
    with pytest.raises(SynthmedError, match="not a synthmed generator checkpoint"):
        generate("cyclegan", "smoke", "cg2", checkpoint=path, device="cpu")
    assert not (tmp_path / "ran").exists()


def _domain_card(path: str, profile: str = "smoke", seed: int = 0) -> dict:
    from dataclasses import asdict

    from synthmed_core.synth.encoder import ENCODER_PROFILES
    config = {**asdict(ENCODER_PROFILES[profile]), "seed": seed}
    return {"quality": {"feature": {"kind": "domain", "encoder": {
        "kind": "domain", "arch": config["arch"], "profile": profile, "config": config,
        "path": path}}}}


def test_an_encoder_path_edited_into_a_card_is_never_opened(real_data, tmp_path):
    evil = evil_checkpoint(tmp_path / "evil.pt", tmp_path / "ran")
    assert gallery.encoder_file(_domain_card(str(evil))) is None
    card = _domain_card(str(evil))
    card["quality"]["feature"]["encoder"]["profile"] = "../../../tmp"  # no path either
    assert gallery.encoder_file(card) is None
    assert not (tmp_path / "ran").exists()


def test_the_encoder_a_card_names_is_found_in_the_data_root_and_loaded_weights_only(real_data,
                                                                                   tmp_path):
    from synthmed_core.synth.encoder import ClassifierConfig, encoder_path
    card = _domain_card("/anywhere/else.pt")
    config = card["quality"]["feature"]["encoder"]["config"]
    path = encoder_path(ClassifierConfig(**config), "smoke")
    path.parent.mkdir(parents=True)
    evil_checkpoint(path, tmp_path / "ran")  # a hostile file where the cache would be
    assert gallery.encoder_file(json.loads(json.dumps(card))) == path
    with pytest.raises(DataError):
        gallery.load_encoder(path)
    assert not (tmp_path / "ran").exists()

