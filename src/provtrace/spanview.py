"""The span view and its digest: a fixed, source-independent projection of a span.

The same digest comes out of a span in the agent, a line of the archive, or a trace read back
from Jaeger. :func:`span_view` is the definition (a JSON value; its digest is SHA-256 over its
RFC 8785 canonical form). :func:`canonical_view` writes those canonical bytes fast: the view is
built with its keys already in RFC 8785 order and each finite double pre-rendered in RFC 8785's
number form, so orjson only has to write it out; anything outside that subset (non-ASCII keys,
integers beyond 2**53, unpaired surrogates) takes the reference path. Tests prove the two equal.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Mapping
from typing import Any

import orjson
import rfc8785

from provtrace.content import canonical_json
from provtrace.model import AttrValue, SpanRecord

_MAX_SAFE_INT = 2**53 - 1


class _Slow(Exception):
    """The fast path cannot write this view exactly; take the reference path."""


def _non_finite(value: float) -> str:
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


class _ViewBuilder:
    """Builds the span view. ``fast`` builds it for orjson (keys in canonical order, doubles as
    canonical fragments); otherwise it notes whether the view holds floats or non-ASCII keys,
    which rule out the fast canonical encoding of ``content.canonical_json``."""

    __slots__ = ("fast", "plain")

    def __init__(self, *, fast: bool = False) -> None:
        self.fast = fast
        self.plain = True

    def typed(self, value: AttrValue) -> dict[str, Any]:
        """A value tagged with its OTLP type, so that values equal in JSON but of different types
        (``1`` and ``"1"``, bytes and their base64 text, an empty value and ``""``) digest apart.
        A kvlist is a JSON object: its digest does not depend on key order."""
        if isinstance(value, str):
            return {"string": value}
        if isinstance(value, bool):
            return {"bool": value}
        if isinstance(value, int):
            return {"int": str(value)}
        if isinstance(value, float):
            if not math.isfinite(value):
                return {"double": _non_finite(value)}
            self.plain = False
            return {"double": orjson.Fragment(rfc8785.dumps(value)) if self.fast else value}
        if value is None:
            return {}
        if isinstance(value, bytes):
            return {"bytes": base64.b64encode(value).decode("ascii")}
        if isinstance(value, tuple):
            return {"array": [self.typed(v) for v in value]}
        return {"kvlist": self.attributes(value)}

    def attributes(self, attributes: Mapping[str, AttrValue]) -> dict[str, Any]:
        if not self.fast:
            out = {}
            for key, value in attributes.items():
                if not key.isascii():
                    self.plain = False
                out[key] = self.typed(value)
            return out
        keys = sorted(attributes)
        if not "".join(keys).isascii():
            raise _Slow  # RFC 8785 orders keys by UTF-16 code units
        typed = self.typed
        return {
            key: {"string": value} if type(value := attributes[key]) is str else typed(value) for key in keys
        }

    def count(self, value: int) -> int:
        if self.fast and not -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT:
            raise _Slow
        return value

    def view(self, record: SpanRecord) -> dict[str, Any]:
        """The fixed view of a span that its digest covers (DESIGN.md, Integrity): every field an
        attacker could change to mislead an investigator, events and links in recorded order.
        Keys are listed in RFC 8785 order, so the fast path can write them as they are."""
        count = self.count
        return {
            "attributes": self.attributes(record.attributes),
            "dropped_attributes_count": count(record.dropped_attributes),
            "dropped_events_count": count(record.dropped_events),
            "dropped_links_count": count(record.dropped_links),
            "end_time_unix_nano": str(record.end_ns),
            "events": [
                {
                    "attributes": self.attributes(event.attributes),
                    "dropped_attributes_count": count(event.dropped_attributes),
                    "name": event.name,
                    "time_unix_nano": str(event.time_ns),
                }
                for event in record.events
            ],
            "kind": count(record.kind),
            "links": [
                {
                    "attributes": self.attributes(link.attributes),
                    "dropped_attributes_count": count(link.dropped_attributes),
                    "span_id": link.span_id,
                    "trace_id": link.trace_id,
                    "trace_state": link.trace_state,
                }
                for link in record.links
            ],
            "name": record.name,
            "parent_is_remote": record.parent_is_remote,
            "parent_span_id": record.parent_span_id,
            "resource": self.attributes(record.resource),
            "scope": {"name": record.scope_name, "version": record.scope_version},
            "span_id": record.span_id,
            "start_time_unix_nano": str(record.start_ns),
            "status": {"code": count(record.status_code), "message": record.status_message},
            "trace_id": record.trace_id,
            "trace_state": record.trace_state,
        }


def span_view(record: SpanRecord) -> dict[str, Any]:
    """The span view as a JSON value (what a proof bundle carries)."""
    return _ViewBuilder().view(record)


def reference_canonical_view(record: SpanRecord) -> bytes:
    builder = _ViewBuilder()
    view = builder.view(record)
    return canonical_json(view, plain=builder.plain)


def canonical_view(record: SpanRecord) -> bytes:
    """RFC 8785 canonical bytes of the span view."""
    try:
        return orjson.dumps(_ViewBuilder(fast=True).view(record))
    except (_Slow, orjson.JSONEncodeError):
        return reference_canonical_view(record)


def span_digest(record: SpanRecord) -> str:
    return hashlib.sha256(canonical_view(record)).hexdigest()


def view_digest(view: Any) -> str:
    """The digest of a span view given as a JSON value (from a proof bundle)."""
    return hashlib.sha256(canonical_json(view)).hexdigest()
