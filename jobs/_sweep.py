"""When a process looks for dead workers: every ``stale_s / 2``, but not in the moment it wakes
from a pause of its own.

A worker is presumed dead when its heartbeat is older than ``stale_s``. A process that was itself
stopped for longer than that (SIGSTOP, a suspended laptop, a frozen VM) wakes to find EVERY
other worker's heartbeat old, because they were paused with it: a sweep at that moment requeues
live workers' jobs, and each pause then costs every running job one of its attempts (three
pauses and it fails). So a process that notices it was away (a gap in wall-clock time between
two of its own ticks: monotonic clocks stop while a machine sleeps) first waits ``grace_s`` for
the others to beat again, then sweeps as usual.
"""
from __future__ import annotations

import time
from typing import Callable


class Sweeper:
    def __init__(self, stale_s: float, grace_s: float, at_once: bool = False,
                 clock: Callable[[], float] = time.time) -> None:
        """``at_once``: the first tick sweeps (a worker that starts reaps what a dead one
        left at once); otherwise the first sweep comes ``stale_s / 2`` after this call."""
        self.every_s, self.grace_s, self._clock = stale_s / 2, grace_s, clock
        self._last_tick = clock()
        self._next = self._last_tick + (0.0 if at_once else self.every_s)

    def due(self) -> bool:
        """Call on every tick of the loop; True when it is time to sweep (at most once)."""
        now = self._clock()
        away = now - self._last_tick > self.every_s  # this process was not running
        self._last_tick = now
        if away:
            self._next = max(self._next, now + self.grace_s)
            return False
        if now < self._next:
            return False
        self._next = now + self.every_s
        return True

    def seconds_left(self) -> float:
        """Until the next sweep is due (for a loop that sleeps until its next deadline)."""
        return self._next - self._clock()
