"""Reads behind the explorer's accuracy grid: one aggregate query for every cell, and the few
rows one cell's detail needs. Per-image pairing with ``base`` uses ``run_correct`` (one bit
string per run), never the prediction rows themselves, so it stays fast at 10,000 runs."""
from __future__ import annotations

import pandas as pd

from ._base import StoreBase

CELL_KEYS = ("arch", "init", "setting", "ratio", "synthetic", "profile")

# One base run per (arch, init, profile, seed): the first started, as compare.py matches them.
# The cell runs of the same arch, init, profile and seed pair with it image by image:
# wins = images only the cell got right, losses = images only its base got right. With e = +1
# (win), -1 (loss) or 0 per seed and image, q = sum over images of (sum over the cell's paired
# seeds of e) squared: the spread of the per-image difference that an image-level test needs,
# from pairs of seeds' bit strings (k x k bit counts per cell), still in this one query.
_GRID_SQL = """
WITH finished AS (
    SELECT run_id, arch, init, setting, ratio, synthetic, seed, profile, started_at
    FROM runs WHERE status = 'finished' AND (CAST(? AS VARCHAR) IS NULL OR profile = ?)
                AND (CAST(? AS VARCHAR) IS NULL OR origin = ?)),
base AS (
    SELECT arch, init, profile, seed, arg_min(run_id, started_at) AS base_id
    FROM finished WHERE setting = 'base' GROUP BY arch, init, profile, seed),
bits AS (
    SELECT f.run_id, f.arch, f.init, f.setting, f.ratio, f.synthetic, f.profile, rc.n AS n_images,
           rc.correct & ~bc.correct AS w, ~rc.correct & bc.correct AS l
    FROM finished f
    JOIN base b ON b.arch = f.arch AND b.init = f.init AND b.profile = f.profile
                   AND b.seed = f.seed
    JOIN run_correct rc ON rc.run_id = f.run_id AND rc.split = ?
    JOIN run_correct bc ON bc.run_id = b.base_id AND bc.split = ?
    WHERE f.setting <> 'base' AND rc.n = bc.n),
pairs AS (
    SELECT run_id, bit_count(w) AS wins, bit_count(l) AS losses, n_images FROM bits),
cross_seed AS (
    SELECT x.run_id,
           sum(bit_count(x.w & y.w) + bit_count(x.l & y.l)
               - bit_count(x.w & y.l) - bit_count(x.l & y.w)) AS q
    FROM bits x JOIN bits y
      ON x.arch = y.arch AND x.init = y.init AND x.setting = y.setting
         AND x.ratio IS NOT DISTINCT FROM y.ratio AND x.synthetic IS NOT DISTINCT FROM y.synthetic
         AND x.profile = y.profile AND x.n_images = y.n_images
    GROUP BY x.run_id)
SELECT f.arch, f.init, f.setting, f.ratio, f.synthetic, f.profile,
       avg(m.value) AS mean, stddev_samp(m.value) AS std, count(m.value) AS n,
       count(*) AS runs, count(p.run_id) AS paired_seeds,
       sum(p.wins) AS wins, sum(p.losses) AS losses, sum(p.n_images) AS pairs,
       sum(x.q) AS q
FROM finished f
LEFT JOIN run_metrics m ON m.run_id = f.run_id AND m.split = ? AND m.name = ?
LEFT JOIN pairs p ON p.run_id = f.run_id
LEFT JOIN cross_seed x ON x.run_id = f.run_id
GROUP BY f.arch, f.init, f.setting, f.ratio, f.synthetic, f.profile"""


def _cell_where(cell: dict) -> tuple[str, list]:
    """``r.arch = ? AND ...`` for the CELL_KEYS of ``cell`` (None matches NULL)."""
    parts, params = [], []
    for key in CELL_KEYS:  # column names are constants, values are parameters
        value = cell.get(key)
        if value is None or value != value:
            parts.append(f"r.{key} IS NULL")
        else:
            parts.append(f"r.{key} = ?")
            params.append(value)
    return " AND ".join(parts), params


class GridMixin(StoreBase):
    """The accuracy grid's query and one cell's runs and epochs."""

    def grid_cell_stats(self, metric: str, split: str = "test", profile: str | None = None,
                        origin: str | None = None) -> pd.DataFrame:
        """One row per cell of FINISHED runs (optionally of one ``profile``, and only those of
        one ``origin``: LOCAL_ORIGIN or a bundle id): its keys, mean,
        std (ddof=1) and n of ``metric`` over its runs, ``runs``, and against ``base`` of the
        same arch, init and profile matched by seed: ``paired_seeds``, ``wins`` (images only the
        cell classified right, summed over seeds), ``losses`` (only base right), ``pairs``
        (seed x image pairs) and ``q`` (sum over images of the squared per-image sum over seeds
        of win = +1 / loss = -1). Pairing columns are NULL for base cells and unmatched cells."""
        params = [profile, profile, origin, origin, split, split, split, metric]
        with self._connect() as con:
            return con.execute(_GRID_SQL, params).df()

    def cell_runs(self, cell: dict, split: str = "test") -> pd.DataFrame:
        """The finished runs of one cell (a dict of CELL_KEYS), by seed, each with its
        ``split`` metrics of SUMMARY_METRICS as columns, its origin (with the bundle's name and
        whether it shipped), checkpoint path and number of replicates."""
        from ._runs import SUMMARY_METRICS
        where, params = _cell_where(cell)
        # Column names come from the constant SUMMARY_METRICS; every value is a parameter.
        pivot = ", ".join(f"max(m.value) FILTER (WHERE m.name = ?) AS {m}"
                          for m in SUMMARY_METRICS)
        sql = f"""SELECT r.run_id, r.seed, r.device, r.wall_s, r.best_epoch, r.started_at,
                         {pivot}, r.origin, b.name AS bundle, coalesce(b.shipped, false) AS shipped,
                         r.checkpoint,
                         (SELECT count(*) FROM replicates p WHERE p.run_id = r.run_id)
                             AS replicates
                  FROM runs r LEFT JOIN run_metrics m ON m.run_id = r.run_id AND m.split = ?
                  LEFT JOIN bundles b ON b.bundle_id = r.origin
                  WHERE r.status = 'finished' AND {where}
                  GROUP BY ALL ORDER BY r.seed, r.started_at"""
        with self._connect() as con:
            return con.execute(sql, [*SUMMARY_METRICS, split, *params]).df()

    def epochs_of(self, run_ids: list[str]) -> pd.DataFrame:
        """Epoch rows of several runs, by run then epoch."""
        with self._connect() as con:
            return con.execute("SELECT * FROM epochs WHERE list_contains(?::VARCHAR[], run_id) "
                               "ORDER BY run_id, epoch", [list(run_ids)]).df()

    def profile_counts(self) -> pd.DataFrame:
        """Finished runs per profile (profile, runs), the most used first."""
        with self._connect() as con:
            return con.execute("SELECT profile, count(*) AS runs FROM runs WHERE status = ? "
                               "GROUP BY profile ORDER BY runs DESC, profile",
                               ["finished"]).df()

    def store_counts(self) -> dict[str, int]:
        """How much the store holds: runs (and finished runs), synthetic sets, pretrains, jobs
        (and active jobs), test prediction rows."""
        with self._connect() as con:
            row = con.execute(
                """SELECT (SELECT count(*) FROM runs),
                          (SELECT count(*) FROM runs WHERE status = 'finished'),
                          (SELECT count(*) FROM synthetic_sets), (SELECT count(*) FROM pretrains),
                          (SELECT count(*) FROM jobs),
                          (SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')),
                          (SELECT count(*) FROM predictions WHERE split = ?)""",
                ["test"]).fetchone()
        keys = ("runs", "finished_runs", "synthetic_sets", "pretrains", "jobs", "active_jobs",
                "predictions")
        return dict(zip(keys, map(int, row)))
