"""The sidebar's launch form turned into a job request, checked before anything is queued.

``build_request`` checks what the form itself can (seeds, ratio, names) and returns the
command-line options of a ``train`` job (one seed) or a ``grid`` job (several); ``launch``
hands them to ``jobs.submit``, whose submit-time checks (unknown arch, missing synthetic set,
setting without its set...) refuse a bad spec with a SynthmedError before queueing, and then
makes sure a local worker runs so the job actually starts."""
from __future__ import annotations

import re
from dataclasses import dataclass

import jobs
from synthmed_core.catalog import ARCHS, PROFILES, SETTINGS
from synthmed_core.errors import SpecError
from synthmed_core.store import Store

ARCH_CHOICES = tuple(ARCHS)
PROFILE_CHOICES = tuple(PROFILES)  # cheapest first
DEFAULT_PROFILE = "quick"  # the cheapest that gives a model worth looking at
# What the profile picker says beside a name (smoke's models mean nothing: it tries the form)
PROFILE_LABELS = {"smoke": "smoke: a seconds-long try of the form"}
MAX_SEEDS = 20
MAX_SEED = 1_000_000
MAX_RATIO = 20.0
_TIMM_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.]{0,79}")
# A worker the app starts leaves by itself after this long with an empty queue.
WORKER_ARGS = ["--idle-exit", "600"]


@dataclass(frozen=True)
class Request:
    """A checked request: the job kind and its ``python -m jobs submit KIND`` options."""

    kind: str
    argv: tuple[str, ...]


def parse_numbers(text: str, what: str, top: int, limit: int) -> list[int]:
    """``"0 1 2"`` or ``"0, 1, 2"`` or ``"0-4"`` -> distinct whole numbers in 0..``top``, in
    order; SpecError (naming ``what``) when empty, not such numbers, or more than ``limit``."""
    out: list[int] = []
    for token in re.split(r"[\s,]+", (text or "").strip()):
        if not token:
            continue
        lo, dash, hi = token.partition("-")
        if not (lo.isdigit() and (not dash or hi.isdigit())):
            raise SpecError(f"{what}s must be whole numbers >= 0 like `0 1 2` or `0-4`; "
                            f"cannot read {token!r}")
        first, last = int(lo), int(hi) if dash else int(lo)
        if last < first or last > top or last - first >= limit:
            raise SpecError(f"{what} range {token!r} must go upwards and stay within 0..{top}")
        out.extend(n for n in range(first, last + 1) if n not in out)
    if not out:
        raise SpecError(f"give at least one {what}, e.g. `0` or `0 1 2`")
    if len(out) > limit:
        raise SpecError(f"at most {limit} {what}s at once (got {len(out)})")
    return out


def parse_seeds(text: str) -> list[int]:
    """Seeds for a launch (``parse_numbers`` within 0..MAX_SEED, at most MAX_SEEDS)."""
    return parse_numbers(text, "seed", MAX_SEED, MAX_SEEDS)


def build_request(arch: str, init: str, setting: str, ratio: float | None,
                  synthetic: str | None, seeds: str, profile: str) -> Request:
    """The job request of the form's values, or SpecError saying what is wrong. ``ratio`` 0
    or None means "no ratio" (the whole synthetic set where the setting allows it)."""
    arch = (arch or "").strip()
    if not _TIMM_NAME.fullmatch(arch):
        raise SpecError(f"arch must be a timm model name such as resnet18 (letters, digits, _ "
                        f"and .); got {arch!r}")
    if setting not in SETTINGS:
        raise SpecError(f"unknown setting {setting!r}; choose one of {list(SETTINGS)}")
    if profile not in PROFILE_CHOICES:
        raise SpecError(f"unknown profile {profile!r}; choose one of {list(PROFILE_CHOICES)}")
    info = SETTINGS[setting]
    argv = ["--arch", arch, "--init", init, "--setting", setting, "--profile", profile]
    if info.ratio != "none" and ratio:
        if not 0 < float(ratio) <= MAX_RATIO:
            raise SpecError(f"ratio must be above 0 and at most {MAX_RATIO:g}; got {ratio}")
        argv += ["--ratio", f"{float(ratio):g}"]
    elif info.ratio == "required":
        raise SpecError(f"setting {setting!r} needs a ratio above 0 (e.g. 1, 2 or 3)")
    if info.uses_synthetic:
        if not synthetic:
            raise SpecError(f"setting {setting!r} needs a synthetic set: pick one (import or "
                            "generate one first if the list is empty)")
        argv += ["--synthetic", synthetic]
    seed_list = parse_seeds(seeds)
    if len(seed_list) == 1:
        return Request("train", tuple(argv + ["--seed", str(seed_list[0])]))
    return Request("grid", tuple(argv + ["--seeds", *map(str, seed_list)]))


def launch(request: Request, store: Store) -> jobs.Submitted:
    """Queue the request through ``jobs.submit`` (its checks raise SynthmedError before
    anything is queued) and, when something was queued, make sure a local worker runs."""
    try:
        done = jobs.submit(request.kind, list(request.argv), store)
    except SystemExit:  # argparse refused an option the form should have caught
        raise SpecError(f"the job options were refused: {' '.join(request.argv)}") from None
    if done.ids:
        jobs.ensure_worker(store, args=WORKER_ARGS)
    return done


def reproduce(run_id: str, store: Store) -> str:
    """Queue run ``run_id`` to be trained again here (``jobs submit reproduce``) and make sure
    a local worker runs; returns the message for the user."""
    done = jobs.submit("reproduce", [run_id], store)
    if done.ids:
        jobs.ensure_worker(store, args=WORKER_ARGS)
    return done.message


def remove_bundle(bundle_id: str, store: Store) -> str:
    """Undo the import of bundle ``bundle_id`` (``bundle.remove_bundle``); the message."""
    from synthmed_core.bundle import remove_bundle as remove
    done = remove(store, bundle_id)
    sets = ", ".join(s["name"] for s in done["sets"]) or "none"
    return (f"Removed bundle {done['name']} ({done['bundle_id']}): {done['runs']} runs, "
            f"{done['replicates']} replicate records, synthetic sets: {sets}.")
