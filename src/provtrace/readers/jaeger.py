"""The Jaeger reader: traces from Jaeger v2's query API, into the one span model.

The v3 API (``/api/v3``) returns OTLP/JSON and is read with ``raw_traces=true`` only: without it
Jaeger's adjusters re-sort attributes and add warnings, and on the memory store that change is
written back into the stored trace. The v1 API (``/api/traces``) drops link attributes, array types
and span flags; provtrace spans carry ``provenance.links`` so the links can be rebuilt, and array
values that v1 turned into JSON text are offered both ways to the verifier.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import itertools
import json
import re
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeVar

from provtrace import conventions as c
from provtrace import fetch
from provtrace import jsonshape as shape
from provtrace.errors import InputError
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
from provtrace.otlpjson import decode_traces
from provtrace.readers.base import Found, TraceQuery, dedupe, newest_first

_TRACE_ID = re.compile(r"^[0-9a-fA-F]{32}$")
_KIND = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}
_PSEUDO_TAGS = {
    "otel.scope.name",
    "otel.scope.version",
    "span.kind",
    "otel.status_code",
    "otel.status_description",
    "w3c.tracestate",
    "internal.span.format",
}
# provtrace's own array-valued attributes: typed without guessing when v1 turned them into text.
KNOWN_ARRAYS = {
    c.LINKS_MIRROR,
    c.CONTENT_TRUNCATED,
    c.CONTENT_KEYED,
    c.POLICY_ACTIONS,
    c.ACTION_REQUIRE,
    c.GUARD_VIOLATIONS,
    c.GEN_AI_RESPONSE_FINISH_REASONS,
    c.SEAL_SPANS,
    c.SEAL_WITHHELD,
    c.SEAL_VIOLATIONS,
    c.SEAL_OPEN_SPANS,
    c.VIOLATION_CODES,
    c.VIOLATION_DETAILS,
}
MAX_INTERPRETATIONS = 4096
MAX_SEARCH_TRACES = 1000  # the most traces one search asks Jaeger for
_T = TypeVar("_T")


def check_trace_id(trace_id: str) -> str:
    if not _TRACE_ID.match(trace_id):
        raise InputError(f"{trace_id!r} is not a trace id (32 hexadecimal characters)")
    return trace_id.lower()


def check_jaeger_url(url: str) -> str:
    problem = fetch.url_problem(url)
    if problem:
        raise InputError(
            f"--jaeger needs an http(s) URL such as http://127.0.0.1:16686, got {url!r}: {problem}"
        )
    return url


class JaegerSource:
    """Every request has a total deadline (``timeout_s``) and a body size cap (``max_body_bytes``)."""

    def __init__(
        self,
        url: str,
        *,
        api: str = "v3",
        timeout_s: float = fetch.DEFAULT_DEADLINE_S,
        max_body_bytes: int = fetch.DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        check_jaeger_url(url)
        self.duplicates = 0  # exact copies of spans the last trace() dropped
        if api not in ("v3", "v1"):
            raise InputError(f"Jaeger API must be v3 or v1, got {api!r}")
        if not timeout_s > 0:
            raise InputError(f"the Jaeger timeout must be a positive number of seconds, got {timeout_s!r}")
        self.url = url.rstrip("/")
        self.api = api
        self.timeout_s = timeout_s
        self.max_body_bytes = max_body_bytes
        self.description = f"Jaeger {self.url} ({api} API)"

    # --- HTTP -------------------------------------------------------------------------------

    def _get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        reply = fetch.get(
            self.url + path + query,
            what=f"Jaeger at {self.url}",
            deadline_s=self.timeout_s,
            max_bytes=self.max_body_bytes,
            headers={"Accept": "application/json"},
        )
        if reply.status == 404:
            return None
        if not 200 <= reply.status < 300:
            raise InputError(f"Jaeger at {self.url} answered {reply.status} for {path}")
        return shape.parse(reply.body, f"Jaeger's answer for {path}")

    # --- EvidenceSource ---------------------------------------------------------------------

    def trace(self, trace_id: str) -> list[SpanRecord]:
        trace_id = check_trace_id(trace_id)
        self.duplicates = 0
        if self.api == "v1":
            data = self._get(f"/api/traces/{trace_id}", {"raw": "true"})
            raw = [] if data is None else v1_records(data)
        else:
            data = self._get(f"/api/v3/traces/{trace_id}", {"raw_traces": "true"})
            raw = [] if data is None else v3_records(data)
        records, conflicts = dedupe(raw)
        self.duplicates = len(raw) - len(records) - len(conflicts)
        return records

    def traces(self, query: TraceQuery) -> Found:
        """Jaeger searches one service at a time, matches all the attributes it is given on one
        span, and returns at most ``query.num_traces`` whole traces: it is asked for the first
        criterion, and each trace it returns is then checked against all of them across its
        spans. When Jaeger returned as many traces as it was allowed, more may exist."""
        if not query.service:
            raise InputError("searching Jaeger needs --service (Jaeger searches one service at a time)")
        now = _dt.datetime.now(_dt.timezone.utc)
        start = _from_ns(query.start_ns) if query.start_ns else now - _dt.timedelta(days=2)
        end = _from_ns(query.end_ns) if query.end_ns else now + _dt.timedelta(minutes=1)
        allowed = max(query.limit + 1, min(query.limit * 5, MAX_SEARCH_TRACES))
        params = {
            "query.service_name": query.service,
            "query.start_time_min": start.isoformat().replace("+00:00", "Z"),
            "query.start_time_max": end.isoformat().replace("+00:00", "Z"),
            "query.num_traces": str(allowed),
            "query.raw_traces": "true",
        }
        attributes = query.attributes()
        if attributes:
            key, value = next(iter(attributes.items()))
            params["query.attributes"] = json.dumps({key: value})
        data = self._get("/api/v3/traces", params)
        by_trace: dict[str, list[SpanRecord]] = {}
        for record in dedupe(v3_records(data))[0] if data is not None else []:
            by_trace.setdefault(record.trace_id, []).append(record)
        return newest_first(by_trace.values(), query, capped=len(by_trace) >= allowed)

    def stream_seals(self) -> Iterator[SpanRecord]:
        raise InputError("verify --stream reads the archive; use --archive DIR")

    def all_spans(self) -> Iterable[SpanRecord]:
        raise InputError("reading every span needs the archive; use --archive DIR")


def _from_ns(ns: int) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(ns / 1e9, tz=_dt.timezone.utc)


def v3_records(data: Any) -> list[SpanRecord]:
    result = data.get("result") if isinstance(data, dict) else None
    if not isinstance(result, dict):
        raise InputError("Jaeger's v3 answer has no 'result' object")
    try:
        return list(decode_traces(result))
    except shape.ShapeError as exc:
        raise shape.ShapeError(f"Jaeger's v3 answer is not OTLP/JSON: {exc}") from exc


# --- the v1 (UI) API ------------------------------------------------------------------------


def _v1_value(tag: Mapping[str, Any]) -> AttrValue:
    kind = shape.text(tag.get("type"), "tag type") or "string"
    value: Any = tag.get("value")
    if kind == "string":
        return shape.text(value, "string tag")
    if kind == "bool":
        return shape.boolean(value, "bool tag")
    if kind == "int64":  # beyond 2^53 Jaeger writes a string; both are read
        return shape.integer(value, "int64 tag", INT64_MIN, INT64_MAX)
    if kind == "float64":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                return float(value)
            except OverflowError as exc:
                raise shape.ShapeError("float64 tag is out of range") from exc
        raise shape.ShapeError(f"float64 tag must be a number, got {shape.kind(value)}")
    if kind == "binary":  # bytes, base64 (null when empty)
        return shape.base64_bytes(shape.text(value, "binary tag"), "binary tag")
    raise shape.ShapeError("a tag has an unknown type")


def _v1_attributes(tags: object, *, skip: set[str] | None = None) -> dict[str, AttrValue]:
    out: dict[str, AttrValue] = {}
    for item in shape.items(tags, "tags"):
        tag = shape.obj(item, "tag")
        key = shape.text(tag.get("key"), "tag key")
        if key in out:
            raise shape.ShapeError("a tag key occurs twice")
        value = _v1_value(tag)
        if skip and key in skip:
            continue
        if key in KNOWN_ARRAYS and isinstance(value, str):
            arrays = [v for v in _json_candidates(value) if isinstance(v, tuple)]
            out[key] = arrays[0] if arrays else value
        else:
            out[key] = value
    return out


def _json_candidates(text: str) -> list[AttrValue]:
    """The values whose JSON text Jaeger's v1 API would have shown as ``text`` (it writes arrays
    and kvlists as JSON), most likely first. Arrays of one type are offered with each typing of
    their numbers; anything else with its natural typing only (a number written whole as an int,
    a string as a string, though it may have been bytes or a whole double: such spans stay
    unverifiable through v1, a false "no")."""
    if not ((text.startswith("[") and text.endswith("]")) or (text.startswith("{") and text.endswith("}"))):
        return []
    try:
        data = shape.parse(text, "tag")
        natural = _natural(data, 0)
    except (shape.ShapeError, ValueError):
        return []
    candidates: list[AttrValue] = []
    if isinstance(data, list) and data:
        numbers = all(isinstance(i, (int, float)) and not isinstance(i, bool) for i in data)
        if numbers and all(isinstance(i, int) or float(i).is_integer() for i in data):
            candidates.append(tuple(int(i) for i in data))
        if numbers:
            candidates.append(tuple(float(i) for i in data))
    if repr(natural) not in {repr(candidate) for candidate in candidates}:
        candidates.append(natural)
    return candidates


def _natural(value: object, depth: int) -> AttrValue:
    if value is None or isinstance(value, (str, bool, float)):
        return value
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError("integer out of range")
        return value
    if depth >= MAX_VALUE_DEPTH:
        raise ValueError("nested too deeply")
    if isinstance(value, list):
        return tuple(_natural(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return AttrMap((key, _natural(item, depth + 1)) for key, item in value.items())
    raise ValueError("not JSON data")


def v1_records(data: Any) -> list[SpanRecord]:
    traces = data.get("data") if isinstance(data, dict) else None
    if not isinstance(traces, list):
        raise InputError("Jaeger's v1 answer has no 'data' list")
    records: list[SpanRecord] = []
    try:
        for item in traces:
            trace = shape.obj(item, "trace")
            processes = shape.obj(trace.get("processes"), "processes")
            for span in shape.items(trace.get("spans"), "spans"):
                records.append(_v1_span(shape.obj(span, "span"), processes))
    except shape.ShapeError as exc:
        raise shape.ShapeError(f"malformed span in Jaeger's v1 answer: {exc}") from exc
    return records


_MAX_MICROS = 2**64 // 1000


def _v1_span(span: Mapping[str, Any], processes: Mapping[str, Any]) -> SpanRecord:
    tags = shape.items(span.get("tags"), "tags")
    by_key = {shape.text(t.get("key"), "tag key"): t.get("value") for t in map(_tag, tags)}
    status_text = by_key.get("otel.status_code", "")
    status_code = {"ERROR": 2, "OK": 1}.get(status_text, 0) if isinstance(status_text, str) else 0
    skip = set(_PSEUDO_TAGS)
    if status_code == 2 and by_key.get("error") is True:
        skip.add("error")
    attributes = _v1_attributes(tags, skip=skip)
    parent = ""
    link_refs: list[tuple[str, str]] = []
    for item in shape.items(span.get("references"), "references"):
        ref = shape.obj(item, "reference")
        ids = (
            _hex(ref.get("traceID"), 32, "reference traceID"),
            _hex(ref.get("spanID"), 16, "reference spanID"),
        )
        if ref.get("refType") == "CHILD_OF" and not parent:
            parent = ids[1]
        else:
            link_refs.append(ids)
    process = shape.obj(processes.get(shape.text(span.get("processID"), "processID")), "process")
    resource = _v1_attributes(process.get("tags"))
    resource[c.SERVICE_NAME] = shape.text(process.get("serviceName"), "serviceName")
    start_ns = shape.integer(span.get("startTime"), "startTime", 0, _MAX_MICROS) * 1000
    return SpanRecord(
        trace_id=_hex(span.get("traceID"), 32, "traceID"),
        span_id=_hex(span.get("spanID"), 16, "spanID"),
        parent_span_id=parent,
        name=shape.text(span.get("operationName"), "operationName"),
        kind=_KIND.get(str(by_key.get("span.kind", "")), 0),
        start_ns=start_ns,
        end_ns=start_ns + shape.integer(span.get("duration"), "duration", 0, _MAX_MICROS) * 1000,
        status_code=status_code,
        status_message=shape.text(by_key.get("otel.status_description"), "otel.status_description"),
        attributes=attributes,
        events=tuple(_v1_event(log) for log in shape.items(span.get("logs"), "logs")),
        links=_v1_links(link_refs, attributes),
        resource=resource,
        scope_name=shape.text(by_key.get("otel.scope.name"), "otel.scope.name"),
        scope_version=shape.text(by_key.get("otel.scope.version"), "otel.scope.version"),
        trace_state=shape.text(by_key.get("w3c.tracestate"), "w3c.tracestate"),
    )


def _tag(item: object) -> Mapping[str, Any]:
    return shape.obj(item, "tag")


_HEX_ID = re.compile(r"[0-9a-fA-F]{1,32}")


def _hex(value: object, width: int, what: str) -> str:
    """An id as Jaeger writes it (leading zeros may be dropped), as ``width`` lowercase hex digits."""
    text = shape.text(value, what)
    if len(text) > width or not _HEX_ID.fullmatch(text):
        raise shape.ShapeError(f"{what} must be at most {width} hexadecimal characters")
    return text.lower().rjust(width, "0")


def _v1_event(item: object) -> EventRecord:
    log = shape.obj(item, "log")
    fields = list(shape.items(log.get("fields"), "log fields"))
    name = ""
    if fields and shape.obj(fields[0], "log field").get("key") == "event":
        name = shape.text(fields.pop(0).get("value"), "event name")
    return EventRecord(
        name=name,
        time_ns=shape.integer(log.get("timestamp"), "log timestamp", 0, _MAX_MICROS) * 1000,
        attributes=_v1_attributes(fields),
    )


def _v1_links(refs: list[tuple[str, str]], attributes: Mapping[str, AttrValue]) -> tuple[LinkRecord, ...]:
    """Links with the attributes v1 dropped, rebuilt from the ``provenance.links`` mirror."""
    mirrored: dict[tuple[str, str], list[dict[str, AttrValue]]] = {}
    mirror = attributes.get(c.LINKS_MIRROR, ())
    for entry in mirror if isinstance(mirror, tuple) else ():
        link_type, trace_id, span_id, call_id = ([*str(entry).split(":", 3), "", "", ""])[:4]
        link_attributes: dict[str, AttrValue] = {c.LINK_TYPE: link_type}
        if call_id:
            link_attributes[c.GEN_AI_TOOL_CALL_ID] = call_id
        mirrored.setdefault((trace_id, span_id), []).append(link_attributes)
    links = []
    for trace_id, span_id in refs:
        pending = mirrored.get((trace_id, span_id))
        links.append(
            LinkRecord(trace_id=trace_id, span_id=span_id, attributes=pending.pop(0) if pending else {})
        )
    return tuple(links)


def _options(attributes: Mapping[str, AttrValue], *, known: bool) -> list[list[tuple[str, AttrValue]]]:
    """Per attribute, the values it may have had, most likely first (JSON-array text was most
    likely an array; whole numbers most likely integers; "" may have been the empty value)."""
    slots = []
    for key, value in attributes.items():
        options: list[AttrValue] = [value]
        if isinstance(value, str) and not (known and key in KNOWN_ARRAYS):
            options = [*_json_candidates(value), value]
            if not value:
                options.append(None)  # v1 shows the empty value as ""
        slots.append([(key, option) for option in options])
    return slots


def interpretations(record: SpanRecord) -> Iterator[SpanRecord]:
    """Every typing of a v1 record's ambiguous values (JSON text that may have been an array or a
    kvlist, "" that may have been the empty value) and of the flag v1 drops (a remote parent), most
    likely first. The verifier accepts the record if one of them matches the sealed digest: the
    values themselves are fixed, only their types are unknown."""
    groups = [_options(record.attributes, known=True)]
    groups += [_options(event.attributes, known=False) for event in record.events]
    sizes = [len(group) for group in groups]
    flat = [slot for group in groups for slot in group]
    # v1 drops span flags: whether the parent was remote is unknown (a SERVER span's most likely was)
    remote = [record.kind == 2, record.kind != 2] if record.parent_span_id else [False]
    for combination in itertools.islice(_fewest_departures_first(flat), MAX_INTERPRETATIONS):
        chosen = iter(combination)
        parts = [dict(itertools.islice(chosen, size)) for size in sizes]
        events = tuple(
            dataclasses.replace(event, attributes=attrs)
            for event, attrs in zip(record.events, parts[1:], strict=True)
        )
        for parent_is_remote in remote:
            yield dataclasses.replace(
                record, attributes=parts[0], events=events, parent_is_remote=parent_is_remote
            )


def _fewest_departures_first(slots: list[list[_T]]) -> Iterator[list[_T]]:
    """One option per slot: first every slot's most likely option, then every way to take another
    option in one slot, then in two, ... (a span seldom has more than a few retyped values, so the
    right typing comes early even when a span has many ambiguous values)."""
    variable = [index for index, options in enumerate(slots) if len(options) > 1]
    first = [options[0] for options in slots]
    for count in range(len(variable) + 1):
        for chosen in itertools.combinations(variable, count):
            for others in itertools.product(*(slots[index][1:] for index in chosen)):
                combination = list(first)
                for index, option in zip(chosen, others, strict=True):
                    combination[index] = option
                yield combination
