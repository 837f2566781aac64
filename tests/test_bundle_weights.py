"""Bundles that carry models: a trained run's weights travel as float16 safetensors named by
their content, are checked on import (caps, sha256, the run's spec, fidelity to the run's
stored test predictions) and refused whole when anything is wrong; Grad-CAM and Predict then
load the run on a machine that never trained it."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from synthmed_core import paths
from synthmed_core.bundle import _weights as bw
from synthmed_core.bundle import export_bundle, import_bundle
from synthmed_core.bundle._format import bundle_id
from synthmed_core.cli import main as cli
from synthmed_core.errors import BundleError, ModelError
from synthmed_core.store import Store


@pytest.fixture
def elsewhere(tmp_path, monkeypatch, shared_medmnist) -> Store:
    """Another machine: a brand-new data root, no shipped results."""
    monkeypatch.setenv("SYNTHMED_DATA", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("SYNTHMED_SHIPPED", "none")
    return Store(tmp_path / "elsewhere" / "synthmed.duckdb")


def copy_bundle(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    return dst


def weights_path(bundle: Path) -> Path:
    return next((bundle / bw.WEIGHTS_DIR).glob("*.safetensors"))


def rewrite_weights(bundle: Path, change) -> None:
    """Replace the bundle's weights by ``change(state, meta)`` of them and recompute every hash
    in the manifest, the file's name and the bundle id, as a careful forger would."""
    import safetensors.torch
    old = weights_path(bundle)
    data = old.read_bytes()
    meta = bw._header(data, "test")
    state = safetensors.torch.load(data)
    change(state, meta)
    new_data = safetensors.torch.save(state, metadata={"synthmed": json.dumps(meta)})
    sha = hashlib.sha256(new_data).hexdigest()
    new_name = f"{bw.WEIGHTS_DIR}/{old.name.rsplit('-', 1)[0]}-{sha[:16]}.safetensors"
    old.unlink()
    (bundle / new_name).write_bytes(new_data)
    manifest = json.loads((bundle / "manifest.json").read_text())
    old_name = f"{bw.WEIGHTS_DIR}/{old.name}"
    manifest["files"].pop(old_name)
    manifest["files"][new_name] = {"sha256": sha, "bytes": len(new_data)}
    manifest["weights"][new_name] = {**manifest["weights"].pop(old_name), **meta}
    manifest["bundle_id"] = bundle_id(manifest["files"])
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def negate_classifier(state: dict, meta: dict) -> None:
    state["fc.weight"] = -state["fc.weight"]
    state["fc.bias"] = -state["fc.bias"]


def assert_nothing_imported(store: Store) -> None:
    assert store.bundles().empty
    assert store.runs().empty
    assert not list(paths.models_dir().glob("*")) if paths.models_dir().is_dir() else True


def test_export_writes_float16_safetensors_named_by_run_and_content_hash(trained):
    bundle, run_id = trained
    manifest = json.loads((bundle / "manifest.json").read_text())
    (name, entry), = manifest["weights"].items()
    data = (bundle / name).read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    assert name == f"weights/{run_id}-{sha[:16]}.safetensors"
    assert manifest["files"][name] == {"sha256": sha, "bytes": len(data)}
    assert entry["dtype"] == "float16" and entry["arch"] == "resnet18"
    assert entry["input_size"] == 28 and entry["num_classes"] == 2
    assert entry["fidelity"]["accuracy_diff_images"] <= 1
    assert entry["fidelity"]["max_abs_dp"] < 0.01  # float16 of a float32 model
    assert 0.0 <= entry["val_threshold"] <= 1.0  # its record's, for Predict


def test_re_exporting_writes_the_same_file_and_no_second_copy(trained, monkeypatch,
                                                             shared_medmnist):
    bundle, run_id = trained
    monkeypatch.setenv("SYNTHMED_DATA", str(bundle.parent.parent))
    monkeypatch.setenv("SYNTHMED_SHIPPED", "none")
    before = sorted(p.name for p in (bundle / "weights").iterdir())
    export_bundle(Store(), bundle, run_ids=[run_id], with_weights=[run_id])
    assert sorted(p.name for p in (bundle / "weights").iterdir()) == before
    export_bundle(Store(), bundle, run_ids=[run_id])  # without weights: none left behind
    assert not list((bundle / "weights").iterdir())
    assert "weights" not in json.loads((bundle / "manifest.json").read_text())
    export_bundle(Store(), bundle, run_ids=[run_id], with_weights=[run_id])
    assert sorted(p.name for p in (bundle / "weights").iterdir()) == before


def test_imported_weights_give_the_run_model_and_its_stored_predictions(trained, elsewhere):
    from synthmed_core.data.real import load_real
    from synthmed_core.explain.cams import load_run_model, predict_proba
    bundle, run_id = trained
    report = import_bundle(elsewhere, bundle)
    assert report.weights == [run_id]
    assert bw.weights_file(run_id) is not None
    model = load_run_model(elsewhere, run_id)
    probs = predict_proba(model, load_real("test").images)
    stored = elsewhere.predictions([run_id])["prob"].to_numpy()
    assert np.max(np.abs(probs - stored)) < 0.01
    assert model.synthmed["weights_from"].startswith("bundle ")


@pytest.mark.parametrize("rehash", [False, True], ids=["manifest-hash-kept",
                                                       "manifest-hash-recomputed"])
def test_altered_weights_are_refused_with_exit_2_and_nothing_imported(trained, elsewhere,
                                                                     tmp_path, capsys, rehash):
    bundle = copy_bundle(trained[0], tmp_path)
    if rehash:  # hashes consistent: the fidelity check is what refuses them
        rewrite_weights(bundle, negate_classifier)
    else:
        path = weights_path(bundle)
        data = bytearray(path.read_bytes())
        data[-1000] ^= 0xFF
        path.write_bytes(bytes(data))
    assert cli(["results", "import", str(bundle)]) == 2
    err = capsys.readouterr().err
    assert ("do not reproduce the run's stored test predictions" if rehash
            else "does not match the manifest") in err
    assert_nothing_imported(elsewhere)


def test_weights_whose_header_contradicts_the_run_spec_are_refused(trained, elsewhere, tmp_path,
                                                                   capsys):
    bundle = copy_bundle(trained[0], tmp_path)
    rewrite_weights(bundle, lambda state, meta: meta.update(input_size=64))
    assert cli(["results", "import", str(bundle)]) == 2
    assert "input_size 64 in the file" in capsys.readouterr().err
    assert_nothing_imported(elsewhere)


def test_weights_over_the_size_cap_are_refused(trained, elsewhere, monkeypatch):
    monkeypatch.setattr(bw, "MAX_FILE_BYTES", 1_000_000)
    with pytest.raises(BundleError, match="capped at 1 MB"):
        import_bundle(elsewhere, trained[0])
    assert_nothing_imported(elsewhere)


def test_export_refuses_a_run_whose_weights_are_not_here(trained, elsewhere):
    import_bundle(elsewhere, trained[0])
    shutil.rmtree(paths.models_dir())
    with pytest.raises(BundleError, match="has no weights on this machine"):
        export_bundle(elsewhere, paths.data_root() / "out", with_weights=[trained[1]])


def test_shipped_weights_are_checked_for_fidelity_on_their_first_use(trained, elsewhere,
                                                                     tmp_path):
    from synthmed_core.explain.cams import load_run_model
    bundle = copy_bundle(trained[0], tmp_path)
    rewrite_weights(bundle, negate_classifier)
    import_bundle(elsewhere, bundle, shipped=True)  # the app opening: no torch, no re-predict
    with pytest.raises(ModelError, match="do not reproduce"):
        load_run_model(elsewhere, trained[1])


def test_first_use_records_the_fidelity_beside_the_weights(trained, elsewhere):
    from synthmed_core.explain.cams import load_run_model
    import_bundle(elsewhere, trained[0], shipped=True)
    sidecar = bw.weights_file(trained[1]).with_suffix(".json")
    assert "fidelity_here" not in json.loads(sidecar.read_text())
    load_run_model(elsewhere, trained[1])
    fid = json.loads(sidecar.read_text())["fidelity_here"]
    assert fid["n"] == 624 and fid["accuracy_diff_images"] <= 1


def test_installed_weights_changed_afterwards_are_refused(trained, elsewhere):
    from synthmed_core.explain.cams import load_run_model
    import_bundle(elsewhere, trained[0])
    path = bw.weights_file(trained[1])
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="changed after it was imported"):
        load_run_model(elsewhere, trained[1])


def test_results_list_prints_the_repository_weights_total(trained, elsewhere, monkeypatch,
                                                           capsys):
    monkeypatch.setenv("SYNTHMED_SHIPPED", str(trained[0].parent))
    assert cli(["results", "list"]) == 0
    size = weights_path(trained[0]).stat().st_size
    assert f"{size / 1e6:.1f} MB in 1 files (budget 70 MB)" in capsys.readouterr().out


def test_cam_bench_times_a_shipped_model_beside_the_bare_library_call(trained, elsewhere, capsys,
                                                                      one_thread):
    import_bundle(elsewhere, trained[0], shipped=True)
    assert cli(["cam-bench", "--run", trained[1][:8], "--methods", "GradCAM",
                "--repeats", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "the runs' own weights" in lines[0]
    row = lines[2].split()
    assert row[:6] == ["resnet18", "28px", trained[1][:8], "layer2", "(4x4)", "GradCAM"]
    ours, library, ratio = map(float, row[6:9])
    assert ours > 0 and library > 0 and ratio == pytest.approx(ours / library, abs=0.01)
