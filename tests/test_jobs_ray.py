"""The Ray backend: a smoke grid of 4 runs through a local Ray instance started here
(``ray.init(num_cpus=2)``), this process being the head that alone writes the store; its rows
have the shape of those a local worker writes."""
from __future__ import annotations

import pytest

from jobs_helpers import grid_job, submit_train
from synthmed_core.paths import REPO_ROOT
from synthmed_core.store import Store

import jobs

pytestmark = pytest.mark.ray

ray = pytest.importorskip("ray")


@pytest.fixture
def local_ray(real_data, monkeypatch):
    # Ray's worker processes inherit this environment: our data root and the repository.
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _shape(store: Store, job_id: int) -> dict:
    """What must match between backends: not the values, the rows."""
    job = store.job(job_id)
    run = store.run(job["run_id"])
    progress = store.job_progress(job_id)
    counts = progress["event"].value_counts().to_dict()
    return {"job": job["status"], "run": run["status"], "epochs": len(run["epochs"]),
            "metrics": sorted(run["metrics"]), "val_metrics": sorted(run["val_metrics"]),
            "test_predictions": len(store.predictions([job["run_id"]])),
            "val_predictions": len(store.predictions([job["run_id"]], "val")),
            "events": {k: counts.get(k, 0) > 0 for k in ("started", "progress", "epoch",
                                                         "finished")},
            "epoch_rows": counts.get("epoch"), "started_rows": counts.get("started"),
            "seq_gapless": progress["seq"].tolist() == list(range(1, len(progress) + 1)),
            "accounted": job["stats"]["received"] == counts}


def test_a_smoke_grid_runs_on_ray_and_lands_like_local_workers(local_ray):
    from jobs._ray import RayHead
    from jobs._worker import Worker

    store = Store()
    parent, *children = jobs.submit("grid", grid_job([0, 1, 2, 3]), store).ids
    assert len(children) == 4
    head = RayHead(store, heartbeat_s=1.0, stale_s=10.0)
    assert head.max_inflight == 2
    assert head.run(idle_exit=1.0) == 4
    assert store.job(parent)["status"] == "finished"

    import torch
    local = submit_train(store, seed=9)  # the same kind of run, on a local worker
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each Ray task and each test worker: 2 cores, shared
    try:
        Worker(store, "cpu", heartbeat_s=1.0, stale_s=10.0).run(once=True)
    finally:
        torch.set_num_threads(threads)
    expected = _shape(store, local)
    assert expected["job"] == "finished" and expected["accounted"] and expected["seq_gapless"]
    for child in children:
        assert _shape(store, child) == expected, child
    assert set(store.jobs(parent_id=parent)["worker"]) == {head.id}
