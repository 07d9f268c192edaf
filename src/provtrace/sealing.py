"""One segment in, one sealed archive line out: check, apply the mode, seal.

Pure apart from the quarantine it is given: no threads, no queues, no spool, so every verdict
and every seal can be unit-tested directly. The pipeline's sealer thread calls it for each
segment, release and heartbeat, and applies the counts and the report it returns.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
from collections.abc import Callable, Mapping, Sequence

from provtrace import conventions as c
from provtrace.integrity import Sealer, random_span_id, random_trace_id
from provtrace.model import AttrValue, SpanRecord
from provtrace.otlpjson import dumps_line
from provtrace.records import Segment, end_after
from provtrace.rules import Rule, SegmentContext, Violation, evaluate

logger = logging.getLogger("provtrace")


@dataclasses.dataclass(frozen=True)
class ViolationReport:
    """What the violation handler receives: ids and codes, never content."""

    trace_id: str
    codes: tuple[str, ...]
    violations: tuple[Violation, ...]
    quarantine_id: str
    mode: str


ViolationHandler = Callable[[ViolationReport], None]
# Keeps an incomplete segment out of the stream (enforce mode); returns its quarantine id, or ""
# when it could not be kept (the segment is then forwarded with its verdict instead).
Quarantiner = Callable[[Segment, Sequence[Violation]], str]


@dataclasses.dataclass(frozen=True)
class Verdicts:
    """How segments are judged: the completeness mode, the profile, and the user's rules."""

    completeness: str = c.MODE_ENFORCE
    profile: str = c.PROFILE_BASELINE
    rules: tuple[Rule, ...] = ()


@dataclasses.dataclass(frozen=True)
class Anchor:
    """A seal's signed checkpoint, to be written beside the archive and time-stamped."""

    stream: str
    seq: int
    note: str
    trace_id: str
    span_id: str  # of the checkpoint span


@dataclasses.dataclass
class Sealed:
    """A sealed archive line and what sealing it counted, reported and learned."""

    line: str
    spans: int  # every span record in the line, the seal (and its checkpoint) included
    counts: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    report: ViolationReport | None = None
    failed_rules: tuple[str, ...] = ()
    anchor: Anchor | None = None


def seal_segment(
    segment: Segment,
    *,
    verdicts: Verdicts,
    sealer: Sealer,
    quarantine: Quarantiner,
    resource: Mapping[str, AttrValue],
    now_ns: int,
) -> Sealed:
    """Check the segment against the completeness contract, apply the mode and seal it."""
    counts: collections.Counter[str] = collections.Counter(spans_processed=len(segment.records))
    violations: list[Violation] = []
    failed: list[str] = []
    if verdicts.completeness == c.MODE_OFF:
        completeness = c.COMPLETENESS_UNCHECKED
        counts["segments_unchecked"] += 1
    else:
        ctx = SegmentContext(
            trace_id=segment.trace_id,
            records=segment.records,
            profile=verdicts.profile,
            reason=segment.reason,
            open_span_ids=segment.open_span_ids,
            earlier=segment.earlier,
            known_ids=segment.known_ids,
            leaks=segment.leaks,
            losses=segment.losses,
        )
        violations, failed = evaluate(ctx, verdicts.rules)
        counts["rule_errors"] += len(failed)
        counts["segments_checked"] += 1
        completeness = c.COMPLETENESS_INCOMPLETE if violations else c.COMPLETENESS_COMPLETE
        counts["segments_incomplete" if violations else "segments_complete"] += 1
    codes = tuple(sorted({v.code for v in violations}))
    forwarded: list[SpanRecord] = list(segment.records)
    withheld: list[SpanRecord] = []
    report = None
    if violations:
        quarantine_id = ""
        if verdicts.completeness == c.MODE_ENFORCE:
            quarantine_id = quarantine(segment, violations)
            if quarantine_id:
                counts["segments_quarantined"] += 1
                forwarded, withheld = [], list(segment.records)
            else:
                counts["recording_errors"] += 1
        forwarded.append(violation_record(segment, violations, quarantine_id, resource, now_ns))
        report = ViolationReport(
            segment.trace_id, codes, tuple(violations), quarantine_id, verdicts.completeness
        )
    sealed = _sealed(
        sealer,
        forwarded,
        now_ns=now_ns,
        trace_id=segment.trace_id,
        parent_span_id=segment.root_span_id if not withheld else "",
        withheld=withheld,
        completeness=completeness,
        violations=codes,
        reason=segment.reason,
        open_spans=segment.open_span_ids,
        extra=segment.seal_attributes,
    )
    sealed.counts.update(counts)
    sealed.report = report
    sealed.failed_rules = tuple(failed)
    return sealed


def seal_release(
    records: Sequence[SpanRecord], codes: Sequence[str], *, sealer: Sealer, now_ns: int
) -> Sealed:
    """A released quarantine segment: forwarded unchanged with its original verdict."""
    return _sealed(
        sealer,
        records,
        now_ns=now_ns,
        trace_id=records[0].trace_id,
        parent_span_id="",
        completeness=c.COMPLETENESS_INCOMPLETE if codes else c.COMPLETENESS_COMPLETE,
        violations=tuple(codes),
        reason=c.SEAL_REASON_RELEASE,
    )


def seal_heartbeat(reason: str, *, sealer: Sealer, now_ns: int) -> Sealed:
    """A seal covering no spans: a heartbeat while idle, or the stream's closing seal."""
    sealed = _sealed(
        sealer,
        (),
        now_ns=now_ns,
        trace_id=random_trace_id(),
        parent_span_id="",
        completeness=c.COMPLETENESS_UNCHECKED,
        violations=(),
        reason=reason,
    )
    sealed.counts.update(heartbeats=1)
    return sealed


def _sealed(sealer: Sealer, records: Sequence[SpanRecord], *, now_ns: int, **seal: object) -> Sealed:
    errors, steps_back, steps_forward = (
        sealer.signing_errors,
        sealer.clock_steps_back,
        sealer.clock_steps_forward,
    )
    record = sealer.seal(spans=records, now_ns=now_ns, **seal)  # type: ignore[arg-type]
    counts = collections.Counter(
        seals=1,
        signing_errors=sealer.signing_errors - errors,
        clock_steps_back=sealer.clock_steps_back - steps_back,
        clock_steps_forward=sealer.clock_steps_forward - steps_forward,
    )
    note = sealer.checkpoint_note(record)
    if note is None:
        return Sealed(dumps_line([*records, record]), len(records) + 1, counts)
    checkpoint = checkpoint_span(record, note)
    counts["checkpoints"] += 1
    anchor = Anchor(sealer.stream_id, record.attr_int(c.SEAL_SEQ), note, record.trace_id, checkpoint.span_id)
    return Sealed(dumps_line([*records, record, checkpoint]), len(records) + 2, counts, anchor=anchor)


def checkpoint_span(seal: SpanRecord, note: str) -> SpanRecord:
    """The checkpoint of a seal, exported beside it (in its trace, as its child)."""
    return SpanRecord(
        trace_id=seal.trace_id,
        span_id=random_span_id(),
        parent_span_id=seal.span_id,
        name=c.CHECKPOINT_SPAN_NAME,
        start_ns=seal.start_ns,
        end_ns=seal.end_ns,
        attributes={c.CHECKPOINT_NOTE: note},
        resource=seal.resource,
        scope_name=c.INSTRUMENTATION_NAME,
    )


def violation_record(
    segment: Segment,
    violations: Sequence[Violation],
    quarantine_id: str,
    resource: Mapping[str, AttrValue],
    now_ns: int,
) -> SpanRecord:
    """The content-free record of an incomplete segment that is forwarded in its place, so the
    gap is visible centrally: codes, details (ids and attribute names only), quarantine id."""
    decision_ids = sorted(
        {str(r.attributes[c.DECISION_ID]) for r in segment.records if c.DECISION_ID in r.attributes}
    )
    codes = tuple(sorted({v.code for v in violations}))
    attributes: dict[str, AttrValue] = {
        c.VIOLATION_CODES: codes,
        c.VIOLATION_DETAILS: tuple(json.dumps(v.detail, sort_keys=True) for v in violations),
        c.VIOLATION_QUARANTINE_ID: quarantine_id,
        c.VIOLATION_SPAN_COUNT: len(segment.records),
        c.SEAL_REASON: segment.reason,
    }
    if decision_ids:
        attributes[c.DECISION_ID] = decision_ids[0]
    return SpanRecord(
        trace_id=segment.trace_id,
        span_id=random_span_id(),
        name=c.VIOLATION_SPAN_NAME,
        start_ns=now_ns,
        end_ns=end_after(now_ns, now_ns),
        status_code=2,
        status_message="incomplete provenance: " + ", ".join(codes),
        attributes=attributes,
        resource=dict(resource),
        scope_name=c.INSTRUMENTATION_NAME,
    )
