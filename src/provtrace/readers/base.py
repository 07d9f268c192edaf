"""What every evidence source offers the investigator's commands."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import Protocol

from provtrace import conventions as c
from provtrace.model import SpanRecord


@dataclasses.dataclass(frozen=True)
class TraceQuery:
    """Search criteria of ``provtrace find``; each given criterion must match a span of a trace."""

    target: str | None = None
    nhi: str | None = None
    secret_ref: str | None = None
    action_type: str | None = None
    service: str | None = None
    start_ns: int | None = None
    end_ns: int | None = None
    limit: int = 20
    policy_id: str | None = None
    approver: str | None = None
    outcome: str | None = None

    def attributes(self) -> dict[str, str]:
        """The criteria that name an attribute value, by attribute."""
        pairs = (
            (c.ACTION_TARGET, self.target),
            (c.NHI_ID, self.nhi),
            (c.SECRET_REF, self.secret_ref),
            (c.ACTION_TYPE, self.action_type),
            (c.POLICY_ID, self.policy_id),
            (c.APPROVAL_APPROVER_ID, self.approver),
            (c.OUTCOME, self.outcome),
        )
        return {key: value for key, value in pairs if value is not None}


@dataclasses.dataclass(frozen=True)
class Found:
    """Traces that matched, newest first, at most ``limit``; ``total`` counts every match seen,
    and ``capped`` says the source stopped looking (more may exist than ``total``)."""

    traces: list[list[SpanRecord]]
    total: int
    capped: bool = False

    @property
    def more(self) -> int:
        return self.total - len(self.traces)


class EvidenceSource(Protocol):
    description: str

    def trace(self, trace_id: str) -> list[SpanRecord]:
        """Every span of one trace (seals included); empty when the trace is unknown."""

    def traces(self, query: TraceQuery) -> Found:
        """Traces matching ``query``, newest first, at most ``query.limit`` of them."""

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

    # Heartbeats, closing seals and spans of no step (an MCP session's set-up) are no decisions;
    # a violation record stands for a decision held in quarantine.
    if not any(r.step or r.name == c.VIOLATION_SPAN_NAME for r in records):
        return False
    if query.service and not any(r.service_name == query.service for r in records):
        return False
    if query.start_ns is not None and not any(r.start_ns >= query.start_ns for r in records):
        return False
    if query.end_ns is not None and not any(r.start_ns <= query.end_ns for r in records):
        return False
    return all(any_attr(key, value) for key, value in query.attributes().items())


def newest_first(candidates: Iterable[list[SpanRecord]], query: TraceQuery, *, capped: bool = False) -> Found:
    found = [spans for spans in candidates if spans and matches(spans, query)]
    found.sort(key=lambda spans: min(r.start_ns for r in spans), reverse=True)
    return Found(found[: query.limit], len(found), capped)
