"""Specs of the operations built from plain values (what the CLI and the job kinds pass), and
the checks a spec cannot make by itself, run before any data is loaded. No torch here: a bad
request fails in a fraction of a second."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..catalog import SETTINGS
from ..errors import SpecError, SynthmedError
from ..grid import RunSpec, expand_grid, make_run_spec

if TYPE_CHECKING:  # the bench's CLI imports this module on machines without duckdb
    from ..store import Store


def train_spec(arch: str, init: str, setting: str, seed: int, profile: str,
               ratio: float | None = None, synthetic: str | None = None,
               extra: dict | None = None, **overrides) -> RunSpec:
    """The run spec of one ``train`` request; a ratio defaults to 1 where the setting needs one.
    ``extra``: init weights files (``imagenet_weights``, ``chestmnist_checkpoint``)."""
    if ratio is None and SETTINGS[setting].ratio == "required":
        ratio = 1.0
    return make_run_spec(arch, init, setting, seed, profile, ratio, synthetic, extra=extra,
                         **overrides)


def grid_specs(archs: list[str], inits: list[str], settings: list[str],
               ratios: list[float] | None, seeds: list[int], profile: str,
               synthetic: str | None = None, extra: dict | None = None,
               **overrides) -> list[RunSpec]:
    """Every run spec of a ``grid`` request (ratios default to [1]), checked: each arch
    resolves and the synthetic set is here."""
    specs = expand_grid(archs, inits, settings, ratios or [1.0], seeds, profile, synthetic,
                        **overrides)
    check_archs(archs)
    check_synthetic(next((s.cell.synthetic for s in specs if s.cell.synthetic), None))
    if extra:
        specs = [RunSpec(s.cell, s.seed, s.profile, tuple(sorted(extra.items()))) for s in specs]
    return specs


def check_archs(archs: list[str]) -> None:
    """Each arch resolves in timm (a CellSpec only checks it is a name): an unknown one fails
    before data is loaded and before any run of a grid is listed. The catalog's archs pass
    without importing timm (seconds), so other bad input is refused at once."""
    from ..catalog import catalog_arch
    others = [arch for arch in dict.fromkeys(archs) if catalog_arch(arch) is None]
    if others:
        from ..training.models import get_arch  # timm: only for a name the catalog lacks
        for arch in others:
            get_arch(arch)


def check_synthetic(name: str | None) -> None:
    """The synthetic set ``name`` (if any) is here: DataError naming the known sets otherwise."""
    if name:
        from ..data.synthetic import load_set
        load_set(name)


def check_run_spec(spec: RunSpec) -> None:
    """What a run spec cannot tell by itself, checked before any data is loaded."""
    check_archs([spec.cell.arch])
    check_synthetic(spec.cell.synthetic)


def check_reproducible(spec: RunSpec, store: Store) -> None:
    """``check_run_spec``, a missing synthetic set named with how to rebuild it here."""
    check_archs([spec.cell.arch])
    try:
        check_synthetic(spec.cell.synthetic)
    except SynthmedError as exc:
        from ..bundle import rebuild_hint
        raise SpecError(f"run {spec.run_id} trained on synthetic set {spec.cell.synthetic!r}, "
                        "which is not on this machine: "
                        f"{rebuild_hint(store, spec.cell.synthetic)}") from exc
