"""Checkpoints beside the archive, and their RFC 3161 time-stamps, off the sealer's thread.

Each signed checkpoint is written to ``<checkpoint_dir>/<stream>/<seq>.checkpoint`` (the C2SP
note, as auditors collect it). With a TSA configured, the :class:`Timestamper` thread asks for a
token per checkpoint, stores it beside the note as ``<seq>.tsr`` (a DER TimeStampResp, readable
by ``openssl ts -reply -in``) and hands back a ``provenance.timestamp`` span for the sealer to
export. A TSA that is slow or down never holds up sealing: its errors are counted and logged,
and when requests pile up the oldest are skipped (a later time-stamped checkpoint covers every
earlier one, through the chain).
"""

from __future__ import annotations

import base64
import collections
import logging
import os
import threading
from pathlib import Path

from provtrace import conventions as c
from provtrace.counters import Counters
from provtrace.integrity import random_span_id
from provtrace.model import AttrValue, SpanRecord
from provtrace.private import FILE_MODE, make_dirs
from provtrace.records import end_after
from provtrace.sealing import Anchor
from provtrace.spool import file_safe
from provtrace.timestamp import TimestampError, request_timestamp

logger = logging.getLogger("provtrace")

MAX_PENDING = 1000


class CheckpointFiles:
    def __init__(self, directory: Path, *, fsync: bool = True) -> None:
        self.directory = directory
        self._fsync = fsync

    def path(self, anchor: Anchor, suffix: str = ".checkpoint") -> Path:
        return self.directory / file_safe(anchor.stream) / f"{anchor.seq:010d}{suffix}"

    def write(self, anchor: Anchor, data: bytes, suffix: str = ".checkpoint") -> Path:
        path = self.path(anchor, suffix)
        make_dirs(path.parent)
        temporary = path.with_suffix(suffix + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        try:
            os.write(fd, data)
            if self._fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
        return path


class Timestamper:
    """One thread, one request at a time, to one TSA."""

    def __init__(
        self,
        url: str,
        files: CheckpointFiles,
        counters: Counters,
        resource: dict[str, AttrValue],
        *,
        timeout_s: float = 10.0,
    ) -> None:
        self.url = url
        self._files = files
        self._counters = counters
        self._resource = resource
        self._timeout_s = timeout_s
        self._pending: collections.deque[Anchor] = collections.deque()
        self._ready: list[SpanRecord] = []
        self._busy = False
        self._stopping = False
        self._condition = threading.Condition()
        self._warned = False
        self._thread = threading.Thread(target=self._run, name="provtrace-timestamper", daemon=True)
        self._thread.start()

    def submit(self, anchor: Anchor) -> None:
        with self._condition:
            if len(self._pending) >= MAX_PENDING:
                self._pending.popleft()
                self._counters.add("timestamp_errors")
            self._pending.append(anchor)
            self._condition.notify_all()

    def take_ready(self) -> list[SpanRecord]:
        with self._condition:
            ready, self._ready = self._ready, []
        return ready

    def drain(self, timeout_s: float) -> list[SpanRecord]:
        """Wait (bounded) until every submitted checkpoint was stamped or failed, then stop."""
        with self._condition:
            self._condition.wait_for(lambda: not self._pending and not self._busy, timeout=timeout_s)
            self._stopping = True
            self._condition.notify_all()
        return self.take_ready()

    def _run(self) -> None:
        from provtrace.clock import now_ns
        from provtrace.tracing import suppress_instrumentation

        suppress_instrumentation()
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._pending or self._stopping)
                if self._stopping:
                    return
                anchor = self._pending.popleft()
                self._busy = True
            try:
                token = request_timestamp(self.url, anchor.note.encode(), timeout_s=self._timeout_s)
                self._files.write(anchor, token, ".tsr")
                span = self._span(anchor, token, now_ns())
                self._counters.add("timestamps")
            except (TimestampError, OSError) as exc:
                span = None
                self._counters.add("timestamp_errors")
                if not self._warned:
                    self._warned = True
                    logger.warning("provtrace could not time-stamp checkpoint #%d: %s", anchor.seq, exc)
            with self._condition:
                if span is not None:
                    self._ready.append(span)
                self._busy = False
                self._condition.notify_all()

    def _span(self, anchor: Anchor, token: bytes, now: int) -> SpanRecord:
        return SpanRecord(
            trace_id=anchor.trace_id,
            span_id=random_span_id(),
            parent_span_id=anchor.span_id,
            name=c.TIMESTAMP_SPAN_NAME,
            start_ns=now,
            end_ns=end_after(now, now),
            attributes={c.TIMESTAMP_TOKEN: base64.b64encode(token).decode("ascii")},
            resource=self._resource,
            scope_name=c.INSTRUMENTATION_NAME,
        )
