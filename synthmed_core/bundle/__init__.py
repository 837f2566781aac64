"""Results that travel: a *bundle* is a folder of Parquet tables and a ``manifest.json``.

A bundle holds finished runs (frozen spec, status, execution context, test and val metrics,
epochs, every test and val per-image probability), the cards of the synthetic sets those runs
used (with each set's content hash) and a small fixed sample of each set's images; never
checkpoints, except the weights of runs chosen with ``--with-weights`` (``_weights``:
safetensors, hashed, checked against the run's predictions). Its id is a hash of its files, so exporting the same runs twice gives the same id,
and run ids are spec hashes, so merging bundles from many machines is a union:

- a run not in the store is added, remembering the bundle it came from (its *origin*);
- the same run with the same numbers is already here: nothing changes;
- the same run with other numbers computed in another context (device, threads, library
  versions, code commit) is a *replicate*, kept beside the local record;
- other numbers in the same context are a *conflict*: the local run is kept and reported.

A damaged bundle (a file missing or changed since the manifest, a truncated Parquet file, a
newer schema) or one whose runs used another set under a name this machine already knows is
refused whole: nothing of it is imported. So is one that does not agree with itself or the
real data (``_checks``: run id = spec hash, columns = spec, predictions complete and in range,
metrics = what the predictions give) or exceeds a limit (``_format.LIMITS``); every reason is
given in one message, before anything is written, and the files an import writes are moved in
only when its transaction commits (``_staging``). ``results/`` in the repository ships the
project's own bundles; every data root imports them once (``import_shipped``), skipping, with
one line, any that fails; ``remove_bundle`` undoes an import. docs/bundles.md has the details.
"""
from __future__ import annotations

from ._export import export_bundle, sample_rows, strip_per_image
from ._format import (BUNDLE_SCHEMA, FILES, MANIFEST, SAMPLE_SUFFIX, Bundle, bundle_id,
                      read_bundle)
from ._checks import CHECKS, problems, validate
from ._import import ImportReport, import_bundle, metric_diff
from ._reproduce import context_differences, rebuild_hint, reproduction, seed_spread
from ._shipped import import_shipped, one_line, refused_shipped, remove_bundle
from ._weights import weights_file, weights_total

__all__ = ["export_bundle", "import_bundle", "import_shipped", "read_bundle", "reproduction",
           "refused_shipped", "remove_bundle", "one_line", "CHECKS", "problems", "validate",
           "context_differences", "seed_spread",
           "rebuild_hint", "metric_diff", "bundle_id", "sample_rows", "strip_per_image", "Bundle",
           "ImportReport", "BUNDLE_SCHEMA", "FILES", "MANIFEST", "SAMPLE_SUFFIX", "weights_file",
           "weights_total"]
