"""Ended spans become records: the exported form, scrubbed of tainted secret values.

Conversion runs on the sealer thread, off the agent's threads. Every string is made valid UTF-8
and every tainted secret value is replaced, so nothing downstream (spool, archive, quarantine,
exporter) ever holds one; the fields where that happened are reported for ``SECRET-LEAK``.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Final

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode, format_span_id, format_trace_id

from provtrace import conventions as c
from provtrace.content import SECRETS, valid_text
from provtrace.credentials import redact_credentials
from provtrace.model import AttrMap, AttrValue, EventRecord, LinkRecord, SpanRecord, freeze_attributes
from provtrace.processor import RawSegment

# SDK enums to OTLP numbers (and back, for the exporter).
SPAN_KINDS = {
    SpanKind.INTERNAL: 1,
    SpanKind.SERVER: 2,
    SpanKind.CLIENT: 3,
    SpanKind.PRODUCER: 4,
    SpanKind.CONSUMER: 5,
}
STATUS_CODES = {StatusCode.UNSET: 0, StatusCode.OK: 1, StatusCode.ERROR: 2}


def to_micros(ns: int) -> int:
    """Exported times are whole microseconds: the precision every Jaeger API returns, so a digest
    computed here can be recomputed from any of them."""
    return ns - ns % 1000


MIN_DURATION_NS = 1000


def end_after(start_ns: int, end_ns: int) -> int:
    """Exported spans last at least a microsecond: Jaeger rewrites the end of a zero-length span
    when it stores it (and notes a warning), which would break its digest."""
    return max(end_ns, start_ns + MIN_DURATION_NS)


@dataclasses.dataclass(frozen=True)
class Segment:
    """Records of one trace flushed together, with why, what was still open, where secrets were
    removed, and the provenance spans of the same trace sealed earlier (for links and parents)."""

    trace_id: str
    records: tuple[SpanRecord, ...]
    reason: str
    open_span_ids: tuple[str, ...] = ()
    leaks: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    losses: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)  # see ``losses``
    earlier: Mapping[str, SpanRecord] = dataclasses.field(default_factory=dict)
    known_ids: frozenset[str] = frozenset()  # every span id of the trace sealed earlier
    lost: tuple[str, ...] = ()  # span ids that could not be converted
    seal_attributes: Mapping[str, AttrValue] = dataclasses.field(default_factory=dict)  # extra, on its seal

    @property
    def root_span_id(self) -> str:
        """The local root of the segment (for placing its seal), or empty."""
        ids = {r.span_id for r in self.records}
        for record in self.records:
            if record.parent_span_id not in ids:
                return record.span_id
        return ""


# Free text that an instrumented library or a peer writes (an error message, a tool name a model
# chose): credential shapes are removed from it at export in every capture mode, as from content.
FREE_TEXT_ATTRIBUTES: Final = frozenset(
    {
        "exception.message",
        "exception.stacktrace",
        c.GEN_AI_TOOL_NAME,
        c.GEN_AI_PROMPT_NAME,
        c.MCP_RESOURCE_URI,
        "url.full",
    }
)


class _Copier:
    """Copies span data as is (the fast path, for spans holding only ASCII text and no secret),
    except credential shapes in free text."""

    def __init__(self) -> None:
        self.fields: list[str] = []
        self.dropped: list[str] = []  # attributes OTLP cannot carry, counted as dropped

    def text(self, value: str, field: str, *, structural: bool = False) -> str:
        return value

    def free_text(self, value: str, field: str) -> str:
        """A name, a status or error message: whoever wrote it, credential shapes go."""
        return redact_credentials(self.text(value, field))

    def attributes(self, attributes: Mapping[str, object] | None, where: str) -> dict[str, AttrValue]:
        out = freeze_attributes(attributes, dropped=self.dropped)
        for key in FREE_TEXT_ATTRIBUTES.intersection(out):
            value = out[key]
            if isinstance(value, str):
                out[key] = redact_credentials(value)
        return out


class _Scrubber(_Copier):
    """Copies span data, making text valid UTF-8 and replacing tainted secret values, and notes the
    fields where a secret was found."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets = bool(SECRETS)

    def text(self, value: str, field: str, *, structural: bool = False) -> str:
        if not value.isascii():
            value = valid_text(value)
        if self._secrets and SECRETS.contains_secret(value, structural=structural):
            self.fields.append(field)
            return SECRETS.scrub(value, structural=structural)
        return value

    def value(self, value: AttrValue, field: str, structural: bool) -> AttrValue:
        if isinstance(value, str):
            return self.text(value, field, structural=structural)
        if isinstance(value, tuple):
            return tuple(self.value(v, field, structural) for v in value)
        if isinstance(value, AttrMap):
            return AttrMap(self._pair(key, item, field, structural) for key, item in value.items())
        if isinstance(value, bytes):
            return self._bytes(value, field, structural)
        if (
            value is not None
            and not isinstance(value, bool)
            and self._secrets
            and SECRETS.contains_secret(str(value), structural=structural)
        ):
            self.fields.append(field)  # a numeric secret (a PIN, an account number)
            return SECRETS.scrub(str(value), structural=structural)
        return value

    def _pair(self, key: str, value: AttrValue, field: str, structural: bool) -> tuple[str, AttrValue]:
        clean_key = self.text(key, f"{field}.key")
        return clean_key, self.value(value, f"{field}.{clean_key}", structural)

    def _bytes(self, value: bytes, field: str, structural: bool) -> bytes:
        """Bytes stay bytes: a secret in their UTF-8 text is replaced, other bytes are kept as they
        were (surrogate escapes carry them through the text)."""
        text = value.decode("utf-8", errors="surrogateescape")
        if not (self._secrets and SECRETS.contains_secret(text, structural=structural)):
            return value
        self.fields.append(field)
        return SECRETS.scrub(text, structural=structural).encode("utf-8", errors="surrogateescape")

    def attributes(self, attributes: Mapping[str, object] | None, where: str) -> dict[str, AttrValue]:
        """Field names are built from the scrubbed key: they travel in violation details. Short
        secrets do not scrub structural fields (ids, digests, times, enums)."""
        out: dict[str, AttrValue] = {}
        for key, value in freeze_attributes(attributes, dropped=self.dropped).items():
            clean_key = self.text(key, f"{where}key")
            if key in FREE_TEXT_ATTRIBUTES and isinstance(value, str):
                out[clean_key] = self.free_text(value, f"{where}{clean_key}")
            else:
                structural = key in c.STRUCTURAL_ATTRIBUTES
                out[clean_key] = self.value(value, f"{where}{clean_key}", structural)
        return out


def _texts(record: SpanRecord) -> list[str]:
    """Every string of a record (numbers as text too), to test all of them at once."""
    texts = [record.name, record.status_message, record.scope_name, record.scope_version, record.trace_state]
    texts.extend(link.trace_state for link in record.links)
    texts.extend(str(value) for value in record.resource.values())
    groups = [
        record.attributes,
        *(e.attributes for e in record.events),
        *(li.attributes for li in record.links),
    ]
    texts.extend(e.name for e in record.events)
    for attributes in groups:
        texts.extend(attributes)  # the keys; their order does not matter to the checks
        for value in attributes.values():
            if type(value) is str:
                texts.append(value)
            else:
                texts.extend(_value_texts(value))
    return texts


def _value_texts(value: AttrValue) -> Iterator[str]:
    """The strings of one value: keys and leaves of arrays and kvlists, bytes as text (their
    non-UTF-8 bytes as escapes, which are not ASCII: they take the scrubbing path)."""
    if isinstance(value, tuple):
        for item in value:
            yield from _value_texts(item)
    elif isinstance(value, AttrMap):
        for key, item in value.items():
            yield key
            yield from _value_texts(item)
    elif isinstance(value, bytes):
        yield value.decode("utf-8", errors="surrogateescape")
    elif value is not None:
        yield str(value)


def _length_limit(attributes: object) -> int | None:
    """The value-length limit the SDK applied to a span's, event's or link's attributes."""
    return attributes.max_value_len if isinstance(attributes, BoundedAttributes) else None


def _reaches(value: object, limit: int) -> bool:
    """Whether any string in an attribute value is as long as the limit (so it may have been cut)."""
    if isinstance(value, str):
        return len(value) >= limit
    if isinstance(value, Mapping):
        return any(_reaches(v, limit) for v in value.values())
    if isinstance(value, (tuple, list)):
        return any(_reaches(v, limit) for v in value)
    return False


def _lost_in(attributes: object, dropped: int, where: str) -> list[str]:
    found = [f"{where}: {dropped} attribute(s) dropped"] if dropped else []
    limit = _length_limit(attributes)
    if limit is not None and isinstance(attributes, Mapping):
        cut = sorted(str(k) for k, v in attributes.items() if _reaches(v, limit))
        found += [f"{where}{key}: value cut at {limit} characters" for key in cut]
    return found


def losses(span: ReadableSpan) -> list[str]:
    """What the tracer provider's limits took from a span beyond the counts the record carries:
    attributes dropped from its events and links, and values its length limit may have cut (the
    application's provider, or ``OTEL_*_LIMIT`` variables). The SDK counts drops but not cuts, so
    a value exactly as long as the limit is reported too: a false alarm costs less than a digest
    cut short."""
    found = _lost_in(getattr(span, "_attributes", None), 0, "")  # counts travel in the record
    for i, event in enumerate(span.events):
        found += _lost_in(event.attributes, event.dropped_attributes, f"events[{i}].")
    for i, link in enumerate(span.links):
        found += _lost_in(link.attributes, link.dropped_attributes, f"links[{i}].")
    return found


def to_record(
    span: ReadableSpan, resource_overrides: Mapping[str, AttrValue]
) -> tuple[SpanRecord, list[str]]:
    """The exported form of an ended span, and the fields from which secrets were removed."""
    record = _build(span, resource_overrides, _Copier())
    joined = "\x00".join(_texts(record))
    if joined.isascii() and not SECRETS.contains_secret(joined):
        return record, []
    scrubber = _Scrubber()
    return _build(span, resource_overrides, scrubber), scrubber.fields


def clean_name(name: str) -> str:
    """A span name as a record would carry it: valid UTF-8, no secret value, no credential."""
    return _Scrubber().free_text(name, "name")


@dataclasses.dataclass(frozen=True)
class _Resource:
    sdk: object
    overrides: object
    tainted: int  # how many forms were tainted when it was scrubbed: new secrets mean scrub again
    attributes: dict[str, AttrValue]
    dropped: int  # attributes OTLP could not carry
    leaked: tuple[str, ...]  # fields a secret was removed from


_resources: dict[tuple[int, int], _Resource] = {}


def _resource(span: ReadableSpan, overrides: Mapping[str, AttrValue]) -> _Resource:
    """One shared (read-only) resource mapping per SDK resource and set of overrides, scrubbed of
    the secrets tainted so far. The cache holds both objects, so their ids cannot be reused while
    an entry refers to them."""
    key = (id(span.resource), id(overrides))
    cached = _resources.get(key)
    if (
        cached is None
        or cached.sdk is not span.resource
        or cached.overrides is not overrides
        or cached.tainted != len(SECRETS)
    ):
        if len(_resources) > 64:
            _resources.clear()
        dropped: list[str] = []
        scrubber = _Scrubber()
        merged = {
            key: scrubber.value(value, f"resource.{key}", key in c.STRUCTURAL_ATTRIBUTES)
            for key, value in {
                **freeze_attributes(span.resource.attributes, dropped=dropped),
                **overrides,
            }.items()
        }
        cached = _Resource(
            span.resource, overrides, len(SECRETS), merged, len(dropped), tuple(scrubber.fields)
        )
        _resources[key] = cached
    return cached


def _with_inversion(attributes: dict[str, AttrValue], start: int, end: int) -> dict[str, AttrValue]:
    """A span the wall clock ended before it started keeps its start, lasts a microsecond (what
    Jaeger stores unchanged), and says by how much its end was before its start: for verify."""
    if end < start:
        attributes[c.CLOCK_END_BEFORE_START] = start - end
    return attributes


def _build(span: ReadableSpan, resource_overrides: Mapping[str, AttrValue], clean: _Copier) -> SpanRecord:
    ctx = span.get_span_context()
    assert ctx is not None
    parent = span.parent
    resource = _resource(span, resource_overrides)
    clean.fields.extend(resource.leaked)
    scope = span.instrumentation_scope
    status_message = span.status.description or ""
    start = to_micros(span.start_time or 0)
    end = to_micros(span.end_time) if span.end_time is not None else start
    return SpanRecord(
        trace_id=format_trace_id(ctx.trace_id),
        span_id=format_span_id(ctx.span_id),
        parent_span_id=format_span_id(parent.span_id) if parent is not None else "",
        parent_is_remote=bool(parent is not None and parent.is_remote),
        name=clean.free_text(span.name, "name"),
        kind=SPAN_KINDS.get(span.kind, 1),
        start_ns=start,
        end_ns=end_after(start, end),
        status_code=STATUS_CODES.get(span.status.status_code, 0),
        status_message=clean.free_text(status_message, "status.message") if status_message else "",
        attributes=_with_inversion(clean.attributes(span.attributes, ""), start, end),
        events=tuple(
            EventRecord(
                name=clean.free_text(event.name, f"events[{i}].name"),
                time_ns=to_micros(event.timestamp or 0),
                attributes=clean.attributes(event.attributes, f"events[{i}]."),
                dropped_attributes=event.dropped_attributes,
            )
            for i, event in enumerate(span.events)
        ),
        links=tuple(
            LinkRecord(
                trace_id=format_trace_id(link.context.trace_id),
                span_id=format_span_id(link.context.span_id),
                attributes=clean.attributes(link.attributes, f"links[{i}]."),
                trace_state=clean.text(link.context.trace_state.to_header(), f"links[{i}].trace_state")
                if link.context.trace_state
                else "",
                dropped_attributes=link.dropped_attributes,
            )
            for i, link in enumerate(span.links)
        ),
        resource=resource.attributes,
        scope_name=clean.text(scope.name, "scope.name") if scope else "",
        scope_version=clean.text(scope.version or "", "scope.version") if scope else "",
        trace_state=clean.text(ctx.trace_state.to_header(), "trace_state") if ctx.trace_state else "",
        dropped_attributes=span.dropped_attributes + resource.dropped + len(clean.dropped),
        dropped_events=span.dropped_events,
        dropped_links=span.dropped_links,
    )


@dataclasses.dataclass
class _Remembered:
    steps: dict[str, SpanRecord] = dataclasses.field(default_factory=dict)
    span_ids: set[str] = dataclasses.field(default_factory=set)


class TraceMemory:
    """What recently sealed segments of each trace held, so a later segment of the same trace
    (stragglers, follow-ups) can resolve its parents (any span) and links (provenance steps).
    Bounded; the oldest traces are forgotten first. Used by the sealer thread only."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._traces: collections.OrderedDict[str, _Remembered] = collections.OrderedDict()

    def earlier(self, trace_id: str) -> tuple[dict[str, SpanRecord], frozenset[str]]:
        known = self._traces.get(trace_id)
        return (dict(known.steps), frozenset(known.span_ids)) if known else ({}, frozenset())

    def remember(self, trace_id: str, records: Iterable[SpanRecord]) -> None:
        known = self._traces.setdefault(trace_id, _Remembered())
        for record in records:
            known.span_ids.add(record.span_id)
            if record.step is not None:
                known.steps[record.span_id] = record
        self._traces.move_to_end(trace_id)
        while len(self._traces) > self._capacity:
            self._traces.popitem(last=False)


def convert(
    raw: RawSegment,
    memory: TraceMemory,
    resource_overrides: Mapping[str, AttrValue],
    on_error: Callable[[str, BaseException], None],
) -> Segment:
    """The records of a raw segment; a span that cannot be converted is reported, not hidden."""
    records: list[SpanRecord] = []
    leaks: dict[str, tuple[str, ...]] = {}
    limited: dict[str, tuple[str, ...]] = {}
    lost: list[str] = []
    for span in raw.spans:
        try:
            record, leaked = to_record(span, resource_overrides)
            taken = losses(span)
        except Exception as exc:  # noqa: BLE001 - one bad span must not stop the segment
            on_error("span conversion", exc)
            lost.append(format_span_id(span.context.span_id) if span.context else "?")
            continue
        records.append(record)
        if leaked:
            leaks[record.span_id] = tuple(leaked)
        if taken:
            limited[record.span_id] = tuple(taken)
    trace_id = format_trace_id(raw.trace_id)
    earlier, known_ids = memory.earlier(trace_id)
    memory.remember(trace_id, records)
    return Segment(
        trace_id=trace_id,
        records=tuple(records),
        reason=raw.reason,
        open_span_ids=tuple(format_span_id(i) for i in raw.open_span_ids),
        leaks=leaks,
        losses=limited,
        earlier=earlier,
        known_ids=known_ids,
        lost=tuple(lost),
    )
