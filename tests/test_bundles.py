"""Results that travel: a bundle exported from one store and imported into another gives the
same tables; imports are idempotent, refuse damaged bundles whole, keep other contexts'
numbers as replicates and report conflicts; shipped bundles are imported once per data root."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synthmed_core import bundle as bd
from synthmed_core.explorer.claims import check_claims
from synthmed_core.explorer.claims_text import format_claims
from synthmed_core.analysis.compare import CellKey, compare_cells, format_comparison
from synthmed_core.explorer.report import format_table, report_table
from synthmed_core.cli import main as cli
from synthmed_core.errors import BundleError
from synthmed_core.grid import RunSpec
from synthmed_core.store import Store

from grid_helpers import add_run as _add_run
from grid_helpers import fill_contrast, probs_with_accuracy, real_labels
from synth_helpers import write_blurred_real_set

CPU_1 = {"device_type": "cpu", "device_name": "Test CPU", "threads": 1, "torch": "2.14.1",
         "timm": "1.0.31", "commit": "abc"}
CPU_2 = {**CPU_1, "threads": 2}


def labels():
    """The real test labels: a bundle's runs must predict every real test and val image."""
    return real_labels("test")


def add_run(store: Store, setting: str, seed: int, probs, y, **kw) -> str:
    """grid_helpers.add_run with val predictions on the real val split (~80% right)."""
    y_val = real_labels("val")
    return _add_run(store, setting, seed, probs, y,
                    val=(y_val, probs_with_accuracy(y_val, 0.8, 1000 + seed)), **kw)


def source_root(root: Path) -> None:
    """A data root whose ``source.duckdb`` holds 9 finished runs (3 cells x 3 seeds) on a
    registered 40-image set (for ``prefilled``)."""
    store = Store(root / "source.duckdb")
    write_blurred_real_set("fake-set", 20, "bundle test")
    from synthmed_core.data.synthetic import load_set, set_dir
    store.register_synthetic_set("fake-set", load_set("fake-set")[1], str(set_dir("fake-set")))
    fill_contrast(store, real=True)


@pytest.fixture
def source(real_data, prefilled) -> Store:
    """The store source_root makes, in this test's data root."""
    return Store(prefilled(source_root, real_data) / "source.duckdb")


@pytest.fixture
def exported(source, tmp_path) -> Path:
    out = tmp_path / "bundles" / "contrast"
    bd.export_bundle(source, out)
    return out


def fresh_root(tmp_path, monkeypatch, name: str = "elsewhere") -> Store:
    """A second machine: an empty data root (no synthetic sets) and its database."""
    monkeypatch.setenv("SYNTHMED_DATA", str(tmp_path / name))
    return Store(tmp_path / name / "synthmed.duckdb")


def outputs(store: Store) -> tuple[str, str, str]:
    report = format_table(report_table(store, archs=["resnet50"], profile="smoke"))
    res = compare_cells(store, CellKey.parse("resnet50/scratch/synthetic_base/fake-set", "smoke"),
                        CellKey.parse("resnet50/scratch/base", "smoke"), n_boot=200)
    return report, format_comparison(res), format_claims(check_claims(store, "smoke"))


def test_export_then_import_elsewhere_gives_the_same_report_compare_and_claims(
        source, exported, tmp_path, monkeypatch):
    before = outputs(source)
    target = fresh_root(tmp_path, monkeypatch)
    report = bd.import_bundle(target, exported)
    assert len(report.added) == 9 and not report.conflicts
    assert outputs(target) == before


def test_a_bundle_holds_manifest_tables_and_set_card_but_no_checkpoint(exported):
    m = json.loads((exported / bd.MANIFEST).read_text())
    assert set(m["files"]) == set(bd.FILES.values())
    assert m["counts"]["runs"] == 9 and m["counts"]["predictions"] == 9 * (624 + 524)
    assert m["schema_version"] == bd.BUNDLE_SCHEMA and m["versions"]["torch"]
    assert m["device"]["device_name"] and m["code"].keys() == {"commit", "dirty"}
    assert not list(exported.glob("*.pt"))
    sets = pd.read_parquet(exported / bd.FILES["sets"])
    assert list(sets["name"]) == ["fake-set"] and len(sets["content_sha256"][0]) == 64


def test_exporting_the_same_runs_twice_gives_the_same_bundle_id(source, tmp_path):
    a = bd.export_bundle(source, tmp_path / "a")
    b = bd.export_bundle(source, tmp_path / "b")
    assert a["bundle_id"] == b["bundle_id"]
    assert bd.export_bundle(source, tmp_path / "c", profile="smoke",
                            synthetic=["other"])["bundle_id"] != a["bundle_id"]


def test_importing_twice_changes_nothing(exported, tmp_path, monkeypatch):
    target = fresh_root(tmp_path, monkeypatch)
    bd.import_bundle(target, exported)
    counts = target.store_counts()
    again = bd.import_bundle(target, exported)
    assert again.already_imported and target.store_counts() == counts


def test_imported_runs_remember_their_bundle_and_local_ones_this_machine(
        exported, tmp_path, monkeypatch):
    target = fresh_root(tmp_path, monkeypatch)
    y = labels()
    add_run(target, "base", 7, probs_with_accuracy(y, 0.8, 7), y)
    bd.import_bundle(target, exported)
    runs = target.runs()
    m = json.loads((exported / bd.MANIFEST).read_text())
    assert (runs["origin"] == m["bundle_id"]).sum() == 9
    assert (runs["origin"] == "local").sum() == 1
    assert set(runs.loc[runs["origin"] != "local", "bundle"]) == {"contrast"}


def _one_run_bundle(tmp_path, context: dict) -> str:
    """Bundle ``tmp_path/b``: one base run (seed 0, ~80% right) computed in ``context``; its id."""
    src = Store(tmp_path / "src.duckdb")
    y = labels()
    rid = add_run(src, "base", 0, probs_with_accuracy(y, 0.8, 0), y, context=context)
    bd.export_bundle(src, tmp_path / "b")
    return rid


def _same_spec_other_numbers(store: Store, context: dict) -> str:
    y = labels()
    return add_run(store, "base", 0, probs_with_accuracy(y, 0.6, 99), y, context=context)


def test_other_numbers_in_the_same_context_are_a_conflict_and_the_local_run_is_kept(
        tmp_path, monkeypatch, real_data):
    rid = _one_run_bundle(tmp_path, CPU_1)
    target = fresh_root(tmp_path, monkeypatch)
    assert _same_spec_other_numbers(target, CPU_1) == rid
    before = target.run(rid)["metrics"]
    report = bd.import_bundle(target, tmp_path / "b")
    assert [c["run_id"] for c in report.conflicts] == [rid]
    assert target.run(rid)["metrics"] == before
    assert any("CONFLICT" in line for line in report.lines())


def test_the_import_command_exits_non_zero_on_a_conflict(tmp_path, monkeypatch, real_data,
                                                         capsys):
    src = Store(tmp_path / "src.duckdb")
    y = labels()
    add_run(src, "base", 0, probs_with_accuracy(y, 0.8, 0), y, context=CPU_1)
    bd.export_bundle(src, tmp_path / "b")
    monkeypatch.setenv("SYNTHMED_DATA", str(tmp_path / "cli"))
    _same_spec_other_numbers(Store(), CPU_1)
    assert cli(["results", "import", str(tmp_path / "b")]) == 1
    assert "conflict" in capsys.readouterr().out.lower()


def test_other_numbers_from_another_context_are_kept_as_a_replicate(tmp_path, monkeypatch,
                                                                    real_data):
    src = Store(tmp_path / "src.duckdb")
    y = labels()
    rid = add_run(src, "base", 0, probs_with_accuracy(y, 0.8, 0), y, context=CPU_2)
    bd.export_bundle(src, tmp_path / "b")
    target = fresh_root(tmp_path, monkeypatch)
    _same_spec_other_numbers(target, CPU_1)
    report = bd.import_bundle(target, tmp_path / "b")
    assert not report.conflicts and [r["run_id"] for r in report.replicates] == [rid]
    run = target.run(rid)
    assert run["origin"] == "local" and len(run["replicates"]) == 1
    assert run["replicates"][0]["metrics"]["test"]["accuracy"] == pytest.approx(round(0.8 * 624) / 624)
    assert "different numbers" in bd.reproduction(run)[0]


def test_a_run_trained_again_here_keeps_the_imported_record_as_a_replicate(
        exported, tmp_path, monkeypatch):
    target = fresh_root(tmp_path, monkeypatch)
    bd.import_bundle(target, exported)
    rid = target.runs()["run_id"].iloc[0]
    run = target.run(rid)
    spec = RunSpec.from_dict(run["spec"])
    target.start_run(spec, "cpu", context=CPU_1)  # what the recorder does when it trains here
    again = target.run(rid)
    assert again["origin"] == "local" and again["status"] == "running"
    assert again["replicates"][0]["origin"] == run["origin"]
    assert again["replicates"][0]["metrics"]["test"] == pytest.approx(run["metrics"])


@pytest.mark.parametrize("damage,message", [
    (lambda b: (b / "predictions.parquet").write_bytes(
        (b / "predictions.parquet").read_bytes()[:500]), "predictions.parquet"),
    (lambda b: (b / "runs.parquet").unlink(), "runs.parquet"),
    (lambda b: _edit_manifest(b, schema_version=bd.BUNDLE_SCHEMA + 1), "newer"),
    (lambda b: _edit_manifest(b, bundle_id="0" * 16), "does not match its files"),
])
def test_a_damaged_bundle_is_refused_whole_naming_the_file(exported, tmp_path, monkeypatch,
                                                           damage, message):
    damage(exported)
    target = fresh_root(tmp_path, monkeypatch)
    with pytest.raises(BundleError, match=message):
        bd.import_bundle(target, exported)
    assert target.store_counts()["runs"] == 0 and target.bundles().empty


def test_a_truncated_parquet_whose_manifest_was_updated_is_still_refused(exported, tmp_path,
                                                                          monkeypatch):
    import hashlib
    path = exported / "metrics.parquet"
    path.write_bytes(path.read_bytes()[:-40])
    files = json.loads((exported / bd.MANIFEST).read_text())["files"]
    files["metrics.parquet"]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    _edit_manifest(exported, files=files, bundle_id=bd.bundle_id(files))
    target = fresh_root(tmp_path, monkeypatch)
    with pytest.raises(BundleError, match="metrics.parquet is not a readable Parquet"):
        bd.import_bundle(target, exported)
    assert target.store_counts()["runs"] == 0


def _edit_manifest(bundle: Path, **fields) -> None:
    m = json.loads((bundle / bd.MANIFEST).read_text())
    m.update(fields)
    (bundle / bd.MANIFEST).write_text(json.dumps(m))


def test_a_set_with_the_same_name_but_other_images_here_refuses_the_bundle(
        exported, tmp_path, monkeypatch):
    target = fresh_root(tmp_path, monkeypatch)
    write_blurred_real_set("fake-set", 10, "another set, same name")
    with pytest.raises(BundleError, match="other images"):
        bd.import_bundle(target, exported)
    assert target.store_counts()["runs"] == 0


def test_the_bundle_brings_a_sample_of_its_set_and_the_sets_card(exported, tmp_path,
                                                                 monkeypatch):
    from synthmed_core.data.synthetic import load_set
    target = fresh_root(tmp_path, monkeypatch)
    report = bd.import_bundle(target, exported)
    assert report.samples == ["fake-set-sample"]
    split, card = load_set("fake-set-sample")
    assert len(split.labels) == 40 and card["sample_of"]["name"] == "fake-set"
    sets = target.synthetic_sets().set_index("name")
    assert pd.isna(sets.loc["fake-set", "path"])  # the whole set is not on this machine
    assert sets.loc["fake-set", "content_sha256"] == card["sample_of"]["content_sha256"]


def test_a_bundle_exported_without_samples_ships_the_card_and_a_neighbour_brings_the_sample(
        source, exported, tmp_path, monkeypatch, capsys):
    lean = tmp_path / "bundles" / "lean"
    monkeypatch.setenv("SYNTHMED_DB", str(source.path))
    assert cli(["results", "export", "--out", str(lean), "--run",
                *source.runs()["run_id"].head(3), "--no-samples"]) == 0
    assert "(0 sample images)" in capsys.readouterr().out
    sets = pd.read_parquet(lean / bd.FILES["sets"])
    assert len(pd.read_parquet(lean / bd.FILES["samples"])) == 0
    assert list(sets["name"]) == ["fake-set"] and pd.isna(sets["sample_card_json"][0])
    assert json.loads(sets["card_json"][0])["content_sha256"] == sets["content_sha256"][0]
    monkeypatch.delenv("SYNTHMED_DB")
    alone = fresh_root(tmp_path, monkeypatch, "alone")
    report = bd.import_bundle(alone, lean)
    assert len(report.added) == 3 and report.samples == []
    assert "fake-set" in set(alone.synthetic_sets()["name"])
    both = fresh_root(tmp_path, monkeypatch, "both")
    assert bd.import_bundle(both, lean).samples == []
    assert bd.import_bundle(both, exported).samples == ["fake-set-sample"]
    assert both.store_counts()["finished_runs"] == 9


def test_shipped_bundles_are_imported_once_when_a_data_root_is_first_opened(
        exported, tmp_path, monkeypatch):
    shipped = tmp_path / "results"
    shipped.mkdir()
    shutil.copytree(exported, shipped / "contrast")
    monkeypatch.setenv("SYNTHMED_SHIPPED", str(shipped))
    monkeypatch.setenv("SYNTHMED_DATA", str(tmp_path / "fresh"))
    monkeypatch.delenv("SYNTHMED_DB", raising=False)
    assert cli(["runs", "list"]) == 0  # an entry point opens the data root
    first = Store()
    assert first.store_counts()["finished_runs"] == 9
    assert bool(first.bundles()["shipped"].iloc[0])
    first.delete_run(first.runs()["run_id"].iloc[0])  # a user's later change is not undone
    assert cli(["runs", "list"]) == 0
    assert Store().store_counts()["finished_runs"] == 8


def test_synth_list_on_a_fresh_data_root_shows_the_shipped_samples(exported, tmp_path,
                                                                  monkeypatch, capsys):
    shipped = tmp_path / "results"
    shutil.copytree(exported, shipped / "contrast")
    monkeypatch.setenv("SYNTHMED_SHIPPED", str(shipped))
    monkeypatch.setenv("SYNTHMED_DATA", str(tmp_path / "fresh"))
    monkeypatch.delenv("SYNTHMED_DB", raising=False)
    assert cli(["synth", "list"]) == 0  # the first command on this root: nothing opened yet
    assert "fake-set-sample" in capsys.readouterr().out


def test_a_grid_whose_runs_were_partly_imported_queues_only_the_rest(tmp_path, monkeypatch,
                                                                     real_data):
    from synthmed_core.grid import expand_grid
    src = Store(tmp_path / "src.duckdb")
    y = labels()
    for seed in (0, 1):
        add_run(src, "base", seed, probs_with_accuracy(y, 0.8, seed), y, arch="resnet18")
    bd.export_bundle(src, tmp_path / "b")
    monkeypatch.setenv("SYNTHMED_DATA", str(tmp_path / "next-machine"))
    bd.import_bundle(Store(), tmp_path / "b")
    import jobs
    done = jobs.submit("grid", ["--arch", "resnet18", "--setting", "base", "--seeds", "0", "1",
                                "2", "--profile", "smoke"])
    assert "2 already finished" in done.message
    queued = {j for j in Store().jobs()["run_id"].dropna()}
    want = expand_grid(["resnet18"], ["scratch"], ["base"], [], [2], "smoke")
    assert queued == {want[0].run_id}


def test_export_refuses_when_no_run_matches(source, tmp_path):
    with pytest.raises(BundleError, match="no finished run"):
        bd.export_bundle(source, tmp_path / "x", profile="paper")


@pytest.mark.train
def test_a_run_reproduced_here_from_a_bundle_has_its_weights_and_the_same_numbers(
        real_data, tmp_path, monkeypatch, capsys):
    import torch
    torch.set_num_threads(1)  # the same context as the source run: identical numbers
    assert cli(["train", "--profile", "smoke", "--epochs", "1", "--train-limit", "128",
                "--no-progress"]) == 0
    rid = Store().runs()["run_id"].iloc[0]
    assert cli(["results", "export", "--out", str(tmp_path / "b")]) == 0
    monkeypatch.setenv("SYNTHMED_DATA", str(tmp_path / "second-machine"))
    assert cli(["results", "import", str(tmp_path / "b")]) == 0
    assert cli(["results", "reproduce", rid[:6], "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "same kind of device: identical numbers" in out
    run = Store().run(rid)
    assert run["origin"] == "local" and Path(run["checkpoint"]).is_file()
    assert run["replicates"][0]["origin"] != "local"


@pytest.mark.load
def test_two_processes_opening_a_fresh_data_root_at_once_import_the_shipped_bundle_once(
        exported, tmp_path):
    import os
    import subprocess
    import sys
    shipped = tmp_path / "results"
    shutil.copytree(exported, shipped / "contrast")
    env = {**os.environ, "SYNTHMED_SHIPPED": str(shipped), "SYNTHMED_DATA": str(tmp_path / "d"),
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    env.pop("SYNTHMED_DB", None)
    code = "from synthmed_core.cli import main; main(['runs', 'list'])"
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE)
             for _ in range(3)]
    # A hang guard, not a timing: each process imports torch and recounts the sample's copies
    # of real test images (synth.copies), minutes on a 2-core machine under load 20+.
    assert [p.wait(timeout=600) for p in procs] == [0, 0, 0], [p.stderr.read() for p in procs]
    store = Store(tmp_path / "d" / "synthmed.duckdb")
    assert store.store_counts()["finished_runs"] == 9 and len(store.bundles()) == 1


def test_a_bundle_exported_again_with_more_runs_adds_only_them_and_both_are_told_apart(
        tmp_path, monkeypatch, real_data):
    from synthmed_core.explorer.views import sources_line, sources_table
    src = Store(tmp_path / "src.duckdb")
    y = labels()
    add_run(src, "base", 0, probs_with_accuracy(y, 0.8, 0), y)
    bd.export_bundle(src, tmp_path / "v1" / "grid")
    add_run(src, "base", 1, probs_with_accuracy(y, 0.8, 1), y)
    bd.export_bundle(src, tmp_path / "v2" / "grid")  # the same name, one run more
    target = fresh_root(tmp_path, monkeypatch)
    bd.import_bundle(target, tmp_path / "v1" / "grid")
    second = bd.import_bundle(target, tmp_path / "v2" / "grid")
    assert len(second.added) == 1 and len(second.same) == 1
    sources = sources_table(target.origins())
    assert len(sources) == 2 and sources["source"].nunique() == 2
    assert all(s.startswith("bundle: grid (") for s in sources["source"])
    # said in one sentence (Home), the versions are counted together
    assert sources_line(sources) == "2 from bundle: grid (2 versions)"


def test_many_sources_are_counted_per_kind_in_the_sentence():
    from synthmed_core.explorer.views import SOURCES_NAMED, sources_line
    names = ["this machine"] + [f"shipped: part-{i}" for i in range(SOURCES_NAMED)] + [
        "bundle: from-a-gpu"]
    sources = pd.DataFrame({"name": names, "runs": [5] + [2] * SOURCES_NAMED + [7]})
    assert sources_line(sources) == (f"5 from this machine, {2 * SOURCES_NAMED} from shipped "
                                     f"({SOURCES_NAMED} bundles), 7 from bundle (1 bundle)")
    few = sources.iloc[:SOURCES_NAMED]
    assert sources_line(few) == ", ".join(f"{r} from {n}" for n, r in
                                          zip(few["name"], few["runs"]))


CPU_AVX2 = {**CPU_1, "cpu_capability": "AVX2", "cpu_isa": ["avx2", "fma"], "onednn": "3.7.1",
            "mkl": "2024.2"}


def test_a_reproduction_names_the_context_fields_that_differ_and_old_records_say_not_recorded():
    old, new = dict(CPU_1), {**CPU_1, "cpu_capability": "AVX512", "cpu_isa": ["avx512f"],
                             "onednn": "3.7.1", "mkl": "2024.2"}
    assert bd.context_differences(new, old) == [
        "cpu_capability AVX512 here vs not recorded in the other record",
        "cpu_isa avx512f here vs not recorded in the other record",
        "onednn 3.7.1 here vs not recorded in the other record",
        "mkl 2024.2 here vs not recorded in the other record"]
    assert bd.context_differences(new, CPU_AVX2) == [
        "cpu_capability AVX512 here vs AVX2 in the other record",
        "cpu_isa avx512f here vs avx2 fma in the other record"]
    assert bd.context_differences(new, new) == [] and bd.context_differences(None, None) == []


def test_a_reproduction_says_whether_each_difference_is_within_its_cells_seed_spread(
        tmp_path, monkeypatch, real_data):
    rid = _one_run_bundle(tmp_path, CPU_2)
    target = fresh_root(tmp_path, monkeypatch)
    y = labels()
    probs = probs_with_accuracy(y, 0.8, 0)
    first_right = np.flatnonzero((probs >= 0.5) == y)[0]
    probs[first_right] = 0.49 if y[first_right] == 1 else 0.5  # one image flips: 1/624
    add_run(target, "base", 0, probs, y, context=CPU_AVX2)
    for seed, acc in ((1, 0.70), (2, 0.90)):  # the cell's other seeds: sd about 0.07
        add_run(target, "base", seed, probs_with_accuracy(y, acc, seed), y, context=CPU_AVX2)
    bd.import_bundle(target, tmp_path / "b")
    line = bd.reproduction(target.run(rid), target)[0]
    assert "different numbers" in line and "cpu_capability AVX2 here vs not recorded" in line
    assert "threads 1 here vs 2 in the other record" in line
    assert "test accuracy differs by 0.0016, within the seed-to-seed spread of its cell" in line
    assert "over 2 other runs" in line
