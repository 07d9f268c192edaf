"""OTLP/JSON encoding of span records, as the OpenTelemetry Collector's file exporter writes it.

One JSON object per line with top-level ``resourceSpans``; ids in lowercase hex, 64-bit integers
as decimal strings, kind and status code as integers. The local archive, the spool, the
quarantine and the Jaeger v3 reader all use this one codec.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from provtrace.model import AttrValue, EventRecord, LinkRecord, Scalar, SpanRecord

JsonObject = dict[str, Any]


class OtlpJsonError(ValueError):
    """The input is not OTLP/JSON trace data."""


# --- encoding --------------------------------------------------------------------------------


def encode_value(value: AttrValue) -> JsonObject:
    if isinstance(value, tuple):
        return {"arrayValue": {"values": [encode_value(v) for v in value]}}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value if math.isfinite(value) else _non_finite(value)}
    return {"stringValue": value}


def _non_finite(value: float) -> str:
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def encode_attributes(attributes: Mapping[str, AttrValue]) -> list[JsonObject]:
    return [{"key": key, "value": encode_value(value)} for key, value in attributes.items()]


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
    groups: dict[object, tuple[JsonObject, dict[str, tuple[JsonObject, list[JsonObject]]]]] = {}
    for record in records:
        resource_key = tuple(sorted(record.resource.items()))
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


def dumps_line(records: Iterable[SpanRecord]) -> str:
    return json.dumps(encode_traces(records), ensure_ascii=False, separators=(",", ":")) + "\n"


# --- decoding --------------------------------------------------------------------------------


def decode_value(value: Mapping[str, Any]) -> AttrValue:
    if "stringValue" in value:
        return str(value["stringValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return _decode_double(value["doubleValue"])
    if "arrayValue" in value:
        items = (value["arrayValue"] or {}).get("values", [])
        return tuple(_scalar(decode_value(item)) for item in items)
    if "bytesValue" in value:
        return str(value["bytesValue"])
    if "kvlistValue" in value:
        pairs = (value["kvlistValue"] or {}).get("values", [])
        decoded = {p["key"]: decode_value(p.get("value", {})) for p in pairs}
        return json.dumps(decoded, sort_keys=True, separators=(",", ":"))
    return ""


def _scalar(value: AttrValue) -> Scalar:
    if isinstance(value, tuple):
        return json.dumps(list(value), separators=(",", ":"))
    return value


_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _decode_double(raw: object) -> float:
    if isinstance(raw, str):
        return _NON_FINITE[raw] if raw in _NON_FINITE else float(raw)
    if isinstance(raw, (int, float)):
        return float(raw)
    raise OtlpJsonError(f"doubleValue must be a number, got {raw!r}")


def decode_attributes(items: Iterable[Mapping[str, Any]] | None) -> dict[str, AttrValue]:
    return {item["key"]: decode_value(item.get("value") or {}) for item in items or ()}


def decode_traces(data: Mapping[str, Any]) -> Iterator[SpanRecord]:
    """Records from one OTLP ``TracesData`` / ``ExportTraceServiceRequest`` JSON object."""
    if not isinstance(data, Mapping) or not isinstance(data.get("resourceSpans", []), list):
        raise OtlpJsonError("expected an object with a 'resourceSpans' list")
    for resource_spans in data.get("resourceSpans", []):
        resource = decode_attributes((resource_spans.get("resource") or {}).get("attributes"))
        for scope_spans in resource_spans.get("scopeSpans", []) or []:
            scope = scope_spans.get("scope") or {}
            for span in scope_spans.get("spans", []) or []:
                yield _decode_span(span, resource, scope)


def _decode_span(
    span: Mapping[str, Any], resource: dict[str, AttrValue], scope: Mapping[str, Any]
) -> SpanRecord:
    try:
        status = span.get("status") or {}
        flags = int(span.get("flags", 0))
        return SpanRecord(
            trace_id=str(span["traceId"]).lower(),
            span_id=str(span["spanId"]).lower(),
            parent_span_id=str(span.get("parentSpanId", "")).lower(),
            name=str(span.get("name", "")),
            kind=int(span.get("kind", 0)),
            start_ns=int(span.get("startTimeUnixNano", 0)),
            end_ns=int(span.get("endTimeUnixNano", 0)),
            status_code=int(status.get("code", 0)),
            status_message=str(status.get("message", "")),
            attributes=decode_attributes(span.get("attributes")),
            events=tuple(
                EventRecord(
                    name=str(event.get("name", "")),
                    time_ns=int(event.get("timeUnixNano", 0)),
                    attributes=decode_attributes(event.get("attributes")),
                    dropped_attributes=int(event.get("droppedAttributesCount", 0)),
                )
                for event in span.get("events", []) or []
            ),
            links=tuple(
                LinkRecord(
                    trace_id=str(link["traceId"]).lower(),
                    span_id=str(link["spanId"]).lower(),
                    attributes=decode_attributes(link.get("attributes")),
                    trace_state=str(link.get("traceState", "")),
                    dropped_attributes=int(link.get("droppedAttributesCount", 0)),
                )
                for link in span.get("links", []) or []
            ),
            resource=resource,
            scope_name=str(scope.get("name", "")),
            scope_version=str(scope.get("version", "")),
            trace_state=str(span.get("traceState", "")),
            parent_is_remote=bool(flags & 0x200),
            dropped_attributes=int(span.get("droppedAttributesCount", 0)),
            dropped_events=int(span.get("droppedEventsCount", 0)),
            dropped_links=int(span.get("droppedLinksCount", 0)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise OtlpJsonError(f"malformed span: {exc}") from exc


def loads_line(line: str) -> list[SpanRecord]:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise OtlpJsonError(f"not JSON: {exc.msg} at column {exc.colno}") from exc
    return list(decode_traces(data))
