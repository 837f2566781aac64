"""Verbs that train and read runs: train, grid, report, runs list|show."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import catalog
from . import options as c


def register(sub) -> None:
    p = sub.add_parser("train", help="train one run (a cell + seed) and record it",
                       description="Train one run inline and record every metric in the store. "
                                   "Re-running the same command resumes an interrupted run; a "
                                   "finished run is not trained again (use --force).")
    c.add_cell(p, many=False)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="train again even if finished")
    c.add_profile(p), c.add_init_files(p), c.add_device(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("grid", help="train every run of the chosen axes, skipping finished ones",
                       description="Expand arch x init x setting x ratio x seed and train each run "
                                   "inline with a progress bar. Finished runs are skipped; stop it "
                                   "any time (Ctrl-C) and run it again to carry on.")
    c.add_cell(p, many=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--dry-run", action="store_true",
                   help="list the runs, train nothing; with each run left, its estimated time "
                        "here (from the runs of its arch trained here) and their sum")
    p.add_argument("--measure", action="store_true",
                   help="with --dry-run: time a few training batches of each arch that has no "
                        "run trained here yet (about a minute each), so every run gets an "
                        "estimate")
    c.add_profile(p), c.add_init_files(p), c.add_device(p)
    p.set_defaults(func=cmd_grid)

    p = sub.add_parser("report", help="setting x init table per arch, with the study's values",
                       description="Mean over seeds, 95% interval and n per cell, the study's "
                                   "published accuracy beside it.")
    p.add_argument("--metric", default="accuracy",
                   choices=list(catalog.METRICS))
    p.add_argument("--format", default="markdown", choices=["markdown", "csv", "latex"])
    p.add_argument("--arch", nargs="+", help="only these archs")
    p.add_argument("--profile", help="only runs of this profile")
    p.add_argument("--synthetic", nargs="+", metavar="SET",
                   help="only cells on these synthetic sets (and those without one, e.g. base)")
    p.add_argument("--threshold", default="both", choices=["0.5", "val", "both"],
                   help="the decision threshold of accuracy, F1, sensitivity, specificity: the "
                        "fixed 0.5, the one each run's recipe picks on val (Youden's J unless "
                        "--val-threshold said otherwise), or both (default; AUROC has none)")
    p.add_argument("--split", default="test", choices=["test", "val"],
                   help="test (default), or val: each run's figures on the real val split at "
                        "its chosen checkpoint, what a recipe is chosen on (an ablation); val "
                        "is at 0.5 only, since a val-picked threshold on val itself is circular")
    p.add_argument("--digits", type=int, default=3, choices=range(1, 7), metavar="N",
                   help="decimals shown (default 3; val AUROC near 1 may need 4)")
    p.add_argument("--sens-spec", action="store_true",
                   help="instead: each cell's sensitivity and specificity on val and on test, at "
                        "0.5 and at the val-picked threshold (means over seeds): which class "
                        "the val-to-test gap is in")
    p.add_argument("--out", type=Path, help="write to this file instead of stdout")
    p.set_defaults(func=cmd_report)

    runs = sub.add_parser("runs", help="list runs or show one").add_subparsers(
        dest="runs_verb", required=True, metavar="{list,show}")
    p = runs.add_parser("list", help="one line per run, newest first")
    p.add_argument("--status", choices=catalog.RUN_STATUSES)
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=cmd_runs_list)
    p = runs.add_parser("show", help="a run's spec, metrics and epochs")
    p.add_argument("run_id", help="run id (a unique prefix is enough)")
    p.set_defaults(func=cmd_runs_show)


def _store():
    from ..store import Store
    return Store()


def cmd_train(a: argparse.Namespace) -> int:
    spec = c.run_spec(a)
    from ..operations.train import train  # torch: only once the spec is built
    print(train(spec, _store(), a.device, force=a.force, progress=not a.no_progress).summary)
    return 0


def cmd_grid(a: argparse.Namespace) -> int:
    specs = c.grid_run_specs(a)
    store = _store()
    done = store.finished_run_ids()
    print(f"{len(specs)} runs, {sum(s.run_id in done for s in specs)} already finished")
    if a.dry_run:
        print_plan(specs, done, store, measure=a.measure)
        return 0
    if a.measure:
        from ..errors import SpecError
        raise SpecError("--measure goes with --dry-run: it times an arch for the estimates")
    from ..operations.train import run_grid
    summary = run_grid(specs, store, a.device, progress=not a.no_progress)
    print(f"trained {len(summary.trained)}, skipped {len(summary.skipped)} (already finished), "
          f"failed {len(summary.failed)}")
    for run_id, err in summary.failed.items():
        print(f"  failed {run_id}: {err.splitlines()[0] if err else ''}", file=sys.stderr)
    return 1 if summary.failed else 0


def print_plan(specs, done: set[str], store, measure: bool = False) -> None:
    """Each run of the grid, done or to do; beside each run to do its estimated time here and,
    last, their sum (``bench.estimate``: the speed of this arch's runs trained here, else a
    kept short measurement; ``measure`` makes one for each arch that has neither)."""
    from ..bench import estimate as est
    from ..errors import DataError
    todo = [s for s in specs if s.run_id not in done]
    times, sizes = store.local_epoch_times(), est.set_sizes(store.synthetic_sets())

    def estimate(spec):
        """(its Estimate or None, why there is none)."""
        try:
            return est.estimate_spec(times, sizes, spec), (
                f"no {spec.cell.arch} run trained here to time it from (--measure times a few "
                "batches)")
        except DataError as exc:
            return None, str(exc)

    if measure:
        for arch, prof in sorted({(s.cell.arch, s.profile) for s in todo}, key=str):
            first = next(s for s in todo if s.cell.arch == arch and s.profile == prof)
            if estimate(first)[0] is None:
                print(f"measuring {arch} at {prof.input_size} px (a few training batches)...")
                est.measure(arch, prof.input_size, prof.batch_size)
    total, speeds, unknown = 0.0, {}, []
    for s in specs:
        line = f"  {s.run_id}  {'done ' if s.run_id in done else 'todo '} {s.cell.key} " \
               f"seed={s.seed} profile={s.profile.name}"
        if s.run_id not in done:
            e, why = estimate(s)
            if e is None:
                unknown.append(s)
                line += f"  (no estimate: {why})"
            else:
                total += e.seconds
                speeds[s.cell.arch] = e.speed.source
                line += f"  ~{est.duration_text(e.seconds)}"
        print(line)
    if not todo:
        return
    known = len(todo) - len(unknown)
    if known:
        print(f"the {known} run{'s' if known > 1 else ''} left with an estimate: "
              f"~{est.duration_text(total)} of one worker here"
              + (f"; {len(unknown)} more without one" if unknown else ""))
        for arch, source in sorted(speeds.items()):
            print(f"  {arch}: seconds per training image from {source}")
    else:
        print(f"no estimate for the {len(todo)} run{'s' if len(todo) > 1 else ''} left (each "
              "line says why)")


def cmd_report(a: argparse.Namespace) -> int:
    from ..analysis.calibration import VAL_THRESHOLD_SPLIT
    from ..explorer.report import format_table, report_table
    store = _store()
    if a.sens_spec:
        from ..explorer.shift import shift_table
        text = "\n\n".join(shift_table(store, a.profile, arch) for arch in (a.arch or [None]))
        a.out.write_text(text) if a.out else print(text)
        return 0
    splits = {"0.5": ["test"], "val": [VAL_THRESHOLD_SPLIT],
              "both": ["test", VAL_THRESHOLD_SPLIT]}[a.threshold]
    if not catalog.METRICS[a.metric].thresholded:  # AUROC: one figure, whatever the threshold
        splits = ["test"]
    if a.split == "val":
        splits = ["val"]
    tables = [report_table(store, metric=a.metric, archs=a.arch, profile=a.profile,
                           every_study_arch=a.arch is None and split == "test",
                           synthetic=a.synthetic, split=split) for split in splits]
    for t in tables:
        t.attrs["digits"] = a.digits
    texts = [format_table(t, fmt=a.format, metric=a.metric) for t in tables]
    if a.format == "csv":  # one table: the rows of each threshold, one header
        texts = texts[:1] + [t.split("\n", 1)[1] for t in texts[1:]]
    text = ("" if a.format == "csv" else "\n\n").join(texts)
    if a.out:
        a.out.write_text(text)
        print(f"wrote {a.out}")
    else:
        print(text)
    return 0


def cmd_runs_list(a: argparse.Namespace) -> int:
    df = _store().runs(status=a.status)
    if df.empty:
        print("no runs yet: try `python -m synthmed_core train --profile smoke`")
        return 0
    from ..explorer.views import RUN_COLUMNS, with_source
    df = with_source(df.sort_values("started_at", ascending=False).head(a.limit))
    print(df[[col for col in RUN_COLUMNS if col in df.columns]].to_string(
        index=False, float_format="%.4f"))
    return 0


def cmd_runs_show(a: argparse.Namespace) -> int:
    store = _store()
    c.print_json(store.run(store.resolve_run_id(a.run_id)))
    return 0
