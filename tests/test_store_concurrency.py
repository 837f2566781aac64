"""Acceptance test for the store's lock discipline: 3 writer processes and 1 reader process
share one database file; no process sees an error and no row a writer wrote is lost.

Runs for SYNTHMED_CONCURRENCY_SECONDS (default 20; 3 is enough for a quick local check).
This file is also the worker: ``python tests/test_store_concurrency.py ROLE ...``.
"""
from __future__ import annotations

import pytest

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from synthmed_core.analysis.metrics import run_metrics
from synthmed_core.grid import make_run_spec
from synthmed_core.store import Store
from synthmed_core.training.events import RunResult

pytestmark = pytest.mark.load

ROOT = Path(__file__).resolve().parents[1]
SECONDS = float(os.environ.get("SYNTHMED_CONCURRENCY_SECONDS", "20"))
WRITERS = 3
EPOCHS_PER_BATCH, BATCHES = 5, 3
N_TEST, N_VAL = 624, 100


def _epoch_rows(batch: int) -> list[dict]:
    return [{"phase": 0, "epoch": batch * EPOCHS_PER_BATCH + e, "train_loss": 1.0,
             "val_loss": 1.0, "val_accuracy": 0.5, "val_auroc": 0.5, "lr": 1e-4, "seconds": 0.1}
            for e in range(EPOCHS_PER_BATCH)]


def _result(run_id: str, rng: np.random.Generator) -> RunResult:
    y, p = rng.integers(0, 2, N_TEST), rng.random(N_TEST)
    return RunResult(run_id, run_metrics(y, p), y, p, rng.integers(0, 2, N_VAL),
                     rng.random(N_VAL), 0, 0, 1.0, "cpu", "best.pt")


def _writer(store: Store, end_at: float, wid: int) -> dict:
    """Start runs, add epoch batches (re-sending one now and then, as a resume does), finish
    every third run with predictions. Claims a row only after the store call returned."""
    rng = np.random.default_rng(wid)
    claims: dict = {"epochs": {}, "finished": [], "errors": [], "calls": 0}
    i = 0
    while time.time() < end_at:
        try:
            spec = make_run_spec("resnet18", "scratch", "base", seed=wid * 100_000 + i,
                                 profile="smoke")
            store.start_run(spec, f"writer{wid}")
            claims["epochs"][spec.run_id] = 0
            for batch in range(BATCHES):
                store.add_epochs(spec.run_id, _epoch_rows(batch))
                claims["epochs"][spec.run_id] = (batch + 1) * EPOCHS_PER_BATCH
                if i % 4 == 1 and batch == 1:
                    store.add_epochs(spec.run_id, _epoch_rows(batch))  # re-sent: an upsert
                time.sleep(rng.uniform(0.05, 0.2))
            if i % 3 == 0:
                store.finish_run(_result(spec.run_id, rng))
                claims["finished"].append(spec.run_id)
            claims["calls"] += 1
        except Exception as exc:  # the test's point: count them, never stop
            claims["errors"].append(repr(exc))
        i += 1
    return claims


def _reader(store: Store, end_at: float) -> dict:
    """Poll runs() and the newest run's epochs() every ~200 ms."""
    out: dict = {"reads": 0, "errors": [], "max_runs": 0, "epoch_rows": 0, "ms": []}
    while time.time() < end_at:
        t0 = time.perf_counter()
        try:
            runs = store.runs()
            out["max_runs"] = max(out["max_runs"], len(runs))
            if len(runs):
                out["epoch_rows"] += len(store.epochs(runs["run_id"].iloc[-1]))
            out["reads"] += 1
        except Exception as exc:
            out["errors"].append(repr(exc))
        out["ms"].append((time.perf_counter() - t0) * 1000)
        time.sleep(0.2)
    return out


def _main(role: str, db: str, out: str, start_at: str, seconds: str, wid: str = "0") -> None:
    store = Store(Path(db))
    time.sleep(max(0.0, float(start_at) - time.time()))  # everyone starts together
    end_at = float(start_at) + float(seconds)
    claims = _writer(store, end_at, int(wid)) if role == "writer" else _reader(store, end_at)
    Path(out).write_text(json.dumps(claims))


def _spawn(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get(
        "PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, __file__, *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_writers_and_a_reader_in_parallel_processes_lose_nothing_and_see_no_error(
        tmp_path, capsys):
    db = tmp_path / "shared.duckdb"
    Store(db)  # created and migrated before anyone races
    start_at = f"{time.time() + 4:.3f}"  # time for the children to import
    procs = {f"writer{w}": _spawn(["writer", str(db), str(tmp_path / f"writer{w}.json"),
                                   start_at, str(SECONDS), str(w)]) for w in range(WRITERS)}
    procs["reader"] = _spawn(["reader", str(db), str(tmp_path / "reader.json"), start_at,
                              str(SECONDS)])
    for name, proc in procs.items():
        output, _ = proc.communicate(timeout=SECONDS + 120)
        assert proc.returncode == 0, f"{name} crashed:\n{output}"
    claims = [json.loads((tmp_path / f"writer{w}.json").read_text()) for w in range(WRITERS)]
    reader = json.loads((tmp_path / "reader.json").read_text())

    assert [c["errors"] for c in claims] == [[]] * WRITERS
    assert reader["errors"] == []
    assert all(c["calls"] > 0 for c in claims) and reader["reads"] > 0

    store = Store(db)
    runs = store.runs().set_index("run_id")
    claimed = {rid: n for c in claims for rid, n in c["epochs"].items()}
    finished = {rid for c in claims for rid in c["finished"]}
    assert set(runs.index) == set(claimed)
    for rid, n in claimed.items():
        assert store.epochs(rid)["epoch"].tolist() == list(range(n)), rid
    assert set(runs.index[runs["status"] == "finished"]) == finished
    preds = store.predictions(sorted(finished))
    assert len(preds) == N_TEST * len(finished)

    ms = np.array(reader["ms"])
    with capsys.disabled():
        print(f"\n[concurrency {SECONDS:g}s] writers wrote {len(claimed)} runs, "
              f"{sum(claimed.values())} epoch rows, {len(finished)} finished runs with "
              f"{len(preds)} test predictions; all found in the DB. Reader: {reader['reads']} "
              f"polls, up to {reader['max_runs']} runs and {reader['epoch_rows']} epoch rows "
              f"read, median {np.median(ms):.0f} ms / p95 {np.percentile(ms, 95):.0f} ms. "
              f"Errors: writers {sum(len(c['errors']) for c in claims)}, reader "
              f"{len(reader['errors'])}.")


if __name__ == "__main__":
    _main(*sys.argv[1:])


def test_a_background_writer_gives_way_while_a_reader_waits_and_never_for_longer_than_a_bound(
        tmp_path, monkeypatch):
    """A job worker (``yield_to_readers``) does not take the lock while a page's read waits for
    it, so that read waits for one write, not for every worker's; and it never starves."""
    import threading

    from synthmed_core.store import _base

    store = Store(tmp_path / "s.duckdb")
    monkeypatch.setattr(_base, "_YIELD_MAX_S", 0.6)

    def timed_take() -> float:
        t = time.monotonic()
        with store._connect():
            return time.monotonic() - t

    assert timed_take() < 0.2  # nobody waits: at once
    monkeypatch.setattr(_base, "_background", True)
    assert timed_take() < 0.2  # a background caller, nobody waiting: at once too

    stop = time.monotonic() + 0.3  # a reader that waits for 0.3 s
    def reader_waits():
        while time.monotonic() < stop:
            store._mark_waiting()
            time.sleep(0.02)
    thread = threading.Thread(target=reader_waits)
    store._mark_waiting()
    thread.start()
    took = timed_take()
    thread.join()
    assert 0.25 <= took < 0.6  # held back until the reader was done (plus the mark's age)

    store._mark_waiting()
    with_forever = threading.Thread(target=lambda: [store._mark_waiting() or time.sleep(0.02)
                                                    for _ in range(60)])
    with_forever.start()  # a reader that waits "forever" (1.2 s): the writer goes at the bound
    took = timed_take()
    with_forever.join()
    assert 0.55 <= took < 1.0
