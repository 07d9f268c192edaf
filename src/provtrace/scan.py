"""Reading a whole archive for ``verify --stream``: span digests straight from OTLP/JSON.

Decoding every span into a :class:`~provtrace.model.SpanRecord` and then building its view is
most of the cost of verifying a stream. Here each span's canonical view is built directly from
the parsed JSON, for the well-formed shapes the archive writer produces (each field of the
expected JSON type); any other shape is decoded the reference way (``otlpjson`` then
``spanview``), so the digest is the same by construction. Seals and anchors are decoded in full:
the checks need their fields. The garbage collector is paused while reading (the parsed lines
hold no reference cycles), which halves the time on large archives.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import rfc8785

from provtrace import conventions as c
from provtrace.model import SpanRecord
from provtrace.otlpjson import decode_traces
from provtrace.spanview import span_digest

_DIGITS = re.compile(r"-?[0-9]+")
_MAX_SAFE_INT = 2**53 - 1
_FULL = (c.SEAL_SPAN_NAME, c.CHECKPOINT_SPAN_NAME, c.TIMESTAMP_SPAN_NAME)


class _Shape(Exception):
    """Not one of the shapes the fast path handles."""


@dataclasses.dataclass(frozen=True)
class Entry:
    """A span that seals cover, as verification needs it."""

    trace_id: str
    span_id: str
    name: str
    digest: str


@dataclasses.dataclass
class Scan:
    entries: list[Entry] = dataclasses.field(default_factory=list)
    records: list[SpanRecord] = dataclasses.field(default_factory=list)  # seals and anchors
    order: list[str] = dataclasses.field(default_factory=list)  # seal span ids in stored order
    conflicts: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    unreadable: list[str] = dataclasses.field(default_factory=list)


@contextmanager
def gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def scan_files(files: Sequence[Path], *, on_seal: Callable[[SpanRecord], object] | None = None) -> Scan:
    """Every span of the files, deduplicated; ``on_seal`` sees each seal as soon as it is read
    (so its signature check can start while the rest is still being read)."""
    scan = Scan()
    seen_entries: dict[tuple[str, str], str] = {}
    seen_records: dict[tuple[str, str], SpanRecord] = {}
    with gc_paused():
        for path in files:
            for number, line in enumerate(path.read_bytes().splitlines(), 1):
                if line.strip():
                    _scan_line(path, number, line, scan, seen_entries, seen_records, on_seal)
    return scan


def _scan_line(
    path: Path,
    number: int,
    line: bytes,
    scan: Scan,
    seen_entries: dict[tuple[str, str], str],
    seen_records: dict[tuple[str, str], SpanRecord],
    on_seal: Callable[[SpanRecord], object] | None,
) -> None:
    try:
        spans = list(_spans(orjson.loads(line)))
    except (ValueError, TypeError, KeyError, AttributeError, _Shape):
        try:
            data = json.loads(line.decode("utf-8", errors="replace"))
            spans = [(record, None) for record in decode_traces(data)]
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            scan.unreadable.append(f"{path}:{number}: not OTLP/JSON trace data ({exc})")
            return
    for decoded, digested in spans:
        record, entry = decoded, digested
        if record is not None and not (record.is_seal or record.is_anchor):
            entry, record = Entry(record.trace_id, record.span_id, record.name, span_digest(record)), None
        if entry is not None:
            key = (entry.trace_id, entry.span_id)
            first = seen_entries.get(key)
            if first is None:
                seen_entries[key] = entry.digest
                scan.entries.append(entry)
            elif first != entry.digest:
                scan.conflicts.append(key)
        elif record is not None:
            key = (record.trace_id, record.span_id)
            known = seen_records.get(key)
            if known is None:
                seen_records[key] = record
                scan.records.append(record)
                if record.is_seal:
                    scan.order.append(record.span_id)
                    if on_seal is not None:
                        on_seal(record)
            elif known != record:
                scan.conflicts.append(key)


def _spans(data: Any) -> Iterator[tuple[SpanRecord | None, Entry | None]]:
    """Each span of a line: the full record of seals and anchors (and of any span in a shape the
    fast path does not take), an entry with its digest for the others."""
    for resource_spans in data["resourceSpans"]:
        resource = resource_spans.get("resource") or {}
        resource_view = _attributes(resource.get("attributes") or [])
        for scope_spans in resource_spans.get("scopeSpans") or []:
            scope = scope_spans.get("scope") or {}
            scope_view = {"name": _text(scope.get("name", "")), "version": _text(scope.get("version", ""))}
            for span in scope_spans.get("spans") or []:
                name = span.get("name", "")
                try:
                    if name in _FULL:
                        raise _Shape
                    view = _view(span, resource_view, scope_view)
                    digest = hashlib.sha256(orjson.dumps(view)).hexdigest()
                    yield None, Entry(view["trace_id"], view["span_id"], view["name"], digest)
                except (_Shape, ValueError, TypeError, KeyError, AttributeError):
                    scoped = {"scope": scope, "spans": [span]}
                    wrapped = {"resourceSpans": [{"resource": resource, "scopeSpans": [scoped]}]}
                    yield next(decode_traces(wrapped)), None


def _text(value: Any) -> str:
    if type(value) is not str:
        raise _Shape
    return value


def _number(value: Any) -> int:
    """A JSON integer field as ``int(...)`` decodes it, for the shapes the writer produces."""
    if type(value) is int:
        number = value
    elif type(value) is str and _DIGITS.fullmatch(value):
        number = int(value)
    else:
        raise _Shape
    if not -_MAX_SAFE_INT <= number <= _MAX_SAFE_INT:
        raise _Shape
    return number


def _nanos(value: Any) -> str:
    if type(value) is str and value.isascii() and value.isdigit() and (value[0] != "0" or len(value) == 1):
        return value  # already the decimal form the decoder would write back
    if type(value) is int:
        return str(value)
    if type(value) is str and _DIGITS.fullmatch(value):
        return str(int(value))
    raise _Shape


def _typed(value: Mapping[str, Any]) -> dict[str, Any]:
    if len(value) != 1:
        raise _Shape  # empty or ambiguous values: the reference decoder decides
    kind, raw = next(iter(value.items()))
    raw_type = type(raw)
    if kind == "stringValue" and raw_type is str:
        return {"string": raw}
    if kind == "boolValue" and raw_type is bool:
        return {"bool": raw}
    if kind == "intValue" and (raw_type is str or raw_type is int):
        return {"int": str(_wide(raw))}
    if kind == "doubleValue":
        return {"double": _double(raw)}
    if kind == "arrayValue" and raw_type is dict and set(raw) <= {"values"}:
        items = raw.get("values", [])
        if type(items) is not list:
            raise _Shape
        return {"array": [_scalar(item) for item in items]}
    raise _Shape


def _wide(raw: Any) -> int:
    if type(raw) is int:
        return raw
    if not _DIGITS.fullmatch(raw):
        raise _Shape
    return int(raw)


def _scalar(item: Any) -> dict[str, Any]:
    if type(item) is not dict or "arrayValue" in item:
        raise _Shape  # nested arrays are flattened to text by the decoder
    return _typed(item)


def _double(raw: Any) -> Any:
    if type(raw) is float or type(raw) is int:
        value = float(raw)
    elif raw in ("NaN", "Infinity", "-Infinity"):
        return raw
    else:
        raise _Shape
    if not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return orjson.Fragment(rfc8785.dumps(value))


def _attributes(items: Any) -> dict[str, Any]:
    if type(items) is not list:
        raise _Shape
    out: dict[str, Any] = {}
    for item in items:
        key = item["key"]
        if not key.isascii():  # (not a string: AttributeError, the reference path)
            raise _Shape
        value = item["value"]
        raw = value.get("stringValue")  # the common case, inline
        if type(raw) is str and len(value) == 1:
            out[key] = {"string": raw}
        elif type(value) is dict:
            out[key] = _typed(value)
        else:
            raise _Shape
    return dict(sorted(out.items()))


_PLAIN_SPAN = frozenset(
    ("traceId", "spanId", "parentSpanId", "name", "kind", "startTimeUnixNano", "endTimeUnixNano",
     "attributes", "events", "links", "status")
)  # fmt: skip


def _view(span: Mapping[str, Any], resource: dict[str, Any], scope: dict[str, Any]) -> dict[str, Any]:
    """The span view of ``spanview``, keys in the same (canonical) order, from OTLP/JSON."""
    if span.keys() <= _PLAIN_SPAN and not span.get("events") and not span.get("links"):
        return _plain_view(span, resource, scope)
    status = span.get("status") or {}
    if type(status) is not dict:
        raise _Shape
    events = span.get("events") or []
    links = span.get("links") or []
    if type(events) is not list or type(links) is not list:
        raise _Shape
    return {
        "attributes": _attributes(span.get("attributes") or []),
        "dropped_attributes_count": _number(span.get("droppedAttributesCount", 0)),
        "dropped_events_count": _number(span.get("droppedEventsCount", 0)),
        "dropped_links_count": _number(span.get("droppedLinksCount", 0)),
        "end_time_unix_nano": _nanos(span.get("endTimeUnixNano", 0)),
        "events": [
            {
                "attributes": _attributes(event.get("attributes") or []),
                "dropped_attributes_count": _number(event.get("droppedAttributesCount", 0)),
                "name": _text(event.get("name", "")),
                "time_unix_nano": _nanos(event.get("timeUnixNano", 0)),
            }
            for event in events
        ],
        "kind": _number(span.get("kind", 0)),
        "links": [
            {
                "attributes": _attributes(link.get("attributes") or []),
                "dropped_attributes_count": _number(link.get("droppedAttributesCount", 0)),
                "span_id": _text(link["spanId"]).lower(),
                "trace_id": _text(link["traceId"]).lower(),
                "trace_state": _text(link.get("traceState", "")),
            }
            for link in links
        ],
        "name": _text(span.get("name", "")),
        "parent_is_remote": bool(_number(span.get("flags", 0)) & 0x200),
        "parent_span_id": _text(span.get("parentSpanId", "")).lower(),
        "resource": resource,
        "scope": scope,
        "span_id": _text(span["spanId"]).lower(),
        "start_time_unix_nano": _nanos(span.get("startTimeUnixNano", 0)),
        "status": {"code": _number(status.get("code", 0)), "message": _text(status.get("message", ""))},
        "trace_id": _text(span["traceId"]).lower(),
        "trace_state": _text(span.get("traceState", "")),
    }


def _plain_view(span: Mapping[str, Any], resource: dict[str, Any], scope: dict[str, Any]) -> dict[str, Any]:
    """``_view`` of the commonest shape: no events, links, dropped counts, flags or trace state."""
    status = span.get("status") or {}
    if type(status) is not dict:
        raise _Shape
    return {
        "attributes": _attributes(span.get("attributes") or []),
        "dropped_attributes_count": 0,
        "dropped_events_count": 0,
        "dropped_links_count": 0,
        "end_time_unix_nano": _nanos(span.get("endTimeUnixNano", 0)),
        "events": [],
        "kind": _number(span.get("kind", 0)),
        "links": [],
        "name": _text(span.get("name", "")),
        "parent_is_remote": False,
        "parent_span_id": _text(span.get("parentSpanId", "")).lower(),
        "resource": resource,
        "scope": scope,
        "span_id": _text(span["spanId"]).lower(),
        "start_time_unix_nano": _nanos(span.get("startTimeUnixNano", 0)),
        "status": {"code": _number(status.get("code", 0)), "message": _text(status.get("message", ""))},
        "trace_id": _text(span["traceId"]).lower(),
        "trace_state": "",
    }
