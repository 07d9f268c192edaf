"""Recompute every digest, seal, signature and chain link, and name exactly what is wrong.

Per trace: each span must be covered by a seal whose digest and signature hold, and must hash to
the digest that seal recorded; spans the seals name must all be present. Per stream (the archive):
sequence numbers must run from 0 without gaps, each seal must carry the digest of the one before,
and a stream that did not close must have sealed within its heartbeat interval, or its tail may
have been cut. Whole streams are checked by ``provtrace.verify_streams``; the Merkle log, checkpoints,
time-stamps and key periods by ``provtrace.verify_log``.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence

from provtrace import conventions as c
from provtrace.integrity import SealBody, covered, seal_digest, seal_payload, signed_message, span_digest
from provtrace.keyring import Keys
from provtrace.model import SpanRecord
from provtrace.sigcheck import SignatureChecks

__all__ = ["Keys"]  # re-exported: the trusted keys travel with every verification

ERROR = "error"
WARNING = "warning"
INFO = "info"

# Finding kinds (stable names, used in --format json).
ALTERED_SPAN = "altered_span"
MISSING_SPAN = "missing_span"
ADDED_SPAN = "added_span"
ALTERED_SEAL = "altered_seal"
BAD_SIGNATURE = "bad_signature"
UNKNOWN_KEY = "unknown_key"
UNSIGNED = "unsigned_seal"
BROKEN_CHAIN = "broken_chain"
SEQUENCE_GAP = "sequence_gap"
STREAM_START_MISSING = "stream_start_missing"
HEARTBEAT_GAP = "heartbeat_gap"
TRUNCATED_TAIL = "truncated_tail"
REORDERED = "reordered"
CONFLICTING_COPY = "conflicting_copy"
UNREADABLE_LINE = "unreadable_line"
PARTIAL = "partial_check"
UNSEALED = "unsealed_trace"
WITHHELD = "withheld_spans"
INCOMPLETE = "incomplete_evidence"
STREAM_LIVE = "stream_live"
SIGNATURES_UNCHECKED = "signatures_unchecked"
NO_EVIDENCE = "no_evidence"
TREE_MISMATCH = "tree_mismatch"
NO_MERKLE_LOG = "no_merkle_log"
ALTERED_CHECKPOINT = "altered_checkpoint"
BAD_TIMESTAMP = "bad_timestamp"
TIMESTAMPS_UNCHECKED = "timestamps_unchecked"
CLOCK_BACKWARDS = "clock_backwards"
CLOCK_SKEW = "clock_skew"
TIMESTAMP_BACKWARDS = "timestamp_backwards"
REVOKED_KEY = "revoked_key"
KEY_OUT_OF_PERIOD = "key_out_of_period"
REWRITTEN_HISTORY = "rewritten_history"
FORKED_HISTORY = "forked_history"
EXTENDED_AFTER_END = "extended_after_end"
NOT_IN_LOG = "not_in_log"
PROOF_UNAVAILABLE = "proof_unavailable"
CLOCK_AHEAD = "clock_ahead"
CLOCK_CONTRADICTS_SEQUENCE = "clock_contradicts_sequence"
END_BEFORE_START = "end_before_start"
ACTION_BEFORE_APPROVAL = "action_before_approval"
# Findings that leave the content verified but its times untrusted (the verdict says so).
TIME_WARNINGS = frozenset(
    {CLOCK_BACKWARDS, CLOCK_SKEW, CLOCK_AHEAD, END_BEFORE_START, ACTION_BEFORE_APPROVAL}
)
STREAM_DIED = "stream_died"
UNFINISHED_DECISION = "unfinished_decision"
RECOVERED_EVIDENCE = "recovered_evidence"
DUPLICATE_COPIES = "duplicate_copies"


@dataclasses.dataclass(frozen=True)
class Finding:
    kind: str
    severity: str
    message: str
    trace_id: str = ""
    span_id: str = ""
    stream: str = ""
    seq: int | None = None


@dataclasses.dataclass
class Report:
    findings: list[Finding] = dataclasses.field(default_factory=list)
    unsigned: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    spans_checked: int = 0
    seals_checked: int = 0
    streams_checked: int = 0
    checkpoints_checked: int = 0
    timestamps_checked: int = 0
    checks: SignatureChecks | None = None

    def signature_checks(self, keys: Keys, *, parallel: bool = False) -> SignatureChecks:
        if self.checks is None:
            self.checks = SignatureChecks(keys.by_id, parallel=parallel)
        return self.checks

    @property
    def ok(self) -> bool:
        return not any(f.severity == ERROR for f in self.findings)

    def add(self, kind: str, severity: str, message: str, **where: object) -> None:
        self.findings.append(Finding(kind, severity, message, **where))  # type: ignore[arg-type]

    def finish(self, keys: Keys) -> Report:
        """Summarise unsigned seals per stream (one line, not one per seal), and say when no
        signature was checked: without a trusted key nothing proves who sealed the evidence, so
        that is a finding, never a pass."""
        if self.checks is not None:
            self.checks.finish()
        if not keys.given and self.seals_checked:
            self.add(
                SIGNATURES_UNCHECKED,
                ERROR,
                "signatures were not checked: no trusted public key was given (--public-key FILE); "
                "digests and the hash chain alone can be recomputed by whoever edited the evidence",
            )
        for stream, seqs in sorted(self.unsigned.items()):
            self.add(
                UNSIGNED,
                WARNING,
                f"{len(seqs)} seal(s) are unsigned: only the hash chain protects them "
                "(configure a signing key, then verify with --public-key)",
                stream=stream,
            )
        self.unsigned.clear()
        return self

    def as_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "spans_checked": self.spans_checked,
            "seals_checked": self.seals_checked,
            "streams_checked": self.streams_checked,
            "checkpoints_checked": self.checkpoints_checked,
            "timestamps_checked": self.timestamps_checked,
            "findings": [dataclasses.asdict(f) for f in self.findings],
        }


Readings = Callable[[SpanRecord], Iterable[SpanRecord]]
"""The ways a record read back may have looked when it was sealed: itself for sources that keep
every field and type (the archive, Jaeger v3); every typing of its ambiguous values for Jaeger's
lossy v1 API. A record verifies when one reading matches what was sealed."""


def exact(record: SpanRecord) -> Iterable[SpanRecord]:
    return (record,)


def check_seal(seal: SpanRecord, keys: Keys, report: Report, *, readings: Readings = exact) -> bool:
    """Digest and signature of one seal. Returns whether its body is intact (so the span digests
    it lists can be compared); signature problems are reported but do not hide those."""
    body = SealBody.from_record(seal)
    where = {
        "trace_id": seal.trace_id,
        "span_id": seal.span_id,
        "stream": body.stream,
        "seq": body.seq,
    }
    report.seals_checked += 1
    stored = seal.attr_str(c.SEAL_DIGEST)
    reading = next((r for r in readings(seal) if seal_digest(r) == stored), None)
    if reading is None:
        report.add(
            ALTERED_SEAL,
            ERROR,
            f"seal #{body.seq} of {body.stream} does not match its digest",
            **where,
        )
        return False
    signature = seal.attr_str(c.SEAL_SIGNATURE) or ""
    if not signature:
        if keys.given:
            report.add(UNSIGNED, ERROR, f"seal #{body.seq} of {body.stream} is unsigned", **where)
        else:
            report.unsigned.setdefault(body.stream, []).append(body.seq)
        return True
    if not keys.given:
        return True
    if body.key_id not in keys.by_id:
        report.add(UNKNOWN_KEY, ERROR, f"seal #{body.seq} is signed by unknown key {body.key_id}", **where)
        return True
    # Seals with a tree head sign their checkpoint (which names the seal's digest); the seals of
    # archives written before the Merkle log signed their payload.
    message = signed_message(reading) if body.tree_size >= 0 else seal_payload(reading)
    report.signature_checks(keys).add(
        message,
        signature,
        body.key_id,
        lambda: report.add(
            BAD_SIGNATURE, ERROR, f"seal #{body.seq} of {body.stream}: signature does not verify", **where
        ),
    )
    return True


Sighted = Mapping[str, tuple[str, frozenset[str]]]
"""The spans of a trace as verification sees them: span id -> (name, every digest it may have)."""


def verify_trace(
    trace_id: str,
    records: Sequence[SpanRecord],
    keys: Keys,
    *,
    readings: Readings = exact,
    report: Report | None = None,
) -> Report:
    report = report if report is not None else Report()
    seals = [r for r in records if r.is_seal]
    anchors = [r for r in records if r.is_anchor]
    spans = {
        r.span_id: (r.name, frozenset(span_digest(x) for x in readings(r)))
        for r in records
        if not r.is_seal and not r.is_anchor
    }
    check_trace(trace_id, spans, seals, keys, report, readings)
    if seals:
        from provtrace.verify_log import check_trace_anchors
        from provtrace.verify_time import check_span_times

        check_trace_anchors(seals, anchors, keys, report)
        check_span_times((r for r in records if not r.is_seal and not r.is_anchor), report)
    return report


def check_trace(
    trace_id: str,
    spans: Sighted,
    seals: Sequence[SpanRecord],
    keys: Keys,
    report: Report,
    readings: Readings,
    checked: Mapping[str, bool] | None = None,
) -> None:
    if not seals:
        report.add(UNSEALED, ERROR, f"no seal covers trace {trace_id}", trace_id=trace_id)
        return
    # Every digest any intact seal gives for a span id: they must all agree (a released
    # quarantine segment is covered by its original seal, as withheld, and by the release seal).
    sealed: dict[str, set[str]] = collections.defaultdict(set)
    withheld: dict[str, set[str]] = collections.defaultdict(set)
    for seal in seals:
        intact = checked.get(seal.span_id) if checked is not None else None
        if intact is None:
            intact = check_seal(seal, keys, report, readings=readings)
        if not intact:
            continue
        for span_id, digest in covered(seal.attr_strings(c.SEAL_SPANS)).items():
            sealed[span_id].add(digest)
        for span_id, digest in covered(seal.attr_strings(c.SEAL_WITHHELD)).items():
            withheld[span_id].add(digest)
        if seal.attr_str(c.SEAL_COMPLETENESS) == c.COMPLETENESS_INCOMPLETE:
            report.add(
                INCOMPLETE,
                INFO,
                "sealed as incomplete: " + ", ".join(seal.attr_strings(c.SEAL_VIOLATIONS)),
                trace_id=trace_id,
                span_id=seal.span_id,
            )
    for span_id, (name, digests) in spans.items():
        report.spans_checked += 1
        expected = sealed.get(span_id, set()) | withheld.get(span_id, set())
        if not expected:
            report.add(
                ADDED_SPAN,
                ERROR,
                f"span {span_id} ({name}) is not covered by any seal",
                trace_id=trace_id,
                span_id=span_id,
            )
        elif len(expected) > 1 or not expected <= digests:
            report.add(
                ALTERED_SPAN,
                ERROR,
                f"span {span_id} ({name}) differs from what was sealed"
                + (" (its seals disagree)" if len(expected) > 1 else ""),
                trace_id=trace_id,
                span_id=span_id,
            )
    for span_id in sealed.keys() - spans.keys():
        report.add(
            MISSING_SPAN,
            ERROR,
            f"span {span_id} was sealed but is missing",
            trace_id=trace_id,
            span_id=span_id,
        )
    held_back = withheld.keys() - spans.keys()
    if held_back:
        report.add(
            WITHHELD,
            INFO,
            f"{len(held_back)} span(s) were quarantined at the source and have not been released",
            trace_id=trace_id,
        )
