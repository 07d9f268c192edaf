"""The action guard refuses every kind of missing evidence before the guarded code runs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

import provtrace
from provtrace import conventions as c
from tests.conftest import Recorded

REQ = {"sg": "sg-123", "port": 443}
GUARD = ("policy", "approval")


def guarded(ran: list[bool], params: Any = None, *, actor: str | None = None, **links: Any) -> None:
    with provtrace.action(
        "firewall.rule.open",
        target="sg-123",
        privileged=True,
        params=REQ if params is None else params,
        require=GUARD,
        actor=actor,
        **links,
    ):
        ran.append(True)


def allow() -> Any:
    with provtrace.policy_check("fw-change", version="3", input=REQ) as p:
        p.allow()
    return p


def approve(params: Any = REQ, approver: str = "alice", **options: Any) -> Any:
    with provtrace.approval(approver=approver, for_action=params, **options) as a:
        a.approve()
    return a


def refused_codes(setup: Callable[[], None], *, actor: str = "agent", params: Any = None) -> tuple[str, ...]:
    ran: list[bool] = []
    with (
        provtrace.decision("d", trigger="t", actor=actor),
        pytest.raises(provtrace.ProvenanceViolation) as refusal,
    ):
        setup()
        guarded(ran, params)
    assert ran == [], "the guarded code ran despite the refusal"
    return refusal.value.codes


def test_allows_when_all_evidence_is_present(recorded: Recorded) -> None:
    ran: list[bool] = []
    with provtrace.decision("d", trigger="t", actor="agent"):
        allow()
        approve()
        guarded(ran)
    assert ran == [True]


def test_refuses_without_policy(recorded: Recorded) -> None:
    assert refused_codes(lambda: approve()) == (c.RULE_LINK_AUTHZ,)


def test_refuses_when_policy_denied(recorded: Recorded) -> None:
    def setup() -> None:
        with provtrace.policy_check("fw-change", input=REQ) as p:
            p.deny(reason="change freeze")
        approve()

    assert refused_codes(setup) == (c.RULE_LINK_AUTHZ,)


def test_refuses_without_approval(recorded: Recorded) -> None:
    assert refused_codes(lambda: allow()) == (c.RULE_LINK_APPROVAL,)


def test_refuses_rejected_approval(recorded: Recorded) -> None:
    def setup() -> None:
        allow()
        with provtrace.approval(approver="alice", for_action=REQ) as a:
            a.reject(reason="not in window")

    assert refused_codes(setup) == (c.RULE_LINK_APPROVAL,)


def test_refuses_approval_for_other_parameters(recorded: Recorded) -> None:
    def setup() -> None:
        allow()
        approve(params={"sg": "sg-123", "port": 22})

    assert refused_codes(setup) == (c.RULE_APPROVAL_BINDING,)


def test_refuses_expired_approval(recorded: Recorded) -> None:
    def setup() -> None:
        allow()
        approve(expires_in=dt.timedelta(seconds=-1))

    assert refused_codes(setup) == (c.RULE_APPROVAL_BINDING,)


def test_refuses_when_approver_is_the_actor(recorded: Recorded) -> None:
    def setup() -> None:
        allow()
        approve(approver="agent")

    assert refused_codes(setup, actor="agent") == (c.RULE_SOD,)


def test_refuses_replayed_approval(recorded: Recorded) -> None:
    ran: list[bool] = []
    with provtrace.decision("d", trigger="t", actor="agent"):
        policy = allow()
        approval = approve()
        guarded(ran, authorized_by=policy, approved_by=approval)
        with pytest.raises(provtrace.ProvenanceViolation) as refusal:
            guarded(ran, authorized_by=policy, approved_by=approval)
    assert ran == [True]
    assert refusal.value.codes == (c.RULE_APPROVAL_BINDING,)


def test_refuses_when_pipeline_cannot_persist(recorded: Recorded) -> None:
    recorded.handle.shutdown(timeout_s=10)

    def setup() -> None:
        allow()
        approve()

    assert "PIPELINE" in refused_codes(setup)


def test_refusal_is_recorded_and_decorated_function_not_called(recorded: Recorded) -> None:
    calls: list[dict[str, Any]] = []

    @provtrace.action("firewall.rule.open", target="sg-123", privileged=True, require=GUARD)
    def open_rule(sg: str, port: int) -> None:
        calls.append({"sg": sg, "port": port})

    with provtrace.decision("d", trigger="t", actor="agent"):
        allow()
        with pytest.raises(provtrace.ProvenanceViolation):
            open_rule("sg-123", 443)
        approve(params={"sg": "sg-123", "port": 443})
        open_rule("sg-123", 443)
    assert calls == [{"sg": "sg-123", "port": 443}]
    spans = [s for s in recorded.spans() if s.name == "action firewall.rule.open"]
    assert [dict(s.attributes or {})[c.OUTCOME] for s in spans] == ["refused", "success"]
    assert dict(spans[0].attributes or {})[c.GUARD_VIOLATIONS] == (c.RULE_LINK_APPROVAL,)
    assert recorded.handle.counters["guard_refusals"] == 1


def test_refused_trace_is_forwarded_as_complete_record_of_a_refusal(recorded: Recorded) -> None:
    refused_codes(lambda: allow())
    assert recorded.handle.force_flush(10)
    counters = recorded.handle.counters
    assert counters["segments_complete"] == 1
    assert counters["segments_quarantined"] == 0


def test_unknown_requirement_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="require= accepts policy, approval; unknown: ticket"):
        provtrace.action("x", target="y", require=("ticket",))


def test_refuses_when_neither_approval_nor_action_names_parameters(recorded: Recorded) -> None:
    ran: list[bool] = []
    with provtrace.decision("d", trigger="t", actor="agent"):
        with provtrace.policy_check("db-change", input={}, actions="db.drop") as p:
            p.allow()
        with provtrace.approval(approver="bob") as a:
            a.approve()
        with pytest.raises(provtrace.ProvenanceViolation) as refusal:
            with provtrace.action("db.drop", target="prod", privileged=True, require=GUARD):
                ran.append(True)
    assert ran == []
    assert refusal.value.codes == (c.RULE_APPROVAL_BINDING,)


def test_a_policy_check_that_later_denies_no_longer_authorises(recorded: Recorded) -> None:
    def setup() -> None:
        with provtrace.policy_check("fw-change", input=REQ) as p:
            p.allow()
            p.deny(reason="revoked: change freeze started")
        approve()

    assert refused_codes(setup) == (c.RULE_LINK_AUTHZ,)
