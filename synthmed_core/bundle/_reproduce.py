"""Reading a run's records side by side (e.g. a shipped run reproduced here), and how to
rebuild a set a shipped run needs."""
from __future__ import annotations

import json

from ..catalog import GENERATOR_METHODS, PROFILES
from ..store import CELL_KEYS, LOCAL_ORIGIN, Store
from ..training.context import CONTEXT_KEYS, describe, same_context
from ._import import metric_diff


# What a reproduction names when two records' contexts differ: "the same context" (CONTEXT_KEYS)
# and what decides the CPU kernels beside it. Records older than a field say "not recorded".
CONTEXT_FIELDS = (*CONTEXT_KEYS, "cpu_isa", "onednn", "mkl", "numpy", "python")
SPREAD_METRICS = ("accuracy", "auroc")  # test metrics whose difference is set against the seeds'


def context_differences(here: dict | None, there: dict | None) -> list[str]:
    """The context fields (CONTEXT_FIELDS) two records disagree on, e.g. ``cpu_capability
    AVX512 here vs AVX2 in the other record``; a field one record lacks (made before it was
    recorded) reads ``not recorded``. Empty when they agree or neither recorded a context."""
    here, there = here or {}, there or {}
    if not here and not there:
        return []
    out = []
    for key in CONTEXT_FIELDS:
        a, b = here.get(key), there.get(key)
        if a == b:
            continue
        def say(v):
            return "not recorded" if v is None else (" ".join(v) if isinstance(v, list) else str(v))
        out.append(f"{key} {say(a)} here vs {say(b)} in the other record")
    return out


def seed_spread(store: Store, run: dict) -> dict[str, tuple[float, int]]:
    """Per test metric of SPREAD_METRICS, (sd over seeds, runs) of the run's cell (same cell and
    recipe) over its OTHER finished runs; metrics with fewer than two such runs are left out."""
    cell = {k: run.get(k) for k in CELL_KEYS}
    others = store.cell_runs(cell)
    others = others[others["run_id"] != run["run_id"]]
    out = {}
    for name in SPREAD_METRICS:
        values = others[name].dropna() if name in others else []
        if len(values) >= 2:
            out[name] = (float(values.std(ddof=1)), len(values))
    return out


def _within_spread(here: dict, theirs: dict, spread: dict[str, tuple[float, int]]) -> str:
    """``test accuracy differs by 0.0004, within the seed-to-seed spread of its cell (sd 0.012
    over 2 other runs)`` per metric of ``spread``."""
    parts = []
    for name, (sd, n) in spread.items():
        a, b = here.get(("test", name)), theirs.get(("test", name))
        if a is None or b is None or a == b:
            continue
        where = "within" if abs(a - b) <= sd else "OUTSIDE"
        parts.append(f"test {name} differs by {abs(a - b):.4f}, {where} the seed-to-seed spread "
                     f"of its cell (sd {sd:.4f} over {n} other runs)")
    return "; ".join(parts)


def reproduction(run: dict, store: Store | None = None) -> list[str]:
    """How a run's current record compares with each of its replicates (e.g. the shipped
    numbers after it was reproduced here), one line each: equal, or the differences, with
    both contexts, whether they ran on the same kind of device, the context fields that differ
    (``context_differences``) and, given the ``store``, whether each metric's difference is
    within the seed-to-seed spread of the run's cell (``seed_spread``)."""
    lines = []
    here = {(s, n): v for s, d in run["metrics_by_split"].items() for n, v in d.items()}
    spread = seed_spread(store, run) if store is not None else {}
    for rep in run.get("replicates", []):
        theirs = {(s, n): v for s, d in rep["metrics"].items() for n, v in d.items()}
        diff = metric_diff(here, theirs).replace("in the bundle", "in the other record")
        a, b = run.get("context") or {}, rep.get("context") or {}
        kind = _device_kind(a, b)
        where = "this machine" if rep["origin"] == LOCAL_ORIGIN else f"bundle {rep['origin']}"
        verdict = ("identical numbers" if not diff else
                   f"different numbers: {diff}" + (" (same context: a conflict)"
                                                   if same_context(a, b) else ""))
        why = context_differences(a, b) if diff else []
        lines.append(f"vs the record from {where} ({describe(b)}), {kind}: {verdict}"
                     + (f"; context differs: {', '.join(why)}" if why else
                        "; no recorded context field differs" if diff else "")
                     + (f"; {spread_text}" if diff and (spread_text := _within_spread(
                         here, theirs, spread)) else ""))
    return lines


def _device_kind(a: dict, b: dict) -> str:
    """Whether two contexts ran on the same kind of device: the same model name AND, on a CPU,
    the same kernel family (an AVX2 and an AVX-512 machine of one model name pick other
    kernels), which older records did not note."""
    if not a.get("device_name") or a.get("device_name") != b.get("device_name"):
        return "another kind of device"
    caps = a.get("cpu_capability"), b.get("cpu_capability")
    if caps[0] == caps[1]:
        return "the same kind of device"
    if None in caps:
        return "the same device model (its CPU kernel family was not recorded in one record)"
    return f"the same device model with another CPU kernel family ({caps[0]} vs {caps[1]})"


def rebuild_hint(store: Store, name: str) -> str:
    """How to make synthetic set ``name`` on this machine, from the card the store holds
    (e.g. one that came with a bundle): the generate command with its seed and count."""
    import shlex

    from ..errors import SpecError
    from ..synth.sets import validate_name
    try:
        validate_name(name)
    except SpecError:  # never suggest a command around a name no command takes
        return "its name is not a valid set name here: no command can rebuild it"
    sets = store.synthetic_sets().set_index("name")
    card = json.loads(sets.loc[name, "card_json"]) if name in sets.index else {}
    params = card.get("parameters") if isinstance(card.get("parameters"), dict) else {}
    if card.get("method") in GENERATOR_METHODS and params.get("profile") in PROFILES:
        return (f"rebuild it first with `python -m synthmed_core synth rebuild "
                f"{shlex.quote(name)}` ({card['method']} {params['profile']}, seed "
                f"{card.get('seed', 0)}, {card.get('n')} images, from its card; it "
                f"checks that the content hash comes out {str(card.get('content_sha256'))[:12]})")
    return ("import or generate it under that name first (`python -m synthmed_core synth "
            "list` shows the sets here)")
