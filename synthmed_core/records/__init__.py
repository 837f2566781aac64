"""What a run records, below both the code that emits it and the store that keeps it:
``events`` (what the training loop emits: Started, Progress, EpochEnd, Finished, RunResult)
and ``context`` (where a run was computed: device, threads, versions, commit).

Nothing is imported here: ``from synthmed_core.records import events`` loads no torch."""
__all__ = ["context", "events"]
