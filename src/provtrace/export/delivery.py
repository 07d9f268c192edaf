"""The deliverer: moves sealed segments from the spool to every sink, on a thread of its own.

A segment leaves the spool only when every sink acknowledged it; a sink that fails is retried
with exponential backoff (capped at 30 s, as is a ``Retry-After`` it asks for) while the others
go on. A sink that refuses provtrace's credentials or TLS identity (:class:`SinkAuthError`) is
retried at the cap from the start, logged as an ERROR, counted in ``delivery_auth_failures`` and
reported by ``health()``. A segment a sink refuses for good is moved aside
(:mod:`provtrace.export.refused`), counted and logged, and delivery goes on behind it. Journals
left by processes that died in the same spool directory (orphans) are delivered too, and removed
once delivered.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from provtrace.counters import Counters
from provtrace.export.refused import RefusedSegments
from provtrace.export.sink import PermanentSinkError, Sink, SinkAuthError, SinkError
from provtrace.otlpjson import loads_line
from provtrace.spool import Entry, Spool
from provtrace.tracing import suppress_instrumentation

logger = logging.getLogger("provtrace")

MAX_BACKOFF_S = 30.0


def retry_delay(previous_s: float | None, asked_s: float | None) -> float:
    """The wait before the next attempt: double the last one (from 0.5 s), at least what the
    destination asked for (``Retry-After``), never more than ``MAX_BACKOFF_S``."""
    doubled = (previous_s or 0.25) * 2
    return min(MAX_BACKOFF_S, max(doubled, asked_s or 0.0))


class Deliverer:
    def __init__(
        self,
        spool: Spool,
        sinks: Sequence[Sink],
        counters: Counters,
        progress: threading.Condition,
        *,
        orphans: Sequence[Spool] = (),
        refused: RefusedSegments | None = None,
    ) -> None:
        self.spool = spool
        self.sinks = tuple(sinks)
        self._counters = counters
        self._progress = progress  # notified whenever something moved (flush waits on it)
        self.orphans = list(orphans)
        self.refused = refused or RefusedSegments(spool.root)
        self._refusals = len(self.refused.list())  # kept from earlier runs count until dealt with
        self._last_refusal = ""
        self._problems: dict[str, str] = {}
        torn = sum(s.torn_records for s in [spool, *self.orphans])
        if torn:
            counters.add("spool_torn_records", torn)
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
        """What is wrong with delivery (it does not stop evidence being persisted): failing sinks
        and segments moved aside as refused."""
        problems = [
            f"delivery to {name} failing: {problem}" for name, problem in sorted(self._problems.items())
        ]
        if self._refusals:
            problems.append(
                f"{self._refusals} segment(s) refused by a destination and kept in {self.refused.directory}"
                + (f" (last: {self._last_refusal})" if self._last_refusal else "")
                + "; see provtrace doctor"
            )
        return problems

    def adopted(self) -> list[tuple[str, int]]:
        """Journals adopted from processes that ended, still being delivered, with their pending
        bytes."""
        return [(str(orphan.directory), orphan.pending_bytes) for orphan in list(self.orphans)]

    def pending(self) -> bool:
        """Whether this process's journal or an adopted one holds undelivered segments."""
        return any(spool.pending() for spool in [self.spool, *list(self.orphans)])

    @property
    def pending_bytes(self) -> int:
        """Undelivered bytes of this process's journal and of the adopted ones."""
        return self.spool.pending_bytes + sum(orphan.pending_bytes for orphan in list(self.orphans))

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
                        asked = exc.retry_after_s if isinstance(exc, SinkError) else None
                        delay = MAX_BACKOFF_S if refused else retry_delay(backoff.get(sink.name), asked)
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
        """One batch from ``spool`` to ``sink``; True when something moved. A batch refused for
        good is sent again one segment at a time, so that only the segments refused are moved
        aside; a transient failure on the way stops there (what was acknowledged stays so)."""
        entries = spool.entries(sink.name)
        if not entries:
            return False
        try:
            sink.send([entry.line for entry in entries])
        except PermanentSinkError as exc:
            if len(entries) == 1:
                self._refuse(spool, sink, entries[0], exc)
                return True
            for entry in entries:
                try:
                    sink.send([entry.line])
                except PermanentSinkError as single:
                    self._refuse(spool, sink, entry, single)
                    continue
                self._delivered(spool, sink, [entry])
            return True
        self._delivered(spool, sink, entries)
        return True

    def _delivered(self, spool: Spool, sink: Sink, entries: Sequence[Entry]) -> None:
        spool.ack(sink.name, entries[-1].end)
        if spool is self.spool:
            self._counters.add("segments_delivered", len(entries))

    def _refuse(self, spool: Spool, sink: Sink, entry: Entry, exc: PermanentSinkError) -> None:
        """Move one refused segment aside with its reason, then past it in the spool."""
        try:
            spans = len(loads_line(entry.line))
        except Exception:  # noqa: BLE001 - an unreadable line is kept all the same
            spans = 0
        kept = self.refused.put(
            sink=sink.name,
            stream=spool.directory.name,
            where=entry.end,
            line=entry.line,
            reason=str(exc),
            spans=spans,
        )
        spool.ack(sink.name, entry.end)
        self._counters.add("segments_refused")
        self._refusals += 1
        self._last_refusal = f"{sink.name}: {exc}"
        logger.error(
            "provtrace delivery to %s refused a segment of %d span(s) (%d bytes) for good: %s; it is "
            "kept in %s and delivery goes on with the segments behind it",
            sink.name,
            spans,
            len(entry.line.encode("utf-8")),
            exc,
            kept,
        )

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
