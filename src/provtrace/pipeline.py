"""The evidence pipeline behind the processor: check, quarantine, seal, spool, deliver.

Two worker threads keep this work off the agent's threads. The sealer checks each segment
against the completeness contract, applies the mode (enforce / annotate / off), seals what is
forwarded and writes it to the spool; the deliverer moves spooled segments to every sink and
retries until they are accepted. Nothing is dropped silently: a segment is delivered, quarantined,
or left in the spool and reported; spans that cannot be sealed (an internal error, a span ending
after shutdown) are counted in ``spans_lost`` and logged with their trace.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from provtrace import conventions as c
from provtrace.content import REDACTOR
from provtrace.export.archive import ArchiveSink
from provtrace.export.otlp import OtlpSink
from provtrace.export.quarantine import Quarantine
from provtrace.export.sink import Sink
from provtrace.integrity import Sealer, random_span_id, random_trace_id
from provtrace.model import AttrValue, SpanRecord
from provtrace.otlpjson import dumps_line, loads_line
from provtrace.processor import ProcessorLimits, ProvenanceProcessor, RawSegment
from provtrace.records import Segment, TraceMemory, convert, end_after
from provtrace.rules import Rule, SegmentContext, Violation, evaluate
from provtrace.spool import Spool, SpoolError
from provtrace.tracing import now_ns, suppress_instrumentation

logger = logging.getLogger("provtrace")

COUNTER_NAMES = (
    "segments_checked",
    "segments_complete",
    "segments_incomplete",
    "segments_unchecked",
    "segments_quarantined",
    "spans_processed",
    "spans_lost",
    "seals",
    "heartbeats",
    "segments_delivered",
    "delivery_failures",
    "recording_errors",
    "rule_errors",
    "handler_errors",
    "guard_refusals",
    "steps_unrecorded",
)


class Counters:
    """Thread-safe counters, read through the handle and exported as OTel metrics."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = dict.fromkeys(COUNTER_NAMES, 0)

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._values[name] += amount

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._values)


@dataclasses.dataclass(frozen=True)
class ViolationReport:
    """What the violation handler receives: ids and codes, never content."""

    trace_id: str
    codes: tuple[str, ...]
    violations: tuple[Violation, ...]
    quarantine_id: str
    mode: str


ViolationHandler = Callable[[ViolationReport], None]


def log_violation(report: ViolationReport) -> None:
    where = f"quarantined as {report.quarantine_id}" if report.quarantine_id else "forwarded"
    logger.error(
        "provtrace: incomplete evidence in trace %s (%s): %s",
        report.trace_id,
        where,
        ", ".join(report.codes),
    )


@dataclasses.dataclass(frozen=True)
class PipelineSettings:
    service_name: str
    completeness: str
    profile: str
    archive_dir: Path | None
    endpoint: str | None
    spool_dir: Path
    quarantine_dir: Path
    heartbeat_interval_s: float
    limits: ProcessorLimits
    signing_key: object | None = None  # Ed25519PrivateKey; typed loosely to keep the import lazy
    rules: tuple[Rule, ...] = ()
    violation_handler: ViolationHandler = log_violation
    headers: tuple[tuple[str, str], ...] = ()
    spool_fsync: bool = True
    max_pending_segments: int = 10_000


@dataclasses.dataclass(frozen=True)
class Health:
    ok: bool
    problems: tuple[str, ...]


def new_stream_id(service_name: str) -> str:
    return f"{service_name}@{socket.gethostname()}/{os.getpid()}/{random_span_id()[:8]}"


class Pipeline:
    def __init__(self, settings: PipelineSettings, *, adopt_orphans: bool = True) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        self.settings = settings
        self.counters = Counters()
        self.stream_id = new_stream_id(settings.service_name)
        self.resource: dict[str, AttrValue] = {c.SERVICE_NAME: settings.service_name}
        key = settings.signing_key if isinstance(settings.signing_key, Ed25519PrivateKey) else None
        self.sealer = Sealer(
            self.stream_id,
            key,
            heartbeat_interval_s=settings.heartbeat_interval_s,
            resource=self.resource,
        )
        self.sinks = self._make_sinks()
        self.spool = Spool(
            settings.spool_dir,
            self.stream_id,
            [s.name for s in self.sinks],
            fsync=settings.spool_fsync,
        )
        self.quarantine = Quarantine(settings.quarantine_dir)
        self.processor = ProvenanceProcessor(
            self._submit, limits=settings.limits, on_lost=lambda: self.counters.add("spans_lost")
        )
        self._memory = TraceMemory()
        self._queue: queue.Queue[RawSegment | Segment | None] = queue.Queue(
            maxsize=settings.max_pending_segments
        )
        self._progress = threading.Condition()
        self._unspooled: list[str] = []
        self._reentrant: list[RawSegment | Segment] = []
        self._spool_problem = ""
        self._delivery_problem: dict[str, str] = {}
        self._last_seal = time.monotonic()
        self._closing = threading.Event()
        self._shutdown_lock = threading.Lock()
        self._sealer_done = threading.Event()
        self._stopped = False
        self._orphans: list[Spool] = (
            list(Spool.adopt_orphans(settings.spool_dir, self.spool.directory, [s.name for s in self.sinks]))
            if adopt_orphans
            else []
        )
        for orphan in self._orphans:
            if orphan.foreign_sinks:
                logger.warning(
                    "provtrace spool %s holds evidence for %s, which this process does not deliver "
                    "to; it is kept for a process that does",
                    orphan.directory,
                    ", ".join(orphan.foreign_sinks),
                )
        self._sealer_thread = threading.Thread(target=self._seal_loop, name="provtrace-sealer", daemon=True)
        self._delivery_thread = threading.Thread(
            target=self._delivery_loop, name="provtrace-delivery", daemon=True
        )
        self._sealer_thread.start()
        self._delivery_thread.start()

    def _make_sinks(self) -> list[Sink]:
        sinks: list[Sink] = []
        if self.settings.archive_dir is not None:
            sinks.append(ArchiveSink(self.settings.archive_dir, self.stream_id))
        if self.settings.endpoint:
            sinks.append(OtlpSink(self.settings.endpoint, headers=dict(self.settings.headers)))
        return sinks

    # --- agent side -------------------------------------------------------------------------

    def _submit(self, segment: RawSegment | Segment) -> None:
        """Called by the processor on the thread that ended the span; blocks only while the
        sealer is ``max_pending_segments`` behind (back-pressure instead of loss). Spans ended on
        the sealer thread itself (a violation handler's) are queued aside, never waited for."""
        if threading.current_thread() is self._sealer_thread:
            self._reentrant.append(segment)
            return
        while True:
            try:
                self._queue.put(segment, timeout=1.0)
                return
            except queue.Full:
                if not self._sealer_thread.is_alive():
                    self._lost(segment, "the sealer thread is not running")
                    return

    def _lost(self, item: RawSegment | Segment, reason: str) -> None:
        """Report spans that cannot be sealed: counted and logged with their trace, never silent."""
        count = len(item.spans) if isinstance(item, RawSegment) else len(item.records)
        trace = f"{item.trace_id:032x}" if isinstance(item.trace_id, int) else item.trace_id
        self.counters.add("spans_lost", count)
        logger.error("provtrace lost %d span(s) of trace %s: %s", count, trace, reason)

    def recording_error(self, where: str, exc: BaseException) -> None:
        self.counters.add("recording_errors")
        logger.warning(
            "provtrace could not record %s: %s: %s",
            where,
            type(exc).__name__,
            REDACTOR.text(str(exc)),
        )

    def health(self) -> Health:
        """Whether evidence recorded now would be persisted; the spool is probed, so a directory
        that was removed, made read-only or filled shows before the next write fails."""
        problems: list[str] = []
        if self._stopped or self._closing.is_set():
            problems.append("provtrace is shut down")
        if not self._sealer_thread.is_alive():
            problems.append("the sealer thread is not running")
        if not self._delivery_thread.is_alive():
            problems.append("the delivery thread is not running")
        if self._spool_problem:
            problems.append(self._spool_problem)
        probed = self.spool.probe()
        if probed and probed not in self._spool_problem:
            problems.append(probed)
        return Health(not problems, tuple(problems))

    # --- sealer -----------------------------------------------------------------------------

    def _seal_loop(self) -> None:
        suppress_instrumentation()
        tick = min(1.0, self.settings.heartbeat_interval_s / 2)
        closing = False
        while True:
            batch: list[RawSegment | Segment | None] = []
            try:
                batch.append(self._queue.get(timeout=tick))
                while len(batch) < 512:
                    batch.append(self._queue.get_nowait())
            except queue.Empty:
                pass
            lines = list(self._unspooled)
            work: list[RawSegment | Segment] = [item for item in batch if item is not None]
            closing = closing or len(work) < len(batch)
            work += self.processor.sweep()
            while work:
                for item in work:
                    self._seal_one(item, lines)
                work, self._reentrant = self._reentrant, []
            try:
                if closing:
                    lines.append(self._heartbeat(c.SEAL_REASON_CLOSE))
                elif time.monotonic() - self._last_seal >= self.settings.heartbeat_interval_s:
                    lines.append(self._heartbeat(c.SEAL_REASON_HEARTBEAT))
            except Exception as exc:  # noqa: BLE001 - a heartbeat that fails is retried next tick
                self.recording_error("heartbeat", exc)
            if lines:
                self._persist(lines)
            for _ in batch:
                self._queue.task_done()
            if closing:
                self._sealer_done.set()
                with self._progress:
                    self._progress.notify_all()
                return

    def _seal_one(self, item: RawSegment | Segment, lines: list[str]) -> None:
        """Check, quarantine and seal one segment; an error here loses the segment, loudly,
        but never stops the sealer."""
        try:
            lines.append(self._process(item))
        except Exception as exc:  # noqa: BLE001
            self.recording_error("segment", exc)
            self._lost(item, f"sealing failed ({type(exc).__name__})")

    def _persist(self, lines: list[str]) -> None:
        try:
            self.spool.append(lines)
        except SpoolError as exc:
            self._unspooled = lines
            if not self._spool_problem:
                logger.error("provtrace cannot persist evidence: %s (kept in memory, retrying)", exc)
            self._spool_problem = f"spool not writable: {exc}"
            return
        self._unspooled = []
        self._spool_problem = ""
        with self._progress:
            self._progress.notify_all()

    def _process(self, item: RawSegment | Segment) -> str:
        if isinstance(item, Segment):
            segment = item
        else:
            segment = convert(item, self._memory, self.resource, self.recording_error)
        counters = self.counters
        if segment.lost:
            counters.add("spans_lost", len(segment.lost))
            logger.error(
                "provtrace lost %d span(s) of trace %s that could not be converted: %s",
                len(segment.lost),
                segment.trace_id,
                ", ".join(segment.lost),
            )
        counters.add("spans_processed", len(segment.records))
        mode = self.settings.completeness
        violations: list[Violation] = []
        if segment.preset_codes is not None:
            return self._forward_released(segment, segment.preset_codes)
        if mode == c.MODE_OFF:
            completeness = c.COMPLETENESS_UNCHECKED
            counters.add("segments_unchecked")
        else:
            ctx = SegmentContext(
                trace_id=segment.trace_id,
                records=segment.records,
                profile=self.settings.profile,
                reason=segment.reason,
                open_span_ids=segment.open_span_ids,
                earlier=segment.earlier,
                known_ids=segment.known_ids,
                leaks=segment.leaks,
                losses=segment.losses,
            )
            violations, failed = evaluate(ctx, self.settings.rules)
            for name in failed:
                counters.add("rule_errors")
                logger.warning("provtrace user rule %s raised; its verdict is missing", name)
            counters.add("segments_checked")
            completeness = c.COMPLETENESS_INCOMPLETE if violations else c.COMPLETENESS_COMPLETE
            counters.add("segments_incomplete" if violations else "segments_complete")
        codes = tuple(sorted({v.code for v in violations}))
        forwarded: list[SpanRecord] = list(segment.records)
        withheld: list[SpanRecord] = []
        quarantine_id = ""
        if violations:
            if mode == c.MODE_ENFORCE:
                quarantine_id = self._quarantine(segment, violations)
                if quarantine_id:
                    forwarded, withheld = [], list(segment.records)
            forwarded.append(self._violation_record(segment, violations, quarantine_id))
            self._report(ViolationReport(segment.trace_id, codes, tuple(violations), quarantine_id, mode))
        return self._sealed_line(
            forwarded,
            trace_id=segment.trace_id,
            parent_span_id=segment.root_span_id if not withheld else "",
            withheld=withheld,
            completeness=completeness,
            violations=codes,
            reason=segment.reason,
            open_spans=segment.open_span_ids,
        )

    def _sealed_line(self, records: Sequence[SpanRecord], *, counter: str = "seals", **seal: Any) -> str:
        """The archive line of ``records`` and the seal covering them (the stream's next)."""
        record = self.sealer.seal(spans=records, now_ns=now_ns(), **seal)
        self.counters.add(counter)
        self._last_seal = time.monotonic()
        return dumps_line([*records, record])

    def _forward_released(self, segment: Segment, codes: tuple[str, ...]) -> str:
        return self._sealed_line(
            segment.records,
            trace_id=segment.trace_id,
            parent_span_id="",
            completeness=c.COMPLETENESS_INCOMPLETE if codes else c.COMPLETENESS_COMPLETE,
            violations=codes,
            reason=segment.reason,
        )

    def _quarantine(self, segment: Segment, violations: Sequence[Violation]) -> str:
        try:
            entry_id = self.quarantine.put(
                trace_id=segment.trace_id,
                records=segment.records,
                violations=violations,
                stream=self.stream_id,
                seal_seq=self.sealer.next_seq,
                reason=segment.reason,
            )
        except OSError as exc:
            self.counters.add("recording_errors")
            logger.error(
                "provtrace could not quarantine trace %s (%s); forwarding it with its verdict instead",
                segment.trace_id,
                exc.strerror,
            )
            return ""
        self.counters.add("segments_quarantined")
        return entry_id

    def _violation_record(
        self, segment: Segment, violations: Sequence[Violation], quarantine_id: str
    ) -> SpanRecord:
        now = now_ns()
        decision_ids = sorted(
            {str(r.attributes[c.DECISION_ID]) for r in segment.records if c.DECISION_ID in r.attributes}
        )
        attributes: dict[str, AttrValue] = {
            c.VIOLATION_CODES: tuple(sorted({v.code for v in violations})),
            c.VIOLATION_DETAILS: tuple(json.dumps(v.detail, sort_keys=True) for v in violations),
            c.VIOLATION_QUARANTINE_ID: quarantine_id,
            c.VIOLATION_SPAN_COUNT: len(segment.records),
            c.SEAL_REASON: segment.reason,
        }
        if decision_ids:
            attributes[c.DECISION_ID] = decision_ids[0]
        return SpanRecord(
            trace_id=segment.trace_id,
            span_id=random_span_id(),
            name=c.VIOLATION_SPAN_NAME,
            start_ns=now,
            end_ns=end_after(now, now),
            status_code=2,
            status_message="incomplete provenance: " + ", ".join(sorted({v.code for v in violations})),
            attributes=attributes,
            resource=self.resource,
            scope_name=c.INSTRUMENTATION_NAME,
        )

    def _report(self, report: ViolationReport) -> None:
        try:
            self.settings.violation_handler(report)
        except Exception as exc:  # noqa: BLE001 - a failing handler must not stop the pipeline
            self.counters.add("handler_errors")
            logger.warning("provtrace violation handler raised %s", type(exc).__name__)

    def _heartbeat(self, reason: str) -> str:
        return self._sealed_line(
            (),
            counter="heartbeats",
            trace_id=random_trace_id(),
            parent_span_id="",
            completeness=c.COMPLETENESS_UNCHECKED,
            violations=(),
            reason=reason,
        )

    def emit_released(self, records: Sequence[SpanRecord], codes: Sequence[str]) -> None:
        """Seal and persist a released quarantine segment with its original verdict."""
        if records:
            self._queue.put(
                Segment(
                    records[0].trace_id,
                    tuple(records),
                    c.SEAL_REASON_RELEASE,
                    preset_codes=tuple(codes),
                )
            )

    # --- delivery ---------------------------------------------------------------------------

    def _delivery_loop(self) -> None:
        suppress_instrumentation()
        retry_at: dict[str, float] = {}
        backoff: dict[str, float] = {}
        while True:
            moved = False
            for spool in [*self._orphans, self.spool]:
                for sink in self.sinks:
                    if time.monotonic() < retry_at.get(sink.name, 0.0):
                        continue
                    try:
                        moved = self._deliver(spool, sink) or moved
                    except Exception as exc:  # noqa: BLE001 - any failure is retried, never fatal
                        self.counters.add("delivery_failures")
                        delay = min(30.0, backoff.get(sink.name, 0.25) * 2)
                        backoff[sink.name] = delay
                        retry_at[sink.name] = time.monotonic() + delay
                        if sink.name not in self._delivery_problem:
                            logger.warning("provtrace delivery to %s failed (%s); retrying", sink.name, exc)
                        self._delivery_problem[sink.name] = str(exc)
                        continue
                    backoff.pop(sink.name, None)
                    if self._delivery_problem.pop(sink.name, None):
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
            self.counters.add("segments_delivered", len(lines))
        return True

    def _release_finished_orphans(self) -> None:
        for orphan in list(self._orphans):
            if not orphan.pending():
                orphan.close(remove_if_empty=True)
                self._orphans.remove(orphan)

    # --- flush and shutdown -----------------------------------------------------------------

    def wait_until_delivered(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        with self._progress:
            while True:
                if self._queue.unfinished_tasks == 0 and not self._unspooled and not self.spool.pending():
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopped:
                    return False
                self._progress.wait(timeout=min(remaining, 0.5))

    def force_flush(self, timeout_s: float = 30.0) -> bool:
        self.processor.force_flush()
        return self.wait_until_delivered(timeout_s)

    def shutdown(self, timeout_s: float = 30.0) -> bool:
        """Seal what is buffered, close the stream, deliver; True when nothing was left behind.
        Only the first call does the work. Never raises into the application: a failure is
        logged, counted, and makes the result False."""
        with self._shutdown_lock:
            if self._closing.is_set():
                return self._sealer_done.is_set() and not self._unspooled and not self.spool.pending()
            self._closing.set()
        try:
            return self._shutdown(timeout_s)
        except Exception as exc:  # noqa: BLE001 - shutting down must not break the application
            self.recording_error("shutdown", exc)
            return False

    def _shutdown(self, timeout_s: float) -> bool:
        self.processor.shutdown()
        self._queue.put(None)
        sealed = self._sealer_done.wait(timeout=timeout_s)
        # Lines the sealer could not persist on its last pass will not be persisted any more.
        delivered = sealed and not self._unspooled and self.wait_until_delivered(timeout_s)
        with self._progress:
            self._stopped = True
            self._progress.notify_all()
        for sink in self.sinks:
            sink.close()  # also interrupts an export that is still retrying
        self._delivery_thread.join(timeout=10)
        if not sealed:
            logger.error(
                "provtrace could not seal all evidence within %.0fs of shutdown; what was sealed "
                "stays in %s for the next process to deliver",
                timeout_s,
                self.spool.directory,
            )
            return False
        if self._unspooled:
            lost = sum(len(loads_line(line)) for line in self._unspooled)
            self.counters.add("spans_lost", lost)
            logger.error(
                "provtrace lost %d sealed span(s) at shutdown: the spool could not persist them (%s)",
                lost,
                self._spool_problem or "spool not writable",
            )
            self._unspooled = []
            delivered = False
        elif not delivered:
            logger.error(
                "provtrace shut down with %d bytes of sealed evidence not yet delivered; they stay "
                "in %s and the next provtrace process using that spool delivers them",
                self.spool.pending_bytes,
                self.spool.directory,
            )
        if self._delivery_thread.is_alive():
            logger.error("provtrace delivery did not stop; its spool stays locked until the process exits")
            return delivered
        self.spool.close(remove_if_empty=True)
        for orphan in self._orphans:
            orphan.close()
        return delivered

    def abandon_after_fork(self) -> None:
        """In a forked child: this pipeline's threads did not survive the fork and its spool and
        buffers belong to the parent, which delivers them. Let go without touching them."""
        self._stopped = True
        self._closing.set()
        self.spool.abandon()
        for orphan in self._orphans:
            orphan.abandon()
