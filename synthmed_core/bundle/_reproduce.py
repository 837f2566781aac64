"""Reading a run's records side by side (e.g. a shipped run reproduced here), and how to
rebuild a set a shipped run needs."""
from __future__ import annotations

import json

from ..catalog import GENERATOR_METHODS
from ..store import LOCAL_ORIGIN, Store
from ..training.context import describe, same_context
from ._import import metric_diff


def reproduction(run: dict) -> list[str]:
    """How a run's current record compares with each of its replicates (e.g. the shipped
    numbers after it was reproduced here), one line each: equal, or the differences, with
    both contexts and whether they ran on the same kind of device."""
    lines = []
    here = {(s, n): v for s, d in run["metrics_by_split"].items() for n, v in d.items()}
    for rep in run.get("replicates", []):
        theirs = {(s, n): v for s, d in rep["metrics"].items() for n, v in d.items()}
        diff = metric_diff(here, theirs).replace("in the bundle", "in the other record")
        a, b = run.get("context") or {}, rep.get("context") or {}
        kind = ("the same kind of device" if a.get("device_name") and
                a.get("device_name") == b.get("device_name") else "another kind of device")
        where = "this machine" if rep["origin"] == LOCAL_ORIGIN else f"bundle {rep['origin']}"
        verdict = ("identical numbers" if not diff else
                   f"different numbers: {diff}" + (" (same context: a conflict)"
                                                   if same_context(a, b) else ""))
        lines.append(f"vs the record from {where} ({describe(b)}), {kind}: {verdict}")
    return lines


def rebuild_hint(store: Store, name: str) -> str:
    """How to make synthetic set ``name`` on this machine, from the card the store holds
    (e.g. one that came with a bundle): the generate command with its seed and count."""
    sets = store.synthetic_sets().set_index("name")
    card = json.loads(sets.loc[name, "card_json"]) if name in sets.index else {}
    params = card.get("parameters") or {}
    if card.get("method") in GENERATOR_METHODS and params.get("profile"):
        return (f"rebuild it first with `python -m synthmed_core synth rebuild {name}` "
                f"({card['method']} {params['profile']}, seed {card.get('seed', 0)}, "
                f"{card.get('n')} images, from its card; it checks that the content hash comes "
                f"out {str(card.get('content_sha256'))[:12]})")
    return ("import or generate it under that name first (`python -m synthmed_core synth "
            "list` shows the sets here)")
