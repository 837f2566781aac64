"""Background jobs: a durable queue in the store, local workers, a Ray backend.

Not built yet (issue 4). Until then, `python -m synthmed_core train|grid` runs work inline.
"""
