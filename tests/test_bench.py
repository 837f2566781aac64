"""The benchmark: figures on a tiny CPU run, its JSON, the overhead arithmetic, optional rows
skipped when their package is missing, and K concurrent trainer processes."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from synthmed_core.bench import BenchConfig, TrainerJob, concurrent_throughput, run_bench
from synthmed_core.bench import _extras, _trainer
from synthmed_core.paths import REPO_ROOT

TINY = dict(device="cpu", archs=("resnet18",), batch_size=8, batches=2, rounds=2)


def _positive(x) -> bool:
    return isinstance(x, float) and math.isfinite(x) and x > 0


@pytest.mark.train
def test_bench_on_cpu_reports_positive_figures_for_every_column(shared_medmnist, tmp_path,
                                                                 monkeypatch):
    monkeypatch.setenv("SYNTHMED_DATA", str(tmp_path))
    report = run_bench(BenchConfig(**TINY, store_runs=20), log=lambda line: None)
    (row,) = report["rows"]
    assert (row["arch"], row["size"], row["compile"]) == ("resnet18", 28, "off")
    for key in ("train_ips", "pure_ips", "eval_ips", "ref_train_ips", "speedup_vs_ref",
                "cam_ms", "warmup_s"):
        assert _positive(row[key]), (key, row[key])
    assert row["peak_mem_mib"] >= 0 and row["peak_mem_kind"].startswith("cpu")
    assert 0.5 < row["overhead"] < 10 and len(row["overhead_rounds"]) == 2  # sanity, not speed
    assert 0.5 < row["overhead_cpu"] < 10
    assert "PneumoniaMNIST" in report["data"]
    assert _positive(report["store"]["ms"]) and "20" in report["store"]["note"]


@pytest.mark.train  # the bench trains a few batches
def test_bench_cli_prints_the_table_and_writes_valid_json(shared_medmnist, tmp_path, capsys):
    from synthmed_core.cli import main
    path = tmp_path / "bench.json"
    assert main(["bench", "--device", "cpu", "--arch", "resnet18", "--batch-size", "8",
                 "--batches", "2", "--rounds", "1", "--no-cam", "--no-reference",
                 "--store-runs", "0", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "train img/s" in out and "overhead" in out and "resnet18" in out

    def no_nan(token):
        raise AssertionError(f"{token} in JSON")
    report = json.loads(path.read_text(), parse_constant=no_nan)
    assert report["rows"][0]["ref_train_ips"] is None and report["store"]["ms"] is None
    assert report["config"]["device"] == "cpu"


def test_overhead_is_trainer_time_over_pure_time_of_the_same_batches(monkeypatch):
    clock = {"pure": [1.0, 2.0], "trainer": [1.1, 2.4]}

    def fake_timed(fn, device):
        fn()
        wall = clock[fake_timed.what].pop(0)
        return wall, 2 * wall
    rig = _trainer.build_rig("resnet18", 28, _trainer.torch.device("cpu"),
                             *_tiny_arrays(16), batch_size=8, augment=True)
    monkeypatch.setattr(_trainer, "timed_both", fake_timed)
    monkeypatch.setattr(_trainer, "pure_pass", lambda r, s: setattr(fake_timed, "what", "pure"))
    monkeypatch.setattr(_trainer, "trainer_pass",
                        lambda r, e, limit=None: setattr(fake_timed, "what", "trainer"))
    out = _trainer.measure_training(rig, rounds=2)
    assert out["overhead_rounds"] == pytest.approx([1.1, 1.2])
    assert out["overhead"] == pytest.approx(1.15) and out["overhead_min"] == pytest.approx(1.1)
    assert out["pure_ips"] == pytest.approx(16 / 1.5)
    assert out["overhead_cpu"] == pytest.approx(1.15)


def test_trainer_pass_trains_through_train_epoch_and_its_progress_hook(monkeypatch):
    import torch

    from synthmed_core.training.loop import Throttle
    # An hour's throttle: on a loaded machine one step can take longer than the bench's 1 s.
    monkeypatch.setattr(_trainer, "Throttle", lambda seconds: Throttle(3600.0))
    rig = _trainer.build_rig("resnet18", 28, torch.device("cpu"), *_tiny_arrays(16),
                             batch_size=8, augment=True)
    before = [p.detach().clone() for p in rig.model.parameters()]
    _trainer.trainer_pass(rig, 0)
    assert any(not torch.equal(a, b) for a, b in zip(before, rig.model.parameters()))
    assert len(rig.events) == 1  # the first step's Progress event; the throttle holds the rest


def test_optional_rows_are_skipped_with_a_note_when_their_package_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "duckdb", None)
    monkeypatch.setitem(sys.modules, "pytorch_grad_cam", None)
    assert _extras.store_query_ms(10) == (None, "skipped: duckdb not installed")
    ms, note = _extras.cam_ms(object(), None)
    assert ms is None and "pytorch_grad_cam not installed" in note


@pytest.mark.train
def test_bench_runs_without_duckdb_grad_cam_medmnist_diffusers_or_sklearn(tmp_path):
    # A bare GPU machine has torch and timm only: the verb must import and run there.
    blocked = ["duckdb", "pytorch_grad_cam", "medmnist", "diffusers", "sklearn", "scipy",
               "pandas", "filelock", "streamlit"]
    code = (f"import sys\nfor m in {blocked!r}: sys.modules[m] = None\n"
            "from synthmed_core.cli import main\n"
            "sys.exit(main(['bench', '--device', 'cpu', '--arch', 'resnet18', '--batch-size', "
            "'8', '--batches', '2', '--rounds', '1', '--no-reference', '--json', "
            f"{str(tmp_path / 'b.json')!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=600,
                          env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1",
                               "SYNTHMED_MEDMNIST_ROOT": str(tmp_path / "none"),
                               "SYNTHMED_DATA": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "skipped: pytorch_grad_cam not installed" in proc.stdout
    assert "skipped: duckdb" in proc.stdout and "random images" in proc.stdout


@pytest.mark.train  # two processes each train a few batches
def test_concurrent_trainers_report_an_aggregate_throughput():
    job = TrainerJob("resnet18", 28, "cpu", batches=1, batch_size=8, passes=1, threads=1)
    out = concurrent_throughput(job, 2)
    assert out["k"] == 2 and _positive(out["aggregate_ips"]) and _positive(out["span_s"])
    assert _positive(out["per_process_ips"])


def _tiny_arrays(n: int):
    import numpy as np
    rng = np.random.default_rng(0)
    return (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
            rng.integers(0, 2, n).astype(np.int64))


@pytest.mark.parametrize("args, says", [
    (["old"], "give NAME=PATH"),
    (["old=/no/such/checkout"], "give NAME=PATH"),
    (["old=.", "--data", "EMPTY"], "no store in"),
])
def test_bench_variants_refuses_bad_arguments_before_starting_anything(tmp_path, args, says):
    args = [str(tmp_path) if a == "EMPTY" else a for a in args]
    if "--data" not in args:
        args += ["--data", str(tmp_path)]
    done = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "bench_variants.py"),
                           *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and says in done.stderr
    assert not list(tmp_path.iterdir())  # no floor app, no server log
