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
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from provtrace import conventions as c
from provtrace.errors import InputError
from provtrace.model import AttrValue, EventRecord, LinkRecord, Scalar, SpanRecord
from provtrace.otlpjson import OtlpJsonError, decode_traces
from provtrace.readers.base import TraceQuery, dedupe, matches

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


def check_trace_id(trace_id: str) -> str:
    if not _TRACE_ID.match(trace_id):
        raise InputError(f"{trace_id!r} is not a trace id (32 hexadecimal characters)")
    return trace_id.lower()


class JaegerSource:
    def __init__(self, url: str, *, api: str = "v3", timeout_s: float = 10.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise InputError(f"--jaeger needs an http(s) URL such as http://127.0.0.1:16686, got {url!r}")
        if api not in ("v3", "v1"):
            raise InputError(f"Jaeger API must be v3 or v1, got {api!r}")
        self.url = url.rstrip("/")
        self.api = api
        self.timeout_s = timeout_s
        self.description = f"Jaeger {self.url} ({api} API)"

    # --- HTTP -------------------------------------------------------------------------------

    def _get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        request = urllib.request.Request(  # noqa: S310 - the URL was checked to be http(s)
            self.url + path + query, headers={"Accept": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310 - user-given http(s) URL
                body = response.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise InputError(f"Jaeger at {self.url} answered {exc.code} for {path}") from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise InputError(f"cannot reach Jaeger at {self.url}: {reason}") from exc
        try:
            return json.loads(body)
        except json.JSONDecodeError as exc:
            raise InputError(f"Jaeger at {self.url} returned something that is not JSON for {path}") from exc

    # --- EvidenceSource ---------------------------------------------------------------------

    def trace(self, trace_id: str) -> list[SpanRecord]:
        trace_id = check_trace_id(trace_id)
        if self.api == "v1":
            data = self._get(f"/api/traces/{trace_id}", {"raw": "true"})
            return [] if data is None else dedupe(v1_records(data))[0]
        data = self._get(f"/api/v3/traces/{trace_id}", {"raw_traces": "true"})
        if data is None:
            return []
        return dedupe(_v3_records(data))[0]

    def traces(self, query: TraceQuery) -> list[list[SpanRecord]]:
        if not query.service:
            raise InputError("searching Jaeger needs --service (Jaeger searches one service at a time)")
        attributes = {
            key: value
            for key, value in (
                (c.ACTION_TARGET, query.target),
                (c.NHI_ID, query.nhi),
                (c.SECRET_REF, query.secret_ref),
                (c.ACTION_TYPE, query.action_type),
            )
            if value
        }
        now = _dt.datetime.now(_dt.timezone.utc)
        start = _from_ns(query.start_ns) if query.start_ns else now - _dt.timedelta(days=2)
        end = _from_ns(query.end_ns) if query.end_ns else now + _dt.timedelta(minutes=1)
        params = {
            "query.service_name": query.service,
            "query.start_time_min": start.isoformat().replace("+00:00", "Z"),
            "query.start_time_max": end.isoformat().replace("+00:00", "Z"),
            "query.num_traces": str(max(1, min(query.limit * 5, 1000))),
            "query.raw_traces": "true",
        }
        # Jaeger matches all given attributes on one span, so it is asked for the first criterion
        # and the traces are then checked against all of them across their spans.
        if attributes:
            key, value = next(iter(attributes.items()))
            params["query.attributes"] = json.dumps({key: value})
        data = self._get("/api/v3/traces", params)
        ids = [r.trace_id for r in _v3_records(data)] if data is not None else []
        found = []
        for trace_id in dict.fromkeys(ids):
            spans = self.trace(trace_id)
            if spans and matches(spans, query):
                found.append(spans)
        found.sort(key=lambda spans: min(r.start_ns for r in spans), reverse=True)
        return found[: query.limit]

    def stream_seals(self) -> Iterator[SpanRecord]:
        raise InputError("verify --stream reads the archive; use --archive DIR")

    def all_spans(self) -> Iterable[SpanRecord]:
        raise InputError("reading every span needs the archive; use --archive DIR")


def _from_ns(ns: int) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(ns / 1e9, tz=_dt.timezone.utc)


def _v3_records(data: Any) -> list[SpanRecord]:
    result = data.get("result") if isinstance(data, dict) else None
    if not isinstance(result, dict):
        raise InputError("Jaeger's v3 answer has no 'result' object")
    try:
        return list(decode_traces(result))
    except OtlpJsonError as exc:
        raise InputError(f"Jaeger's v3 answer is not OTLP/JSON: {exc}") from exc


# --- the v1 (UI) API ------------------------------------------------------------------------


def _v1_value(tag: Mapping[str, Any]) -> AttrValue:
    kind = tag.get("type", "string")
    value: Any = tag.get("value")
    if kind == "bool":
        return bool(value)
    if kind == "int64":
        return int(value)  # beyond 2^53 Jaeger writes a string; int() reads both
    if kind == "float64":
        return float(value)
    return str(value)


def _v1_attributes(
    tags: Iterable[Mapping[str, Any]], *, skip: set[str] | None = None
) -> dict[str, AttrValue]:
    out: dict[str, AttrValue] = {}
    for tag in tags:
        key = str(tag.get("key"))
        if skip and key in skip:
            continue
        value = _v1_value(tag)
        if key in KNOWN_ARRAYS and isinstance(value, str):
            parsed = _array_candidates(value)
            out[key] = parsed[0] if parsed else value
        else:
            out[key] = value
    return out


def _array_candidates(text: str) -> list[tuple[Scalar, ...]]:
    """The arrays whose JSON text Jaeger's v1 API would have shown as ``text``."""
    if not (text.startswith("[") and text.endswith("]")):
        return []
    try:
        items = json.loads(text)
    except json.JSONDecodeError:
        return []
    if not isinstance(items, list):
        return []
    if all(isinstance(i, str) for i in items):
        return [tuple(items)]
    if all(isinstance(i, bool) for i in items):
        return [tuple(items)]
    if all(isinstance(i, (int, float)) and not isinstance(i, bool) for i in items):
        candidates: list[tuple[Scalar, ...]] = []
        if all(isinstance(i, int) or float(i).is_integer() for i in items):
            candidates.append(tuple(int(i) for i in items))
        candidates.append(tuple(float(i) for i in items))
        return candidates
    return []


def v1_records(data: Any) -> list[SpanRecord]:
    traces = data.get("data") if isinstance(data, dict) else None
    if not isinstance(traces, list):
        raise InputError("Jaeger's v1 answer has no 'data' list")
    records: list[SpanRecord] = []
    for trace in traces:
        processes = trace.get("processes", {})
        for span in trace.get("spans", []):
            records.append(_v1_span(span, processes))
    return records


def _v1_span(span: Mapping[str, Any], processes: Mapping[str, Any]) -> SpanRecord:
    try:
        tags = span.get("tags") or []
        by_key = {str(t.get("key")): t.get("value") for t in tags}
        status_text = str(by_key.get("otel.status_code", ""))
        status_code = {"ERROR": 2, "OK": 1}.get(status_text, 0)
        skip = set(_PSEUDO_TAGS)
        if status_code == 2 and by_key.get("error") is True:
            skip.add("error")
        attributes = _v1_attributes(tags, skip=skip)
        parent = ""
        link_refs: list[tuple[str, str]] = []
        for ref in span.get("references") or []:
            if ref.get("refType") == "CHILD_OF" and not parent:
                parent = _hex(ref["spanID"], 16)
            else:
                link_refs.append((_hex(ref["traceID"], 32), _hex(ref["spanID"], 16)))
        process = processes.get(str(span.get("processID")), {})
        resource = _v1_attributes(process.get("tags") or [])
        resource[c.SERVICE_NAME] = str(process.get("serviceName", ""))
        start_ns = int(span["startTime"]) * 1000
        return SpanRecord(
            trace_id=_hex(span["traceID"], 32),
            span_id=_hex(span["spanID"], 16),
            parent_span_id=parent,
            name=str(span.get("operationName", "")),
            kind=_KIND.get(str(by_key.get("span.kind", "")), 0),
            start_ns=start_ns,
            end_ns=start_ns + int(span.get("duration", 0)) * 1000,
            status_code=status_code,
            status_message=str(by_key.get("otel.status_description", "")),
            attributes=attributes,
            events=tuple(_v1_event(log) for log in span.get("logs") or []),
            links=_v1_links(link_refs, attributes),
            resource=resource,
            scope_name=str(by_key.get("otel.scope.name", "")),
            scope_version=str(by_key.get("otel.scope.version", "")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"malformed span in Jaeger's v1 answer: {exc}") from exc


def _hex(value: object, width: int) -> str:
    return str(value).lower().rjust(width, "0")


def _v1_event(log: Mapping[str, Any]) -> EventRecord:
    fields = list(log.get("fields") or [])
    name = ""
    if fields and fields[0].get("key") == "event":
        name = str(fields.pop(0).get("value", ""))
    return EventRecord(
        name=name, time_ns=int(log.get("timestamp", 0)) * 1000, attributes=_v1_attributes(fields)
    )


def _v1_links(refs: list[tuple[str, str]], attributes: Mapping[str, AttrValue]) -> tuple[LinkRecord, ...]:
    """Links with the attributes v1 dropped, rebuilt from the ``provenance.links`` mirror."""
    types: dict[tuple[str, str], list[str]] = {}
    mirror = attributes.get(c.LINKS_MIRROR, ())
    for entry in mirror if isinstance(mirror, tuple) else ():
        link_type, _, rest = str(entry).partition(":")
        trace_id, _, span_id = rest.partition(":")
        types.setdefault((trace_id, span_id), []).append(link_type)
    links = []
    for trace_id, span_id in refs:
        pending = types.get((trace_id, span_id))
        link_attributes: dict[str, AttrValue] = {c.LINK_TYPE: pending.pop(0)} if pending else {}
        links.append(LinkRecord(trace_id=trace_id, span_id=span_id, attributes=link_attributes))
    return tuple(links)


def _options(attributes: Mapping[str, AttrValue], *, known: bool) -> list[list[tuple[str, AttrValue]]]:
    """Per attribute, the values it may have had, most likely first (JSON-array text was most
    likely an array; whole numbers most likely integers)."""
    slots = []
    for key, value in attributes.items():
        options: list[AttrValue] = [value]
        if isinstance(value, str) and not (known and key in KNOWN_ARRAYS):
            options = [*_array_candidates(value), value]
        slots.append([(key, option) for option in options])
    return slots


def interpretations(record: SpanRecord) -> Iterator[SpanRecord]:
    """Every typing of a v1 record's ambiguous values (JSON-array text that may have been an array),
    most likely first. The verifier accepts the record if one of them matches the sealed digest:
    the values themselves are fixed, only their types are unknown."""
    groups = [_options(record.attributes, known=True)]
    groups += [_options(event.attributes, known=False) for event in record.events]
    sizes = [len(group) for group in groups]
    flat = [slot for group in groups for slot in group]
    for count, combination in enumerate(itertools.product(*flat)):
        if count >= MAX_INTERPRETATIONS:
            return
        chosen = iter(combination)
        parts = [dict(itertools.islice(chosen, size)) for size in sizes]
        events = tuple(
            dataclasses.replace(event, attributes=attrs)
            for event, attrs in zip(record.events, parts[1:], strict=True)
        )
        yield dataclasses.replace(record, attributes=parts[0], events=events)
