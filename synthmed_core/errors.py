"""Exceptions that carry a message meant for the user: what went wrong, where, and what to do."""


class SynthmedError(Exception):
    """Base class: the CLI prints these without a traceback and exits with status 2."""


class DataError(SynthmedError):
    """A data file is missing, corrupt, or not in the expected schema."""


class SpecError(SynthmedError):
    """A run, cell or grid specification is invalid (unknown arch, bad ratio, missing set...)."""


class ModelError(SynthmedError):
    """A model or its initial weights cannot be built (e.g. pretrained weights unavailable offline)."""


class StoreError(SynthmedError):
    """The results database cannot be opened or written."""


class BundleError(SynthmedError):
    """A results bundle cannot be written or imported (damaged, newer schema, clashing set)."""


class Stopped(Exception):
    """Raised inside an epoch when ``should_stop()`` turned true (cancel or interrupt). Not a
    user error: the work stopped because it was asked to."""
