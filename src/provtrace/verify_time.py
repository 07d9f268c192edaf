"""Time and keys: the agent's clock against itself and the TSA's, the TSA's against the order of
the checkpoints, and each signing key's validity period and revocation.

The agent's clock is evidence only as far as nothing contradicts it; a trusted time-stamp is
evidence of when a checkpoint (and through the chain every seal before it) existed, which is what
decides whether a seal signed by a key revoked since is still to be trusted.
"""

from __future__ import annotations

from collections.abc import Mapping

from provtrace import conventions as c
from provtrace.checkpoint import origin_of
from provtrace.integrity import SealBody
from provtrace.keyring import Keys, iso
from provtrace.model import SpanRecord
from provtrace.timestamp import Stamp
from provtrace.verify import (
    CLOCK_BACKWARDS,
    CLOCK_SKEW,
    ERROR,
    INFO,
    KEY_OUT_OF_PERIOD,
    REVOKED_KEY,
    TIMESTAMP_BACKWARDS,
    WARNING,
    Report,
)

SKEW_TOLERANCE_NS = 2 * 10**9
Chain = Mapping[int, tuple[SealBody, SpanRecord]]


def check_clocks(stream: str, chain: Chain, stamps: Mapping[tuple[str, int], Stamp], report: Report) -> None:
    """The agent's clock must not run backwards nor ahead of the TSA's; the TSA's must not run
    backwards. Each is reported once per stream, and times after it are not to be trusted."""
    origin = origin_of(stream)
    previous: SealBody | None = None
    last_stamp: tuple[int, Stamp] | None = None
    reported: set[str] = set()
    for seq in sorted(chain):
        body = chain[seq][0]
        if (
            previous is not None
            and body.time_unix_nano < previous.time_unix_nano
            and CLOCK_BACKWARDS not in reported
        ):
            reported.add(CLOCK_BACKWARDS)
            report.add(
                CLOCK_BACKWARDS,
                WARNING,
                f"the agent's clock went back {(previous.time_unix_nano - body.time_unix_nano) / 1e9:.3f}s "
                f"between seal #{previous.seq} and #{seq}: seal times from here on are not trusted"
                + ("; the time-stamps are" if stamps else ""),
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
