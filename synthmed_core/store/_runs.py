"""Runs (written by a run's recorder, read by the app and the report) and the registries of
synthetic sets and pretraining checkpoints."""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from .. import catalog
from ..errors import StoreError
from ..grid import RunSpec
from ..training.context import CONTEXT_KEYS, same_context
from ..training.events import RunResult
from ._schema import (CORRECT_FROM_PREDICTIONS, CORRECT_THRESHOLD, LOCAL_ORIGIN,
                      add_val_threshold_metrics)
from ._schema import now as _now
from ._snapshot import SnapshotMixin

RUN_STATUSES = catalog.RUN_STATUSES
SUMMARY_METRICS = tuple(catalog.METRICS)
EPOCH_COLUMNS = ("phase", "epoch", "train_loss", "val_loss", "val_accuracy", "val_auroc", "lr",
                 "seconds")

# --------------------------------------------------------------------------------------------
# Frames handed to DuckDB's DataFrame scan: one INSERT per batch, never row by row.


def _epoch_frame(run_id: str, rows: list[dict]) -> pd.DataFrame:
    missing = [r for r in rows if "epoch" not in r or "phase" not in r]
    if missing:
        raise StoreError(f"epoch rows of run {run_id} need 'phase' and 'epoch' keys; got "
                         f"{sorted(missing[0])}")
    df = pd.DataFrame([{c: r.get(c) for c in EPOCH_COLUMNS} for r in rows])
    # One statement cannot upsert the same key twice: keep each epoch's last row.
    df = df.drop_duplicates("epoch", keep="last")
    df = df.astype({c: "float64" for c in EPOCH_COLUMNS[2:]}).astype({"phase": "int32",
                                                                      "epoch": "int32"})
    df.insert(0, "run_id", run_id)
    return df


def _prediction_frame(run_id: str, split: str, labels: Any, probs: Any) -> pd.DataFrame:
    labels = np.asarray(labels).reshape(-1)
    probs = np.asarray(probs, dtype=np.float64).reshape(-1)
    if labels.shape != probs.shape:
        raise StoreError(f"run {run_id}: {split} has {labels.size} labels but {probs.size} "
                         "probabilities; they must match image for image")
    return pd.DataFrame({"run_id": run_id, "split": split,
                         "idx": np.arange(labels.size, dtype=np.int32),
                         "label": labels.astype(np.int32), "prob": probs})


def _keep_as_replicate(con, run_id: str) -> None:
    """Copy a finished run's record (origin, context, metrics) into ``replicates``."""
    con.execute(
        """INSERT OR IGNORE INTO replicates (run_id, origin, context_json, finished_at, wall_s,
               metrics_json, recorded_at)
           SELECT r.run_id, r.origin, r.context_json, r.finished_at, r.wall_s,
                  (SELECT to_json(map(list(split || '/' || name ORDER BY split, name),
                                      list(value ORDER BY split, name)))::VARCHAR
                   FROM run_metrics m WHERE m.run_id = r.run_id), ?
           FROM runs r WHERE r.run_id = ?""", [_now(), run_id])


def _merged_context(new: dict | None, old_json: str | None, resumed: bool) -> dict | None:
    """The context to store: ``new``; a run resumed in another context than it started in is
    marked ``mixed`` (its numbers come from both), so it never counts as one context."""
    if not new or not resumed or not old_json:
        return new
    old = json.loads(old_json)
    if same_context(new, old) and not old.get("mixed"):
        return new
    return {**new, "mixed": True, "earlier": {k: old.get(k) for k in CONTEXT_KEYS}}


def _replicate(row: dict) -> dict:
    """A replicates row for people: origin, context (dict), finished_at, wall_s and metrics as
    ``{"test": {name: value}, "val": {...}}``."""
    metrics: dict[str, dict[str, float]] = {}
    for key, value in json.loads(row.get("metrics_json") or "{}").items():
        split, name = key.split("/", 1)
        metrics.setdefault(split, {})[name] = value
    return {"origin": row["origin"], "context": json.loads(row.get("context_json") or "null"),
            "finished_at": row["finished_at"], "wall_s": row["wall_s"], "metrics": metrics}


class RunsMixin(SnapshotMixin):
    """Runs, their epochs, metrics and predictions; synthetic sets and pretrains."""

    # ---- runs: written by the recorder of a job ---------------------------------------------
    def start_run(self, spec: RunSpec, device: str,
                  discard_epochs_after: int | None = None, context: dict | None = None) -> None:
        """Record that a run started (or restarted: status back to running, error cleared).
        ``discard_epochs_after`` drops stored epoch rows after that epoch index: a resumed run
        passes the epoch it resumed after, a fresh restart -1; None keeps them all.
        ``context`` is the execution context (``context.execution_context``). A run that was
        already finished (e.g. imported, now reproduced here) keeps its numbers as a replicate."""
        c = spec.cell
        with self._transaction(then=self._publish_results) as con:
            old = con.execute("SELECT status, context_json FROM runs WHERE run_id = ?",
                              [spec.run_id]).fetchone()
            if old is not None and old[0] == "finished":
                _keep_as_replicate(con, spec.run_id)
            ctx = _merged_context(context, old[1] if old else None,
                                  resumed=discard_epochs_after is not None
                                  and discard_epochs_after >= 0)
            con.execute(
                """INSERT INTO runs (run_id, arch, init, setting, ratio, synthetic, seed, profile,
                       spec_json, status, device, started_at, origin, context_json, recipe,
                       recipe_label)
                   VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
                   ON CONFLICT (run_id) DO UPDATE SET status = excluded.status,
                       device = excluded.device, spec_json = excluded.spec_json, error = NULL,
                       finished_at = NULL, started_at = excluded.started_at,
                       origin = excluded.origin, context_json = excluded.context_json""",
                [spec.run_id, c.arch, c.init, c.setting, c.ratio, c.synthetic, spec.seed,
                 spec.profile.name, spec.to_json(), "running", device, _now(), LOCAL_ORIGIN,
                 json.dumps(ctx, sort_keys=True) if ctx else None, spec.recipe,
                 spec.recipe_label])
            if discard_epochs_after is not None:
                con.execute("DELETE FROM epochs WHERE run_id = ? AND epoch > ?",
                            [spec.run_id, int(discard_epochs_after)])

    def add_epochs(self, run_id: str, rows: list[dict]) -> None:
        """Upsert many epoch rows in one statement. Each row needs ``phase`` and ``epoch`` and may
        carry train_loss, val_loss, val_accuracy, val_auroc, lr, seconds (other keys are
        ignored, so ``dataclasses.asdict(EpochEnd)`` works). A re-sent epoch replaces the old."""
        if not rows:
            return
        df = _epoch_frame(run_id, rows)
        with self._connect(write=True) as con:
            con.register("epoch_rows", df)
            cols = ", ".join(("run_id",) + EPOCH_COLUMNS)  # constants, not input
            con.execute(f"INSERT OR REPLACE INTO epochs ({cols}) SELECT {cols} FROM epoch_rows")

    def finish_run(self, result: RunResult) -> None:
        """In one transaction: the run's metrics (test from ``result.metrics``, val computed from
        its val predictions, and test at the threshold its recipe picks on val), every test
        and val prediction, and status ``finished``."""
        # scikit-learn is slow to import; only writers need it
        from ..analysis.metrics import run_metrics

        rid = result.run_id
        metrics = [("test", k, float(v)) for k, v in result.metrics.items()]
        if np.size(result.val_probs):
            val = run_metrics(result.val_labels, result.val_probs)
            metrics += [("val", k, float(v)) for k, v in val.items()]
        metric_df = pd.DataFrame(metrics, columns=["split", "name", "value"])
        metric_df.insert(0, "run_id", rid)
        pred_df = pd.concat([_prediction_frame(rid, "test", result.test_labels, result.test_probs),
                             _prediction_frame(rid, "val", result.val_labels, result.val_probs)],
                            ignore_index=True)
        with self._transaction(then=self._publish_results) as con:
            updated = con.execute(
                """UPDATE runs SET status = ?, finished_at = ?, wall_s = ?, best_epoch = ?,
                       best_phase = ?, checkpoint = ?, device = ?, error = NULL WHERE run_id = ?""",
                ["finished", _now(), float(result.wall_s), int(result.best_epoch),
                 int(result.best_phase), str(result.checkpoint), result.device, rid]).fetchone()[0]
            if updated != 1:
                raise StoreError(f"run {rid} cannot be finished in {self.path}: it was never "
                                 "started (call start_run first)")
            con.execute("DELETE FROM run_metrics WHERE run_id = ?", [rid])
            con.execute("DELETE FROM predictions WHERE run_id = ?", [rid])
            con.register("metric_rows", metric_df)
            con.register("prediction_rows", pred_df)
            con.execute("INSERT INTO run_metrics (run_id, split, name, value) "
                        "SELECT run_id, split, name, value FROM metric_rows")
            con.execute("INSERT INTO predictions (run_id, split, idx, label, prob) "
                        "SELECT run_id, split, idx, label, prob FROM prediction_rows")
            con.execute("DELETE FROM run_correct WHERE run_id = ?", [rid])
            con.execute(CORRECT_FROM_PREDICTIONS.format(source="prediction_rows"),
                        [CORRECT_THRESHOLD] * 3)
            add_val_threshold_metrics(con, [rid])

    def fail_run(self, run_id: str, error: str) -> None:
        """Mark a started run failed with its error text (a run never started is ignored)."""
        with self._transaction(then=self._publish_results) as con:
            con.execute("UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE run_id = ?",
                        ["failed", error, _now(), run_id])

    def delete_run(self, run_id: str) -> None:
        """Remove a run and its metrics, epochs and predictions (its files on disk stay)."""
        with self._transaction(then=self._publish_results) as con:
            for table in ("predictions", "run_correct", "epochs", "run_metrics", "runs"):
                con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])

    def cancel_run(self, run_id: str, reason: str) -> None:
        """Mark a started run cancelled (its epoch rows and checkpoints stay; a resubmitted
        run resumes from them). A run never started is ignored."""
        with self._transaction(then=self._publish_results) as con:
            con.execute("UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE run_id = ?",
                        ["cancelled", reason, _now(), run_id])

    # ---- runs: read by the app and the report -----------------------------------------------
    def finished_run_ids(self) -> set[str]:
        """Ids of every finished run (what a grid skips)."""
        with self._connect() as con:
            rows = con.execute("SELECT run_id FROM runs WHERE status = ?", ["finished"]).fetchall()
        return {r[0] for r in rows}

    def runs(self, status: str | None = None) -> pd.DataFrame:
        """One row per run (optionally of one status), oldest first, with its cell, state,
        checkpoint path, origin (LOCAL_ORIGIN or a bundle id, with the bundle's name and
        whether it shipped with synthmed) and test accuracy, auroc, f1, sensitivity,
        specificity (NaN until finished)."""
        if status is not None and status not in RUN_STATUSES:
            raise StoreError(f"unknown run status {status!r}; choose one of {list(RUN_STATUSES)}")
        # Column names come from the constant SUMMARY_METRICS; every value is a parameter.
        pivot = ", ".join(f"max(value) FILTER (WHERE name = ?) AS {m}" for m in SUMMARY_METRICS)
        where = "WHERE r.status = ?" if status else ""
        sql = f"""SELECT r.run_id, r.arch, r.init, r.setting, r.ratio, r.synthetic, r.seed,
                      r.profile, r.recipe, r.recipe_label, r.status, r.device, r.error,
                      r.started_at, r.finished_at, r.wall_s, r.best_epoch, r.checkpoint,
                      r.origin, b.name AS bundle,
                      coalesce(b.shipped, false) AS shipped,
                      {", ".join("m." + m for m in SUMMARY_METRICS)}
                  FROM runs r LEFT JOIN (SELECT run_id, {pivot} FROM run_metrics
                                         WHERE split = ? GROUP BY run_id) m USING (run_id)
                  LEFT JOIN bundles b ON b.bundle_id = r.origin
                  {where} ORDER BY r.started_at, r.run_id"""
        params = [*SUMMARY_METRICS, "test"] + ([status] if status else [])
        with self._connect() as con:
            return con.execute(sql, params).df()

    def resolve_run_id(self, prefix: str, status: str | None = None) -> str:
        """The one run id (of ``status``, if given) that starts with ``prefix``; SpecError
        naming the candidates when none or several do."""
        from ..errors import SpecError
        where = "AND status = ?" if status else ""
        with self._connect() as con:
            ids = [r[0] for r in con.execute(
                f"SELECT run_id FROM runs WHERE starts_with(run_id, ?) {where} ORDER BY run_id",
                [prefix or "", *([status] if status else [])]).fetchall()]
        if len(ids) != 1 or not prefix:
            kind = f"{status} run" if status else "run"
            raise SpecError(f"no {kind} matches {prefix!r}" if not ids or not prefix else
                            f"{prefix!r} matches {len(ids)} {kind}s: {', '.join(ids[:5])}"
                            + ("..." if len(ids) > 5 else ""))
        return ids[0]

    def run(self, run_id: str) -> dict | None:
        """Everything about one run: its columns, ``spec`` and ``context`` (dicts), ``metrics``
        (test), ``val_metrics``, ``metrics_by_split`` (every split, e.g. test at the val
        threshold), ``epochs`` and ``replicates`` (other records of the same run
        id, e.g. a shipped run's numbers after it was reproduced here; lists of dicts); None
        when the id is unknown."""
        with self._connect() as con:
            cur = con.execute("SELECT * FROM runs WHERE run_id = ?", [run_id])
            row = cur.fetchone()
            if row is None:
                return None
            out = dict(zip([d[0] for d in cur.description], row))
            metrics = con.execute("SELECT split, name, value FROM run_metrics WHERE run_id = ?",
                                  [run_id]).fetchall()
            epochs = con.execute("SELECT * FROM epochs WHERE run_id = ? ORDER BY epoch",
                                 [run_id]).df()
            replicates = con.execute("SELECT * FROM replicates WHERE run_id = ? ORDER BY "
                                     "finished_at", [run_id]).df()
        out["spec"] = json.loads(out.pop("spec_json"))
        out["context"] = json.loads(out.pop("context_json") or "null")
        out["replicates"] = [_replicate(r) for r in replicates.to_dict("records")]
        out["metrics_by_split"] = {}
        for split, name, value in metrics:
            out["metrics_by_split"].setdefault(split, {})[name] = value
        out["metrics"] = {n: v for s, n, v in metrics if s == "test"}
        out["val_metrics"] = {n: v for s, n, v in metrics if s == "val"}
        out["epochs"] = epochs.drop(columns="run_id").to_dict("records")
        return out

    def epochs(self, run_id: str) -> pd.DataFrame:
        """The run's epoch rows, by epoch."""
        with self._connect() as con:
            return con.execute("SELECT * FROM epochs WHERE run_id = ? ORDER BY epoch",
                               [run_id]).df()

    def local_epoch_times(self) -> pd.DataFrame:
        """Per phase of each finished run trained on this machine: run_id, spec_json, phase,
        epochs (rows stored) and seconds (their sum): what a job's time estimate reads."""
        with self._connect() as con:
            return con.execute(
                """SELECT r.run_id, r.spec_json, e.phase, count(*) AS epochs,
                          sum(e.seconds) AS seconds
                   FROM runs r JOIN epochs e ON e.run_id = r.run_id
                   WHERE r.status = ? AND r.origin = ? AND e.seconds IS NOT NULL
                   GROUP BY r.run_id, r.spec_json, e.phase ORDER BY r.run_id, e.phase""",
                ["finished", LOCAL_ORIGIN]).df()

    def predictions(self, run_ids: list[str], split: str = "test") -> pd.DataFrame:
        """Per-image predictions (run_id, idx, label, prob) of the runs, ordered by run_id then
        idx (= the image's row in the official split)."""
        with self._connect() as con:
            return con.execute(
                """SELECT run_id, idx, label, prob FROM predictions
                   WHERE list_contains(?::VARCHAR[], run_id) AND split = ?
                   ORDER BY run_id, idx""", [list(run_ids), split]).df()

    def metric_of(self, run_ids: list[str], split: str, name: str) -> dict[str, float]:
        """One metric of several runs, by run id (runs without it are left out)."""
        with self._connect() as con:
            rows = con.execute("SELECT run_id, value FROM run_metrics WHERE split = ? AND "
                               "name = ? AND list_contains(?::VARCHAR[], run_id)",
                               [split, name, list(run_ids)]).fetchall()
        return dict(rows)

    def cell_values(self, metric: str, split: str = "test") -> pd.DataFrame:
        """One row per finished run: its cell, seed, profile, recipe (and its label), ``value``
        of ``metric`` and wall_s. From the results snapshot (no lock)."""
        return self._read_results(lambda con: con.execute(
            """SELECT r.run_id, r.arch, r.init, r.setting, r.ratio, r.synthetic, r.seed,
                      r.profile, r.recipe, r.recipe_label, m.value, r.wall_s
               FROM runs r LEFT JOIN run_metrics m
                    ON m.run_id = r.run_id AND m.split = ? AND m.name = ?
               WHERE r.status = ? ORDER BY r.arch, r.setting, r.init, r.ratio, r.seed, r.run_id""",
            [split, metric, "finished"]).df())

    def reference(self) -> pd.DataFrame:
        """The study's 36 published test accuracies (never mixed into ``runs``)."""
        with self._connect() as con:
            return con.execute("SELECT * FROM reference ORDER BY arch, setting, init, ratio").df()

    # ---- registries -------------------------------------------------------------------------
    def register_synthetic_set(self, name: str, card: dict, path: str | None,
                               origin: str = LOCAL_ORIGIN) -> None:
        """Add or replace a synthetic set; method, n, class counts and content hash come from
        its card. ``path`` is None for a set known only from an imported bundle. A set of the
        same name that a bundle brought with other content is never replaced (StoreError)."""
        counts = card.get("counts", {})
        content = card.get("content_sha256")
        with self._transaction(then=self._publish_results) as con:
            old = con.execute("SELECT content_sha256, origin FROM synthetic_sets WHERE name = ?",
                              [name]).fetchone()
            if old and old[0] and content and old[0] != content and old[1] != LOCAL_ORIGIN:
                raise StoreError(
                    f"synthetic set {name!r} came with bundle {old[1]} holding other images "
                    f"(content {old[0][:12]}, this one {content[:12]}): its runs would be "
                    "confused with runs on this set. Register this one under another name")
            con.execute(
                """INSERT OR REPLACE INTO synthetic_sets (name, method, n, n_normal, n_pneumonia,
                       path, card_json, created_at, content_sha256, origin)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [name, card.get("method"), card.get("n"), counts.get("normal"),
                 counts.get("pneumonia"), str(path) if path is not None else None,
                 json.dumps(card, sort_keys=True), _now(), content, origin])

    def synthetic_sets(self) -> pd.DataFrame:
        """Every registered synthetic set, by name."""
        with self._connect() as con:
            return con.execute("SELECT * FROM synthetic_sets ORDER BY name").df()

    def register_pretrain(self, name: str, card: dict, path: str) -> None:
        """Add or replace a pretraining checkpoint (init ``chestmnist``)."""
        with self._transaction(then=self._publish_results) as con:
            con.execute("INSERT OR REPLACE INTO pretrains (name, card_json, path, created_at) "
                        "VALUES (?, ?, ?, ?)",
                        [name, json.dumps(card, sort_keys=True), str(path), _now()])

    def pretrains(self) -> pd.DataFrame:
        """Every registered pretraining checkpoint, by name."""
        with self._connect() as con:
            return con.execute("SELECT * FROM pretrains ORDER BY name").df()
