"""Fuzzing the bundle import (issue 27): a few hundred seeded mutations of a genuine bundle
(cells changed, rows dropped or duplicated, types changed, values out of range, files truncated
or flipped, manifests rewritten, each with its hashes recomputed as an attacker would) each end
in a clean import (exit 0 or 1) or a refusal with a message (exit 2), never a traceback, and
the store still opens and draws the grid afterwards."""
from __future__ import annotations

import contextlib
import io
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synthmed_core import bundle as bd
from synthmed_core.cli import main as cli
from synthmed_core.store import Store

from bundle_helpers import rehash, table, write_table

N_MUTANTS = 200
TABLES = list(bd.FILES)
ODD_VALUES = [None, np.nan, -1, 0, 1e12, -3.0, 7.5, "", "x" * 2000, "../../run_0\x00",
              "**bold** [link](https://evil.example)", True, "{", "[[[[", "\u202eevil"]


def _pick(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def set_cell(rng, bundle):
    name = _pick(rng, TABLES)
    df = table(bundle, name)
    if df.empty:
        return None
    col, row = _pick(rng, list(df.columns)), int(rng.integers(len(df)))
    value = _pick(rng, ODD_VALUES + [df[col].iloc[int(rng.integers(len(df)))]])
    df = df.astype({col: object})
    df.at[row, col] = value
    write_table(bundle, name, df)
    return f"{name}.{col}[{row}] = {str(value)[:30]!r}"


def drop_rows(rng, bundle):
    name = _pick(rng, TABLES)
    df = table(bundle, name)
    keep = rng.random(len(df)) > _pick(rng, [0.01, 0.3, 1.0])
    write_table(bundle, name, df[keep])
    return f"{name}: dropped {int((~keep).sum())} rows"


def duplicate_rows(rng, bundle):
    name = _pick(rng, TABLES)
    df = table(bundle, name)
    if df.empty:
        return None
    extra = df.sample(n=max(1, len(df) // 10), random_state=int(rng.integers(1 << 31)))
    write_table(bundle, name, pd.concat([df, extra], ignore_index=True))
    return f"{name}: duplicated {len(extra)} rows"


def change_type(rng, bundle):
    name = _pick(rng, TABLES)
    df = table(bundle, name)
    col = _pick(rng, list(df.columns))
    kind = _pick(rng, ["str", "float", "int", "bool"])
    try:
        df[col] = df[col].astype(str) if kind == "str" else pd.to_numeric(
            df[col], errors="coerce").astype({"float": float, "int": "Int64",
                                              "bool": "boolean"}[kind])
    except (TypeError, ValueError):
        return None
    write_table(bundle, name, df)
    return f"{name}.{col} as {kind}"


def out_of_range(rng, bundle):
    name, col, value = _pick(rng, [("predictions", "prob", 1.5), ("predictions", "label", 2),
                                   ("predictions", "idx", 10_000), ("runs", "seed", -4),
                                   ("samples", "height", 100_000), ("samples", "label", 9),
                                   ("epochs", "epoch", -1), ("metrics", "value", 42.0),
                                   ("runs", "ratio", -2.0)])
    df = table(bundle, name)
    if df.empty:
        return None
    df.loc[df.index[int(rng.integers(len(df)))], col] = value
    write_table(bundle, name, df)
    return f"{name}.{col} = {value}"


def edit_json_column(rng, bundle):
    name, col = _pick(rng, [("runs", "spec_json"), ("runs", "context_json"),
                            ("sets", "card_json"), ("sets", "sample_card_json")])
    df = table(bundle, name)
    if df.empty:
        return None
    row = int(rng.integers(len(df)))
    text = df.at[row, col]
    obj = json.loads(text) if isinstance(text, str) else {}
    how = _pick(rng, ["drop key", "add key", "nest", "garbage", "retype"])
    if how == "drop key" and obj:
        obj.pop(_pick(rng, sorted(obj)))
    elif how == "add key":
        obj["evil"] = "x"
    elif how == "nest":
        obj = {"a": [[[[1]]]]}
    elif how == "retype" and isinstance(obj.get("cell"), dict):
        obj["cell"]["arch"] = _pick(rng, [5, None, ["resnet18"], "resnet18 ; rm -rf /"])
    new = {"garbage": "{not json", "nest": "[" * 5000 + "]" * 5000}.get(how, json.dumps(obj))
    df[col] = df[col].astype(object)
    df.at[row, col] = new
    write_table(bundle, name, df)
    return f"{name}.{col}[{row}]: {how}"


def damage_file(rng, bundle):
    filename = _pick(rng, list(bd.FILES.values()))
    path = bundle / filename
    data = bytearray(path.read_bytes())
    how = _pick(rng, ["truncate", "flip"])
    if how == "truncate":
        data = data[:int(rng.integers(len(data)))]
    else:
        for _ in range(int(rng.integers(1, 8))):
            data[int(rng.integers(len(data)))] ^= 0xFF
    path.write_bytes(bytes(data))
    if rng.random() < 0.7:
        rehash(bundle)
    return f"{filename}: {how}"


def rewrite_manifest(rng, bundle):
    m = json.loads((bundle / bd.MANIFEST).read_text())
    how = _pick(rng, ["drop", "name", "schema", "files", "id", "deep", "type"])
    if how == "drop":
        m.pop(_pick(rng, sorted(m)))
    elif how == "name":
        m["name"] = _pick(rng, ODD_VALUES)
    elif how == "schema":
        m["schema_version"] = _pick(rng, [0, 2, "1", None, -1])
    elif how == "files":
        m["files"].pop(_pick(rng, sorted(m["files"])))
    elif how == "id":
        m["bundle_id"] = "0" * 16
    elif how == "type":
        m["files"] = _pick(rng, [[], "x", None, {"runs.parquet": 5}])
    text = json.dumps(m) if how != "deep" else "[" * 100_000 + "]" * 100_000
    (bundle / bd.MANIFEST).write_text(text)
    return f"manifest: {how}"


MUTATIONS = [set_cell, drop_rows, duplicate_rows, change_type, out_of_range, edit_json_column,
             damage_file, rewrite_manifest]


def mutate(rng, bundle: Path) -> list[str]:
    """1-3 mutations of ``bundle``; what was done (mutations that do not apply are skipped)."""
    done = []
    for _ in range(int(rng.integers(1, 4))):
        fn = _pick(rng, MUTATIONS)
        try:
            what = fn(rng, bundle)
        except (ValueError, TypeError, KeyError, OSError, IndexError, RecursionError):
            what = None  # e.g. pyarrow cannot write that value into that column
        if what:
            done.append(what)
    return done


@pytest.mark.load
def test_hundreds_of_mutated_bundles_each_import_cleanly_or_are_refused_with_a_message(
        tiny_bundle_template, real_data, tmp_path):
    from synthmed_core.explorer.heatmap_view import grid_cells
    rng = np.random.default_rng(27)
    store = Store()
    outcomes = {0: 0, 1: 0, 2: 0}
    start = time.monotonic()
    for i in range(N_MUTANTS):
        bundle = Path(shutil.copytree(tiny_bundle_template, tmp_path / f"m{i}"))
        what = mutate(rng, bundle)
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = cli(["results", "import", str(bundle)])
            except Exception as exc:  # noqa: BLE001 - that is the failure this test looks for
                pytest.fail(f"mutant {i} ({what}) raised {type(exc).__name__}: {exc}")
        assert code in outcomes, (i, what, code)
        if code == 2:
            message = err.getvalue()
            assert message.startswith("error: ") and "Traceback" not in message, (i, what)
            assert "could not be checked" not in message, (i, what, message)  # a gap found
        outcomes[code] += 1
        shutil.rmtree(bundle)
    elapsed = time.monotonic() - start
    print(f"{N_MUTANTS} mutants in {elapsed:.1f} s: {outcomes}")
    assert outcomes[2] > N_MUTANTS // 2  # most mutations are caught...
    assert outcomes[0] > 0  # ...and harmless ones (e.g. an epoch's loss) still import
    store = Store()
    assert not grid_cells(store).empty
    assert store.store_counts()["finished_runs"] >= 3
