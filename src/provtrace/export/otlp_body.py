"""OTLP/HTTP request bodies from spool lines, by splicing their bytes.

Each spool line is one ``TracesData`` object ``{"resourceSpans":[...]}`` (``otlpjson.dumps_line``)
and an OTLP/HTTP JSON request body is one ``ExportTraceServiceRequest`` of the same shape, so
lines are combined by joining the contents of their ``resourceSpans`` arrays: the bytes sealed
are the bytes spooled and the bytes sent. Only a segment larger than one request is parsed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from provtrace.export.sink import PermanentSinkError

_OPEN = b'{"resourceSpans":['
_CLOSE = b"]}"


def request_bodies(lines: Sequence[str], max_bytes: int) -> Iterator[bytes]:
    """``ExportTraceServiceRequest`` bodies of at most about ``max_bytes`` holding every span of
    ``lines``, in order. A line that fits is spliced in unchanged; a line larger than
    ``max_bytes`` is the one case that is parsed: its spans are cut into groups, each under a copy
    of its resource and scope, and re-serialised with ``dumps_line``'s settings, which reproduces
    each span's bytes exactly. A single span larger than ``max_bytes`` is sent alone."""
    entries: list[bytes] = []
    size = len(_OPEN) + len(_CLOSE)
    for line in lines:
        for entry in _entries(line, max_bytes):
            if entries and size + len(entry) + 1 > max_bytes:
                yield _OPEN + b",".join(entries) + _CLOSE
                entries, size = [], len(_OPEN) + len(_CLOSE)
            entries.append(entry)
            size += len(entry) + 1
    if entries:
        yield _OPEN + b",".join(entries) + _CLOSE


def _entries(line: str, max_bytes: int) -> list[bytes]:
    """The content of one line's ``resourceSpans`` array, as one piece or, if too large, cut."""
    raw = line.encode("utf-8").rstrip(b"\n")
    if not (raw.startswith(_OPEN) and raw.endswith(_CLOSE)):
        raise PermanentSinkError(
            "a spool line is not an OTLP/JSON TracesData object as provtrace writes it "
            f"(it begins {raw[:40]!r}); it cannot be sent"
        )
    inner = raw[len(_OPEN) : -len(_CLOSE)]
    if not inner:
        return []
    if len(raw) <= max_bytes:
        return [inner]
    try:
        return list(_cut(json.loads(raw), max_bytes - len(_OPEN) - len(_CLOSE)))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise PermanentSinkError(f"a spool line of {len(raw)} bytes is not valid OTLP/JSON: {exc}") from exc


def _cut(data: Mapping[str, Any], room: int) -> Iterator[bytes]:
    for resource_spans in data["resourceSpans"]:
        resource = {k: v for k, v in resource_spans.items() if k != "scopeSpans"}
        for scope_spans in resource_spans.get("scopeSpans") or []:
            scope = {k: v for k, v in scope_spans.items() if k != "spans"}
            frame = _dumps({**resource, "scopeSpans": [{**scope, "spans": []}]})
            head, tail = frame[:-4], frame[-4:]  # tail is b"]}]}", closing spans and scopeSpans
            spans: list[bytes] = []
            size = len(head) + len(tail)
            for span in scope_spans.get("spans") or []:
                encoded = _dumps(span)
                if spans and size + len(encoded) + 1 > room:
                    yield head + b",".join(spans) + tail
                    spans, size = [], len(head) + len(tail)
                spans.append(encoded)
                size += len(encoded) + 1
            if spans:
                yield head + b",".join(spans) + tail


def _dumps(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
