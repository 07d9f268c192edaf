"""The clocks evidence is stamped with: wall time, and a monotonic reading beside it.

Wall time is what an investigator reads, but it can be stepped back or forward (NTP, an operator,
a VM resumed). A monotonic reading cannot, within one process run: two readings of the same run
(:class:`Reading`, compared only when their ``run`` is equal) say how much time really passed
between them and in which order they were taken. The clock is injectable (:func:`using`) so
tests can step the wall clock without sleeping or patching.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TypeVar


def _new_run() -> str:
    """A process run's identity: monotonic readings are compared only within one."""
    return f"{os.getpid()}-{secrets.token_hex(8)}"


@dataclasses.dataclass(frozen=True)
class Reading:
    """A monotonic clock reading and the process run it was taken in."""

    run: str
    monotonic_ns: int

    @classmethod
    def of(cls, attributes: Mapping[str, object], run_key: str, monotonic_key: str) -> Reading | None:
        """The reading recorded under these attributes, if one is."""
        run, value = attributes.get(run_key), attributes.get(monotonic_key)
        if not isinstance(run, str) or not run or not isinstance(value, int) or isinstance(value, bool):
            return None
        return cls(run, value)

    def elapsed_ns(self, later: Reading | None) -> int | None:
        """Nanoseconds from this reading to ``later``, or None when they are not comparable."""
        if later is None or not self.run or later.run != self.run:
            return None
        return later.monotonic_ns - self.monotonic_ns


def _boot_ns() -> int:
    """Time since boot, suspended time included (Linux's CLOCK_BOOTTIME): like the monotonic clock
    it cannot be stepped, but it also counts the hours a host spent suspended, which
    CLOCK_MONOTONIC leaves out (an approval's age and a heartbeat gap must count them)."""
    return time.clock_gettime_ns(time.CLOCK_BOOTTIME)


_MONOTONIC: Callable[[], int] = _boot_ns if hasattr(time, "CLOCK_BOOTTIME") else time.monotonic_ns


@dataclasses.dataclass
class Clock:
    """Where wall time and monotonic readings come from."""

    wall_ns: Callable[[], int] = time.time_ns
    monotonic: Callable[[], int] = _MONOTONIC
    run: str = dataclasses.field(default_factory=_new_run)


class ManualClock(Clock):
    """A clock that moves only when told: ``advance`` lets time pass on both clocks, ``step``
    moves the wall clock alone (as NTP or an operator does)."""

    def __init__(self, wall_ns: int | None = None, monotonic_ns: int = 10**12) -> None:
        self.wall = time.time_ns() if wall_ns is None else wall_ns
        self.mono = monotonic_ns
        super().__init__(lambda: self.wall, lambda: self.mono, _new_run())

    def advance(self, seconds: float) -> None:
        self.wall += int(seconds * 1e9)
        self.mono += int(seconds * 1e9)

    def step(self, seconds: float) -> None:
        self.wall += int(seconds * 1e9)


_active = [Clock()]  # the clock in use (one slot, swapped by ``using``)


def _forked() -> None:
    """A forked child is a new process run: its readings are not compared with its parent's."""
    if type(_active[0]) is Clock:
        _active[0] = Clock(_active[0].wall_ns, _active[0].monotonic)


os.register_at_fork(after_in_child=_forked)


C = TypeVar("C", bound=Clock)


@contextmanager
def using(clock: C) -> Iterator[C]:
    """Stamp with ``clock`` inside the block (tests)."""
    previous, _active[0] = _active[0], clock
    try:
        yield clock
    finally:
        _active[0] = previous


def now_ns() -> int:
    """Wall-clock time in whole microseconds: the precision every Jaeger API returns, so a time
    recorded here reads back unchanged (see ``records.to_micros``)."""
    ns = _active[0].wall_ns()
    return ns - ns % 1000


def reading() -> Reading:
    """The monotonic clock now, with the run it belongs to."""
    clock = _active[0]
    return Reading(clock.run, clock.monotonic())
