"""The error a user sees from the job commands."""
from synthmed_core.errors import SynthmedError


class JobError(SynthmedError):
    """A job cannot be submitted, found, cancelled or retried: the message says why and what to
    do. The CLI prints it on one line and exits with status 2."""
