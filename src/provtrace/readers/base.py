"""What every evidence source offers the investigator's commands."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import Protocol

from provtrace import conventions as c
from provtrace.model import SpanRecord


@dataclasses.dataclass(frozen=True)
class TraceQuery:
    """Search criteria of ``provtrace find``; all given criteria must match one span of a trace."""

    target: str | None = None
    nhi: str | None = None
    secret_ref: str | None = None
    action_type: str | None = None
    service: str | None = None
    start_ns: int | None = None
    end_ns: int | None = None
    limit: int = 20


class EvidenceSource(Protocol):
    description: str

    def trace(self, trace_id: str) -> list[SpanRecord]:
        """Every span of one trace (seals included); empty when the trace is unknown."""

    def traces(self, query: TraceQuery) -> list[list[SpanRecord]]:
        """Traces matching ``query``, newest first."""

    def stream_seals(self) -> Iterator[SpanRecord]:
        """Every seal the source holds (for ``verify --stream``)."""

    def all_spans(self) -> Iterable[SpanRecord]:
        """Every span the source holds (for ``verify --stream``)."""


def dedupe(
    records: Iterable[SpanRecord],
) -> tuple[list[SpanRecord], list[tuple[SpanRecord, SpanRecord]]]:
    """Drop exact duplicates (at-least-once delivery); return conflicting copies separately."""
    seen: dict[tuple[str, str], SpanRecord] = {}
    conflicts: list[tuple[SpanRecord, SpanRecord]] = []
    for record in records:
        key = (record.trace_id, record.span_id)
        first = seen.get(key)
        if first is None:
            seen[key] = record
        elif first != record:
            conflicts.append((first, record))
    return list(seen.values()), conflicts


def matches(records: list[SpanRecord], query: TraceQuery) -> bool:
    def any_attr(key: str, value: str | None) -> bool:
        return value is None or any(r.attributes.get(key) == value for r in records)

    if all(r.is_seal for r in records):  # heartbeats and closing seals are not decisions
        return False
    if query.service and not any(r.service_name == query.service for r in records):
        return False
    if query.start_ns is not None and not any(r.start_ns >= query.start_ns for r in records):
        return False
    if query.end_ns is not None and not any(r.start_ns <= query.end_ns for r in records):
        return False
    return (
        any_attr(c.ACTION_TARGET, query.target)
        and any_attr(c.SECRET_REF, query.secret_ref)
        and any_attr(c.ACTION_TYPE, query.action_type)
        and any_attr(c.NHI_ID, query.nhi)
    )
