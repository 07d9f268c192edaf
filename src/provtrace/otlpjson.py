"""OTLP/JSON encoding of span records, as the OpenTelemetry Collector's file exporter writes it.

One JSON object per line with top-level ``resourceSpans``; ids in lowercase hex, 64-bit integers
as decimal strings, kind and status code as integers. The local archive, the spool, the
quarantine and the Jaeger v3 reader all use this one codec.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson

from provtrace import jsonshape as shape
from provtrace.model import (
    INT64_MAX,
    INT64_MIN,
    MAX_VALUE_DEPTH,
    AttrMap,
    AttrValue,
    EventRecord,
    LinkRecord,
    SpanRecord,
)

JsonObject = dict[str, Any]


class OtlpJsonError(shape.ShapeError):
    """The input is not OTLP/JSON trace data (``ShapeError`` covers every decoding failure)."""


# --- encoding --------------------------------------------------------------------------------


def encode_value(value: AttrValue) -> JsonObject:
    """One ``AnyValue``, as the Collector's file exporter writes it (empty arrays and kvlists
    without ``values``, bytes in standard base64, the empty value as ``{}``)."""
    if value is None:
        return {}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value if math.isfinite(value) else _non_finite(value)}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode("ascii")}
    if isinstance(value, tuple):
        return {"arrayValue": {"values": [encode_value(v) for v in value]} if value else {}}
    return {"kvlistValue": {"values": encode_attributes(value)} if value else {}}


def _non_finite(value: float) -> str:
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def encode_attributes(attributes: Mapping[str, AttrValue]) -> list[JsonObject]:
    return [
        {"key": key, "value": {"stringValue": value} if type(value) is str else encode_value(value)}
        for key, value in attributes.items()
    ]


def encode_span(record: SpanRecord) -> JsonObject:
    span: JsonObject = {"traceId": record.trace_id, "spanId": record.span_id}
    if record.trace_state:
        span["traceState"] = record.trace_state
    if record.parent_span_id:
        span["parentSpanId"] = record.parent_span_id
    span["name"] = record.name
    if record.kind:
        span["kind"] = record.kind
    span["startTimeUnixNano"] = str(record.start_ns)
    span["endTimeUnixNano"] = str(record.end_ns)
    if record.attributes:
        span["attributes"] = encode_attributes(record.attributes)
    if record.dropped_attributes:
        span["droppedAttributesCount"] = record.dropped_attributes
    if record.events:
        span["events"] = [
            {
                "timeUnixNano": str(event.time_ns),
                "name": event.name,
                **({"attributes": encode_attributes(event.attributes)} if event.attributes else {}),
                **({"droppedAttributesCount": event.dropped_attributes} if event.dropped_attributes else {}),
            }
            for event in record.events
        ]
    if record.dropped_events:
        span["droppedEventsCount"] = record.dropped_events
    if record.links:
        span["links"] = [_encode_link(link) for link in record.links]
    if record.dropped_links:
        span["droppedLinksCount"] = record.dropped_links
    status: JsonObject = {}
    if record.status_message:
        status["message"] = record.status_message
    if record.status_code:
        status["code"] = record.status_code
    span["status"] = status
    if record.parent_is_remote:
        span["flags"] = 0x300 | 0x01
    return span


def _encode_link(link: LinkRecord) -> JsonObject:
    out: JsonObject = {"traceId": link.trace_id, "spanId": link.span_id}
    if link.trace_state:
        out["traceState"] = link.trace_state
    if link.attributes:
        out["attributes"] = encode_attributes(link.attributes)
    if link.dropped_attributes:
        out["droppedAttributesCount"] = link.dropped_attributes
    return out


def encode_traces(records: Iterable[SpanRecord]) -> JsonObject:
    """One OTLP ``TracesData`` object, spans grouped by resource and scope in first-seen order."""
    groups: dict[str, tuple[JsonObject, dict[str, tuple[JsonObject, list[JsonObject]]]]] = {}
    keys: dict[int, tuple[object, str]] = {}  # records of a segment share one resource mapping
    for record in records:
        known = keys.get(id(record.resource))
        if known is not None and known[0] is record.resource:
            resource_key = known[1]
        else:
            # By repr: Python's equality would put resources holding 1, 1.0 and True in one group.
            resource_key = repr(sorted(record.resource.items()))
            keys[id(record.resource)] = (record.resource, resource_key)
        if resource_key not in groups:
            groups[resource_key] = ({"attributes": encode_attributes(record.resource)}, {})
        scopes = groups[resource_key][1]
        scope_key = f"{record.scope_name}\0{record.scope_version}"
        if scope_key not in scopes:
            scope: JsonObject = {}
            if record.scope_name:
                scope["name"] = record.scope_name
            if record.scope_version:
                scope["version"] = record.scope_version
            scopes[scope_key] = (scope, [])
        scopes[scope_key][1].append(encode_span(record))
    return {
        "resourceSpans": [
            {
                "resource": resource,
                "scopeSpans": [{"scope": scope, "spans": spans} for scope, spans in scopes.values()],
            }
            for resource, scopes in groups.values()
        ]
    }


# Characters that str.splitlines() and many line readers treat as line ends. The encoders leave
# them raw; outside strings their output is ASCII, so escaping them is exact. ``str.replace``
# scans in C at memchr speed, where ``str.translate`` of a non-ASCII text (every signed line: its
# checkpoint note holds an em dash) walks it character by character in Python's slow path.
_LINE_BREAKS = (("\u2028", "\\u2028"), ("\u2029", "\\u2029"), ("\u0085", "\\u0085"))


def dumps_line(records: Iterable[SpanRecord]) -> str:
    """One OTLP/JSON line ending in its only line break: every other one is escaped."""
    traces = encode_traces(records)
    try:
        text = orjson.dumps(traces).decode("utf-8")
    except orjson.JSONEncodeError:  # text orjson refuses (lone surrogates) keeps the old form
        text = json.dumps(traces, ensure_ascii=False, separators=(",", ":"))
    if not text.isascii():
        for raw, escaped in _LINE_BREAKS:
            if raw in text:
                text = text.replace(raw, escaped)
    return text + "\n"


# --- decoding --------------------------------------------------------------------------------
#
# Input is hostile: every field is checked for its JSON type and range and nesting is bounded, so
# whatever a line holds, decoding it gives records or a ShapeError naming the field.

_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
HEX_ID = {width: re.compile(f"[0-9a-fA-F]{{{width}}}") for width in (16, 32)}
_VALUE_KINDS = (
    "stringValue",
    "boolValue",
    "intValue",
    "doubleValue",
    "bytesValue",
    "arrayValue",
    "kvlistValue",
)
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1


def _id(value: object, what: str, width: int, *, optional: bool = False) -> str:
    text = shape.text(value, what)
    if optional and not text:
        return ""
    if not HEX_ID[width].fullmatch(text):
        raise OtlpJsonError(f"{what} must be {width} hexadecimal characters")
    return text.lower()


def decode_value(value: object, depth: int = 0) -> AttrValue:
    """One ``AnyValue`` object; ``{}`` (or only unknown fields) is the empty value. A value naming
    two kinds is refused: readers could disagree on which one it is."""
    if type(value) is dict and len(value) == 1:  # the common case, decided without the checks
        raw = value.get("stringValue")
        if type(raw) is str:
            return raw
    value = shape.obj(value, "attribute value")
    kinds = [kind for kind in _VALUE_KINDS if kind in value]
    if len(kinds) > 1:
        raise OtlpJsonError(f"an attribute value holds both {kinds[0]} and {kinds[1]}")
    if not kinds:
        return None
    kind = kinds[0]
    raw = value[kind]
    if kind == "stringValue":
        return shape.text(raw, kind)
    if kind == "boolValue":
        return shape.boolean(raw, kind)
    if kind == "intValue":
        return shape.integer(raw, kind, INT64_MIN, INT64_MAX)
    if kind == "doubleValue":
        return _decode_double(raw)
    if kind == "bytesValue":
        return shape.base64_bytes(shape.text(raw, kind), kind)
    if depth >= MAX_VALUE_DEPTH:
        raise OtlpJsonError(f"an attribute value is nested deeper than {MAX_VALUE_DEPTH} levels")
    values = shape.items(shape.obj(raw, kind).get("values"), f"{kind}.values")
    if kind == "arrayValue":
        return tuple(decode_value(item, depth + 1) for item in values)
    return AttrMap(_decode_pairs(values, depth + 1))


def _decode_double(raw: object) -> float:
    if isinstance(raw, float):
        return raw
    if isinstance(raw, int) and not isinstance(raw, bool):
        try:
            return float(raw)
        except OverflowError as exc:
            raise OtlpJsonError("doubleValue is out of range") from exc
    if isinstance(raw, str):
        if raw in _NON_FINITE:
            return _NON_FINITE[raw]
        if len(raw) <= 400 and _NUMBER.fullmatch(raw):
            return float(raw)
    raise OtlpJsonError(f"doubleValue must be a number, got {shape.kind(raw)}")


def _decode_pairs(items: list[Any], depth: int) -> dict[str, AttrValue]:
    """Key-value pairs; a key that occurs twice is refused (readers could disagree on its value)."""
    out: dict[str, AttrValue] = {}
    for item in items:
        pair = item if type(item) is dict else shape.obj(item, "attribute")
        key = pair.get("key")
        if type(key) is not str:
            key = shape.text(key, "attribute key")
        if key in out:
            raise OtlpJsonError("an attribute key occurs twice")
        out[key] = decode_value(pair.get("value"), depth)
    return out


def decode_attributes(items: object) -> dict[str, AttrValue]:
    return _decode_pairs(shape.items(items, "attributes"), 0)


def decode_traces(data: object) -> Iterator[SpanRecord]:
    """Records from one OTLP ``TracesData`` / ``ExportTraceServiceRequest`` JSON object."""
    if not isinstance(data, dict) or not isinstance(data.get("resourceSpans", []), list):
        raise OtlpJsonError("expected an object with a 'resourceSpans' list")
    for resource_spans in shape.items(data.get("resourceSpans"), "resourceSpans"):
        group = shape.obj(resource_spans, "resourceSpans item")
        resource = decode_attributes(shape.obj(group.get("resource"), "resource").get("attributes"))
        for scope_spans in shape.items(group.get("scopeSpans"), "scopeSpans"):
            scoped = shape.obj(scope_spans, "scopeSpans item")
            scope = shape.obj(scoped.get("scope"), "scope")
            for span in shape.items(scoped.get("spans"), "spans"):
                yield _decode_span(shape.obj(span, "span"), resource, scope)


def _decode_span(
    span: Mapping[str, Any], resource: dict[str, AttrValue], scope: Mapping[str, Any]
) -> SpanRecord:
    status = shape.obj(span.get("status"), "status")
    flags = shape.integer(span.get("flags"), "flags", 0, UINT32_MAX)
    return SpanRecord(
        trace_id=_id(span.get("traceId"), "traceId", 32),
        span_id=_id(span.get("spanId"), "spanId", 16),
        parent_span_id=_id(span.get("parentSpanId"), "parentSpanId", 16, optional=True),
        name=shape.text(span.get("name"), "name"),
        kind=shape.integer(span.get("kind"), "kind", 0, 5),
        start_ns=shape.integer(span.get("startTimeUnixNano"), "startTimeUnixNano", 0, UINT64_MAX),
        end_ns=shape.integer(span.get("endTimeUnixNano"), "endTimeUnixNano", 0, UINT64_MAX),
        status_code=shape.integer(status.get("code"), "status.code", 0, 2),
        status_message=shape.text(status.get("message"), "status.message"),
        attributes=decode_attributes(span.get("attributes")),
        events=tuple(_decode_event(event) for event in shape.items(span.get("events"), "events")),
        links=tuple(_decode_link(link) for link in shape.items(span.get("links"), "links")),
        resource=resource,
        scope_name=shape.text(scope.get("name"), "scope.name"),
        scope_version=shape.text(scope.get("version"), "scope.version"),
        trace_state=shape.text(span.get("traceState"), "traceState"),
        parent_is_remote=bool(flags & 0x200),
        dropped_attributes=shape.integer(
            span.get("droppedAttributesCount"), "droppedAttributesCount", 0, UINT32_MAX
        ),
        dropped_events=shape.integer(span.get("droppedEventsCount"), "droppedEventsCount", 0, UINT32_MAX),
        dropped_links=shape.integer(span.get("droppedLinksCount"), "droppedLinksCount", 0, UINT32_MAX),
    )


def _decode_event(item: object) -> EventRecord:
    event = shape.obj(item, "event")
    return EventRecord(
        name=shape.text(event.get("name"), "event name"),
        time_ns=shape.integer(event.get("timeUnixNano"), "event timeUnixNano", 0, UINT64_MAX),
        attributes=decode_attributes(event.get("attributes")),
        dropped_attributes=shape.integer(
            event.get("droppedAttributesCount"), "event droppedAttributesCount", 0, UINT32_MAX
        ),
    )


def _decode_link(item: object) -> LinkRecord:
    link = shape.obj(item, "link")
    return LinkRecord(
        trace_id=_id(link.get("traceId"), "link traceId", 32),
        span_id=_id(link.get("spanId"), "link spanId", 16),
        attributes=decode_attributes(link.get("attributes")),
        trace_state=shape.text(link.get("traceState"), "link traceState"),
        dropped_attributes=shape.integer(
            link.get("droppedAttributesCount"), "link droppedAttributesCount", 0, UINT32_MAX
        ),
    )


def loads_line(line: str | bytes) -> list[SpanRecord]:
    """The records of one OTLP/JSON line (of the archive or the spool); any other input is a
    ``ShapeError``."""
    return list(decode_traces(shape.parse(line, "the line")))
