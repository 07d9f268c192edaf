"""A wall clock stepped back or forward, on an injected clock (no sleeps): seals carry monotonic
readings, verify tells a stepped clock from reordering and judges heartbeats and tails by the
time that really passed, and the guard and the rules judge approvals by elapsed time."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import provtrace
from provtrace import clock
from provtrace import conventions as c
from provtrace.authorization import ActionEvidence, ApprovalEvidence, approval_problems, remaining_s
from provtrace.cli.verify import verdict
from provtrace.integrity import SealBody, Sealer, key_id_of, random_span_id, random_trace_id
from provtrace.keyring import Keys, TrustedKey
from provtrace.model import AttrValue, LinkRecord, SpanRecord
from provtrace.rules import SegmentContext, evaluate
from provtrace.verify import Report, verify_trace
from provtrace.verify_streams import verify_stream
from tests.conftest import Recorded, make_recorded
from tests.scenario import REQ

HOUR = 3600.0
Manual = clock.ManualClock
DATA = Path(__file__).parent / "data" / "sealed-before-monotonic"


@pytest.fixture
def manual() -> Iterator[clock.ManualClock]:
    with clock.using(clock.ManualClock()) as fake:
        yield fake


KEY = Ed25519PrivateKey.generate()
KEYS = Keys.of([TrustedKey(key_id_of(KEY.public_key()), KEY.public_key())])


def seal(sealer: Sealer, reason: str = c.SEAL_REASON_HEARTBEAT) -> SpanRecord:
    return sealer.seal(trace_id=random_trace_id(), parent_span_id="", spans=(), completeness="unchecked",
                       violations=(), reason=reason, now_ns=clock.now_ns())  # fmt: skip


def new_sealer(interval_s: float = 60) -> Sealer:
    return Sealer("agent@host/1/ab", KEY, heartbeat_interval_s=interval_s, resource={})


def findings(seals: list[SpanRecord], now_ns: int) -> dict[str, str]:
    """Finding kind -> severity of verifying these seals as one stream at ``now_ns``."""
    report = verify_stream(seals, KEYS, now_ns=now_ns).finish(KEYS)
    return {f.kind: f.severity for f in report.findings}


# --- seals --------------------------------------------------------------------------------


def test_a_seal_records_the_monotonic_clock_and_its_process_run(manual: clock.ManualClock) -> None:
    sealer = new_sealer()
    first = SealBody.from_record(seal(sealer))
    manual.advance(2.5)
    second = SealBody.from_record(seal(sealer))
    assert first.clock is not None and first.clock.run == manual.run
    assert first.clock.elapsed_ns(second.clock) == 2_500_000_000
    assert first.clock.elapsed_ns(clock.Reading("another run", 0)) is None  # never across runs


def test_archives_sealed_before_monotonic_readings_still_verify(capsys: pytest.CaptureFixture[str]) -> None:
    from provtrace.cli.main import main as cli

    args = ["verify", "--stream", "--archive", str(DATA / "archive"), "--public-key", str(DATA / "agent.pub")]
    assert cli([*args, "--as-of", "2030-01-01T00:00:00Z"]) == 0
    assert capsys.readouterr().out.startswith("VERIFIED: 8 span(s), 2 seal(s), 1 stream(s)")


# --- the stream: steps, reordering, heartbeats, tails -----------------------------------------


def test_a_clock_stepped_back_is_told_from_seals_issued_out_of_order(manual: clock.ManualClock) -> None:
    sealer = new_sealer()
    started = clock.now_ns()
    seals = [seal(sealer)]
    manual.advance(1)
    manual.step(-HOUR)
    seals += [seal(sealer), seal(sealer, c.SEAL_REASON_CLOSE)]
    report = verify_stream(seals, KEYS, now_ns=started + 10**9).finish(KEYS)
    assert {f.kind: f.severity for f in report.findings} == {"clock_backwards": "warning"}
    assert "set back 3600.000s (the monotonic clock went on 1.000s)" in report.findings[0].message
    assert verdict(report) == "VERIFIED (times not trusted)"

    forged = new_sealer()  # its monotonic clock runs backwards: it did not issue #1 after #0
    again = [seal(forged)]
    manual.mono -= 10**10
    again += [seal(forged), seal(forged, c.SEAL_REASON_CLOSE)]
    assert findings(again, started + 10**9) == {"clock_contradicts_sequence": "error"}


def test_a_forward_jump_raises_no_heartbeat_gap_but_a_real_gap_does(manual: clock.ManualClock) -> None:
    sealer = new_sealer(interval_s=60)
    jumped = [seal(sealer)]
    manual.advance(1)
    manual.step(HOUR)
    jumped += [seal(sealer), seal(sealer, c.SEAL_REASON_CLOSE)]
    assert findings(jumped, clock.now_ns()) == {"clock_ahead": "warning"}  # no heartbeat_gap

    quiet = new_sealer(interval_s=60)
    hidden = [seal(quiet)]
    manual.advance(600)  # ten minutes without a seal, hidden by a clock set back as much
    manual.step(-600)
    hidden += [seal(quiet), seal(quiet, c.SEAL_REASON_CLOSE)]
    assert findings(hidden, clock.now_ns()) == {"heartbeat_gap": "warning"}


def test_a_forward_jump_does_not_hide_a_dead_process(manual: clock.ManualClock) -> None:
    sealer = new_sealer(interval_s=60)
    started = clock.now_ns()
    seals = [seal(sealer)]
    manual.advance(1)
    manual.step(HOUR)
    seals.append(seal(sealer))  # then the process died: no closing seal
    assert findings(seals, started + 30 * 10**9)["stream_live"] == "info"  # 31 s: may still live
    late = findings(seals, started + 600 * 10**9)  # ten minutes later it is dead, not "live"
    assert late == {"truncated_tail": "error", "clock_ahead": "warning"}


# --- spans and approvals in verify ------------------------------------------------------------


def span(name: str, step: str, start_ns: int, end_ns: int, **attributes: AttrValue) -> SpanRecord:
    return SpanRecord(
        "ab" * 16, random_span_id(), name, start_ns, end_ns, attributes={c.STEP: step, **attributes}
    )


def time_findings(records: list[SpanRecord]) -> dict[str, str]:
    from provtrace.verify_time import check_span_times

    report = Report()
    check_span_times(records, report)
    return {f.kind: f.severity for f in report.findings}


def test_an_action_stamped_before_its_approval(manual: clock.ManualClock) -> None:
    now = clock.now_ns()
    run = {c.CLOCK_RUN: manual.run}
    approval = span("approval", c.STEP_APPROVAL, now, now + 1000, **run, **{c.CLOCK_MONOTONIC: 5_000})
    stepped = span("action", c.STEP_ACTION, now - int(HOUR * 1e9), now, **run, **{c.CLOCK_MONOTONIC: 9_000})
    link = LinkRecord(approval.trace_id, approval.span_id, {c.LINK_TYPE: c.LINK_APPROVED_BY})
    stepped = dataclasses.replace(stepped, links=(link,))
    assert time_findings([approval, stepped]) == {"action_before_approval": "warning"}
    earlier = dataclasses.replace(stepped, attributes={**stepped.attributes, c.CLOCK_MONOTONIC: 1_000})
    assert time_findings([approval, earlier]) == {"action_before_approval": "error"}
    unclocked = dataclasses.replace(stepped, attributes={c.STEP: c.STEP_ACTION})
    assert time_findings([approval, unclocked]) == {"action_before_approval": "error"}
    hour = int(HOUR * 1e9)
    later = dataclasses.replace(stepped, start_ns=now + hour, end_ns=now + hour + 1000)  # 4 µs by monotonic
    assert time_findings([approval, later]) == {"clock_ahead": "warning"}
    inverted = span("tool", c.STEP_TOOL_CALL, now, now + 1000, **{c.CLOCK_END_BEFORE_START: 10**9})
    assert time_findings([inverted]) == {"end_before_start": "warning"}


def test_a_span_ended_before_it_started_is_sealed_as_such(
    recorded: Recorded, manual: clock.ManualClock
) -> None:
    with provtrace.decision("d", trigger="t", actor="agent", nhi="svc"):
        with provtrace.tool_call("lookup") as tool:
            tool.record_input({"q": 1})
            manual.step(-HOUR)
            tool.record_output({"r": 2})
    assert recorded.handle.force_flush(30)
    records = recorded.archive.records()
    stepped = [r for r in records if c.CLOCK_END_BEFORE_START in r.attributes]
    assert {r.name for r in stepped} == {"decision d", "execute_tool lookup"}
    assert all(r.end_ns > r.start_ns for r in stepped)  # Jaeger keeps them unchanged
    trace_id = stepped[0].trace_id
    report = verify_trace(trace_id, [r for r in records if r.trace_id == trace_id], Keys.of([], given=False))
    assert {f.kind for f in report.findings if f.kind == "end_before_start"} == {"end_before_start"}


# --- the guard and the rules ------------------------------------------------------------------


def approve_then_act(manual: clock.ManualClock, elapsed_s: float, step_s: float) -> None:
    with provtrace.decision("d", trigger="t", actor="agent", nhi="svc"):
        with provtrace.policy_check("fw", version="1", input=REQ) as policy:
            policy.allow()
        with provtrace.approval(approver="alice", for_action=REQ, expires_in=900) as approval:
            approval.approve()
        manual.advance(elapsed_s)
        manual.step(step_s)
        with provtrace.action("fw.open", target="sg", params=REQ, require=("policy", "approval")):
            pass


@pytest.mark.parametrize("step_s", [HOUR, -HOUR])
def test_a_stepped_wall_clock_neither_expires_nor_refuses_an_approval(
    recorded: Recorded, manual: clock.ManualClock, step_s: float
) -> None:
    approve_then_act(manual, 1, step_s)  # one second later by the clock that cannot be stepped
    assert recorded.handle.force_flush(30)
    assert recorded.handle.counters["segments_complete"] == 1
    assert recorded.handle.counters["guard_refusals"] == 0


def test_a_wall_clock_set_back_does_not_extend_an_approval(
    recorded: Recorded, manual: clock.ManualClock
) -> None:
    with pytest.raises(provtrace.ProvenanceViolation, match="expired"):
        approve_then_act(manual, 901, -HOUR)  # 901 s passed, though the wall clock says -2699 s
    assert recorded.handle.counters["guard_refusals"] == 1


def test_the_rules_judge_expiry_by_the_same_elapsed_time(manual: clock.ManualClock) -> None:
    start = clock.now_ns() // 1000 * 1000
    given = clock.reading()
    approval = ApprovalEvidence(
        "a", "d", start, "alice", c.APPROVAL_APPROVED, "p", start + 900 * 10**9, "n", given
    )
    for elapsed_s, wall_s, expired in [(1, HOUR, False), (901, -HOUR, True), (899, 0, False)]:
        moment = clock.Reading(given.run, given.monotonic_ns + int(elapsed_s * 1e9))
        action = ActionEvidence("x", "d", start + int(wall_s * 1e9), "fw.open", "agent", "p", moment)
        problems, _ = approval_problems(action, [approval], nonce_used=lambda _: False)
        assert bool(problems) is expired, (elapsed_s, wall_s, problems)
        assert (remaining_s(approval, action) < 0) is expired
    other_run = dataclasses.replace(approval, clock=clock.Reading("another run", 0))
    late = ActionEvidence("x", "d", start + 901 * 10**9, "fw.open", "agent", "p", given)
    problems, _ = approval_problems(late, [other_run], nonce_used=lambda _: False)
    assert problems  # readings of different runs are not compared: the wall clock decides


def test_the_rules_accept_what_the_guard_allowed_across_a_step(
    recorded: Recorded, manual: clock.ManualClock
) -> None:
    approve_then_act(manual, 1, -HOUR)
    assert recorded.handle.force_flush(30)
    records = [r for r in recorded.archive.records() if not (r.is_seal or r.is_anchor)]
    violations, _ = evaluate(SegmentContext(trace_id=records[0].trace_id, records=records), ())
    assert violations == []


def test_the_report_judges_expiry_as_the_guard_did(recorded: Recorded, manual: Manual) -> None:
    from provtrace.reconstruct import reconstruct
    from provtrace.report.words import observations

    approve_then_act(manual, 1, HOUR)  # the wall clock says an hour, past the 900 s of the approval
    assert recorded.handle.force_flush(30)
    records = recorded.archive.records()
    chain = reconstruct(records[0].trace_id, records)
    approval = next(step for step in chain.steps if step.step == c.STEP_APPROVAL)
    said = [text for text, problem in observations(approval, chain) if "expired" in text]
    assert said == ["#3 started before the approval expired"]


def test_an_approval_goes_to_the_action_that_used_it_first_by_elapsed_time(tmp_path: Path) -> None:
    """Two actions on one approval, the wall clock set back between them: the second is the
    one that reused it, though its wall time is the earlier."""
    recorded = make_recorded(tmp_path / "home", completeness=c.MODE_ANNOTATE)
    try:
        with clock.using(Manual()) as manual, provtrace.decision("d", trigger="t", actor="agent", nhi="svc"):
            with provtrace.policy_check("fw", version="1", input=REQ) as policy:
                policy.allow()
            with provtrace.approval(approver="alice", for_action=REQ) as approval:
                approval.approve()
            with provtrace.action("fw.open", target="sg", params=REQ, privileged=True) as first:
                pass
            manual.advance(1)
            manual.step(-HOUR)
            with provtrace.action("fw.open", target="sg", params=REQ, privileged=True) as second:
                pass
        assert recorded.handle.force_flush(30)
        (violation,) = [r for r in recorded.archive.records() if r.name == c.VIOLATION_SPAN_NAME]
        details = [json.loads(d) for d in violation.attr_strings(c.VIOLATION_DETAILS)]
        assert {(d["code"], d["span_id"]) for d in details} == {(c.RULE_APPROVAL_BINDING, second.span_id)}
        assert first.span_id not in {d["span_id"] for d in details}
    finally:
        recorded.handle.shutdown(10)


def test_the_agent_counts_the_wall_clock_stepped_either_way(recorded: Recorded, manual: Manual) -> None:
    approve_then_act(manual, 1, 0)
    assert recorded.handle.force_flush(30)
    approve_then_act(manual, 1, HOUR)
    assert recorded.handle.force_flush(30)
    approve_then_act(manual, 1, -2 * HOUR)
    assert recorded.handle.force_flush(30)
    counters = recorded.handle.counters
    assert (counters["clock_steps_forward"], counters["clock_steps_back"]) == (1, 1)
