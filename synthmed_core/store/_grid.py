"""Reads behind the explorer's accuracy grid: one aggregate query for every cell, and the few
rows one cell's detail needs. Per-image pairing with ``base`` uses ``run_correct`` (one bit
string per run, read as packed bytes), never the prediction rows themselves, so it stays fast
at 10,000 runs."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ._jobs import ACTIVE, ACTIVE_SQL
from ._snapshot import SnapshotMixin, fingerprint

# A cell: arch, init, training data (setting, ratio, set) and one resolved recipe (the
# profile named, plus any overrides and weights files: RunSpec.recipe). Seeds vary within it.
CELL_KEYS = ("arch", "init", "setting", "ratio", "synthetic", "profile", "recipe")

# Finished runs of one profile and origin (either may be NULL: all).
_FINISHED = """
    SELECT run_id, arch, init, setting, ratio, synthetic, seed, profile, recipe,
           recipe_label, started_at
    FROM runs WHERE status = 'finished' AND (CAST(? AS VARCHAR) IS NULL OR profile = ?)
                AND (CAST(? AS VARCHAR) IS NULL OR origin = ?)"""

_CELL_COLS = ", ".join(CELL_KEYS)
_SAME_CELL = " AND ".join(f"c.{k} IS NOT DISTINCT FROM p.{k}" for k in CELL_KEYS)

# Per cell: mean, std and n of the metric; and against base, the runs paired with their base
# (k) and the correctness bits of each run and of its base, one packed BLOB per run (BIT ->
# BLOB is DuckDB's own byte layout, padding bits first; read as text the same bits cost 2x the
# query; the results snapshot stores them as BLOBs already). One base
# run per (arch, init, recipe, seed): the first started, as compare.py matches them. Each
# other run of the same arch, init, recipe and seed pairs with it image by image.
_GRID_SQL = f"""
WITH finished AS ({_FINISHED}),
cells AS (
    SELECT {_CELL_COLS}, any_value(recipe_label) AS recipe_label, avg(m.value) AS mean,
           stddev_samp(m.value) AS std, count(m.value) AS n, count(*) AS runs
    FROM finished f
    LEFT JOIN run_metrics m ON m.run_id = f.run_id AND m.split = ? AND m.name = ?
    GROUP BY {_CELL_COLS}),
base AS (
    SELECT arch, init, recipe, seed, arg_min(run_id, started_at) AS base_id
    FROM finished WHERE setting = 'base' GROUP BY arch, init, recipe, seed),
paired AS (
    SELECT f.arch, f.init, f.setting, f.ratio, f.synthetic, f.profile, f.recipe,
           max(rc.n) AS n_images, min(rc.n) AS n_min, count(*) AS k,
           list(rc.correct::BLOB ORDER BY f.run_id) AS r,
           list(bc.correct::BLOB ORDER BY f.run_id) AS b
    FROM finished f
    JOIN base b ON b.arch = f.arch AND b.init = f.init AND b.recipe = f.recipe
                   AND b.seed = f.seed
    JOIN run_correct rc ON rc.run_id = f.run_id AND rc.split = ?
    JOIN run_correct bc ON bc.run_id = b.base_id AND bc.split = ?
    WHERE f.setting <> 'base' AND rc.n = bc.n
    GROUP BY f.arch, f.init, f.setting, f.ratio, f.synthetic, f.profile, f.recipe)
SELECT c.*, p.n_images, p.n_min, p.k, p.r, p.b
FROM cells c LEFT JOIN paired p ON {_SAME_CELL}"""

_PAIR_COLUMNS = ("paired_seeds", "wins", "losses", "pairs", "q", "seed_sq", "note")


def _pairing(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with the pairing columns computed from each cell's k pairs of correctness bit
    blobs (run, its base) in place of them: paired_seeds (k; 0 when unpaired), wins and
    losses summed over seeds, pairs (k x images), q = sum over images of (wins - losses
    over the k seeds) squared, the spread an image-level test needs, and seed_sq = sum over
    seeds of (wins - losses over the images) squared, the seed-to-seed spread of the
    differences (with q, the seed-aware test's cross-seed image covariance: ``analysis.seeds.
    accuracy_units``), and ``note``: why a cell is not paired although it has a base (its runs
    scored test sets of different sizes), else None. In numpy, O(k x images) per cell; the same sums in SQL took k x k bit
    counts per cell (10x slower at 10,000 runs)."""
    out = []
    for k, n, n_min, run, base in zip(rows["k"], rows["n_images"], rows["n_min"], rows["r"],
                                      rows["b"]):
        if not isinstance(run, (list, np.ndarray)):
            out.append((0, np.nan, np.nan, np.nan, np.nan, np.nan, None))
            continue
        k, n = int(k), int(n)
        if int(n_min) != n:  # a mixed store (e.g. an old import): shown, never paired
            out.append((0, np.nan, np.nan, np.nan, np.nan, np.nan,
                        f"its runs were scored on test sets of different sizes ({int(n_min)} "
                        f"to {n} images): not compared with base"))
            continue
        run, base = _bits(run, n), _bits(base, n)
        wins = (run & ~base).sum(0, dtype=np.int64)  # per image: seeds only the run got right
        losses = (base & ~run).sum(0, dtype=np.int64)  # ... only its base got right
        per_image = wins - losses
        per_seed = (run.sum(1, dtype=np.int64) - base.sum(1, dtype=np.int64))  # wins - losses
        out.append((k, int(wins.sum()), int(losses.sum()), k * n,
                    int((per_image * per_image).sum()), int((per_seed * per_seed).sum()), None))
    pairing = pd.DataFrame(out, columns=list(_PAIR_COLUMNS), index=rows.index)
    return pd.concat([rows.drop(columns=["n_images", "n_min", "k", "r", "b"]), pairing], axis=1)


def _bits(blobs, n: int) -> np.ndarray:
    """A (runs, n) boolean matrix from the BLOBs of n-bit BIT values (ceil(n / 8) bytes each, the
    unused bits first)."""
    size = (n + 7) // 8
    rows = np.frombuffer(b"".join(blobs), np.uint8).reshape(len(blobs), size)
    return np.unpackbits(rows, axis=1)[:, size * 8 - n:].astype(bool)


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


def _cell_stats(con, metric: str, split: str, profile: str | None,
                origin: str | None) -> pd.DataFrame:
    params = [profile, profile, origin, origin, split, metric, split, split]
    return _pairing(con.execute(_GRID_SQL, params).df())


class GridMixin(SnapshotMixin):
    """The accuracy grid's query and one cell's runs and epochs."""

    def grid_cell_stats(self, metric: str, split: str = "test", profile: str | None = None,
                        origin: str | None = None) -> pd.DataFrame:
        """One row per cell of FINISHED runs (optionally of one ``profile``, and only those of
        one ``origin``: LOCAL_ORIGIN or a bundle id): its keys, mean,
        std (ddof=1) and n of ``metric`` over its runs, ``runs``, and against ``base`` of the
        same arch, init and recipe matched by seed: ``paired_seeds``, ``wins`` (images only the
        cell classified right, summed over seeds), ``losses`` (only base right), ``pairs``
        (seed x image pairs), ``q`` (sum over images of the squared per-image sum over seeds
        of win = +1 / loss = -1) and ``seed_sq`` (sum over seeds of the squared per-seed sum
        over images). Pairing columns are NULL for base cells and unmatched cells.
        Read from the results snapshot (no lock)."""
        return self._read_results(lambda con: _cell_stats(con, metric, split, profile, origin))

    def grid_inputs(self, metric: str, split: str = "test", profile: str | None = None,
                    origin: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """What the grid page needs, from one generation of the results snapshot:
        ``grid_cell_stats`` and the synthetic sets (``synthetic_sets``)."""
        return self._read_results(lambda con: (
            _cell_stats(con, metric, split, profile, origin),
            con.execute("SELECT * FROM synthetic_sets ORDER BY name").df()))

    def correct_bits(self, run_ids: list[str], split: str = "test") -> dict[str, np.ndarray]:
        """Per finished run, a boolean per image of ``split`` (in image order): classified right
        at 0.5 (``run_correct``; from the results snapshot, no lock). Runs without bits are
        left out. 10,000 runs cost a few MB, where their predictions are 6 M rows."""
        def read(con):
            return con.execute(
                """SELECT run_id, n, correct::BLOB FROM run_correct WHERE split = ?
                   AND run_id IN (SELECT unnest(?::VARCHAR[]))""",
                [split, list(run_ids)]).fetchall()
        rows = self._read_results(read)
        return {rid: _bits([blob], int(n))[0] for rid, n, blob in rows}

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
        return self._read_results(lambda con: con.execute(
            "SELECT profile, count(*) AS runs FROM runs WHERE status = ? "
            "GROUP BY profile ORDER BY runs DESC, profile", ["finished"]).df())

    def results_version(self) -> str:
        """A fingerprint of everything a results page shows: the runs (status, checkpoint,
        recipe, origin), the bundles, replicates, synthetic set cards and pretrains. It changes
        when a run ends, a bundle is imported, a set is registered or measured, from any
        process; progress rows and epochs of running jobs leave it alone. The results
        snapshot's generation where there is one (a file read, no lock); else a fingerprint
        read from the database (~20 ms at 10k runs, the connection included, 2-core box busy).
        """
        generation = self.results_generation()
        if generation is not None:
            return f"snapshot:{generation}"
        with self._connect() as con:
            return fingerprint(con)

    def store_counts(self) -> dict[str, int]:
        """How much the store holds: runs (and finished runs), synthetic sets, pretrains, jobs
        (and active jobs), test prediction rows."""
        with self._connect() as con:
            row = con.execute(
                f"""SELECT (SELECT count(*) FROM runs),
                           (SELECT count(*) FROM runs WHERE status = 'finished'),
                           (SELECT count(*) FROM synthetic_sets), (SELECT count(*) FROM pretrains),
                           (SELECT count(*) FROM jobs),
                           (SELECT count(*) FROM jobs WHERE {ACTIVE_SQL}),
                           (SELECT count(*) FROM predictions WHERE split = ?)""",
                [*ACTIVE, "test"]).fetchone()
        keys = ("runs", "finished_runs", "synthetic_sets", "pretrains", "jobs", "active_jobs",
                "predictions")
        return dict(zip(keys, map(int, row)))
