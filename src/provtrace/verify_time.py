"""Time and keys: the agent's clock against itself and the TSA's, the TSA's against the order of
the checkpoints, and each signing key's validity period and revocation.

The agent's clock is evidence only as far as nothing contradicts it; a trusted time-stamp is
evidence of when a checkpoint (and through the chain every seal before it) existed, which is what
decides whether a seal signed by a key revoked since is still to be trusted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from provtrace import conventions as c
from provtrace.checkpoint import origin_of
from provtrace.clock import Reading
from provtrace.integrity import CLOCK_STEP_TOLERANCE_NS, SealBody
from provtrace.keyring import Keys, iso
from provtrace.model import SpanRecord
from provtrace.timestamp import Stamp
from provtrace.verify import (
    ACTION_BEFORE_APPROVAL,
    CLOCK_AHEAD,
    CLOCK_BACKWARDS,
    CLOCK_CONTRADICTS_SEQUENCE,
    CLOCK_SKEW,
    END_BEFORE_START,
    ERROR,
    INFO,
    KEY_OUT_OF_PERIOD,
    REVOKED_KEY,
    TIMESTAMP_BACKWARDS,
    WARNING,
    Report,
)

SKEW_TOLERANCE_NS = CLOCK_STEP_TOLERANCE_NS
Chain = Mapping[int, tuple[SealBody, SpanRecord]]


def elapsed_s(before: SealBody, after: SealBody) -> float:
    """Seconds between two seals: by their monotonic readings when both are of one process run
    (a stepped wall clock does not count), else by their wall times."""
    mono = before.clock.elapsed_ns(after.clock) if before.clock is not None else None
    return (mono if mono is not None else after.time_unix_nano - before.time_unix_nano) / 1e9


def earliest_time_ns(bodies: Sequence[SealBody]) -> int:
    """The earliest wall time the last of these seals (in sequence order) can have been issued
    at: its own, or an earlier seal's of the same run plus the time that really passed since. A
    wall clock stepped forward cannot make a stream that stopped look recent."""
    last = bodies[-1]
    estimate = last.time_unix_nano
    for body in bodies:
        mono = body.clock.elapsed_ns(last.clock) if body.clock is not None else None
        if mono is not None and mono >= 0:
            estimate = min(estimate, body.time_unix_nano + mono)
    return estimate


def check_clocks(
    stream: str,
    chain: Chain,
    stamps: Mapping[tuple[str, int], Stamp],
    report: Report,
    *,
    now_ns: int | None = None,
) -> None:
    """The agent's clock must not run backwards, ahead of the TSA's or ahead of the time of
    verification; the TSA's must not run backwards; seals of one run must have been issued in
    sequence order by the monotonic clock. Each is reported once per stream."""
    origin = origin_of(stream)
    previous: SealBody | None = None
    last_stamp: tuple[int, Stamp] | None = None
    reported: set[str] = set()
    for seq in sorted(chain):
        body = chain[seq][0]
        if previous is not None:
            _check_step(stream, previous, body, bool(stamps), report, reported)
        ahead = now_ns is not None and body.time_unix_nano > now_ns + SKEW_TOLERANCE_NS
        if now_ns is not None and ahead and CLOCK_AHEAD not in reported:
            reported.add(CLOCK_AHEAD)
            report.add(
                CLOCK_AHEAD,
                WARNING,
                f"seal #{seq} claims {iso(body.time_unix_nano)}, "
                f"{(body.time_unix_nano - now_ns) / 1e9:.0f}s after the time of verification "
                f"({iso(now_ns)}): the agent's clock ran ahead; its times are not trusted",
                stream=stream,
                seq=seq,
            )
        previous = body
        stamp = stamps.get((origin, seq))
        if stamp is None:
            continue
        slack = stamp.accuracy_ns + SKEW_TOLERANCE_NS
        if body.time_unix_nano > stamp.gen_time_ns + slack and CLOCK_SKEW not in reported:
            reported.add(CLOCK_SKEW)
            report.add(
                CLOCK_SKEW,
                WARNING,
                f"seal #{seq} claims {iso(body.time_unix_nano)}, but the TSA stamped its checkpoint at "
                f"{iso(stamp.gen_time_ns)}: the agent's clock ran ahead; its times are not trusted",
                stream=stream,
                seq=seq,
            )
        if last_stamp is not None and stamp.gen_time_ns + slack < last_stamp[1].gen_time_ns:
            report.add(
                TIMESTAMP_BACKWARDS,
                ERROR,
                f"checkpoint #{seq} was stamped at {iso(stamp.gen_time_ns)}, before checkpoint "
                f"#{last_stamp[0]} ({iso(last_stamp[1].gen_time_ns)}): the time-stamps contradict the order",
                stream=stream,
                seq=seq,
            )
        last_stamp = (seq, stamp)


def _check_step(
    stream: str, previous: SealBody, body: SealBody, stamped: bool, report: Report, reported: set[str]
) -> None:
    """Two consecutive seals: the monotonic clock tells a stepped wall clock (it went on) from
    seals that were not issued in this order (it went back, which the sealer cannot do)."""
    mono = previous.clock.elapsed_ns(body.clock) if previous.clock is not None else None
    where = {"stream": stream, "seq": body.seq}
    if mono is not None and mono < 0:
        report.add(
            CLOCK_CONTRADICTS_SEQUENCE,
            ERROR,
            f"seal #{body.seq} was issued {-mono / 1e9:.3f}s before seal #{previous.seq} by the "
            "monotonic clock of the same process run: the seals were not made in this order",
            **where,
        )
        return
    back_s = (previous.time_unix_nano - body.time_unix_nano) / 1e9
    ahead_s = -back_s - mono / 1e9 if mono is not None else 0.0
    if mono is not None and ahead_s > SKEW_TOLERANCE_NS / 1e9 and CLOCK_AHEAD not in reported:
        reported.add(CLOCK_AHEAD)
        report.add(
            CLOCK_AHEAD,
            WARNING,
            f"the agent's wall clock jumped {ahead_s:.3f}s ahead between seal #{previous.seq} and "
            f"#{body.seq} (the monotonic clock went on {mono / 1e9:.3f}s): seal times from here on "
            "are not trusted",
            **where,
        )
    if back_s <= 0 or CLOCK_BACKWARDS in reported:
        return
    reported.add(CLOCK_BACKWARDS)
    cause = (
        f"the wall clock was set back {back_s + mono / 1e9:.3f}s (the monotonic clock went on "
        f"{mono / 1e9:.3f}s)"
        if mono is not None
        else "no monotonic reading of one process run tells a stepped clock from a reordering"
    )
    report.add(
        CLOCK_BACKWARDS,
        WARNING,
        f"the agent's clock went back {back_s:.3f}s between seal #{previous.seq} and #{body.seq}: "
        f"{cause}; seal times from here on are not trusted" + ("; the time-stamps are" if stamped else ""),
        **where,
    )


def check_key_periods(
    stream: str,
    chain: Chain,
    stamps: Mapping[tuple[str, int], Stamp],
    keys: Keys,
    report: Report,
    *,
    whole_stream: bool,
) -> None:
    """Seals dated outside their key's validity; seals by a revoked key not proven older than
    the revocation by a time-stamp (of their checkpoint or, through the chain, a later one)."""
    origin = origin_of(stream)
    proven: int | None = None
    for seq in sorted(chain, reverse=True):
        body, seal = chain[seq]
        stamp = stamps.get((origin, seq))
        if stamp is not None and (proven is None or stamp.gen_time_ns < proven):
            proven = stamp.gen_time_ns
        bound = proven if whole_stream else (stamp.gen_time_ns if stamp is not None else None)
        entry = keys.entries.get(body.key_id)
        if entry is None or not seal.attr_str(c.SEAL_SIGNATURE):
            continue
        where = {"trace_id": seal.trace_id, "span_id": seal.span_id, "stream": stream, "seq": seq}
        problem = entry.period_problem(body.time_unix_nano)
        if problem:
            report.add(KEY_OUT_OF_PERIOD, ERROR, f"seal #{seq} is {problem}", **where)
        if entry.revoked_at_ns is None:
            continue
        if bound is not None and bound < entry.revoked_at_ns:
            report.add(
                REVOKED_KEY,
                INFO,
                f"seal #{seq} is signed by key {entry.key_id}, revoked at {iso(entry.revoked_at_ns)}, "
                f"but a time-stamp proves it existed at {iso(bound)}",
                **where,
            )
        else:
            report.add(
                REVOKED_KEY,
                ERROR,
                f"seal #{seq} is signed by key {entry.key_id}, revoked at {iso(entry.revoked_at_ns)}, and no "
                "trusted time-stamp proves it was signed before the revocation",
                **where,
            )


def timed(record: SpanRecord) -> bool:
    """Whether ``check_span_times`` needs this span: an action or approval, or a span the wall
    clock ended before it started."""
    return (
        record.step in (c.STEP_ACTION, c.STEP_APPROVAL)
        or c.CLOCK_END_BEFORE_START in record.attributes
        or record.end_ns < record.start_ns
    )


def check_span_times(records: Iterable[SpanRecord], report: Report) -> None:
    """Spans that end before they start, and actions stamped before the approval they rely on.
    A stepped wall clock the monotonic readings explain leaves the times untrusted (a warning);
    an action that by every clock started before its approval contradicts its authorisation."""
    spans = {(r.trace_id, r.span_id): r for r in records if timed(r)}
    for record in spans.values():
        where = {"trace_id": record.trace_id, "span_id": record.span_id}
        inverted = record.attributes.get(c.CLOCK_END_BEFORE_START)
        back_ns = inverted if isinstance(inverted, int) else record.start_ns - record.end_ns
        if back_ns > 0:
            report.add(
                END_BEFORE_START,
                WARNING,
                f"span {record.span_id} ({record.name}) ended {back_ns / 1e9:.3f}s before it started: "
                "the wall clock was set back while it ran; its times are not trusted",
                **where,
            )
        if record.step != c.STEP_ACTION:
            continue
        for link in record.links_of(c.LINK_APPROVED_BY):
            approval = spans.get((link.trace_id, link.span_id))
            if approval is not None and approval.step == c.STEP_APPROVAL:
                _check_approval_time(record, approval, report)


def _check_approval_time(action: SpanRecord, approval: SpanRecord, report: Report) -> None:
    before_s = (approval.start_ns - action.start_ns) / 1e9
    where = {"trace_id": action.trace_id, "span_id": action.span_id}
    given = Reading.of(approval.attributes, c.CLOCK_RUN, c.CLOCK_MONOTONIC)
    mono = given.elapsed_ns(Reading.of(action.attributes, c.CLOCK_RUN, c.CLOCK_MONOTONIC)) if given else None
    if before_s <= 0:
        _check_approval_age(action, approval, -before_s, mono, report)
        return
    stamped = f"action {action.span_id} is stamped {before_s:.3f}s before its approval {approval.span_id}"
    if mono is not None and mono >= 0:
        report.add(
            ACTION_BEFORE_APPROVAL,
            WARNING,
            f"{stamped}, but the monotonic clock shows the approval came {mono / 1e9:.3f}s first: the "
            "wall clock was set back between them; their times are not trusted",
            **where,
        )
    elif action.attributes.get(c.OUTCOME) == c.OUTCOME_REFUSED:
        report.add(
            ACTION_BEFORE_APPROVAL,
            WARNING,
            f"{stamped}; the guard refused it, so nothing ran on that approval",
            **where,
        )
    else:
        report.add(
            ACTION_BEFORE_APPROVAL,
            ERROR,
            f"{stamped}, and no monotonic reading of one process run shows otherwise: the approval "
            "cannot have authorised it",
            **where,
        )


def _check_approval_age(
    action: SpanRecord, approval: SpanRecord, after_s: float, mono: int | None, report: Report
) -> None:
    """An action stamped much later after its approval than the monotonic clock measured: the
    wall clock jumped ahead between them (and the approval's age was judged by the latter)."""
    if mono is None or after_s - mono / 1e9 <= SKEW_TOLERANCE_NS / 1e9:
        return
    report.add(
        CLOCK_AHEAD,
        WARNING,
        f"action {action.span_id} is stamped {after_s:.3f}s after its approval {approval.span_id}, but "
        f"the monotonic clock shows {mono / 1e9:.3f}s passed: the wall clock jumped ahead between them; "
        "their times are not trusted (the approval's age is the monotonic one)",
        trace_id=action.trace_id,
        span_id=action.span_id,
    )
