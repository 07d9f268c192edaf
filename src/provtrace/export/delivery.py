"""The deliverer: moves sealed segments from the spool to every sink, on a thread of its own.

A segment leaves the spool only when every sink acknowledged it; a sink that fails is retried
with exponential backoff (capped at 30 s) while the others go on. A sink that refuses provtrace's
credentials or TLS identity (:class:`SinkAuthError`) is retried at the cap from the start, logged
as an ERROR, counted in ``delivery_auth_failures`` and reported by ``health()``. Journals left by
processes that died in the same spool directory (orphans) are delivered too, and removed once
delivered.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from provtrace.counters import Counters
from provtrace.export.sink import Sink, SinkAuthError
from provtrace.spool import Spool
from provtrace.tracing import suppress_instrumentation

logger = logging.getLogger("provtrace")

MAX_BACKOFF_S = 30.0


class Deliverer:
    def __init__(
        self,
        spool: Spool,
        sinks: Sequence[Sink],
        counters: Counters,
        progress: threading.Condition,
        *,
        orphans: Sequence[Spool] = (),
    ) -> None:
        self.spool = spool
        self.sinks = tuple(sinks)
        self._counters = counters
        self._progress = progress  # notified whenever something moved (flush waits on it)
        self.orphans = list(orphans)
        self._problems: dict[str, str] = {}
        self._credential_refusals: dict[str, str] = {}  # sinks refusing provtrace's credentials, by name
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="provtrace-delivery", daemon=True)

    @classmethod
    def adopting(
        cls,
        spool: Spool,
        sinks: Sequence[Sink],
        counters: Counters,
        progress: threading.Condition,
        root: Path,
    ) -> Deliverer:
        """A deliverer that also takes on the journals of dead processes in ``root``."""
        names = [s.name for s in sinks]
        orphans = list(Spool.adopt_orphans(root, spool.directory, names))
        for orphan in orphans:
            if orphan.foreign_sinks:
                logger.warning(
                    "provtrace spool %s holds evidence for %s, which this process does not deliver "
                    "to; it is kept for a process that does",
                    orphan.directory,
                    ", ".join(orphan.foreign_sinks),
                )
        return cls(spool, sinks, counters, progress, orphans=orphans)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def problems(self) -> list[str]:
        return [f"delivery to {name} failing: {problem}" for name, problem in sorted(self._problems.items())]

    def credential_refusals(self) -> list[str]:
        """Sinks that refuse provtrace's credentials or TLS identity: nothing reaches them until
        the configuration is fixed, so ``health()`` reports these (a collector that is merely
        down is not a health problem: the spool holds the evidence)."""
        refusals = sorted(self._credential_refusals.items())
        return [f"delivery to {name} refused: {problem}" for name, problem in refusals]

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Stop after the current batch; sinks are closed, which interrupts a retrying export.
        Returns whether the thread stopped."""
        with self._progress:
            self._stopped = True
            self._progress.notify_all()
        for sink in self.sinks:
            sink.close()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout_s)
        return not self._thread.is_alive()

    def _loop(self) -> None:
        suppress_instrumentation()
        retry_at: dict[str, float] = {}
        backoff: dict[str, float] = {}
        while True:
            moved = False
            for spool in [*self.orphans, self.spool]:
                for sink in self.sinks:
                    if time.monotonic() < retry_at.get(sink.name, 0.0):
                        continue
                    try:
                        moved = self._deliver(spool, sink) or moved
                    except Exception as exc:  # noqa: BLE001 - any failure is retried, never fatal
                        self._counters.add("delivery_failures")
                        refused = isinstance(exc, SinkAuthError)
                        if refused:
                            self._counters.add("delivery_auth_failures")
                        delay = (
                            MAX_BACKOFF_S if refused else min(MAX_BACKOFF_S, backoff.get(sink.name, 0.25) * 2)
                        )
                        backoff[sink.name] = delay
                        retry_at[sink.name] = time.monotonic() + delay
                        if self._problems.get(sink.name) != str(exc):
                            level = logging.ERROR if refused else logging.WARNING
                            logger.log(
                                level, "provtrace delivery to %s failed (%s); retrying", sink.name, exc
                            )
                        self._problems[sink.name] = str(exc)
                        if refused:
                            self._credential_refusals[sink.name] = str(exc)
                        continue
                    backoff.pop(sink.name, None)
                    self._credential_refusals.pop(sink.name, None)
                    if self._problems.pop(sink.name, None):
                        logger.warning("provtrace delivery to %s recovered", sink.name)
            self._release_finished_orphans()
            with self._progress:
                self._progress.notify_all()
                if self._stopped:
                    return
                if not moved:
                    self._progress.wait(timeout=0.5)

    def _deliver(self, spool: Spool, sink: Sink) -> bool:
        """One batch from ``spool`` to ``sink``; True when something moved."""
        lines, position = spool.read(sink.name)
        if not lines:
            return False
        sink.send(lines)
        spool.ack(sink.name, position)
        if spool is self.spool:
            self._counters.add("segments_delivered", len(lines))
        return True

    def _release_finished_orphans(self) -> None:
        for orphan in list(self.orphans):
            if not orphan.pending():
                orphan.close(remove_if_empty=True)
                self.orphans.remove(orphan)

    def close_orphans(self) -> None:
        for orphan in self.orphans:
            orphan.close()

    def abandon_orphans(self) -> None:
        for orphan in self.orphans:
            orphan.abandon()
