"""The command line: ``python -m synthmed_core VERB ...`` (``--help`` on every verb).

Each module here adds its verbs with ``register(subparsers)``; a verb's parser sets
``func``. User errors (SynthmedError) print one clear line and exit with status 2.
"""
from __future__ import annotations

import argparse
import sys

from ..errors import SynthmedError
from . import _bench, _compare, _data, _explain, _results, _runs, _synth

_MODULES = (_data, _synth, _runs, _results, _compare, _bench, _explain)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m synthmed_core",
        description="synthmed: do synthetic chest X-rays help a pneumonia classifier? "
                    "Train the experiment grid on PneumoniaMNIST and compare with the study.")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for module in _MODULES:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_verb(build_parser().parse_args(argv))


def run_verb(args: argparse.Namespace) -> int:
    """Run a parsed verb; user errors print one clear line and exit 2, no traceback.
    Shared by ``python -m synthmed_core`` and ``python -m jobs``. A verb that sets
    ``store=False`` (``bench``) never opens the store."""
    try:
        if getattr(args, "store", True):
            _import_shipped()
        code = args.func(args) or 0
        sys.stdout.flush()  # inside the try: a reader that left is handled below
        return code
    except SynthmedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader left (e.g. `| head`): the rest is not wanted
        _quiet_stdout()
        return 0


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's last flush does not fail again."""
    import os
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _import_shipped() -> None:
    """The data root's store holds the shipped results bundles from the first command on
    (every ``python -m synthmed_core`` and ``python -m jobs`` verb, job workers included)."""
    from .. import paths
    if paths.shipped_results_dir() is not None:
        from ..bundle import import_shipped  # reads Parquet: only where it may be needed
        from ..store import Store
        import_shipped(Store())
