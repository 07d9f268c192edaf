"""Delivery to an OpenTelemetry Collector over OTLP/HTTP, with the upstream exporter.

Records are turned back into SDK ``ReadableSpan`` s so that the stock exporter encodes them; what
arrives is exactly what was sealed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TypeVar

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags, TraceState
from opentelemetry.trace.status import Status, StatusCode

from provtrace.export.sink import SinkError
from provtrace.model import SpanRecord
from provtrace.otlpjson import loads_line
from provtrace.records import SPAN_KINDS, STATUS_CODES

T = TypeVar("T")
_KIND = {number: kind for kind, number in SPAN_KINDS.items()}
_STATUS = {number: code for code, number in STATUS_CODES.items()}


def _context(trace_id: str, span_id: str, *, remote: bool, trace_state: str = "") -> SpanContext:
    state = TraceState.from_header([trace_state]) if trace_state else None
    return SpanContext(
        int(trace_id, 16),
        int(span_id, 16),
        is_remote=remote,
        trace_flags=TraceFlags(1),
        trace_state=state,
    )


def _bounded(attributes: Mapping[str, object], dropped: int) -> BoundedAttributes:
    """Attributes that report ``dropped`` to the exporter, as the span's originally did."""
    bounded = BoundedAttributes(attributes=dict(attributes), immutable=False)  # type: ignore[arg-type]
    bounded.dropped = dropped
    return bounded


def _listed(items: Sequence[T], dropped: int) -> BoundedList[T]:
    listed = BoundedList.from_seq(None, items)
    listed.dropped = dropped
    return listed


def to_readable_span(record: SpanRecord) -> ReadableSpan:
    code = _STATUS.get(record.status_code, StatusCode.UNSET)
    parent = (
        _context(record.trace_id, record.parent_span_id, remote=record.parent_is_remote)
        if record.parent_span_id
        else None
    )
    return ReadableSpan(
        name=record.name,
        context=_context(record.trace_id, record.span_id, remote=False, trace_state=record.trace_state),
        parent=parent,
        resource=Resource(dict(record.resource)),
        attributes=_bounded(record.attributes, record.dropped_attributes),
        events=_listed(
            [Event(e.name, _bounded(e.attributes, e.dropped_attributes), e.time_ns) for e in record.events],
            record.dropped_events,
        ),
        links=_listed(
            [
                Link(
                    _context(link.trace_id, link.span_id, remote=False, trace_state=link.trace_state),
                    _bounded(link.attributes, link.dropped_attributes),
                )
                for link in record.links
            ],
            record.dropped_links,
        ),
        kind=_KIND.get(record.kind, SpanKind.INTERNAL),
        status=Status(
            code,
            record.status_message if code is StatusCode.ERROR and record.status_message else None,
        ),
        start_time=record.start_ns,
        end_time=record.end_ns,
        instrumentation_scope=InstrumentationScope(record.scope_name, record.scope_version or None),
    )


MAX_REQUEST_BYTES = 4 * 1024 * 1024  # well under the collector's default 20 MiB request limit


def request_chunks(lines: Sequence[str], max_bytes: int) -> Iterator[list[SpanRecord]]:
    """The records of ``lines`` in groups of at most about ``max_bytes`` (OTLP/JSON size)."""
    chunk: list[SpanRecord] = []
    size = 0.0
    for line in lines:
        records = loads_line(line)
        each = len(line) / max(1, len(records))
        for record in records:
            if chunk and size + each > max_bytes:
                yield chunk
                chunk, size = [], 0.0
            chunk.append(record)
            size += each
    if chunk:
        yield chunk


class OtlpSink:
    name = "otlp"

    def __init__(
        self,
        endpoint: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 10.0,
        max_request_bytes: int = MAX_REQUEST_BYTES,
    ) -> None:
        self.endpoint = endpoint
        self._max_request_bytes = max_request_bytes
        self._exporter = OTLPSpanExporter(endpoint=endpoint, headers=dict(headers or {}), timeout=timeout_s)

    def send(self, lines: Sequence[str]) -> None:
        """Export in requests the collector accepts; a huge segment is split across requests (its
        seal still covers every span). A failure fails the whole batch, which is then retried:
        delivery is at least once."""
        for chunk in request_chunks(lines, self._max_request_bytes):
            spans = [to_readable_span(record) for record in chunk]
            if self._exporter.export(spans) is not SpanExportResult.SUCCESS:
                raise SinkError(f"the collector at {self.endpoint} did not accept {len(spans)} spans")

    def close(self) -> None:
        self._exporter.shutdown()  # type: ignore[no-untyped-call]
