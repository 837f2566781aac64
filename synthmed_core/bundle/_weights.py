"""Model weights that travel with a bundle: a few chosen runs' final weights as ``safetensors``
files, so that Grad-CAM and Predict work on a machine that never trained them.

- Export (``export_weights``): a run's ``best.pt`` becomes ``weights/<run id>-<sha16>.safetensors``
  in the bundle, every floating tensor in float16. The name is the content's hash, so exporting
  the same weights again writes the same file (git stores it once); ``files`` in the manifest
  lists its sha256 and size, ``weights`` what it is (run, arch, input size, classes, dtype) and
  how it reproduced the run's test predictions when it was written.
- Import (``check_weights`` then ``install_weights``): the size caps, the sha256, the header
  (read by safetensors, never unpickled) against the run's spec, the tensors against the model
  that spec builds and, unless deferred to the first use, the *fidelity*: the model re-predicts
  the real test split and its accuracy may differ from the bundle's stored predictions by at
  most FIDELITY_MAX_IMAGES image. Anything wrong refuses the whole bundle before a file is
  written. The files land in ``paths.models_dir()`` with a sidecar JSON (hash, spec, the
  predictions they must reproduce).
- Use (``load_state``): a run's weights from there, the hash checked again, the fidelity
  checked and recorded on the first use (``fidelity.json`` beside the file).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import paths
from ..errors import BundleError

WEIGHTS_DIR = "weights"  # inside a bundle
DTYPE = "float16"
MAX_FILE_BYTES = 100 * 2**20  # one model (resnet50 in float16 is 47 MB)
MAX_BUNDLE_BYTES = 70 * 10**6  # all of a bundle's weights: the repository's budget
FIDELITY_MAX_IMAGES = 1  # accuracy may differ from the stored predictions by this many images
_NAME = re.compile(r"^weights/(?P<run>[0-9a-f]{8,64})-(?P<sha>[0-9a-f]{16})\.safetensors$")
_META_KEY = "synthmed"


@dataclass(frozen=True)
class Incoming:
    """One checked weights file of a bundle, held in memory until it is installed."""

    name: str  # file name, e.g. f12cb873a549-0123456789abcdef.safetensors
    data: bytes
    record: dict  # the sidecar: entry, sha256, bundle, expected test predictions


# ---- what a weights file says about itself ------------------------------------------------


def spec_facts(spec) -> dict:
    """What a weights file must match in a run's spec: arch, input size, data size, classes."""
    return {"arch": spec.cell.arch, "input_size": int(spec.profile.input_size),
            "data_size": int(spec.profile.data_size), "num_classes": 2}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _header(data: bytes, where: str) -> dict:
    """The synthmed metadata of safetensors bytes: the format's JSON header (an 8-byte
    little-endian length, then JSON; nothing is unpickled), its ``__metadata__`` entry."""
    size = int.from_bytes(data[:8], "little") if len(data) >= 8 else -1
    try:
        if not 0 < size <= len(data) - 8:
            raise ValueError(f"header length {size} does not fit a {len(data)}-byte file")
        meta = json.loads(data[8:8 + size].decode("utf-8"))["__metadata__"]
        return json.loads(meta[_META_KEY])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{where} is not a safetensors file with synthmed's metadata (run, "
                          f"arch, input size): {exc}") from exc


def _state_from(data: bytes, where: str) -> dict:
    """The tensors of safetensors bytes, floats back in float32 (what the model computes in)."""
    import safetensors.torch
    try:
        state = safetensors.torch.load(data)
    except Exception as exc:
        raise BundleError(f"{where} is not a readable safetensors file ({exc})") from exc
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def model_from(spec, state: dict, where: str):
    """The run's classifier built from its ``spec`` with ``state`` loaded (strict), in eval
    mode; BundleError when the tensors do not fit that architecture."""
    from ..training.models import build_model
    facts = spec_facts(spec)
    model = build_model(facts["arch"], "scratch", facts["input_size"], facts["num_classes"])
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise BundleError(f"{where} does not fit {facts['arch']} at {facts['input_size']} px "
                          f"({str(exc)[:300]})") from exc
    model.synthmed.update(run_id=spec.run_id, data_size=facts["data_size"])
    return model.eval()


# ---- fidelity: do the weights give the run's predictions? ---------------------------------


def fidelity(model, labels: np.ndarray, stored: np.ndarray) -> dict:
    """The model's P(pneumonia) on the real test split (at the run's data size) against the
    ``stored`` ones (same order): max |delta p|, the stored and new accuracy at 0.5, the
    accuracy difference in images and how many decisions flipped."""
    from ..data.real import load_real
    from ..explain.cams import predict_proba
    test = load_real("test", size=int(model.synthmed.get("data_size", 28)))
    new = np.concatenate([predict_proba(model, test.images[i:i + 256])
                          for i in range(0, len(test.images), 256)])
    labels, stored = np.asarray(labels).reshape(-1), np.asarray(stored, np.float64)
    if len(stored) != len(new) or not np.array_equal(labels, test.labels.reshape(-1)):
        raise BundleError(f"the stored predictions cover {len(stored)} test images, not the "
                          f"{len(new)} of the real test split here, in its order")
    right_new, right_old = (new >= 0.5) == labels, (stored >= 0.5) == labels
    return {"n": int(len(new)), "max_abs_dp": float(np.max(np.abs(new - stored))),
            "accuracy_stored": float(right_old.mean()), "accuracy_here": float(right_new.mean()),
            "accuracy_diff_images": int(abs(int(right_new.sum()) - int(right_old.sum()))),
            "flipped": int(((new >= 0.5) != (stored >= 0.5)).sum())}


def check_fidelity(result: dict, what: str) -> dict:
    """``result`` when the accuracy differs by at most FIDELITY_MAX_IMAGES image, else the
    refusal with the figures."""
    if result["accuracy_diff_images"] > FIDELITY_MAX_IMAGES:
        raise BundleError(
            f"{what} do not reproduce the run's stored test predictions: accuracy "
            f"{result['accuracy_here']:.4f} here vs {result['accuracy_stored']:.4f} stored "
            f"({result['accuracy_diff_images']} images apart, more than "
            f"{FIDELITY_MAX_IMAGES} allowed; max |delta p| {result['max_abs_dp']:.4f}, "
            f"{result['flipped']} decisions flipped); refused")
    return result


def _stored_test(predictions, run_id: str) -> tuple[np.ndarray, np.ndarray]:
    rows = predictions[(predictions["run_id"] == run_id) & (predictions["split"] == "test")]
    rows = rows.sort_values("idx")
    return rows["label"].to_numpy(np.int64), rows["prob"].to_numpy(np.float64)


# ---- export -------------------------------------------------------------------------------


def export_weights(store, run_ids: list[str], out: Path, tables: dict) -> dict[str, dict]:
    """Write the weights of ``run_ids`` (full ids, among the bundle's runs) into ``out/weights``
    and return their manifest entries by file name (``weights/...``): sha256, bytes and what
    the file is. Checks each file's fidelity first, and the caps; an existing file of the same
    name is the same content and is kept. Files of earlier exports not named now are removed."""
    from ..grid import RunSpec
    from ..training import checkpoints as ck
    entries, blobs = {}, {}
    for rid in run_ids:
        if rid not in set(tables["runs"]["run_id"]):
            raise BundleError(f"run {rid} is not among the runs exported; add it to the filters")
        run = store.run(rid)
        path = Path(run.get("checkpoint") or "")
        if not path.is_file():
            raise BundleError(f"run {rid} has no weights on this machine ({path or 'none'}); "
                              "only runs trained here (or reproduced here) can carry them")
        spec = RunSpec.from_dict(run["spec"])
        state = {k: v.half() if v.is_floating_point() else v
                 for k, v in ck.load(path)["model"].items()}
        meta = {**spec_facts(spec), "run_id": rid, "dtype": DTYPE}
        import safetensors.torch
        data = safetensors.torch.save({k: v.contiguous() for k, v in state.items()},
                                      metadata={_META_KEY: json.dumps(meta, sort_keys=True)})
        sha = _sha256(data)
        name = f"{WEIGHTS_DIR}/{rid}-{sha[:16]}.safetensors"
        model = model_from(spec, _state_from(data, name), name)
        labels, stored = _stored_test(tables["predictions"], rid)
        fid = check_fidelity(fidelity(model, labels, stored), f"the {DTYPE} weights of {rid}")
        entries[name] = {**meta, "sha256": sha, "bytes": len(data), "fidelity": fid,
                         "val_threshold": _val_threshold(tables["metrics"], rid)}
        blobs[name] = data
    _check_caps({n: e["bytes"] for n, e in entries.items()}, "exported")
    if blobs:
        (out / WEIGHTS_DIR).mkdir(parents=True, exist_ok=True)
    for name, data in blobs.items():
        if not (out / name).is_file() or _sha256((out / name).read_bytes()) != entries[name]["sha256"]:
            _write_atomic(out / name, data)
    for old in (out / WEIGHTS_DIR).glob("*.safetensors"):
        if f"{WEIGHTS_DIR}/{old.name}" not in entries:
            old.unlink()
    return entries


def _val_threshold(metrics, run_id: str) -> float | None:
    """The decision threshold the run's recipe picked on val (its record's), when recorded."""
    from ..analysis.calibration import VAL_THRESHOLD_SPLIT
    hit = metrics[(metrics["run_id"] == run_id) & (metrics["split"] == VAL_THRESHOLD_SPLIT)
                  & (metrics["name"] == "threshold")]["value"]
    return float(hit.iloc[0]) if len(hit) else None


def _check_caps(sizes: dict[str, int], verb: str) -> None:
    for name, size in sizes.items():
        if size > MAX_FILE_BYTES:
            raise BundleError(f"{name} is {size / 1e6:.1f} MB; weights files {verb} are capped "
                              f"at {MAX_FILE_BYTES / 1e6:.0f} MB")
    total = sum(sizes.values())
    if total > MAX_BUNDLE_BYTES:
        raise BundleError(f"the bundle's weights total {total / 1e6:.1f} MB, over the "
                          f"{MAX_BUNDLE_BYTES / 1e6:.0f} MB cap for weights {verb} in one bundle")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# ---- import -------------------------------------------------------------------------------


def check_weights(bundle, defer_fidelity: bool = False) -> list[Incoming]:
    """Every weights file a bundle lists, checked (see the module docstring) and held in
    memory; BundleError naming the file for the first problem. ``defer_fidelity`` (shipped
    bundles, imported when the app opens) leaves the re-prediction to the first use."""
    from ..grid import RunSpec
    listed = bundle.manifest.get("weights") or {}
    if not listed:
        return []
    files = bundle.manifest.get("files", {})
    sizes = {}
    for name in listed:
        where = bundle.path / name
        if not _NAME.match(name) or name not in files:
            raise BundleError(f"{where}: a weights file must be named weights/<run id>-<sha16>"
                              ".safetensors and be listed in the manifest's files")
        if where.is_symlink() or not where.is_file():
            raise BundleError(f"{where}: listed in the manifest but missing (or not a file)")
        sizes[name] = where.stat().st_size
    _check_caps(sizes, "imported")
    specs = {r.run_id: r.spec_json for r in bundle.tables["runs"].itertuples(index=False)}
    out = []
    for name, entry in listed.items():
        where = bundle.path / name
        data = where.read_bytes()
        sha = _sha256(data)
        if sha != files[name].get("sha256") or not sha.startswith(_NAME.match(name)["sha"]):
            raise BundleError(f"{where} does not match the manifest (its sha256 differs: the "
                              "weights were changed or replaced after export); nothing imported")
        rid = _NAME.match(name)["run"]
        if rid not in specs or entry.get("run_id") != rid:
            raise BundleError(f"{where} belongs to no run of this bundle")
        spec = RunSpec.from_dict(json.loads(specs[rid]))
        header = _header(data, str(where))
        want = spec_facts(spec)
        for key, value in want.items():
            if header.get(key) != value or entry.get(key) != value:
                raise BundleError(f"{where}: {key} {header.get(key)!r} in the file, "
                                  f"{entry.get(key)!r} in the manifest, but the run's spec says "
                                  f"{value!r}; nothing imported")
        labels, stored = _stored_test(bundle.tables["predictions"], rid)
        record = {**entry, "sha256": sha, "bundle": bundle.id, "file": name,
                  "stored_test": {"labels": labels.tolist(), "probs": stored.tolist()}}
        if not defer_fidelity:  # deferred: no torch while the app opens; load_state does it
            model = model_from(spec, _state_from(data, str(where)), str(where))
            record["fidelity_here"] = check_fidelity(fidelity(model, labels, stored),
                                                     f"the weights {where}")
        out.append(Incoming(Path(name).name, data, record))
    return out


def install_weights(incoming: list[Incoming]) -> list[str]:
    """Write checked weights into ``paths.models_dir()`` (file, then its sidecar); returns the
    run ids installed. A file already there with this name holds these bytes (its name is
    their hash) and is kept."""
    folder = paths.models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for item in incoming:
        target = folder / item.name
        if not target.is_file():
            _write_atomic(target, item.data)
        _write_atomic(_sidecar(target), json.dumps(item.record, sort_keys=True).encode())
    return [item.record["run_id"] for item in incoming]


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


# ---- use ----------------------------------------------------------------------------------


def weights_file(run_id: str) -> Path | None:
    """The installed weights of a run (a bundle's), or None; cheap: no torch, no hashing."""
    folder = paths.models_dir()
    if not folder.is_dir():
        return None
    hits = sorted(p for p in folder.glob(f"{run_id}-*.safetensors") if _sidecar(p).is_file())
    return hits[-1] if hits else None


def weights_record(run_id: str) -> dict | None:
    """The sidecar of a run's installed weights (what they are, the bundle they came from,
    the val threshold and test predictions of the record they belong to), or None."""
    path = weights_file(run_id)
    return json.loads(_sidecar(path).read_text(encoding="utf-8")) if path else None


def load_state(spec) -> tuple[Any, dict]:
    """The model of a run from its installed weights: the file's hash against its sidecar and
    name, its metadata against ``spec``; on its first use the fidelity check, recorded in the
    sidecar. Returns (model, sidecar record); BundleError for anything wrong."""
    path = weights_file(spec.run_id)
    if path is None:
        raise BundleError(f"run {spec.run_id} has no installed weights")
    record = json.loads(_sidecar(path).read_text(encoding="utf-8"))
    data = path.read_bytes()
    if _sha256(data) != record.get("sha256") or not record["sha256"].startswith(
            path.stem.rsplit("-", 1)[1]):
        raise BundleError(f"{path} was changed after it was imported (its sha256 differs); "
                          "import its bundle again")
    header = _header(data, str(path))
    for key, value in spec_facts(spec).items():
        if header.get(key) != value:
            raise BundleError(f"{path}: {key} {header.get(key)!r}, but the run's spec says "
                              f"{value!r}")
    model = model_from(spec, _state_from(data, str(path)), str(path))
    if "fidelity_here" not in record:
        stored = record["stored_test"]
        record["fidelity_here"] = check_fidelity(
            fidelity(model, np.asarray(stored["labels"]), np.asarray(stored["probs"])),
            f"the weights {path}")
        _write_atomic(_sidecar(path), json.dumps(record, sort_keys=True).encode())
    return model, record


def weights_total(folder: Path | None = None) -> tuple[int, int]:
    """(bytes, files) of the weights files in the bundles under ``folder`` (default the
    shipped results), each distinct file counted once."""
    folder = folder if folder is not None else paths.shipped_results_dir()
    if folder is None or not Path(folder).is_dir():
        return 0, 0
    files = {p.name: p.stat().st_size for p in Path(folder).glob(f"*/{WEIGHTS_DIR}/*.safetensors")}
    return sum(files.values()), len(files)
