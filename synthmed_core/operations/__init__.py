"""One door per operation: ``train``, ``reproduce``, ``generate``, ``quality`` and ``pretrain``
each check their spec, run it (the store, a progress callback, a stop flag) and return an
``Outcome`` (a summary line and details). The CLI verbs and the job kinds are thin adapters
from their arguments to these specs.

Nothing heavy is imported here: each module loads torch only when an operation runs.
"""
from ._outcome import Outcome

__all__ = ["Outcome"]
