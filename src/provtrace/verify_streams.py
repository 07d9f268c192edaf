"""Whole streams: every seal's place in its stream's chain, then every trace, then the stream's
Merkle log and anchors (``provtrace.verify_log``).

Sequence numbers must run from 0 without gaps, each seal must carry the digest of the one before,
and a stream that did not close must have sealed within its heartbeat interval, or its tail may
have been cut; seals must be stored in sequence.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Iterable, Mapping, Sequence

from provtrace import conventions as c
from provtrace.integrity import SealBody
from provtrace.keyring import Keys
from provtrace.model import SpanRecord
from provtrace.scan import Entry
from provtrace.spanview import span_digest
from provtrace.verify import (
    BROKEN_CHAIN,
    CONFLICTING_COPY,
    ERROR,
    HEARTBEAT_GAP,
    INFO,
    NO_EVIDENCE,
    RECOVERED_EVIDENCE,
    REORDERED,
    SEQUENCE_GAP,
    STREAM_DIED,
    STREAM_LIVE,
    STREAM_START_MISSING,
    TRUNCATED_TAIL,
    UNFINISHED_DECISION,
    WARNING,
    Readings,
    Report,
    check_trace,
    exact,
)
from provtrace.verify_log import check_stream_log
from provtrace.verify_time import check_span_times, earliest_time_ns, elapsed_s


def verify_stream(
    records: Iterable[SpanRecord],
    keys: Keys,
    *,
    now_ns: int,
    order: Sequence[Sequence[str]] = (),
    readings: Readings = exact,
    kept: Sequence[object] = (),
) -> Report:
    """Everything: each stream's chain, log and anchors, then every trace. ``order`` lists seal
    span ids in the order they were stored (line order), one list per file: a file has one writer,
    so seals out of order within it were moved, while files of two writers (the archives of two
    gateways) interleave in no meaningful order; ``kept``
    holds checkpoints an auditor kept (``SignedCheckpoint``), which the archive must extend."""
    full: list[SpanRecord] = []
    entries: list[tuple[str, str, str, frozenset[str]]] = []
    spans: list[SpanRecord] = []
    for record in records:
        if record.is_seal or record.is_anchor:
            full.append(record)
        else:
            digests = frozenset(span_digest(r) for r in readings(record))
            entries.append((record.trace_id, record.span_id, record.name, digests))
            spans.append(record)
    return verify_evidence(
        entries, full, keys, now_ns=now_ns, order=order, readings=readings, kept=kept, timed=spans
    )


def verify_scanned(
    entries: Iterable[Entry],
    full: Sequence[SpanRecord],
    keys: Keys,
    *,
    now_ns: int,
    order: Sequence[Sequence[str]],
    kept: Sequence[object] = (),
    report: Report | None = None,
    checked: Mapping[str, bool] | None = None,
    timed: Iterable[SpanRecord] = (),
    dead: Mapping[str, str] | None = None,
) -> Report:
    """``verify_stream`` of an archive read by ``provtrace.scan`` (digests already computed;
    ``checked`` holds the seals already checked while reading, by span id; ``timed`` the spans
    whose times are checked, see ``verify_time.timed``; ``dead`` the streams known to have died
    elsewhere, with where that is known from)."""
    rows = ((e.trace_id, e.span_id, e.name, frozenset((e.digest,))) for e in entries)
    return verify_evidence(
        rows,
        full,
        keys,
        now_ns=now_ns,
        order=order,
        kept=kept,
        report=report,
        checked=checked,
        timed=timed,
        dead=dead,
    )


def verify_evidence(
    entries: Iterable[tuple[str, str, str, frozenset[str]]],
    full: Sequence[SpanRecord],
    keys: Keys,
    *,
    now_ns: int,
    order: Sequence[Sequence[str]] = (),
    readings: Readings = exact,
    kept: Sequence[object] = (),
    report: Report | None = None,
    checked: Mapping[str, bool] | None = None,
    timed: Iterable[SpanRecord] = (),
    dead: Mapping[str, str] | None = None,
) -> Report:
    report = report if report is not None else Report()
    by_trace: dict[str, dict[str, tuple[str, frozenset[str]]]] = collections.defaultdict(dict)
    for trace_id, span_id, name, digests in entries:
        by_trace[trace_id][span_id] = (name, digests)
    seals_by_trace: dict[str, list[SpanRecord]] = collections.defaultdict(list)
    streams: dict[str, list[SpanRecord]] = collections.defaultdict(list)
    anchors: list[SpanRecord] = []
    for record in full:
        if record.is_seal:
            seals_by_trace[record.trace_id].append(record)
            streams[record.attr_str(c.SEAL_STREAM) or ""].append(record)
        elif record.is_anchor:
            anchors.append(record)
    if not streams:
        report.add(NO_EVIDENCE, ERROR, "no seal found: there is no evidence here to verify")
    for trace_id in seals_by_trace.keys() | by_trace.keys():
        spans, seals = by_trace.get(trace_id, {}), seals_by_trace.get(trace_id, [])
        check_trace(trace_id, spans, seals, keys, report, readings, checked)
    died = _check_recoveries(streams, report, dead or {})
    chains = {
        stream: _check_chain(stream, seals, report, now_ns=now_ns, order=order, died=stream in died)
        for stream, seals in streams.items()
    }
    check_stream_log(chains, anchors, keys, report, kept=kept, now_ns=now_ns)
    check_span_times(timed, report)
    report.streams_checked = len(streams)
    return report


def _check_recoveries(
    streams: Mapping[str, Sequence[SpanRecord]], report: Report, dead: Mapping[str, str]
) -> set[str]:
    """Seals of evidence another process recovered from a dead stream's progress log: the dead
    stream is reported (its silence is a death, not a live stream) and so is every decision that
    started and never finished. ``dead`` adds streams known dead from elsewhere (a progress log
    nobody recovered yet). Returns the dead streams."""
    died: dict[str, str] = {}
    for stream, seals in sorted(streams.items()):
        for seal in seals:
            gone = seal.attr_str(c.SEAL_RECOVERED_FROM)
            if not gone:
                continue
            died.setdefault(gone, stream)
            reason = seal.attr_str(c.SEAL_REASON)
            last = seal.attr_str(c.SEAL_LAST_STEP) or "none recorded"
            covered = len(seal.attr_strings(c.SEAL_SPANS)) + len(seal.attr_strings(c.SEAL_WITHHELD))
            if reason == c.SEAL_REASON_UNFINISHED:
                report.add(
                    UNFINISHED_DECISION,
                    ERROR,
                    f"decision {seal.trace_id} of stream {gone} started and never finished (the "
                    f"process died); {covered} finished span(s) recovered; last step recorded: {last}",
                    trace_id=seal.trace_id,
                    span_id=seal.span_id,
                    stream=gone,
                )
            elif covered:
                report.add(
                    RECOVERED_EVIDENCE,
                    WARNING,
                    f"{covered} span(s) of trace {seal.trace_id} ended in stream {gone} but were "
                    f"sealed by {stream} after it died; last step: {last}",
                    trace_id=seal.trace_id,
                    span_id=seal.span_id,
                    stream=gone,
                )
    found = {stream: f"{by} recovered what its progress log held" for stream, by in died.items()}
    for stream, where in dead.items():
        found.setdefault(stream, where)
    for stream, how in sorted(found.items()):
        last_seq = max((SealBody.from_record(s).seq for s in streams.get(stream, ())), default=None)
        after = f"after seal #{last_seq}" if last_seq is not None else "before its first seal"
        report.add(
            STREAM_DIED,
            ERROR,
            f"stream {stream} died {after} without shutting down: its process was killed or crashed; {how}",
            stream=stream,
            seq=last_seq,
        )
    return set(found)


def _check_chain(
    stream: str,
    seals: list[SpanRecord],
    report: Report,
    *,
    now_ns: int,
    order: Sequence[Sequence[str]],
    died: bool = False,
) -> dict[int, tuple[SealBody, SpanRecord]]:
    """Sequence, chain links, heartbeats, the tail and storage order; returns the seals by seq."""
    bodies = sorted(((SealBody.from_record(s), s) for s in seals), key=lambda pair: pair[0].seq)
    by_seq: dict[int, tuple[SealBody, SpanRecord]] = {}
    for body, seal in bodies:
        if body.seq in by_seq and by_seq[body.seq][1].attr_str(c.SEAL_DIGEST) != seal.attr_str(c.SEAL_DIGEST):
            report.add(
                CONFLICTING_COPY,
                ERROR,
                f"two different seals claim #{body.seq}",
                stream=stream,
                seq=body.seq,
            )
        by_seq.setdefault(body.seq, (body, seal))
    sequence = sorted(by_seq)
    if sequence and sequence[0] != 0:
        report.add(
            STREAM_START_MISSING,
            ERROR,
            f"stream starts at seal #{sequence[0]}: seals #0-#{sequence[0] - 1} are missing",
            stream=stream,
            seq=sequence[0],
        )
    for earlier, later in itertools.pairwise(sequence):
        (before, before_seal), after = by_seq[earlier], by_seq[later][0]
        if later != earlier + 1:
            missing = (
                f"seal #{earlier + 1} is"
                if later == earlier + 2
                else f"seals #{earlier + 1}-#{later - 1} are"
            )
            report.add(
                SEQUENCE_GAP,
                ERROR,
                f"{missing} missing (deleted segments)",
                stream=stream,
                seq=earlier + 1,
            )
        elif after.prev != before_seal.attr_str(c.SEAL_DIGEST):
            report.add(
                BROKEN_CHAIN,
                ERROR,
                f"seal #{later} does not chain to seal #{earlier}",
                stream=stream,
                seq=later,
            )
        interval = before.heartbeat_interval_s
        gap_s = elapsed_s(before, after)
        if interval and gap_s > 2 * interval:
            report.add(
                HEARTBEAT_GAP,
                WARNING,
                f"{gap_s:.0f}s without a seal between #{earlier} and #{later} (heartbeat {interval:g}s)",
                stream=stream,
                seq=later,
            )
    if sequence and not died:  # a dead stream is reported as such, not as live or cut
        _check_tail([by_seq[seq][0] for seq in sequence], report, stream=stream, now_ns=now_ns)
    for stored_in_file in order:
        positions = {span_id: i for i, span_id in enumerate(stored_in_file)}
        stored = sorted(
            (positions[seal.span_id], body.seq) for body, seal in by_seq.values() if seal.span_id in positions
        )
        reordered = next(((a, b) for (_, a), (_, b) in itertools.pairwise(stored) if b < a), None)
        if reordered is not None:
            seq_a, seq_b = reordered
            report.add(
                REORDERED, ERROR, f"seal #{seq_b} is stored after seal #{seq_a}", stream=stream, seq=seq_b
            )
            break
    return by_seq


def _check_tail(bodies: Sequence[SealBody], report: Report, *, stream: str, now_ns: int) -> None:
    """A stream that did not close is live only if its last seal is recent by the time that
    really passed (the monotonic clock of its run), and not dated after the verification."""
    last = bodies[-1]
    if last.reason == c.SEAL_REASON_CLOSE and not last.spans and not last.withheld:
        return
    interval = last.heartbeat_interval_s
    age_s = (now_ns - earliest_time_ns(bodies)) / 1e9
    where = {"stream": stream, "seq": last.seq}
    if interval and age_s > 2 * interval:
        report.add(
            TRUNCATED_TAIL,
            ERROR,
            f"stream ends at seal #{last.seq}, {age_s:.0f}s ago, without a closing seal and "
            f"with no heartbeat since (every {interval:g}s): its tail was cut "
            "or the emitter stopped without shutting down",
            **where,
        )
    elif interval and -age_s > 2 * interval:
        report.add(
            TRUNCATED_TAIL,
            ERROR,
            f"stream ends at seal #{last.seq} without a closing seal, dated {-age_s:.0f}s after the "
            "time of verification: nothing shows its emitter is still alive",
            **where,
        )
    else:
        report.add(STREAM_LIVE, INFO, f"stream is live (last seal #{last.seq})", **where)
