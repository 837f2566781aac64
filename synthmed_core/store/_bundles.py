"""The store's side of result bundles: the rows an export reads, and an import applied in one
transaction (a bundle is either imported whole or not at all). The file format, validation and
the decision of what each incoming run becomes live in ``synthmed_core.bundle``."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable

import pandas as pd

from ._schema import (CORRECT_FROM_PREDICTIONS, CORRECT_THRESHOLD, LOCAL_ORIGIN,
                      add_val_threshold_metrics, recipe_columns)
from ._schema import now as _now
from ._snapshot import SnapshotMixin

SAMPLE_SUFFIX = "-sample"  # the set a bundle's sample of set NAME becomes here: NAME-sample
# Columns of each table as a bundle carries it (constants: safe to format into SQL).
BUNDLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "runs": ("run_id", "arch", "init", "setting", "ratio", "synthetic", "seed", "profile",
             "spec_json", "status", "device", "started_at", "finished_at", "wall_s",
             "best_epoch", "best_phase", "context_json"),
    "metrics": ("run_id", "split", "name", "value"),
    "epochs": ("run_id", "phase", "epoch", "train_loss", "val_loss", "val_accuracy",
               "val_auroc", "lr", "seconds"),
    "predictions": ("run_id", "split", "idx", "label", "prob"),
}
# The store table behind each bundle table, and the order rows are written in (a bundle's
# bytes, and so its id, depend on it).
_SOURCE = {"runs": "runs", "metrics": "run_metrics", "epochs": "epochs",
           "predictions": "predictions"}
_ORDER = {"runs": "run_id", "metrics": "run_id, split, name", "epochs": "run_id, epoch",
          "predictions": "run_id, split, idx"}


@dataclass
class ImportPlan:
    """What an import writes: runs to add (``new``), local runs that failed or were cancelled
    to replace (``replace``), and records of runs finished here in another context to keep as
    replicates (``replicates``: run ids)."""

    bundle_id: str
    name: str
    path: str
    shipped: bool
    manifest: dict
    tables: dict[str, pd.DataFrame]
    sets: list[dict] = field(default_factory=list)  # {"name", "card", "path", "origin"}
    new: list[str] = field(default_factory=list)
    replace: list[str] = field(default_factory=list)
    replicates: list[str] = field(default_factory=list)
    # Run right after the commit, inside the lock (the import's staged files are moved in).
    on_commit: Callable[[], None] | None = None


class BundlesMixin(SnapshotMixin):
    """Export reads, the one-transaction import, and the bundles and replicates tables."""

    def finished_run_rows(self, profile: str | None = None, archs: list[str] | None = None,
                          synthetic: list[str] | None = None,
                          run_ids: list[str] | None = None) -> list[str]:
        """Ids of finished runs matching every filter given (``synthetic``: runs on those sets
        and runs that use none), sorted."""
        sql = """SELECT run_id FROM runs WHERE status = 'finished'
                   AND (CAST(? AS VARCHAR) IS NULL OR profile = ?)
                   AND (CAST(? AS VARCHAR[]) IS NULL OR list_contains(?, arch))
                   AND (CAST(? AS VARCHAR[]) IS NULL OR synthetic IS NULL
                        OR list_contains(?, synthetic))
                   AND (CAST(? AS VARCHAR[]) IS NULL OR list_contains(?, run_id))
                 ORDER BY run_id"""
        params = [profile, profile, archs, archs, synthetic, synthetic, run_ids, run_ids]
        with self._connect() as con:
            return [r[0] for r in con.execute(sql, params).fetchall()]

    def bundle_tables(self, run_ids: list[str]) -> dict[str, pd.DataFrame]:
        """The rows of ``run_ids`` in every bundle table, in a fixed order."""
        out = {}
        with self._connect() as con:
            for table, cols in BUNDLE_COLUMNS.items():
                out[table] = con.execute(
                    f"SELECT {', '.join(cols)} FROM {_SOURCE[table]} "
                    f"WHERE list_contains(?::VARCHAR[], run_id) ORDER BY {_ORDER[table]}",
                    [list(run_ids)]).df()
        return out

    def local_records(self, run_ids: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
        """For the runs of ``run_ids`` already in the store: (run_id, status, origin,
        context_json) and their metrics (run_id, split, name, value)."""
        with self._connect() as con:
            runs = con.execute("SELECT run_id, status, origin, context_json FROM runs "
                               "WHERE list_contains(?::VARCHAR[], run_id)", [list(run_ids)]).df()
            metrics = con.execute("SELECT run_id, split, name, value FROM run_metrics "
                                  "WHERE list_contains(?::VARCHAR[], run_id)",
                                  [list(runs["run_id"])]).df()
        return runs, metrics

    def bundle_imported(self, bundle_id: str) -> dict | None:
        """The bundles row of ``bundle_id`` (name, path, shipped, runs, imported_at and its
        ``manifest`` as a dict), or None."""
        with self._connect() as con:
            cur = con.execute("SELECT bundle_id, name, path, shipped, runs, imported_at, "
                              "manifest_json FROM bundles WHERE bundle_id = ?", [bundle_id])
            row = cur.fetchone()
            names = [d[0] for d in cur.description]
        if not row:
            return None
        out = dict(zip(names, row))
        out["manifest"] = json.loads(out.pop("manifest_json") or "null")
        return out

    def remove_bundle(self, bundle_id: str) -> dict:
        """Undo the import of ``bundle_id`` in one transaction: the runs it brought with all
        their rows, the replicate records it added, and the synthetic set records it
        registered that no remaining run uses (a set still used is handed to another bundle
        that uses it). Local runs and other bundles' runs stay as they were. Returns
        {"runs": n, "replicates": n, "sets": [{"name", "path"}]} (the caller removes the set
        folders once this has committed)."""
        with self._transaction(then=self._publish_results) as con:
            runs = [r[0] for r in con.execute("SELECT run_id FROM runs WHERE origin = ?",
                                              [bundle_id]).fetchall()]
            for table in ("predictions", "run_correct", "epochs", "run_metrics", "runs"):
                con.execute(f"DELETE FROM {table} WHERE list_contains(?::VARCHAR[], run_id)",
                            [runs])
            replicates = con.execute("DELETE FROM replicates WHERE origin = ?",
                                     [bundle_id]).fetchone()[0]
            sets = con.execute(
                """SELECT s.name, s.path FROM synthetic_sets s WHERE s.origin = ?
                   AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.synthetic = s.name
                                   OR r.synthetic || ? = s.name)""",
                [bundle_id, SAMPLE_SUFFIX]).fetchall()
            con.execute("DELETE FROM synthetic_sets WHERE origin = ? "
                        "AND list_contains(?::VARCHAR[], name)", [bundle_id, [n for n, _ in sets]])
            con.execute(  # a set still used: its record now belongs to a bundle using it
                """UPDATE synthetic_sets s SET origin = coalesce((SELECT any_value(r.origin)
                       FROM runs r WHERE r.synthetic = s.name OR r.synthetic || ? = s.name),
                       s.origin) WHERE s.origin = ?""", [SAMPLE_SUFFIX, bundle_id])
            con.execute("DELETE FROM bundles WHERE bundle_id = ?", [bundle_id])
        return {"runs": len(runs), "replicates": int(replicates),
                "sets": [{"name": n, "path": p} for n, p in sets]}

    def imported_bundle_ids(self) -> set[str]:
        """Ids of every bundle imported into this store."""
        with self._connect() as con:
            return {r[0] for r in con.execute("SELECT bundle_id FROM bundles").fetchall()}

    def bundles(self) -> pd.DataFrame:
        """Every imported bundle with how many of the store's runs it brought and its
        provenance (created_at, code commit, the devices its runs were computed on), newest
        first."""
        with self._connect() as con:
            return con.execute(
                """SELECT b.bundle_id, b.name, b.path, b.shipped, b.runs, b.imported_at,
                          count(r.run_id) AS runs_here,
                          json_extract_string(b.manifest_json, '$.created_at') AS created_at,
                          json_extract_string(b.manifest_json, '$.code.commit') AS commit,
                          array_to_string(CAST(json_extract(b.manifest_json, '$.run_devices')
                                               AS VARCHAR[]), '; ') AS computed_on
                   FROM bundles b LEFT JOIN runs r ON r.origin = b.bundle_id
                   GROUP BY ALL ORDER BY b.imported_at DESC""").df()

    def origins(self) -> pd.DataFrame:
        """Finished runs per origin: origin (LOCAL_ORIGIN or a bundle id), its bundle's name
        and whether it shipped with synthmed, runs."""
        with self._connect() as con:
            return con.execute(
                """SELECT r.origin, b.name, coalesce(b.shipped, false) AS shipped,
                          count(*) AS runs
                   FROM runs r LEFT JOIN bundles b ON b.bundle_id = r.origin
                   WHERE r.status = 'finished' GROUP BY r.origin, b.name, b.shipped
                   ORDER BY r.origin = ? DESC, runs DESC""", [LOCAL_ORIGIN]).df()

    def replicates(self, run_ids: list[str] | None = None) -> pd.DataFrame:
        """Replicate records (other records of a run id) beside the run's current one."""
        with self._connect() as con:
            return con.execute(
                """SELECT p.*, r.origin AS current_origin, r.context_json AS current_context
                   FROM replicates p JOIN runs r USING (run_id)
                   WHERE CAST(? AS VARCHAR[]) IS NULL OR list_contains(?, p.run_id)
                   ORDER BY p.run_id, p.finished_at""", [run_ids, run_ids]).df()

    def apply_import(self, plan: ImportPlan) -> bool:
        """Write ``plan`` in one transaction: the bundle row, its synthetic set cards, new and
        replaced runs with all their rows (``run_correct`` rebuilt from their predictions) and
        the replicates. Any error rolls everything back. False (nothing written) when another
        process imported the bundle since the plan was made."""
        t = plan.tables
        take = plan.new + plan.replace
        def then(con) -> None:
            if plan.on_commit is not None:
                plan.on_commit()
            self._publish_results(con)
        with self._transaction(then=then) as con:
            if con.execute("SELECT count(*) FROM bundles WHERE bundle_id = ?",
                           [plan.bundle_id]).fetchone()[0]:
                return False
            con.execute("INSERT INTO bundles VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [plan.bundle_id, plan.name, plan.path, plan.shipped, len(t["runs"]),
                         _now(), json.dumps(plan.manifest, sort_keys=True)])
            for s in plan.sets:
                con.execute(
                    """INSERT OR REPLACE INTO synthetic_sets (name, method, n, n_normal,
                           n_pneumonia, path, card_json, created_at, content_sha256, origin)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    [s["name"], s["card"].get("method"), s["card"].get("n"),
                     s["card"].get("counts", {}).get("normal"),
                     s["card"].get("counts", {}).get("pneumonia"), s["path"],
                     json.dumps(s["card"], sort_keys=True), _now(),
                     s["card"].get("content_sha256"), s["origin"]])
            for table in ("predictions", "run_correct", "epochs", "run_metrics", "runs"):
                con.execute(f"DELETE FROM {table} WHERE list_contains(?::VARCHAR[], run_id)",
                            [plan.replace])
            for table, cols in BUNDLE_COLUMNS.items():
                frame = t[table][t[table]["run_id"].isin(take)]
                con.register(f"in_{table}", frame)
                names = ", ".join(cols)
                if table == "runs":
                    recipes = [recipe_columns(j) for j in frame["spec_json"]]
                    con.register("in_runs", frame.assign(
                        recipe=[r for r, _ in recipes], recipe_label=[lab for _, lab in recipes]))
                    con.execute(f"INSERT INTO runs ({names}, origin, recipe, recipe_label) "
                                f"SELECT {names}, ?, recipe, recipe_label FROM in_runs",
                                [plan.bundle_id])
                else:
                    con.execute(f"INSERT INTO {_SOURCE[table]} ({names}) SELECT {names} "
                                f"FROM in_{table}")
            con.execute(CORRECT_FROM_PREDICTIONS.format(source="in_predictions"),
                        [CORRECT_THRESHOLD] * 3)
            add_val_threshold_metrics(con, take)  # for bundles made before runs had them
            if plan.replicates:
                con.register("in_replicates", _replicate_rows(plan))
                con.execute("INSERT OR IGNORE INTO replicates SELECT run_id, origin, "
                            "context_json, finished_at, wall_s, metrics_json, recorded_at "
                            "FROM in_replicates")
        return True


def _replicate_rows(plan: ImportPlan) -> pd.DataFrame:
    runs, metrics = plan.tables["runs"], plan.tables["metrics"]
    rows = []
    for run_id in plan.replicates:
        r = runs[runs["run_id"] == run_id].iloc[0]
        m = metrics[metrics["run_id"] == run_id]
        blob = {f"{s}/{n}": float(v) for s, n, v in zip(m["split"], m["name"], m["value"])}
        rows.append({"run_id": run_id, "origin": plan.bundle_id,
                     "context_json": r["context_json"], "finished_at": r["finished_at"],
                     "wall_s": r["wall_s"], "metrics_json": json.dumps(blob, sort_keys=True),
                     "recorded_at": _now()})
    return pd.DataFrame(rows)
