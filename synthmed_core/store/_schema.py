"""The database schema as an ordered list of migrations, and the code that applies them.

Append a migration to change the schema; never edit one that has shipped. A step is an SQL
statement or a function of the connection (for data loads that need parameters).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import duckdb

from ..errors import StoreError
from ..catalog import PROFILES
from ..grid import RunSpec, reference_rows

Step = str | Callable[[duckdb.DuckDBPyConnection], None]

# runs.origin of a run computed on this machine (imported runs hold their bundle's id).
LOCAL_ORIGIN = "local"
# A prediction is pneumonia when P(pneumonia) >= this (metrics.run_metrics' default).
CORRECT_THRESHOLD = 0.5
# Bit i of `correct` = image idx i was classified right at the threshold; idx runs 0..n-1.
# {source} is a table or registered frame with run_id, split, idx, label, prob (never input).
CORRECT_FROM_PREDICTIONS = """
    INSERT OR REPLACE INTO run_correct (run_id, split, threshold, n, n_correct, correct)
    SELECT run_id, split, ?, count(*),
           count(*) FILTER (WHERE (prob >= ?) = (label = 1)),
           string_agg(CASE WHEN (prob >= ?) = (label = 1) THEN '1' ELSE '0' END, ''
                      ORDER BY idx)::BIT
    FROM {source} GROUP BY run_id, split"""


def _load_reference(con: duckdb.DuckDBPyConnection) -> None:
    con.executemany(
        "INSERT INTO reference (arch, setting, init, ratio, train_size, test_accuracy, source)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(r.arch, r.setting, r.init, r.ratio, r.train_size, r.test_accuracy, "study")
         for r in reference_rows()])


# No CHECK on status columns: DuckDB cannot alter constraints, and later issues may add statuses.
MIGRATIONS: list[tuple[int, list[Step]]] = [
    (1, [
        """CREATE TABLE runs (
            run_id VARCHAR PRIMARY KEY, arch VARCHAR NOT NULL, init VARCHAR NOT NULL,
            setting VARCHAR NOT NULL, ratio DOUBLE, synthetic VARCHAR, seed INTEGER NOT NULL,
            profile VARCHAR NOT NULL, spec_json VARCHAR NOT NULL, status VARCHAR NOT NULL,
            device VARCHAR, error VARCHAR, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ,
            wall_s DOUBLE, best_epoch INTEGER, best_phase INTEGER, checkpoint VARCHAR)""",
        """CREATE TABLE run_metrics (
            run_id VARCHAR, split VARCHAR, name VARCHAR, value DOUBLE,
            PRIMARY KEY (run_id, split, name))""",
        """CREATE TABLE epochs (
            run_id VARCHAR, phase INTEGER, epoch INTEGER, train_loss DOUBLE, val_loss DOUBLE,
            val_accuracy DOUBLE, val_auroc DOUBLE, lr DOUBLE, seconds DOUBLE,
            PRIMARY KEY (run_id, epoch))""",
        """CREATE TABLE predictions (
            run_id VARCHAR, split VARCHAR, idx INTEGER, label INTEGER, prob DOUBLE,
            PRIMARY KEY (run_id, split, idx))""",
        """CREATE TABLE synthetic_sets (
            name VARCHAR PRIMARY KEY, method VARCHAR, n INTEGER, n_normal INTEGER,
            n_pneumonia INTEGER, path VARCHAR, card_json VARCHAR, created_at TIMESTAMPTZ)""",
        """CREATE TABLE pretrains (
            name VARCHAR PRIMARY KEY, card_json VARCHAR, path VARCHAR, created_at TIMESTAMPTZ)""",
        """CREATE TABLE reference (
            arch VARCHAR, setting VARCHAR, init VARCHAR, ratio DOUBLE, train_size VARCHAR,
            test_accuracy DOUBLE, source VARCHAR)""",
        _load_reference,
    ]),
    # Background jobs: the queue, each job's progress stream, and the live workers.
    # Job ids are small integers so people can type them (`python -m jobs show 12`).
    (2, [
        "CREATE SEQUENCE job_ids START 1",
        """CREATE TABLE jobs (
            id BIGINT PRIMARY KEY DEFAULT nextval('job_ids'), kind VARCHAR NOT NULL,
            label VARCHAR, spec_json VARCHAR NOT NULL, status VARCHAR NOT NULL,
            priority INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,
            max_attempts INTEGER NOT NULL DEFAULT 3, gpu BOOLEAN NOT NULL DEFAULT false,
            worker VARCHAR, pid INTEGER, heartbeat_at TIMESTAMPTZ,
            created_at TIMESTAMPTZ NOT NULL, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ,
            error VARCHAR, log_path VARCHAR, run_id VARCHAR, parent_id BIGINT,
            cancel_requested BOOLEAN NOT NULL DEFAULT false, stats_json VARCHAR)""",
        """CREATE TABLE job_progress (
            job_id BIGINT, seq INTEGER, attempt INTEGER, emitted_at TIMESTAMPTZ, event VARCHAR,
            phase INTEGER, epoch INTEGER, total_epochs INTEGER, step INTEGER, steps INTEGER,
            loss DOUBLE, images_per_s DOUBLE, eta_s DOUBLE, metrics_json VARCHAR,
            PRIMARY KEY (job_id, seq))""",
        """CREATE TABLE workers (
            id VARCHAR PRIMARY KEY, host VARCHAR, pid INTEGER, device VARCHAR, backend VARCHAR,
            status VARCHAR, job_id BIGINT, started_at TIMESTAMPTZ, heartbeat_at TIMESTAMPTZ)""",
    ]),
    # The explorer: each run's per-image correctness as one bit string per split, so
    # the accuracy grid pairs every cell with its base (McNemar) over thousands of runs without
    # reading millions of prediction rows. Derived from `predictions`; rebuilt with them.
    (3, [
        """CREATE TABLE run_correct (
            run_id VARCHAR, split VARCHAR, threshold DOUBLE NOT NULL, n INTEGER NOT NULL,
            n_correct INTEGER NOT NULL, correct BIT NOT NULL, PRIMARY KEY (run_id, split))""",
        lambda con: con.execute(CORRECT_FROM_PREDICTIONS.format(source="predictions"),
                                [CORRECT_THRESHOLD] * 3),
    ]),
    # Results that travel: where each run came from (LOCAL_ORIGIN = this machine, else the id
    # of the bundle it was imported from), the execution context it was computed in, the bundles
    # imported, and replicates (other records of the same run id: another machine's numbers
    # kept beside this one's). A set known only from a bundle has no path.
    (4, [
        f"ALTER TABLE runs ADD COLUMN origin VARCHAR DEFAULT '{LOCAL_ORIGIN}'",
        "ALTER TABLE runs ADD COLUMN context_json VARCHAR",
        "ALTER TABLE synthetic_sets ADD COLUMN content_sha256 VARCHAR",
        f"ALTER TABLE synthetic_sets ADD COLUMN origin VARCHAR DEFAULT '{LOCAL_ORIGIN}'",
        """UPDATE synthetic_sets SET content_sha256 = json_extract_string(card_json,
               '$.content_sha256') WHERE card_json IS NOT NULL""",
        """CREATE TABLE bundles (
            bundle_id VARCHAR PRIMARY KEY, name VARCHAR, path VARCHAR, shipped BOOLEAN,
            runs INTEGER, imported_at TIMESTAMPTZ, manifest_json VARCHAR)""",
        """CREATE TABLE replicates (
            run_id VARCHAR, origin VARCHAR, context_json VARCHAR, finished_at TIMESTAMPTZ,
            wall_s DOUBLE, metrics_json VARCHAR, recorded_at TIMESTAMPTZ,
            PRIMARY KEY (run_id, origin, finished_at))""",
    ]),
    # A cell is one recipe: runs are grouped by the resolved recipe (RunSpec.recipe: profile
    # fields, overrides, weights files), not by the profile's name. Both derive from spec_json;
    # stored because the grid groups by them. recipe_label is for people (RunSpec.recipe_label).
    (5, [
        "ALTER TABLE runs ADD COLUMN recipe VARCHAR",
        "ALTER TABLE runs ADD COLUMN recipe_label VARCHAR",
        lambda con: _fill_recipes(con),
    ]),
    # Test metrics at the decision threshold each run's recipe picks on val (split
    # VAL_THRESHOLD_SPLIT), reported beside those at 0.5; for runs recorded before, from their
    # stored val and test predictions.
    (6, [lambda con: add_val_threshold_metrics(con)]),
    # What the stored recipe labels were computed against (refresh_recipe_labels).
    (7, ["CREATE TABLE IF NOT EXISTS store_meta (key VARCHAR PRIMARY KEY, value VARCHAR)"]),
]


def add_val_threshold_metrics(con: duckdb.DuckDBPyConnection,
                              run_ids: list[str] | None = None) -> None:
    """Write the VAL_THRESHOLD_SPLIT metrics of the finished runs (of ``run_ids``, or all)
    that have val and test predictions and no such metrics yet, in ``con``'s transaction."""
    from ..analysis.calibration import VAL_THRESHOLD_SPLIT, val_threshold_metrics
    todo = con.execute(
        """SELECT r.run_id, r.spec_json FROM runs r
           WHERE r.status = 'finished'
             AND (CAST(? AS VARCHAR[]) IS NULL OR list_contains(?, r.run_id))
             AND NOT EXISTS (SELECT 1 FROM run_metrics m WHERE m.run_id = r.run_id
                             AND m.split = ?)""",
        [run_ids, run_ids, VAL_THRESHOLD_SPLIT]).fetchall()
    if not todo:
        return
    preds = con.execute(
        """SELECT run_id, split, label, prob FROM predictions
           WHERE list_contains(?::VARCHAR[], run_id) ORDER BY run_id, split, idx""",
        [[rid for rid, _ in todo]]).df()
    by_run = {key: g for key, g in preds.groupby(["run_id", "split"])}
    rows = []
    for rid, spec_json in todo:
        val, test = by_run.get((rid, "val")), by_run.get((rid, "test"))
        if val is None or test is None or val["label"].nunique() < 2:
            continue  # a rule needs both classes on val
        rule = RunSpec.from_dict(json.loads(spec_json)).profile.val_threshold
        metrics = val_threshold_metrics(rule, val["label"], val["prob"], test["label"],
                                        test["prob"])
        rows += [(rid, VAL_THRESHOLD_SPLIT, k, float(v)) for k, v in metrics.items()]
    if rows:
        con.executemany("INSERT INTO run_metrics (run_id, split, name, value) VALUES (?,?,?,?)",
                        rows)


def recipe_columns(spec_json: str) -> tuple[str, str]:
    """(recipe, recipe_label) of a run from its stored spec."""
    spec = RunSpec.from_dict(json.loads(spec_json))
    return spec.recipe, spec.recipe_label


def profiles_fingerprint() -> str:
    """A hash of every profile as this code defines it: recipe labels are relative to it."""
    blob = json.dumps({k: dataclasses.asdict(v) for k, v in sorted(PROFILES.items())},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def refresh_recipe_labels(con: duckdb.DuckDBPyConnection) -> bool:
    """Recompute every run's recipe label when the profiles changed since they were computed
    (a run's label names what it changes of its profile: when a profile is redefined, the
    labels of its runs change, their ids and recipes do not). True when it recomputed."""
    has_meta = con.execute("SELECT count(*) FROM information_schema.tables "
                           "WHERE table_name = 'store_meta'").fetchone()[0]
    if not has_meta:  # a store kept at an older schema (tests of old migrations)
        return False
    fingerprint = profiles_fingerprint()
    row = con.execute("SELECT value FROM store_meta WHERE key = 'profiles'").fetchone()
    if row is not None and row[0] == fingerprint:
        return False
    _fill_recipes(con)
    con.execute("INSERT OR REPLACE INTO store_meta VALUES ('profiles', ?)", [fingerprint])
    return True


def _fill_recipes(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute("SELECT run_id, spec_json FROM runs").fetchall()
    if rows:
        con.executemany("UPDATE runs SET recipe = ?, recipe_label = ? WHERE run_id = ?",
                        [(*recipe_columns(spec), rid) for rid, spec in rows])


def now() -> datetime:
    """The current time, timezone-aware UTC (every timestamp the store writes)."""
    return datetime.now(timezone.utc)


def migrate(con: duckdb.DuckDBPyConnection, db: Path,
            migrations: list[tuple[int, list[Step]]]) -> bool:
    """Apply, in order and each in its own transaction, the migrations newer than the file.
    True when it applied any."""
    con.execute("CREATE TABLE IF NOT EXISTS schema_version "
                "(version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)")
    current = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
    latest = migrations[-1][0]
    if current > latest:
        raise StoreError(f"the results database {db} has schema version {current}, newer than "
                         f"this code knows ({latest}); update synthmed, or point SYNTHMED_DB "
                         "at another file")
    applied = False
    for version, steps in migrations:
        if version <= current:
            continue
        applied = True
        con.begin()
        try:
            for step in steps:
                step(con) if callable(step) else con.execute(step)
            con.execute("INSERT INTO schema_version VALUES (?, ?)", [version, now()])
            con.commit()
        except Exception as exc:
            con.rollback()
            raise StoreError(f"migration {version} of the results database {db} failed and was "
                             f"rolled back: {exc}. The file is left at version {current}.") from exc
        current = version
    return applied
