"""A scratch store full of fake finished runs, for benchmarks and tests of the explorer's reads.

``fill_scratch_store`` writes thousands of runs and millions of prediction rows in seconds: the
run rows come from one DataFrame, everything else is generated inside DuckDB (hash-based
pseudo-random numbers, so the same ``seed`` gives the same rows). The predictions are
consistent with the metrics, epochs and ``run_correct`` bits derived from them, exactly as a
real run's would be. Never point it at a database that holds real results.
"""
from __future__ import annotations

import itertools

import pandas as pd

from ..catalog import INITS, STUDY_ARCHS
from ..grid import make_run_spec
from ._schema import CORRECT_FROM_PREDICTIONS, CORRECT_THRESHOLD
from ._schema import now as _now

# The cells filled, cycled over: the study's settings and ours, two archs, three inits.
_INITS = INITS
_SETTINGS = (("base", None, None), ("synthetic_base", None, "bench-set"),
             ("augment", 1.0, "bench-set"), ("augment", 2.0, "bench-set"),
             ("augment", 3.0, "bench-set"), ("synthetic_ft", None, "bench-set"),
             ("duplicate_control", 1.0, None), ("synthetic_pretrain", None, "bench-set"))
_SKILL = {"base": 0.86, "synthetic_base": 0.70, "augment": 0.87, "synthetic_ft": 0.84,
          "duplicate_control": 0.86, "synthetic_pretrain": 0.85}
_EPOCHS = 5

# u(run, idx, salt) in [0, 1): deterministic pseudo-random numbers from a hash.
_U = "(hash(?::BIGINT, {salt}, r.run_id, i.idx) % 1000003) / 1000003.0"

_PREDICTIONS = f"""
INSERT INTO predictions (run_id, split, idx, label, prob)
SELECT r.run_id, 'test', i.idx, i.label,
       CASE WHEN ({_U.format(salt=1)} < r.skill) = (i.label = 1)
            THEN 0.5 + 0.499 * {_U.format(salt=2)} ELSE 0.499 * {_U.format(salt=2)} END
FROM bench_runs r, (SELECT range::INTEGER AS idx,
                           CASE WHEN (hash(?::BIGINT, range) % 1000) < 625 THEN 1 ELSE 0 END
                           AS label FROM range(?)) i"""

# Test metrics from the predictions, AUROC by the rank formula (ties are rare with hashes).
_METRICS = """
INSERT INTO run_metrics (run_id, split, name, value)
WITH p AS (SELECT run_id, label, prob >= ? AS pos,
                  rank() OVER (PARTITION BY run_id ORDER BY prob) AS rk
           FROM predictions WHERE split = 'test' AND run_id IN (SELECT run_id FROM bench_runs)),
c AS (SELECT run_id, count(*) FILTER (WHERE pos AND label = 1) AS tp,
             count(*) FILTER (WHERE pos AND label = 0) AS fp,
             count(*) FILTER (WHERE NOT pos AND label = 1) AS fn,
             count(*) FILTER (WHERE NOT pos AND label = 0) AS tn,
             sum(rk) FILTER (WHERE label = 1) AS rank_sum
      FROM p GROUP BY run_id)
SELECT run_id, 'test', unnest(['accuracy', 'auroc', 'f1', 'sensitivity', 'specificity',
                               'tn', 'fp', 'fn', 'tp']),
       unnest([(tp + tn) / (tp + tn + fp + fn),
               (rank_sum - (tp + fn) * (tp + fn + 1) / 2) / ((tp + fn) * (tn + fp)),
               2 * tp / nullif(2 * tp + fp + fn, 0), tp / nullif(tp + fn, 0),
               tn / nullif(tn + fp, 0), tn, fp, fn, tp])
FROM c"""

_EPOCH_ROWS = f"""
INSERT INTO epochs (run_id, phase, epoch, train_loss, val_loss, val_accuracy, val_auroc, lr,
                    seconds)
SELECT r.run_id, 0, e.range, 0.7 / (1 + e.range) + 0.05 * u, 0.5 / (1 + e.range) + 0.1 * u,
       r.skill - 0.1 / (1 + e.range), r.skill + 0.05 - 0.1 / (1 + e.range), 1e-4, 10.0
FROM bench_runs r, range({_EPOCHS}) e,
     LATERAL (SELECT (hash(?::BIGINT, r.run_id, e.range) % 1000) / 1000.0 AS u)"""


def _run_rows(n_runs: int, seed: int) -> pd.DataFrame:
    cells = itertools.cycle(itertools.product(STUDY_ARCHS, _INITS, _SETTINGS))
    n_cells = len(STUDY_ARCHS) * len(_INITS) * len(_SETTINGS)
    rows, started = [], _now()
    for i in range(n_runs):
        arch, init, (setting, ratio, synthetic) = next(cells)
        spec = make_run_spec(arch, init, setting, seed=i // n_cells, profile="quick",
                             ratio=ratio, synthetic=synthetic, extra={"bench_seed": seed})
        skill = _SKILL[setting] + (0.02 if init != "scratch" else 0.0) \
            + (0.01 if arch == "resnet50" else 0.0)
        rows.append({"run_id": spec.run_id, "arch": arch, "init": init, "setting": setting,
                     "ratio": ratio, "synthetic": synthetic, "seed": spec.seed,
                     "profile": "quick", "spec_json": spec.to_json(), "status": "finished",
                     "device": "bench", "started_at": started, "finished_at": started,
                     "wall_s": 60.0, "best_epoch": _EPOCHS - 1, "best_phase": 0,
                     "recipe": spec.recipe, "recipe_label": spec.recipe_label,
                     "skill": skill})
    return pd.DataFrame(rows)


def fill_scratch_store(store, n_runs: int = 10_000, n_preds_per_run: int = 600,
                       seed: int = 0) -> dict[str, int]:
    """Add ``n_runs`` fake finished runs to ``store`` (a Store on a scratch file), spread over
    2 archs x 3 inits x 8 setting rows of the quick profile, seeds 0, 1, ... per cell; each
    with ``n_preds_per_run`` test predictions, its test metrics, 5 epoch rows and its
    ``run_correct`` bits. Deterministic in ``seed``. Returns the store's counts afterwards.
    10,000 x 600 (6 M prediction rows) takes well under a minute on 2 cores."""
    runs = _run_rows(n_runs, seed)
    cols = [c for c in runs.columns if c != "skill"]  # constants, not input
    with store._transaction(then=store._publish_results) as con:
        con.register("bench_runs", runs)
        con.execute(f"INSERT INTO runs ({', '.join(cols)}) SELECT {', '.join(cols)} "
                    "FROM bench_runs")
        con.execute(_PREDICTIONS, [seed, seed, seed, seed, int(n_preds_per_run)])
        con.execute(_METRICS, [CORRECT_THRESHOLD])
        con.execute(_EPOCH_ROWS, [seed])
        con.execute(CORRECT_FROM_PREDICTIONS.format(
            source="(SELECT * FROM predictions WHERE run_id IN "
                   "(SELECT run_id FROM bench_runs))"), [CORRECT_THRESHOLD] * 3)
    return store.store_counts()
