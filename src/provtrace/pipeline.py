"""The evidence pipeline behind the processor: it owns the worker threads, start, flush, shutdown.

The processor hands each segment to the sealer thread, which converts it, judges and seals it
(``provtrace.sealing``) and writes the sealed line to the spool; the deliverer thread
(``provtrace.export.delivery``) moves spooled lines to every sink. Nothing is dropped silently: a
segment is delivered, quarantined, or left in the spool and reported; spans that cannot be sealed
(an internal error, a span ending after shutdown, a spool that cannot persist at shutdown) are
counted in ``spans_lost`` and logged with the reason.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from opentelemetry.trace import format_span_id

from provtrace import conventions as c
from provtrace.clock import now_ns
from provtrace.content import REDACTOR
from provtrace.counters import Counters
from provtrace.export.anchors import CheckpointFiles, Timestamper
from provtrace.export.archive import ArchiveSink
from provtrace.export.delivery import Deliverer
from provtrace.export.quarantine import Quarantine
from provtrace.export.sink import Sink
from provtrace.integrity import Sealer, random_span_id
from provtrace.model import AttrValue, SpanRecord
from provtrace.otlpjson import dumps_line, loads_line
from provtrace.processor import ProcessorLimits, ProvenanceProcessor, RawSegment
from provtrace.progress import ProgressLog
from provtrace.records import Segment, TraceMemory, convert
from provtrace.recovery import recover, report, settle, skip_archived
from provtrace.rules import Rule, Violation
from provtrace.runtime import Health
from provtrace.sealing import (
    Anchor,
    Sealed,
    Verdicts,
    ViolationHandler,
    ViolationReport,
    seal_heartbeat,
    seal_release,
    seal_segment,
)
from provtrace.signing import signer_from
from provtrace.spool import Spool, SpoolError
from provtrace.tracing import suppress_instrumentation
from provtrace.violations import ViolationLog

logger = logging.getLogger("provtrace")


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
    signing_key: object | None = None  # a Signer or an Ed25519PrivateKey (see provtrace.signing)
    rules: tuple[Rule, ...] = ()
    violation_handler: ViolationHandler = dataclasses.field(default_factory=ViolationLog)
    headers: tuple[tuple[str, str], ...] = ()
    # CA, client certificate, client key of an https endpoint (None: system trust store, no mTLS)
    tls_files: tuple[Path | None, Path | None, Path | None] = (None, None, None)
    spool_fsync: bool = True
    max_pending_segments: int = 10_000
    checkpoint_dir: Path | None = None
    tsa_url: str | None = None
    tsa_timeout_s: float = 10.0


@dataclasses.dataclass(frozen=True)
class Release:
    """A released quarantine segment, sealed with the verdict it had."""

    records: tuple[SpanRecord, ...]
    codes: tuple[str, ...]


Work = RawSegment | Release


def new_stream_id(service_name: str) -> str:
    return f"{service_name}@{socket.gethostname()}/{os.getpid()}/{random_span_id()[:8]}"


class Pipeline:
    def __init__(self, settings: PipelineSettings, *, adopt_orphans: bool = True) -> None:
        self.settings = settings
        self.counters = Counters()
        self.stream_id = new_stream_id(settings.service_name)
        self.resource: dict[str, AttrValue] = {c.SERVICE_NAME: settings.service_name}
        self.sealer = Sealer(
            self.stream_id,
            signer_from(settings.signing_key),
            heartbeat_interval_s=settings.heartbeat_interval_s,
            resource=self.resource,
        )
        self.checkpoints = (
            # Not fsynced one by one (a file each, 2-8 ms apiece here, on the sealer's thread): a
            # checkpoint is written only once the spool holds its line durably, so a crash loses
            # no note, and verify and the archive read it from there.
            CheckpointFiles(settings.checkpoint_dir, fsync=False)
            if settings.checkpoint_dir is not None
            else None
        )
        self._anchors: list[Anchor] = []
        self.timestamper = (
            Timestamper(
                settings.tsa_url,
                self.checkpoints,
                self.counters,
                self.resource,
                timeout_s=settings.tsa_timeout_s,
            )
            if settings.tsa_url and self.checkpoints is not None
            else None
        )
        self.verdicts = Verdicts(settings.completeness, settings.profile, settings.rules)
        sinks = self._make_sinks()
        self.spool = Spool(
            settings.spool_dir, self.stream_id, [s.name for s in sinks], fsync=settings.spool_fsync
        )
        self.quarantine = Quarantine(settings.quarantine_dir)
        self.progress_log = ProgressLog(
            self.spool.directory, self.stream_id, self.resource, on_error=self.recording_error
        )
        self.processor = ProvenanceProcessor(
            self._submit,
            limits=settings.limits,
            on_lost=lambda: self.counters.add("spans_lost"),
            journal=self.progress_log,
        )
        self._memory = TraceMemory()
        self._queue: queue.Queue[Work | None] = queue.Queue(maxsize=settings.max_pending_segments)
        self._progress = threading.Condition()
        self._unspooled: list[str] = []
        self._accounted: list[str] = []  # span ids sealed (or lost) since the last persisted batch
        self._reentrant: list[Work] = []
        self._spool_problem = ""
        self._last_seal = time.monotonic()
        self._closing = threading.Event()
        self._shutdown_lock = threading.Lock()
        self._sealer_done = threading.Event()
        self._stopped = False
        if adopt_orphans:
            self.deliverer = Deliverer.adopting(
                self.spool, sinks, self.counters, self._progress, settings.spool_dir
            )
        else:
            self.deliverer = Deliverer(self.spool, sinks, self.counters, self._progress)
        self._recover_orphans()
        self._sealer_thread = threading.Thread(target=self._seal_loop, name="provtrace-sealer", daemon=True)
        self._sealer_thread.start()
        self.deliverer.start()

    @property
    def sinks(self) -> tuple[Sink, ...]:
        return self.deliverer.sinks

    def _make_sinks(self) -> list[Sink]:
        sinks: list[Sink] = []
        if self.settings.archive_dir is not None:
            sinks.append(ArchiveSink(self.settings.archive_dir, self.stream_id))
        endpoint = self.settings.endpoint
        if endpoint:
            from provtrace.export.otlp import otlp_sink

            sinks.append(otlp_sink(endpoint, dict(self.settings.headers), self.settings.tls_files))
        return sinks

    # --- agent side -------------------------------------------------------------------------

    def _submit(self, item: Work) -> None:
        """Called by the processor on the thread that ended the span; blocks only while the
        sealer is ``max_pending_segments`` behind (back-pressure instead of loss). Spans ended on
        the sealer thread itself (a violation handler's) are queued aside, never waited for."""
        if threading.current_thread() is self._sealer_thread:
            self._reentrant.append(item)
            return
        while True:
            try:
                self._queue.put(item, timeout=1.0)
                return
            except queue.Full:
                if not self._sealer_thread.is_alive():
                    self._lost(item, "the sealer thread is not running")
                    return

    def emit_released(self, records: Sequence[SpanRecord], codes: Sequence[str]) -> None:
        """Seal and persist a released quarantine segment with its original verdict."""
        if records:
            self._queue.put(Release(tuple(records), tuple(codes)))

    def _lost(self, item: Work, reason: str) -> None:
        """Report spans that cannot be sealed: counted and logged with their trace, never silent."""
        if isinstance(item, RawSegment):
            count, trace = len(item.spans), f"{item.trace_id:032x}"
        else:
            count, trace = len(item.records), item.records[0].trace_id
        self.counters.add("spans_lost", count)
        logger.error("provtrace lost %d span(s) of trace %s: %s", count, trace, reason)

    def recording_error(self, where: str, exc: BaseException) -> None:
        self.counters.add("recording_errors")
        logger.warning(
            "provtrace could not record %s: %s: %s", where, type(exc).__name__, REDACTOR.text(str(exc))
        )

    def health(self) -> Health:
        """Whether evidence recorded now would be persisted; the spool is probed, so a directory
        that was removed, made read-only or filled shows before the next write fails."""
        problems: list[str] = []
        if self._stopped or self._closing.is_set():
            problems.append("provtrace is shut down")
        if not self._sealer_thread.is_alive():
            problems.append("the sealer thread is not running")
        if not self.deliverer.alive:
            problems.append("the delivery thread is not running")
        if self._spool_problem:
            problems.append(self._spool_problem)
        problems += self.deliverer.credential_refusals()
        if self.progress_log.problem and not self._closing.is_set():
            problems.append(self.progress_log.problem)
        probed = self.spool.probe()
        if probed and probed not in self._spool_problem:
            problems.append(probed)
        warnings = self.deliverer.problems()
        warnings += [
            f"delivering journal {directory} adopted from a process that ended: {pending} bytes pending"
            for directory, pending in self.deliverer.adopted()
        ]
        return Health(not problems, tuple(problems), tuple(warnings))

    @property
    def pending_bytes(self) -> int:
        """Sealed bytes not yet delivered everywhere: this process's journal and adopted ones."""
        return self.deliverer.pending_bytes

    # --- sealer -----------------------------------------------------------------------------

    def _seal_loop(self) -> None:
        suppress_instrumentation()
        tick = min(1.0, self.settings.heartbeat_interval_s / 2)
        closing = False
        while True:
            batch: list[Work | None] = []
            try:
                batch.append(self._queue.get(timeout=tick))
                while len(batch) < 512:
                    batch.append(self._queue.get_nowait())
            except queue.Empty:
                pass
            lines = list(self._unspooled)
            work: list[Work] = [item for item in batch if item is not None]
            closing = closing or len(work) < len(batch)
            work += self.processor.sweep()
            while work:
                for item in work:
                    self._seal_one(item, lines)
                work, self._reentrant = self._reentrant, []
            if self.timestamper is not None:
                lines += [dumps_line([span]) for span in self.timestamper.take_ready()]
            try:
                if closing:
                    lines.append(
                        self._apply(seal_heartbeat(c.SEAL_REASON_CLOSE, sealer=self.sealer, now_ns=now_ns()))
                    )
                elif time.monotonic() - self._last_seal >= self.settings.heartbeat_interval_s:
                    heartbeat = seal_heartbeat(c.SEAL_REASON_HEARTBEAT, sealer=self.sealer, now_ns=now_ns())
                    lines.append(self._apply(heartbeat))
            except Exception as exc:  # noqa: BLE001 - a heartbeat that fails is retried next tick
                self.recording_error("heartbeat", exc)
            if lines:
                self._persist(lines)
            if closing and self.timestamper is not None:
                # The closing checkpoint is the one an auditor most needs stamped: wait for it.
                stamped = self.timestamper.drain(self.settings.tsa_timeout_s + 5)
                if stamped:
                    self._persist([*self._unspooled, *(dumps_line([span]) for span in stamped)])
            for _ in batch:
                self._queue.task_done()
            if closing:
                self._sealer_done.set()
                with self._progress:
                    self._progress.notify_all()
                return

    def _recover_orphans(self) -> None:
        """Seal what the progress logs of dead processes hold (before this stream's own work) and
        report their unfinished decisions; a log goes once its seals are in the spool."""
        for orphan in self.deliverer.orphans:
            try:
                if self.settings.archive_dir is not None:
                    skip_archived(orphan, self.settings.archive_dir)
                recovery = recover(orphan.directory)
            except OSError as exc:
                self.recording_error(f"recovery of {orphan.directory}", exc)
                continue
            if recovery is None:
                continue
            lines: list[str] = []
            for segment in recovery.segments:
                try:
                    lines.append(self._apply(self._seal_segment(segment)))
                except Exception as exc:  # noqa: BLE001 - one bad segment must not stop the rest
                    self.recording_error("recovered segment", exc)
                    self.counters.add("spans_lost", len(segment.records))
                    logger.error(
                        "provtrace lost %d recovered span(s) of trace %s: sealing failed (%s)",
                        len(segment.records),
                        segment.trace_id,
                        type(exc).__name__,
                    )
            report(recovery, self.counters, sealed_by=self.stream_id)
            self._persist(lines)
            if not self._unspooled:
                settle(recovery)

    def _seal_one(self, item: Work, lines: list[str]) -> None:
        """Convert, judge and seal one item; an error here loses it, loudly, but never stops
        the sealer."""
        if isinstance(item, RawSegment):
            self._accounted.extend(
                format_span_id(span.context.span_id) for span in item.spans if span.context
            )
        try:
            if isinstance(item, Release):
                sealed = seal_release(item.records, item.codes, sealer=self.sealer, now_ns=now_ns())
            else:
                sealed = self._seal_segment(convert(item, self._memory, self.resource, self.recording_error))
            lines.append(self._apply(sealed))
        except Exception as exc:  # noqa: BLE001
            self.recording_error("segment", exc)
            self._lost(item, f"sealing failed ({type(exc).__name__})")

    def _seal_segment(self, segment: Segment) -> Sealed:
        if segment.lost:
            self.counters.add("spans_lost", len(segment.lost))
            logger.error(
                "provtrace lost %d span(s) of trace %s that could not be converted: %s",
                len(segment.lost),
                segment.trace_id,
                ", ".join(segment.lost),
            )
        sealed = seal_segment(
            segment,
            verdicts=self.verdicts,
            sealer=self.sealer,
            quarantine=self._quarantine,
            resource=self.resource,
            now_ns=now_ns(),
        )
        for name in sealed.failed_rules:
            logger.warning("provtrace user rule %s raised; its verdict is missing", name)
        if sealed.report is not None:
            self._report(sealed.report)
        return sealed

    def _apply(self, sealed: Sealed) -> str:
        for name, amount in sealed.counts.items():
            self.counters.add(name, amount)
        if sealed.anchor is not None:
            self._anchors.append(sealed.anchor)
        self._last_seal = time.monotonic()
        return sealed.line

    def _write_anchors(self) -> None:
        """Checkpoints of persisted seals go beside the archive, and to the TSA."""
        anchors, self._anchors = self._anchors, []
        if self.checkpoints is None:
            return
        for anchor in anchors:
            try:
                self.checkpoints.write(anchor, anchor.note.encode())
            except OSError as exc:
                self.recording_error("checkpoint file", exc)
                continue
            if self.timestamper is not None:
                self.timestamper.submit(anchor)

    def _quarantine(self, segment: Segment, violations: Sequence[Violation]) -> str:
        try:
            return self.quarantine.put(
                trace_id=segment.trace_id,
                records=segment.records,
                violations=violations,
                stream=self.stream_id,
                seal_seq=self.sealer.next_seq,
                reason=segment.reason,
            )
        except OSError as exc:
            logger.error(
                "provtrace could not quarantine trace %s (%s); forwarding it with its verdict instead",
                segment.trace_id,
                exc.strerror,
            )
            return ""

    def _report(self, report: ViolationReport) -> None:
        try:
            self.settings.violation_handler(report)
        except Exception as exc:  # noqa: BLE001 - a failing handler must not stop the pipeline
            self.counters.add("handler_errors")
            logger.warning("provtrace violation handler raised %s", type(exc).__name__)

    def _persist(self, lines: list[str]) -> None:
        """Spool ``lines``; what does not fit stays in memory, in order, for the next pass. After
        a failure they go one by one, so that a backlog larger than the free space never wedges
        (delivery frees space as the lines that fit are delivered)."""
        done = 0
        try:
            try:
                self.spool.append(lines)
                done = len(lines)
            except SpoolError:
                for line in lines:
                    self.spool.append([line])
                    done += 1
        except SpoolError as exc:
            self._unspooled = lines[done:]
            if not self._spool_problem:
                logger.error("provtrace cannot persist evidence: %s (kept in memory, retrying)", exc)
            self._spool_problem = f"spool not writable: {exc}"
            return
        self._unspooled = []
        self.progress_log.done(self._accounted)
        self._accounted = []
        self._spool_problem = ""
        self._write_anchors()
        with self._progress:
            self._progress.notify_all()

    # --- flush and shutdown -----------------------------------------------------------------

    def wait_until_delivered(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        with self._progress:
            while True:
                if self._queue.unfinished_tasks == 0 and not self._unspooled and not self.deliverer.pending():
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopped:
                    return False
                self._progress.wait(timeout=min(remaining, 0.5))

    def force_flush(self, timeout_s: float = 30.0) -> bool:
        """True when everything ended so far reached every destination: not after a segment was
        refused and moved aside (it did not reach one)."""
        self.processor.force_flush()
        return self.wait_until_delivered(timeout_s) and not self._refused()

    def _refused(self) -> bool:
        return self.counters.snapshot()["segments_refused"] > 0

    def shutdown(self, timeout_s: float = 30.0) -> bool:
        """Seal what is buffered, close the stream, deliver; True when nothing was left behind.
        Only the first call does the work. Never raises into the application: a failure is
        logged, counted, and makes the result False."""
        with self._shutdown_lock:
            if self._closing.is_set():
                return self._sealer_done.is_set() and not self._unspooled and not self.deliverer.pending()
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
        delivered = delivered and not self._refused()
        with self._progress:
            self._stopped = True
        stopped = self.deliverer.stop()
        self.progress_log.close()
        if not sealed:
            held = [item for item in list(self._queue.queue) if item is not None]
            lost = sum(len(i.spans) if isinstance(i, RawSegment) else len(i.records) for i in held)
            lost += sum(len(loads_line(line)) for line in list(self._unspooled))
            self.counters.add("spans_lost", lost)
            logger.error(
                "provtrace could not seal all evidence within %.0fs of shutdown: %d span(s) held only "
                "in memory are lost; what was sealed stays in %s for the next process to deliver",
                timeout_s,
                lost,
                self.spool.directory,
            )
            return False
        if self._unspooled:
            lost = sum(len(loads_line(line)) for line in self._unspooled)
            self.counters.add("spans_lost", lost)
            logger.error(
                "provtrace lost %d sealed span(s) at shutdown: the spool could not persist them (%s); "
                "%d bytes sealed before that are not yet delivered stay in %s",
                lost,
                self._spool_problem or "spool not writable",
                self.pending_bytes,
                self.settings.spool_dir,
            )
            self._unspooled = []
            delivered = False
        elif not delivered and self.deliverer.pending():
            logger.error(
                "provtrace shut down with %d bytes of sealed evidence not yet delivered; they stay "
                "in %s and the next provtrace process using that spool delivers them",
                self.pending_bytes,
                self.settings.spool_dir,
            )
        if not stopped:
            logger.error("provtrace delivery did not stop; its spool stays locked until the process exits")
            return delivered
        self.spool.close(remove_if_empty=True)
        self.deliverer.close_orphans()
        return delivered

    def abandon_after_fork(self) -> None:
        """In a forked child: this pipeline's threads did not survive the fork and its spool and
        buffers belong to the parent, which delivers them. Let go without touching them."""
        self._stopped = True
        self._closing.set()
        self.progress_log.abandon()
        self.spool.abandon()
        self.deliverer.abandon_orphans()
