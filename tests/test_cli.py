"""The command line end to end, as a user runs it: ``python -m synthmed_core VERB ...`` in a
subprocess, on the shared real PneumoniaMNIST, writing to a fresh data root per test.

Smoke trainings are the cost here (five in this file); assertions are grouped around them.
"""
from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SHARED_DATA

from synthmed_core.cli import build_parser
from synthmed_core.paths import REPO_ROOT
from synthmed_core.store import Store

SMOKE = ("--profile", "smoke", "--no-progress")
TRAINED = re.compile(r"^run ([0-9a-f]{12}) (\S+) seed=(\d+) profile=smoke: test accuracy "
                     r"(\d\.\d{4})", re.MULTILINE)


def cli(data_root: Path, *args, medmnist: Path = SHARED_DATA, timeout: float = 300
        ) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHMED_")}
    env["SYNTHMED_SHIPPED"] = "none"  # a test's data root holds only what the test made
    # One torch thread: on a 2-core machine shared with other training, two threads per
    # process oversubscribe the cores and a smoke run takes 3x longer (same results).
    env.update(SYNTHMED_DATA=str(data_root), SYNTHMED_MEDMNIST_ROOT=str(medmnist),
               SYNTHMED_OFFLINE="1", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "synthmed_core", *map(str, args)],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """A user error: exit 2, a single ``error: ...`` line on stderr, no traceback."""
    err = proc.stderr.strip()
    assert proc.returncode == 2, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr and "\n" not in err, proc.stderr
    assert err.startswith("error: "), err
    return err


def _verb_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    yield prefix
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _verb_paths(sub, prefix + (name,))


def _report_csv(data_root: Path, threshold: str = "0.5") -> list[dict]:
    """The tidy report rows of resnet18 cells that have runs (n > 0), at ``threshold``."""
    text = ok(cli(data_root, "report", "--arch", "resnet18", "--format", "csv"))
    return [r for r in csv.DictReader(io.StringIO(text))
            if r["n"] != "0" and r["threshold"] == threshold]


def test_every_verb_and_sub_verb_has_help(tmp_path):
    paths = list(_verb_paths(build_parser()))
    expected = {(), ("data",), ("data", "check"), ("train",), ("grid",), ("report",),
                ("pretrain",), ("pretrain", "chestmnist"), ("synth",), ("synth", "import"),
                ("synth", "list"), ("synth", "show"), ("runs",), ("runs", "list"),
                ("runs", "show")}
    assert expected <= set(paths)
    for path in paths:
        proc = cli(tmp_path, *path, "--help")
        out = ok(proc)
        assert out.startswith(" ".join(("usage: python -m synthmed_core",) + path)), out[:200]
        assert "%%" not in out and not proc.stderr, (path, proc.stderr)
    assert not (tmp_path / "synthmed.duckdb").exists()  # help touches nothing


@pytest.mark.train
def test_train_then_runs_list_report_and_show_see_it_and_a_rerun_is_skipped(real_data):
    assert "no runs yet" in ok(cli(real_data, "runs", "list"))
    out = ok(cli(real_data, "train", "--arch", "resnet18", "--init", "scratch", "--setting",
                 "base", "--seed", "0", *SMOKE))
    (run_id, key, seed, _acc), = TRAINED.findall(out)
    assert (key, seed) == ("resnet18/scratch/base", "0")

    listed = ok(cli(real_data, "runs", "list"))
    assert run_id in listed and "finished" in listed

    shown = json.loads(ok(cli(real_data, "runs", "show", run_id[:6])))
    assert shown["run_id"] == run_id and shown["status"] == "finished"
    assert shown["spec"]["cell"]["arch"] == "resnet18" and shown["spec"]["profile"]["name"] == "smoke"
    acc = shown["metrics"]["accuracy"]
    assert f"test accuracy {acc:.4f}" in out
    assert set(shown["metrics"]) >= {"accuracy", "auroc", "f1", "sensitivity", "specificity"}
    assert [e["epoch"] for e in shown["epochs"]] == [0, 1]  # smoke: 2 epochs
    assert all(0.0 <= e["val_auroc"] <= 1.0 for e in shown["epochs"])

    md = ok(cli(real_data, "report", "--arch", "resnet18"))
    assert "resnet18 (profile smoke): test accuracy" in md
    assert f"| base | {acc:.3f} n=1" in md
    assert "resnet18 (profile smoke): test accuracy at the threshold picked on val" in md
    assert len(_report_csv(real_data, "val")) == 1  # beside the 0.5 row, never instead
    rows = _report_csv(real_data)
    assert len(rows) == 1
    row = rows[0]
    assert (row["arch"], row["setting"], row["init"], row["profile"], row["n"], row["metric"]) == \
        ("resnet18", "base", "scratch", "smoke", "1", "accuracy")
    assert float(row["mean"]) == pytest.approx(acc)
    tex = ok(cli(real_data, "report", "--arch", "resnet18", "--format", "latex"))
    assert r"\begin{tabular}" in tex and r"\end{tabular}" in tex
    assert f"base & {acc:.3f} n=1" in tex

    again = ok(cli(real_data, "train", "--arch", "resnet18", "--init", "scratch", "--setting",
                   "base", "--seed", "0", *SMOKE))
    assert f"run {run_id} (resnet18/scratch/base seed=0) is already finished" in again
    assert list(Store().runs()["run_id"]) == [run_id]


@pytest.mark.train
def test_grid_dry_run_lists_then_trains_two_seeds_and_a_rerun_skips_both(real_data):
    args = ("grid", "--arch", "resnet18", "--init", "scratch", "--setting", "base",
            "--seeds", "0", "1", *SMOKE)
    dry = ok(cli(real_data, *args, "--dry-run"))
    assert dry.startswith("2 runs, 0 already finished")
    todo = re.findall(r"^  ([0-9a-f]{12})  todo  resnet18/scratch/base seed=(\d)", dry, re.MULTILINE)
    assert [seed for _, seed in todo] == ["0", "1"]
    assert Store().runs().empty  # a dry run trains nothing

    out = ok(cli(real_data, *args))
    assert "trained 2, skipped 0 (already finished), failed 0" in out
    assert sorted(Store().finished_run_ids()) == sorted(run_id for run_id, _ in todo)

    rerun = ok(cli(real_data, *args))
    assert rerun.startswith("2 runs, 2 already finished")
    assert "trained 0, skipped 2 (already finished), failed 0" in rerun
    rows = _report_csv(real_data)
    assert [r["n"] for r in rows] == ["2"]  # the two seeds aggregate into one cell
    assert float(rows[0]["lo"]) <= float(rows[0]["mean"]) <= float(rows[0]["hi"])


def _standin_module():
    path = REPO_ROOT / "scripts" / "make_standin_synthetic.py"
    spec = importlib.util.spec_from_file_location("make_standin_synthetic", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.train
def test_synth_import_registers_a_set_and_an_augment_run_trains_on_it(real_data, tmp_path):
    # Smoke trains on 256 real images (66 normal, 190 pneumonia): ratio 1 needs that many.
    folder = tmp_path / "standin"
    _standin_module().make_standin_folder(folder, n_normal=70, n_pneumonia=200, seed=0)
    assert "no synthetic sets yet" in ok(cli(real_data, "synth", "list"))

    out = ok(cli(real_data, "synth", "import", folder, "--name", "standin", "--no-progress"))
    assert "70 normal, 200 pneumonia" in out and "registered synthetic set 'standin'" in out
    assert "standin" in ok(cli(real_data, "synth", "list"))
    card = json.loads(ok(cli(real_data, "synth", "show", "standin")))
    assert card["n"] == 270 and card["counts"] == {"normal": 70, "pneumonia": 200}
    assert card["method"] == "import"
    assert list(Store().synthetic_sets()["name"]) == ["standin"]

    err = one_line_error(cli(real_data, "synth", "import", folder, "--name", "standin"))
    assert "'standin' already exists" in err and "--force" in err

    out = ok(cli(real_data, "train", "--setting", "augment", "--ratio", "1", "--synthetic",
                 "standin", *SMOKE))
    (run_id, key, _seed, _acc), = TRAINED.findall(out)
    assert key == "resnet18/scratch/augment@1/standin"
    assert Store().run(run_id)["status"] == "finished"


def _empty_class_folders(tmp_path: Path) -> Path:
    for cls in ("normal", "pneumonia"):
        (tmp_path / "empty-classes" / cls).mkdir(parents=True)
    return tmp_path / "empty-classes"


BAD_INPUT = {
    "unknown arch": (lambda t: ("train", "--arch", "nosuchnet", *SMOKE),
                     ["unknown arch 'nosuchnet'"]),
    "unknown arch in a grid": (lambda t: ("grid", "--arch", "nosuchnet", "--dry-run", *SMOKE),
                               ["unknown arch 'nosuchnet'"]),
    "augment without --synthetic": (lambda t: ("train", "--setting", "augment", *SMOKE),
                                    ["'augment' needs a synthetic set (--synthetic NAME)"]),
    "negative ratio": (lambda t: ("train", "--setting", "augment", "--ratio", "-1",
                                  "--synthetic", "x", *SMOKE),
                       ["ratio must be a positive number, got -1"]),
    "missing synthetic set": (lambda t: ("train", "--setting", "augment", "--ratio", "1",
                                         "--synthetic", "nope", *SMOKE),
                              ["synthetic set 'nope' not found", "Known sets: none"]),
    "runs show of an unknown id": (lambda t: ("runs", "show", "abc123"),
                                   ["no run matches 'abc123'"]),
    "import of an empty folder": (lambda t: ("synth", "import", t / "empty", "--name", "x"),
                                  ["no class sub-folders in", "found nothing"]),
    "import of empty class folders": (lambda t: ("synth", "import", _empty_class_folders(t),
                                                 "--name", "x", "--no-progress"),
                                      ["no readable images found"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_exits_2_with_one_clear_line(case, real_data, tmp_path):
    (tmp_path / "empty").mkdir()
    make_args, expected = BAD_INPUT[case]
    err = one_line_error(cli(real_data, *make_args(tmp_path)))
    for text in expected:
        assert text in err, err
    assert not (real_data / "runs").exists() and not (real_data / "synthetic").exists()


def test_missing_medmnist_file_offline_names_the_file_and_the_folder(real_data, tmp_path):
    empty = tmp_path / "no-medmnist-here"
    empty.mkdir()
    err = one_line_error(cli(real_data, "train", *SMOKE, medmnist=empty))
    assert f"{empty / 'pneumoniamnist.npz'} does not exist" in err
    assert f"in {empty}/" in err and "SYNTHMED_OFFLINE=1" in err
    err = one_line_error(cli(real_data, "data", "check", medmnist=empty))
    assert "pneumoniamnist.npz is missing" in err and str(empty) in err


@pytest.mark.parametrize("buffered", [True, False], ids=["block-buffered", "unbuffered"])
def test_a_reader_that_leaves_early_ends_the_command_quietly(buffered, real_data):
    """`python -m synthmed_core runs list | head -1`: once the reader has closed the pipe, the
    command stops with exit 0 and no traceback, whether stdout is buffered or not."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env.update(SYNTHMED_DATA=str(real_data), OMP_NUM_THREADS="1")
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen([sys.executable, "-m", "synthmed_core", "runs", "list"],
                            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # long before the interpreter has started: every write finds it closed
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 0 and "Traceback" not in err and "Exception ignored" not in err, err
