"""The one door of ``generate`` and ``quality`` (the ``synth`` verbs and the job kinds call
these): check the request, run it with the store, progress callbacks and a stop flag, and
summarise."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from ..records.events import Emit
from ._outcome import Outcome

if TYPE_CHECKING:  # the bench's CLI imports GenerateRequest on machines without duckdb
    from ..store import Store


@dataclass(frozen=True)
class GenerateRequest:
    """One ``generate``: train (or reuse) a ``method`` generator of ``profile`` and ``seed`` and
    sample the set ``name`` (``count`` images split like the real classes, or ``per_class``).
    A job keeps it as a dict (``to_dict``)."""

    method: str
    profile: str
    name: str
    count: int | None = None
    per_class: int | None = None
    seed: int = 0
    sample_seed: int | None = None
    overrides: dict[str, Any] | None = None
    retrain: bool = False
    force: bool = False
    allow_test_copies: bool = False
    checkpoint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GenerateRequest:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def check_generate(req: GenerateRequest) -> None:
    """Everything ``generate`` refuses before loading data or training (SpecError)."""
    from ..synth.generate import check_request
    check_request(req.method, req.profile, req.name, count=req.count, per_class=req.per_class,
                  seed=req.seed, force=req.force, overrides=req.overrides)


def generate(req: GenerateRequest, store: Store, device: str | None = None,
             emit: Emit | None = None, should_stop: Callable[[], bool] | None = None,
             on_batch: Callable[[int, int], None] | None = None) -> Outcome:
    """The ``generate`` operation: check ``req``, train or reuse its generator (events to
    ``emit``, stopping when ``should_stop`` says so), sample (``on_batch(done, total)``), write
    and register the set."""
    from ..synth import copies
    from ..synth.generate import generate as generate_set
    check_generate(req)
    path, card = generate_set(
        req.method, req.profile, req.name, count=req.count, per_class=req.per_class,
        seed=req.seed, sample_seed=req.sample_seed, force=req.force, retrain=req.retrain,
        checkpoint=req.checkpoint, overrides=req.overrides, device=device, emit=emit,
        should_stop=should_stop, on_batch=on_batch, store=store,
        allow_test_copies=req.allow_test_copies)
    gen, sampling = card["generator"], card["sampling"]
    how = ("reused checkpoint" if gen["reused"] else f"trained {gen['steps']} steps, "
           f"{card['training_time_s']:.1f} s on {gen['device']}, checkpoint")
    return Outcome(f"registered synthetic set {req.name!r} at {path}: {card['n']} images "
                   f"{card['counts']} ({how} {gen['checkpoint']}; sampled at "
                   f"{sampling['images_per_s']} images/s)", [copies.summary(card)], card)


def rebuild_request(store: Store, name: str) -> tuple[GenerateRequest, str | None]:
    """The ``generate`` request that makes set ``name`` again from the card the store keeps
    (e.g. a shipped set whose images are not here), and the card's content hash. SpecError
    when the store has no card of that name or no generator of ours made the set."""
    import json

    from ..errors import SpecError
    from ..synth.generate import rebuild_request as from_card
    sets = store.synthetic_sets().set_index("name")
    if name not in sets.index:
        raise SpecError(f"no card of a synthetic set {name!r} here: import the results bundle "
                        "that used it, or see `synthmed_core synth list`")
    card = json.loads(sets.loc[name, "card_json"])
    req = from_card(card)
    return (GenerateRequest(req["method"], req["profile"], name, count=req["count"],
                            seed=req["seed"], sample_seed=req["sample_seed"],
                            overrides=req["overrides"]), card.get("content_sha256"))


def rebuilt_verdict(name: str, want: str | None) -> tuple[bool, str]:
    """Whether the rebuilt set ``name`` holds the images of the card's hash ``want`` (True when
    the card had none), and a line saying so."""
    from ..data.synthetic import load_set
    got = load_set(name)[1].get("content_sha256")
    if want and got != want:
        return False, (f"content hash {str(got)[:12]} differs from the card's {str(want)[:12]}: "
                       "other images (another CPU kernel family, thread count or library "
                       "version trains the generator differently); runs on the card's set "
                       "will not reproduce exactly on this one")
    return True, f"content hash {str(got)[:12]}: the same images as the card's set"


def check_quality(name: str, feature: str) -> None:
    """The set is here and the feature space is known (before anything is measured)."""
    from ..synth.quality import check_feature
    from .specs import check_synthetic
    check_synthetic(name)
    check_feature(feature)


def quality(name: str, profile: str, feature: str, seed: int, store: Store,
            device: str | None = None, should_stop: Callable[[], bool] | None = None,
            log: Callable[[str], None] | None = None) -> Outcome:
    """The ``quality`` operation: FID/KID, precision/recall, TSTR and memorisation of set
    ``name`` against real train, stored in its card. It cannot stop half-way: ``should_stop``
    is asked once, before it starts; ``log`` hears that it started."""
    from ..synth.quality import measure_quality
    from ..errors import Stopped
    check_quality(name, feature)
    if should_stop is not None and should_stop():
        raise Stopped()
    if log is not None:
        log(f"measuring the quality of {name!r} against real train (profile {profile}, "
            f"features {feature}); no progress events until it ends")
    q = measure_quality(name, profile, feature, seed, device, store=store)
    base, mem, t = q["baseline_real_val"], q["memorisation"], q["tstr"]
    table = [f"quality of {name!r} in {q['feature']['kind']} feature space, against real "
             "train (real val beside it):"]
    table += [f"  {key:<10} {q[key]:>10.4f}   real val {base[key]:>10.4f}"
              for key in ("fid", "kid_mean", "precision", "recall")]
    table += [f"  TSTR on real val: accuracy {t['accuracy']:.4f}, AUROC {t['auroc']:.4f}",
              f"  near-copies of real train: {mem['near_copy_share']:.1%} (pixel "
              f"{mem['pixel']['near_copy_share']:.1%}, feature "
              f"{mem['feature']['near_copy_share']:.1%})"]
    return Outcome(
        f"quality of {name!r} in {q['feature']['kind']} features ({q['wall_s']:.0f} s), "
        f"stored in its card: FID {q['fid']:.2f} (real val {base['fid']:.2f}), KID "
        f"{q['kid_mean']:.4f}, precision {q['precision']:.3f}, recall {q['recall']:.3f}, "
        f"TSTR accuracy {t['accuracy']:.4f} AUROC {t['auroc']:.4f}, near-copies "
        f"{mem['near_copy_share']:.1%}", table, q)
