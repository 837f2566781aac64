"""What a bundle's tables say, checked against itself and the real data before anything is
written: a registry of checks (``CHECKS``), each a function of the bundle that returns the
reasons it finds (none: it passes). ``validate`` runs them all and refuses the bundle with
every reason in one message.

A bundle is a stranger's file: its sha256 list only proves it was not damaged in transit (anyone
can recompute it). So each run's id must be the hash of its spec, its columns must be the spec,
its predictions must cover each real split once with the real labels, and its stored metrics
must be what those predictions give."""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from ..errors import SynthmedError
from ..grid import RunSpec
from ._format import LIMITS, SAMPLE_SUFFIX, Bundle, load_json_capped, refusal

RUN_ID = re.compile(r"[0-9a-f]{12}")
# Bundle, profile, arch and set names: what a folder and a command-line word may be
# (data.synthetic.validate_name's rule; any timm model name fits it).
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")
SHA256 = re.compile(r"[0-9a-f]{64}")
PREDICTION_SPLITS = ("test", "val")
METRIC_TOLERANCE = 1e-6  # stored vs recomputed from the predictions (float round trips)
_SHOWN = 5  # ids named per reason


@dataclass
class Checked:
    """What the checks share: the bundle, each run's parsed spec (filled by ``check_specs``)
    and the real labels of each split (read once, on first use)."""

    bundle: Bundle
    specs: dict[str, RunSpec] = field(default_factory=dict)
    predictions_ok: bool = False  # set by check_predictions
    _labels: dict[str, np.ndarray | str] = field(default_factory=dict)

    def real_labels(self, split: str) -> np.ndarray | str:
        """The real labels of ``split``, or why they cannot be read (a message)."""
        if split not in self._labels:
            from ..data.real import load_real_labels
            try:
                self._labels[split] = np.asarray(load_real_labels(split)).reshape(-1)
            except SynthmedError as exc:
                self._labels[split] = str(exc)
        return self._labels[split]

    def table(self, name: str) -> pd.DataFrame:
        return self.bundle.tables[name]


Check = Callable[[Checked], list[str]]


def _ids(values) -> str:
    values = sorted({str(v)[:40] for v in values})
    more = f" and {len(values) - _SHOWN} more" if len(values) > _SHOWN else ""
    return ", ".join(repr(v) for v in values[:_SHOWN]) + more


def check_manifest(c: Checked) -> list[str]:
    """The manifest's name is a valid name and its text fields are short."""
    m, out = c.bundle.manifest, []
    name = m.get("name")
    if name is not None and not (isinstance(name, str) and NAME.fullmatch(name)):
        out.append(f"manifest: name {str(name)[:80]!r} is not a valid bundle name (1-64 "
                   "letters, digits, '.', '_' or '-', not starting with '.' or '-')")
    long = [k for k, v in _strings(m) if len(v) > LIMITS.text_chars]
    if long:
        out.append(f"manifest: text over {LIMITS.text_chars} characters in {_ids(long)}")
    return out


def _strings(obj, key: str = "") -> list[tuple[str, str]]:
    if isinstance(obj, str):
        return [(key, obj)]
    if isinstance(obj, dict):
        return [s for k, v in obj.items() for s in _strings(v, f"{key}.{k}".strip("."))]
    if isinstance(obj, list):
        return [s for v in obj for s in _strings(v, key)]
    return []


_KEYS = {"runs": ["run_id"], "metrics": ["run_id", "split", "name"],
         "epochs": ["run_id", "epoch"], "predictions": ["run_id", "split", "idx"],
         "sets": ["name"], "samples": ["set", "row"]}


def check_unique_keys(c: Checked) -> list[str]:
    """No row of a table twice (each table's key, as the store's primary keys)."""
    out = []
    for table, key in _KEYS.items():
        dup = c.table(table).duplicated(key)
        if dup.any():
            out.append(f"{table}: {int(dup.sum())} rows repeat a ({', '.join(key)}) already "
                       "there")
    return out


def check_specs(c: Checked) -> list[str]:
    """Each run: a finished run whose id is 12 hex digits, the hash of its spec, which parses
    into a valid cell, seed and profile with names the CLI accepts."""
    bad_id, bad_spec, not_hash, status = [], [], [], []
    for rid, spec_json, st in zip(c.table("runs")["run_id"], c.table("runs")["spec_json"],
                                  c.table("runs")["status"]):
        if not RUN_ID.fullmatch(rid):
            bad_id.append(rid)
            continue
        if st != "finished":
            status.append(rid)
        try:
            spec = _parse_spec(spec_json)
        except (SynthmedError, ValueError, KeyError, TypeError, AttributeError) as exc:
            bad_spec.append(f"{rid} ({type(exc).__name__}: {str(exc)[:120]})")
            continue
        if spec.run_id != rid:
            not_hash.append(rid)
            continue
        c.specs[rid] = spec
    out = []
    if bad_id:
        out.append(f"runs: ids that are not 12 hex digits: {_ids(bad_id)}")
    if status:
        out.append(f"runs: only finished runs travel; not finished: {_ids(status)}")
    if bad_spec:
        out.append(f"runs: specs that are not a valid run spec: {'; '.join(bad_spec[:_SHOWN])}"
                   + (f" and {len(bad_spec) - _SHOWN} more" if len(bad_spec) > _SHOWN else ""))
    if not_hash:
        out.append(f"runs: run ids that are not the hash of their spec: {_ids(not_hash)}")
    return out


def _parse_spec(spec_json: str) -> RunSpec:
    d = load_json_capped(spec_json, LIMITS.json_bytes, "spec_json")
    if not isinstance(d, dict) or not isinstance(d.get("cell"), dict) or \
            not isinstance(d.get("profile"), dict):
        raise ValueError("needs a 'cell' and a 'profile' object")
    spec = RunSpec.from_dict(d)  # the cell is validated as it is built
    ratio = spec.cell.ratio
    if ratio is not None and (type(ratio) not in (int, float)):
        raise ValueError(f"ratio {str(ratio)[:40]!r} is not a number")
    if spec.to_dict() != {**d, "extra": d.get("extra", {})}:
        raise ValueError("holds fields a run spec does not have")
    for what, value in (("arch", spec.cell.arch), ("profile", spec.profile.name),
                        ("synthetic set", spec.cell.synthetic or "x")):
        if not isinstance(value, str) or not NAME.fullmatch(value):
            raise ValueError(f"invalid {what} name {str(value)[:40]!r}")
    _check_profile_types(spec)
    if not isinstance(spec.seed, int) or spec.seed < 0:
        raise ValueError(f"seed {spec.seed!r} is not a non-negative integer")
    return spec


# A profile field's annotation -> whether a value read from JSON fits it (bool is not a number).
_FITS = {"str": lambda v: isinstance(v, str), "bool": lambda v: isinstance(v, bool),
         "int": lambda v: type(v) is int, "float": lambda v: type(v) in (int, float),
         "int | None": lambda v: v is None or (type(v) is int and v > 0)}


def _check_profile_types(spec: RunSpec) -> None:
    """Each profile field of the type its definition gives, a known val threshold rule."""
    import dataclasses

    from ..analysis.calibration import THRESHOLD_RULES
    for f in dataclasses.fields(spec.profile):
        value = getattr(spec.profile, f.name)
        if not _FITS[str(f.type)](value):
            raise ValueError(f"profile field {f.name} = {str(value)[:40]!r} is not a {f.type}")
    if spec.profile.val_threshold not in THRESHOLD_RULES:
        raise ValueError(f"unknown val threshold rule {spec.profile.val_threshold!r}")


_RUN_FROM_SPEC = {"arch": lambda s: s.cell.arch, "init": lambda s: s.cell.init,
                  "setting": lambda s: s.cell.setting, "ratio": lambda s: s.cell.ratio,
                  "synthetic": lambda s: s.cell.synthetic, "seed": lambda s: s.seed,
                  "profile": lambda s: s.profile.name}


def check_run_columns(c: Checked) -> list[str]:
    """Each run's arch, init, setting, ratio, synthetic, seed and profile columns are its spec's
    (the grid groups by the columns, a reproduction trains the spec)."""
    wrong: dict[str, list[str]] = {}
    for row in c.table("runs").to_dict("records"):
        spec = c.specs.get(row["run_id"])
        if spec is None:
            continue
        for col, get in _RUN_FROM_SPEC.items():
            if not _same(row[col], get(spec)):
                wrong.setdefault(col, []).append(row["run_id"])
    return [f"runs: {col} column differs from the run's spec in {_ids(ids)}"
            for col, ids in wrong.items()]


def _same(a, b) -> bool:
    missing = (lambda v: v is None or (isinstance(v, float) and math.isnan(v))
               or v is pd.NA)
    if missing(a) or missing(b):
        return missing(a) and missing(b)
    return a == b


def check_belongs(c: Checked) -> list[str]:
    """Every metric, epoch and prediction row belongs to a run of the bundle."""
    runs = set(c.table("runs")["run_id"])
    out = []
    for table in ("metrics", "epochs", "predictions"):
        stray = set(c.table(table)["run_id"]) - runs
        if stray:
            out.append(f"{table}: rows of runs the bundle does not hold: {_ids(stray)}")
    return out


def check_predictions(c: Checked) -> list[str]:
    """Each run has a prediction for every image of the real test and val splits, once, with
    the real label, and a probability in [0, 1]."""
    preds = c.table("predictions")
    out = []
    bad_split = set(preds["split"]) - set(PREDICTION_SPLITS)
    if bad_split:
        out.append(f"predictions: splits {_ids(bad_split)} are not {list(PREDICTION_SPLITS)}")
    p = preds["prob"].to_numpy(np.float64)
    bad_p = ~(np.isfinite(p) & (p >= 0) & (p <= 1))
    if bad_p.any():
        out.append(f"predictions: {int(bad_p.sum())} probabilities are not finite numbers in "
                   f"[0, 1] (runs {_ids(preds.loc[bad_p, 'run_id'])})")
    groups = {k: g for k, g in preds.groupby(["run_id", "split"], sort=False)}
    problems: dict[str, list[str]] = {}
    for split in PREDICTION_SPLITS:
        real = c.real_labels(split)
        if isinstance(real, str):
            out.append(f"predictions: cannot check them against the real {split} split: "
                       f"{real}")
            continue
        for rid in c.table("runs")["run_id"]:
            g = groups.get((rid, split))
            why = _coverage(g, real) if g is not None else "none"
            if why:
                problems.setdefault(f"{split} {why}", []).append(rid)
    out += [f"predictions: {what} (runs {_ids(ids)})" for what, ids in problems.items()]
    c.predictions_ok = not out
    return out


def _coverage(g: pd.DataFrame, real: np.ndarray) -> str:
    """'' when ``g`` (one run's predictions on one split) covers each real image once with its
    real label; else what is wrong."""
    idx = g["idx"].to_numpy(np.int64)
    if len(idx) != len(real) or not np.array_equal(np.sort(idx), np.arange(len(real))):
        return f"not each of the {len(real)} real images once ({len(idx)} rows)"
    if not np.array_equal(g["label"].to_numpy(np.int64), real[idx]):
        return "labels differ from the real split's"
    return ""


def check_metrics(c: Checked) -> list[str]:
    """The stored test and val metrics, and the val-chosen threshold with test's metrics at it,
    are what the run's predictions give (the grid and `jobs submit grid` read the stored ones)."""
    from ..analysis.calibration import THRESHOLD_RULES, VAL_THRESHOLD_SPLIT
    metrics, preds = c.table("metrics"), c.table("predictions")
    known = set(METRIC_NAMES) | {"threshold"}
    out = []
    odd = metrics[~metrics["split"].isin([*PREDICTION_SPLITS, VAL_THRESHOLD_SPLIT])
                  | ~metrics["name"].isin(known)]
    if len(odd):
        out.append(f"metrics: {len(odd)} rows name no metric synthmed computes "
                   f"({_ids(odd['split'] + '/' + odd['name'])})")
    if not c.predictions_ok:
        return out  # the predictions themselves are refused: nothing to recompute from
    by_run = {rid: g for rid, g in preds.groupby("run_id", sort=False)}
    have_all: dict[str, dict] = {}
    for rid, split, name, value in zip(metrics["run_id"], metrics["split"], metrics["name"],
                                       metrics["value"]):
        have_all.setdefault(rid, {})[(split, name)] = value
    wrong: dict[str, list[str]] = {}
    for rid, spec in c.specs.items():
        y, p = {}, {}
        for s, g in by_run[rid].groupby("split"):
            g = g.sort_values("idx")
            y[s], p[s] = g["label"].to_numpy(np.int64), g["prob"].to_numpy(np.float64)
        want = {(s, k): v for s in PREDICTION_SPLITS for k, v in fast_metrics(y[s], p[s]).items()}
        have = have_all.get(rid, {})
        if any(s == VAL_THRESHOLD_SPLIT for s, _ in have):
            t = THRESHOLD_RULES[spec.profile.val_threshold][1](y["val"], p["val"])
            at_val = {**fast_metrics(y["test"], p["test"], t), "threshold": t}
            at_val.pop("auroc")
            want.update({(VAL_THRESHOLD_SPLIT, k): v for k, v in at_val.items()})
        for key in (("test", "accuracy"), ("test", "auroc")):
            if key not in have:
                wrong.setdefault(f"test {key[1]} missing", []).append(rid)
        for key, value in have.items():
            if key in want and not _close(value, want[key]):
                wrong.setdefault(f"{key[0]} {key[1]} differs from what its predictions give",
                                 []).append(rid)
    out += [f"metrics: {what} (runs {_ids(ids)})" for what, ids in wrong.items()]
    return out


METRIC_NAMES = ("accuracy", "auroc", "f1", "sensitivity", "specificity", "tn", "fp", "fn", "tp")


def fast_metrics(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """``analysis.metrics.run_metrics`` in plain numpy (~50x faster: scikit-learn's input
    checks cost ~30 ms a call, and a bundle has hundreds). tests/test_bundle_checks.py holds
    the two equal on random and tied predictions."""
    pred = p >= threshold
    pos = y == 1
    tp, fn = int(np.sum(pred & pos)), int(np.sum(~pred & pos))
    fp, tn = int(np.sum(pred & ~pos)), int(np.sum(~pred & ~pos))
    n1, n0 = tp + fn, tn + fp
    nan = float("nan")
    return {"accuracy": (tp + tn) / len(y), "auroc": _auroc(p, pos, n1, n0),
            "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
            "sensitivity": tp / n1 if n1 else nan, "specificity": tn / n0 if n0 else nan,
            "tn": tn, "fp": fp, "fn": fn, "tp": tp}


def _auroc(p: np.ndarray, pos: np.ndarray, n1: int, n0: int) -> float:
    """Mann-Whitney U / (n1 n0) with tied scores at their mean rank: the ROC area."""
    if not n1 or not n0:
        return float("nan")
    _, inverse, counts = np.unique(p, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[inverse]
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _close(a: float, b: float) -> bool:
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= METRIC_TOLERANCE


def check_epochs(c: Checked) -> list[str]:
    """Epoch and phase numbers are small non-negative integers."""
    e = c.table("epochs")
    bad = e[(e["epoch"] < 0) | (e["phase"] < 0) | (e["epoch"] > LIMITS.rows_per_run["epochs"])
            | (e["phase"] > 8)]
    return [f"epochs: {len(bad)} rows with an epoch or phase out of range (runs "
            f"{_ids(bad['run_id'])})"] if len(bad) else []


def check_sets(c: Checked) -> list[str]:
    """Each synthetic set: a valid name, a content hash (or none), JSON cards within the caps;
    every run's set is one of them."""
    sets, out = c.table("sets"), []
    bad_name = [n for n in sets["name"] if not NAME.fullmatch(n) or
                not NAME.fullmatch(n[:64 - len(SAMPLE_SUFFIX)] + SAMPLE_SUFFIX)]
    if bad_name:
        out.append(f"synthetic_sets: invalid set names {_ids(bad_name)}")
    bad_hash = [n for n, h in zip(sets["name"], sets["content_sha256"])
                if isinstance(h, str) and not SHA256.fullmatch(h)]
    if bad_hash:
        out.append(f"synthetic_sets: content hashes that are not sha256 in {_ids(bad_hash)}")
    for col in ("card_json", "sample_card_json"):
        for name, text in zip(sets["name"], sets[col]):
            if isinstance(text, str):
                why = _json_object(text)
                if why:
                    out.append(f"synthetic_sets: {col} of {str(name)[:40]!r} {why}")
    used = {s for s in c.table("runs")["synthetic"] if isinstance(s, str)}
    missing = used - set(sets["name"])
    if missing:
        out.append(f"synthetic_sets: runs use sets the bundle does not describe: "
                   f"{_ids(missing)}")
    return out


def _json_object(text: str) -> str:
    try:
        obj = load_json_capped(text, LIMITS.json_bytes)
    except ValueError as exc:
        return f"is not readable ({exc})"
    if not isinstance(obj, dict):
        return "is not a JSON object"
    long = [k for k, v in _strings(obj) if len(v) > LIMITS.text_chars]
    return f"has text over {LIMITS.text_chars} characters in {_ids(long)}" if long else ""


def check_samples(c: Checked) -> list[str]:
    """Sample images: of a set the bundle describes, at most LIMITS.samples_per_set per set,
    declared sides within LIMITS.image_side, one size per set, exactly height x width bytes
    each, labels 0 or 1. Checked before any image is decoded."""
    s, out = c.table("samples"), []
    stray = set(s["set"]) - set(c.table("sets")["name"])
    if stray:
        out.append(f"samples: images of sets the bundle does not describe: {_ids(stray)}")
    counts = s["set"].value_counts()
    many = counts[counts > LIMITS.samples_per_set]
    if len(many):
        out.append(f"samples: over {LIMITS.samples_per_set} images in sets {_ids(many.index)}")
    h, w = s["height"].to_numpy(np.int64), s["width"].to_numpy(np.int64)
    big = (h < 1) | (w < 1) | (h > LIMITS.image_side) | (w > LIMITS.image_side)
    if big.any():
        out.append(f"samples: {int(big.sum())} images declare sides outside 1-"
                   f"{LIMITS.image_side} px (sets {_ids(s.loc[big, 'set'])})")
    sizes = np.fromiter((len(b) if isinstance(b, bytes) else -1 for b in s["image"]),
                        np.int64, len(s))
    short = ~big & (sizes != h * w)
    if short.any():
        out.append(f"samples: {int(short.sum())} images are not height x width bytes (sets "
                   f"{_ids(s.loc[short, 'set'])})")
    mixed = s.groupby("set")[["height", "width"]].nunique().max(axis=1) > 1
    if mixed.any():
        out.append(f"samples: images of several sizes in sets {_ids(mixed[mixed].index)}")
    bad = ~s["label"].isin([0, 1]) | (s["row"] < 0)
    if bad.any():
        out.append(f"samples: {int(bad.sum())} rows with a label other than 0/1 or a negative "
                   "row")
    return out


def check_contexts(c: Checked) -> list[str]:
    """Each run's execution context is a JSON object within the caps (or not recorded)."""
    out = []
    for rid, text in zip(c.table("runs")["run_id"], c.table("runs")["context_json"]):
        if isinstance(text, str):
            why = _json_object(text)
            if why:
                out.append(f"runs: context_json of {str(rid)[:40]!r} {why}")
    return out


# In order: check_specs fills the parsed specs the later checks use.
CHECKS: list[Check] = [check_manifest, check_unique_keys, check_specs, check_run_columns,
                       check_belongs, check_predictions, check_metrics, check_epochs,
                       check_sets, check_samples, check_contexts]


def problems(bundle: Bundle) -> list[str]:
    """Every reason to refuse ``bundle`` that the checks find (empty: it is consistent)."""
    checked = Checked(bundle)
    out: list[str] = []
    for check in CHECKS:
        out += check(checked)
    return out


def validate(bundle: Bundle) -> None:
    """Refuse ``bundle`` (BundleError listing every reason) unless every check passes."""
    found = problems(bundle)
    if found:
        raise refusal(bundle.path, found)
