"""Importing bundles: what each incoming run becomes (added, already here, a replicate, a
conflict) and the synthetic sets and samples it brings."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import BundleError
from ..store import LOCAL_ORIGIN, ImportPlan, Store
from ..training.context import describe, same_context
from ._checks import validate
from ._format import FILES, SAMPLE_SUFFIX, Bundle, read_bundle
from ._staging import discard, move_in, settle, stage_set, staging_dir
from ._weights import check_weights, install_weights


@dataclass
class ImportReport:
    """What importing one bundle did (or would have done, for one already imported)."""

    bundle_id: str
    name: str
    path: str
    already_imported: bool = False
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)  # local failed/cancelled runs
    same: list[str] = field(default_factory=list)  # already here with the same numbers
    replicates: list[dict] = field(default_factory=list)  # {"run_id", "diff", "contexts"}
    conflicts: list[dict] = field(default_factory=list)  # {"run_id", "diff", "context"}
    running: list[str] = field(default_factory=list)  # being trained here now: left alone
    samples: list[str] = field(default_factory=list)  # sample sets written
    metadata_conflict: list[str] = field(default_factory=list)  # PROVENANCE fields differing
    weights: list[str] = field(default_factory=list)  # runs whose weights were installed

    def lines(self) -> list[str]:
        """The report for people, one line per fact."""
        head = f"bundle {self.name} ({self.bundle_id}, {self.path})"
        if self.already_imported and self.metadata_conflict:
            return [f"{head}: CONFLICT: the same files were imported before with other "
                    f"metadata ({', '.join(self.metadata_conflict)} differ); the first import "
                    "is kept (`results list` shows it; `results remove` undoes it)"]
        if self.already_imported:
            return [f"{head}: already imported; nothing to do"]
        out = [f"{head}: {len(self.added)} runs added, {len(self.same)} already here, "
               f"{len(self.replicates)} replicates, {len(self.conflicts)} conflicts"
               + (f", {len(self.replaced)} failed/cancelled local runs replaced"
                  if self.replaced else "")
               + (f", {len(self.running)} left alone (running here)" if self.running else "")]
        out += [f"  sample images: synthetic set {s}" for s in self.samples]
        out += [f"  model weights: run {r}" for r in self.weights]
        out += [f"  replicate {r['run_id']}: {r['diff']} ({r['contexts']})"
                for r in self.replicates]
        out += [f"  CONFLICT {c['run_id']}: same context ({c['context']}) but {c['diff']}; "
                "the local run is kept" for c in self.conflicts]
        return out


def import_bundle(store: Store, path: Path, shipped: bool = False) -> ImportReport:
    """Import one bundle folder into ``store`` (see the module docstring for what each run
    becomes). Idempotent: a bundle already imported is skipped (a copy of it with other
    metadata is reported as a conflict). Every check (``_format``, ``_checks``) runs before
    anything is written; BundleError listing every reason, and nothing imported, for a bundle
    that fails one or whose set clashes with one here. Files are staged and moved in only once
    the transaction has committed (``_staging``)."""
    settle(store)
    bundle = read_bundle(path)
    report = ImportReport(bundle.id, bundle.name, str(Path(path).resolve()))
    known = store.bundle_imported(bundle.id)
    if known:
        report.already_imported = True
        report.metadata_conflict = metadata_differences(known.get("manifest"), bundle.manifest)
        return report
    validate(bundle)
    samples = _sample_sets(bundle)
    weights = check_weights(bundle, defer_fidelity=shipped)
    staging = staging_dir(bundle.id)

    def on_commit() -> None:
        move_in(staging)
        report.weights = install_weights(weights)  # content-named files: idempotent
    try:
        for name, (images, labels, card) in samples.items():
            stage_set(staging, name, images, labels,
                      {k: v for k, v in card.items() if k != "content_sha256"})
            report.samples.append(name)
        plan = ImportPlan(bundle.id, bundle.name, report.path, shipped, bundle.manifest,
                          bundle.tables, sets=_set_rows(store, bundle, samples),
                          on_commit=on_commit)
        _classify(store, plan, report)
        if not store.apply_import(plan):  # another process imported it meanwhile
            return ImportReport(bundle.id, bundle.name, report.path, already_imported=True)
    finally:
        discard(staging)  # moved in on commit; anything left is of a failed import
    return report


# Manifest fields that say where a bundle's numbers come from: the same files (the same id)
# with other values here are a conflict to report, never a silent "already imported".
PROVENANCE = ("name", "code", "device", "run_devices", "versions", "schema_version")


def metadata_differences(stored: dict | None, manifest: dict) -> list[str]:
    """The provenance fields in which ``manifest`` differs from the imported bundle's."""
    if not isinstance(stored, dict):
        return []
    return [k for k in PROVENANCE if stored.get(k) != manifest.get(k)]


def _classify(store: Store, plan: ImportPlan, report: ImportReport) -> None:
    runs, metrics = plan.tables["runs"], plan.tables["metrics"]
    local_runs, local_metrics = store.local_records(list(runs["run_id"]))
    local = local_runs.set_index("run_id")
    theirs = _metric_dicts(metrics)
    ours = _metric_dicts(local_metrics)
    for row in runs.itertuples(index=False):
        rid = row.run_id
        if rid not in local.index:
            plan.new.append(rid)
            report.added.append(rid)
            continue
        status = local.loc[rid, "status"]
        if status == "running":
            report.running.append(rid)
            continue
        if status != "finished":
            plan.replace.append(rid)
            report.replaced.append(rid)
            continue
        diff = metric_diff(ours.get(rid, {}), theirs.get(rid, {}))
        if not diff:
            report.same.append(rid)
            continue
        mine = _json(local.loc[rid, "context_json"])
        other = _json(row.context_json)
        if same_context(mine, other):
            report.conflicts.append({"run_id": rid, "diff": diff, "context": describe(mine)})
        else:
            plan.replicates.append(rid)
            report.replicates.append({"run_id": rid, "diff": diff,
                                      "contexts": f"here: {describe(mine)}; bundle: "
                                                  f"{describe(other)}"})


def _metric_dicts(df: pd.DataFrame) -> dict[str, dict[tuple[str, str], float]]:
    out: dict[str, dict[tuple[str, str], float]] = {}
    for rid, split, name, value in zip(df["run_id"], df["split"], df["name"], df["value"]):
        out.setdefault(rid, {})[(split, name)] = float(value)
    return out


def metric_diff(a: dict, b: dict) -> str:
    """'' when two runs' metrics are equal (NaN equals NaN), else the test accuracy and AUROC
    differences (or the first differing metric) as text."""
    keys = set(a) | set(b)

    def equal(k) -> bool:
        x, y = a.get(k), b.get(k)
        if x is None or y is None:
            return x is y
        return x == y or (math.isnan(x) and math.isnan(y))
    differing = sorted(k for k in keys if not equal(k))
    if not differing:
        return ""
    shown = [k for k in (("test", "accuracy"), ("test", "auroc")) if k in differing]
    shown = shown or differing[:1]
    return ", ".join(f"{s} {n} {a.get((s, n), float('nan')):.4f} here vs "
                     f"{b.get((s, n), float('nan')):.4f} in the bundle" for s, n in shown)


def _json(value: Any) -> dict | None:
    return json.loads(value) if isinstance(value, str) and value else None


# ---- synthetic sets on import ----------------------------------------------------------------


def _local_set_hash(store_sets: pd.DataFrame, name: str) -> tuple[str | None, str | None]:
    """(content hash, origin) of the set ``name`` as this machine knows it: its registry row,
    else its folder on disk; (None, None) when unknown."""
    from ..synth.sets import list_sets
    hit = store_sets[store_sets["name"] == name]
    if len(hit) and isinstance(hit["content_sha256"].iloc[0], str):
        return hit["content_sha256"].iloc[0], hit["origin"].iloc[0]
    for card in list_sets():
        if card.get("name") == name and "error" not in card:
            if card.get("content_sha256"):
                return card["content_sha256"], LOCAL_ORIGIN
            from ..synth.sets import load_set
            return load_set(name)[1].get("content_sha256"), LOCAL_ORIGIN
    return None, None


def _set_rows(store: Store, bundle: Bundle, samples: dict) -> list[dict]:
    """The synthetic_sets rows to write; BundleError when a set name is taken by other
    images here (that would confuse two sets' runs)."""
    known = store.synthetic_sets()
    rows = []
    for s in bundle.tables["sets"].itertuples(index=False):
        local_hash, _origin = _local_set_hash(known, s.name)
        if local_hash and s.content_sha256 and local_hash != s.content_sha256:
            raise BundleError(
                f"{bundle.path / FILES['sets']}: its runs used synthetic set {s.name!r} with "
                f"content {s.content_sha256[:12]}, but this machine's set {s.name!r} holds "
                f"other images ({local_hash[:12]}). Rename the local set (import it again "
                "under another name) before importing this bundle; nothing was imported")
        if local_hash is None:  # known from the bundle only: its card, no images here
            rows.append({"name": s.name, "card": json.loads(s.card_json), "path": None,
                         "origin": bundle.id})
    for name, (_images, _labels, card) in samples.items():
        from ..synth.sets import set_dir
        rows.append({"name": name, "card": card, "path": str(set_dir(name)),
                     "origin": bundle.id})
    return rows


def _sample_sets(bundle: Bundle) -> dict[str, tuple[np.ndarray, np.ndarray, dict]]:
    """The sample sets this bundle brings, by set name (``NAME-sample``): images, labels and
    a card whose content hash is filled in. BundleError for damaged sample rows or a sample
    name taken by other images here."""
    from ..synth.copies import CARD_KEY
    from ..synth.sets import content_sha256, list_sets, validate_name
    samples, sets = bundle.tables["samples"], bundle.tables["sets"]
    on_disk = {c.get("name"): c for c in list_sets() if "error" not in c}
    out = {}
    for s in sets.itertuples(index=False):
        rows = samples[samples["set"] == s.name]
        if not len(rows) or not s.sample_card_json:
            continue
        try:
            images = np.stack([np.frombuffer(b, np.uint8).reshape(h, w) for b, h, w in
                               zip(rows["image"], rows["height"], rows["width"])])
        except ValueError as exc:
            raise BundleError(f"{bundle.path / FILES['samples']}: the sample of {s.name!r} "
                              f"has a damaged image ({exc})") from exc
        labels = rows["label"].to_numpy(np.uint8)
        name = validate_name(s.name[:64 - len(SAMPLE_SUFFIX)] + SAMPLE_SUFFIX)
        card = {**json.loads(s.sample_card_json), "method": "sample",
                "source": f"a fixed sample of synthetic set {s.name!r} from results bundle "
                          f"{bundle.name} ({bundle.id}); rebuild the whole set with the "
                          "generator, seed and parameters below",
                "content_sha256": content_sha256(images, labels)}
        card[CARD_KEY] = _recount_copies(bundle, s, images)
        there = on_disk.get(name)
        if there is not None and there.get("content_sha256") != card["content_sha256"]:
            raise BundleError(f"synthetic set {name!r} exists here with other images; it "
                              f"would be replaced by the sample in {bundle.path}. Rename or "
                              "delete it first; nothing was imported")
        out[name] = (images, labels, card)
    return out


def _recount_copies(bundle: Bundle, s, images: np.ndarray) -> dict:
    """The copies of real eval images in a bundle's sample, counted here (its card's count is
    the sender's word, made by whatever guard it ran). BundleError when the sample holds more
    copies of real TEST images than its set's card records: runs on that set would be scored
    on images they saw, unflagged."""
    from ..synth.copies import count_eval_copies, test_copies
    record = count_eval_copies(images)
    found = record["test"]["exact"] + record["test"]["near"]
    claimed = test_copies(json.loads(s.card_json)) or 0
    if found > claimed:
        raise BundleError(f"{bundle.path / FILES['samples']}: the sample of {s.name!r} holds "
                          f"{found} copies of real TEST images (sample rows "
                          f"{[r for r, _ in record['test']['examples']]}), but its set's card "
                          f"records {claimed}: runs on it would be scored on images they saw. "
                          "Nothing was imported")
    record["test_copies_allowed"] = bool(found)
    return record
