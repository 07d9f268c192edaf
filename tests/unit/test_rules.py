"""One test per completeness rule: the smallest trace that violates it, and the code it yields."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pytest

from provtrace import conventions as c
from provtrace.content import digest
from provtrace.model import LinkRecord, SpanRecord
from provtrace.records import to_record
from provtrace.rules import SegmentContext, Violation, evaluate
from tests.conftest import Recorded
from tests.scenario import REQ, reference_scenario

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
DECISION = "aaaaaaaaaaaaaaaa"
PARAMS = digest(REQ)


def span(
    span_id: str,
    step: str | None,
    parent: str = DECISION,
    *,
    links: Sequence[tuple[str, str]] = (),
    **attrs: Any,
) -> SpanRecord:
    attributes: dict[str, Any] = {}
    if step is not None:
        attributes = {c.STEP: step, c.DECISION_ID: "d1", c.ACTOR_ID: "agent", c.CAPTURE_MODE: "redacted"}
        attributes.update(DEFAULTS.get(step, {}))
    attributes.update({k.replace("__", "."): v for k, v in attrs.items()})
    attributes = {k: v for k, v in attributes.items() if v is not None}
    return SpanRecord(
        trace_id=TRACE,
        span_id=span_id,
        parent_span_id=parent,
        name=f"{step} {span_id}",
        start_ns=1_000_000_000,
        end_ns=2_000_000_000,
        attributes=attributes,
        links=tuple(LinkRecord(TRACE, target, {c.LINK_TYPE: kind}) for kind, target in links),
    )


DEFAULTS: dict[str, dict[str, Any]] = {
    c.STEP_DECISION: {c.DECISION_NAME: "d", c.DECISION_TRIGGER: "t"},
    c.STEP_POLICY_CHECK: {c.POLICY_ID: "p", c.POLICY_DECISION: "allow", c.INPUT_SHA256: PARAMS},
    c.STEP_APPROVAL: {
        c.APPROVAL_APPROVER_ID: "alice",
        c.APPROVAL_DECISION: "approved",
        c.APPROVAL_PARAMS_SHA256: PARAMS,
        c.APPROVAL_NONCE: "n1",
        c.APPROVAL_EXPIRES_AT: "2030-01-01T00:00:00Z",
    },
    c.STEP_ACTION: {
        c.ACTION_TYPE: "fw.open",
        c.ACTION_TARGET: "sg-1",
        c.ACTION_PRIVILEGED: True,
        c.ACTION_PARAMS_SHA256: PARAMS,
        c.OUTCOME: "success",
    },
    c.STEP_VERIFICATION: {c.VERIFICATION_RESULT: "pass"},
}


def decision() -> SpanRecord:
    return span(DECISION, c.STEP_DECISION, parent="")


def governed(action: SpanRecord | None = None, **approval_attrs: Any) -> list[SpanRecord]:
    """A decision whose action is authorised and approved: each test breaks one thing."""
    records = [
        decision(),
        span("0000000000000001", c.STEP_POLICY_CHECK),
        span("0000000000000002", c.STEP_APPROVAL, **approval_attrs),
    ]
    records.append(
        action
        or span(
            "0000000000000003",
            c.STEP_ACTION,
            links=[("authorized_by", "0000000000000001"), ("approved_by", "0000000000000002")],
        )
    )
    return records


def codes(records: Sequence[SpanRecord], **context: Any) -> list[str]:
    violations, failed = evaluate(SegmentContext(TRACE, records, **context))
    assert failed == []
    return sorted(v.code for v in violations)


def test_governed_decision_is_complete() -> None:
    assert codes(governed()) == []


def test_struct_root() -> None:
    assert codes([span("0000000000000001", c.STEP_POLICY_CHECK, parent="")]) == [c.RULE_STRUCT_ROOT]


def test_struct_root_spares_a_remotely_parented_step() -> None:
    remote = dataclasses.replace(span("0000000000000001", c.STEP_POLICY_CHECK), parent_is_remote=True)
    assert codes([remote]) == []


def test_struct_orphan() -> None:
    orphan = span("0000000000000001", c.STEP_POLICY_CHECK, parent="00000000000000ff")
    assert codes([decision(), orphan]) == [c.RULE_STRUCT_ORPHAN]


def test_struct_orphan_accepts_a_parent_from_an_earlier_segment() -> None:
    late = span("0000000000000001", c.STEP_POLICY_CHECK)
    assert codes([late], earlier={DECISION: decision()}) == []


def test_attr_missing_names_step_and_attribute() -> None:
    violations, _ = evaluate(
        SegmentContext(
            TRACE,
            [decision(), span("0000000000000001", c.STEP_POLICY_CHECK, provenance__policy__decision=None)],
        )
    )
    assert [v.detail for v in violations] == [
        {
            "code": c.RULE_ATTR_MISSING,
            "span_id": "0000000000000001",
            "step": "policy_check",
            "attribute": c.POLICY_DECISION,
        }
    ]


def test_attr_missing_waives_digests_in_capture_mode_none() -> None:
    tool = span("0000000000000001", c.STEP_TOOL_CALL, gen_ai__tool__name="t")
    assert codes([decision(), tool]) == [c.RULE_ATTR_MISSING, c.RULE_ATTR_MISSING]
    silent = span(
        "0000000000000001", c.STEP_TOOL_CALL, gen_ai__tool__name="t", provenance__content__capture="none"
    )
    assert codes([decision(), silent]) == []


def test_attr_dropped() -> None:
    dropped = dataclasses.replace(span("0000000000000001", c.STEP_POLICY_CHECK), dropped_attributes=3)
    assert codes([decision(), dropped]) == [c.RULE_ATTR_DROPPED]


def test_link_authz() -> None:
    action = span("0000000000000003", c.STEP_ACTION, links=[("approved_by", "0000000000000002")])
    assert codes(governed(action)) == [c.RULE_LINK_AUTHZ]


def test_link_authz_requires_an_allowing_check() -> None:
    records = governed()
    records[1] = span("0000000000000001", c.STEP_POLICY_CHECK, provenance__policy__decision="deny")
    assert codes(records) == [c.RULE_LINK_AUTHZ]


def test_link_approval() -> None:
    action = span("0000000000000003", c.STEP_ACTION, links=[("authorized_by", "0000000000000001")])
    assert codes(governed(action)) == [c.RULE_LINK_APPROVAL]


def test_link_approval_only_for_privileged_actions() -> None:
    action = span(
        "0000000000000003",
        c.STEP_ACTION,
        links=[("authorized_by", "0000000000000001")],
        provenance__action__privileged=False,
    )
    assert codes(governed(action)) == []


def test_separation_of_duties() -> None:
    assert codes(governed(provenance__approval__approver__id="agent")) == [c.RULE_SOD]


def test_approval_binding_params() -> None:
    assert codes(governed(provenance__approval__params__sha256=digest({"port": 22}))) == [
        c.RULE_APPROVAL_BINDING
    ]


def test_approval_binding_expiry() -> None:
    assert codes(governed(provenance__approval__expires_at="1970-01-01T00:00:00Z")) == [
        c.RULE_APPROVAL_BINDING
    ]


def test_approval_binding_nonce_reuse() -> None:
    records = governed()
    records.append(
        span(
            "0000000000000004",
            c.STEP_ACTION,
            links=[("authorized_by", "0000000000000001"), ("approved_by", "0000000000000002")],
        )
    )
    assert codes(records) == [c.RULE_APPROVAL_BINDING]


def test_refused_actions_are_not_checked_for_links() -> None:
    refused = span("0000000000000003", c.STEP_ACTION, provenance__outcome="refused")
    assert codes([decision(), refused]) == []


def test_secret_leak() -> None:
    violations, _ = evaluate(SegmentContext(TRACE, governed(), leaks={"0000000000000003": ("debug.token",)}))
    assert [v.detail for v in violations] == [
        {
            "code": c.RULE_SECRET_LEAK,
            "span_id": "0000000000000003",
            "step": "action",
            "attribute": "debug.token",
        }
    ]


def test_unfinished() -> None:
    assert codes(
        [span("0000000000000001", c.STEP_POLICY_CHECK)],
        reason=c.SEAL_REASON_TIMEOUT,
        open_span_ids=[DECISION],
        earlier={DECISION: decision()},
    ) == [c.RULE_UNFINISHED]
    assert (
        codes(
            [span("0000000000000001", c.STEP_POLICY_CHECK)],
            reason=c.SEAL_REASON_MEMORY_BOUND,
            open_span_ids=[DECISION],
            earlier={DECISION: decision()},
        )
        == []
    )


def test_verify_missing_only_in_the_audit_profile() -> None:
    records = governed()
    assert codes(records, profile=c.PROFILE_BASELINE) == []
    assert codes(records, profile=c.PROFILE_AUDIT) == [
        c.RULE_ATTR_MISSING,
        c.RULE_ATTR_MISSING,
        c.RULE_VERIFY_MISSING,
    ]
    verified = [
        *records,
        span("0000000000000009", c.STEP_VERIFICATION, links=[("verifies", "0000000000000003")]),
    ]
    assert codes(verified, profile=c.PROFILE_AUDIT) == [c.RULE_ATTR_MISSING, c.RULE_ATTR_MISSING]


def test_audit_profile_requires_nhi_on_actions_and_policy_versions() -> None:
    violations, _ = evaluate(SegmentContext(TRACE, governed(), profile=c.PROFILE_AUDIT))
    missing = sorted((v.step, v.attribute) for v in violations if v.code == c.RULE_ATTR_MISSING)
    assert missing == [("action", c.NHI_ID), ("policy_check", c.POLICY_VERSION)]


def test_user_rules_run_and_a_raising_one_is_reported() -> None:
    def freeze(ctx: SegmentContext) -> list[Violation]:
        return [Violation("CHANGE-FREEZE", "frozen", span_id=a.span_id) for a in ctx.steps(c.STEP_ACTION)]

    def broken(ctx: SegmentContext) -> list[Violation]:
        raise RuntimeError("bug")

    violations, failed = evaluate(SegmentContext(TRACE, governed()), [freeze, broken])
    assert [v.code for v in violations] == ["CHANGE-FREEZE"]
    assert failed == ["broken"]


@pytest.mark.parametrize("profile", [c.PROFILE_BASELINE, c.PROFILE_AUDIT])
def test_reference_scenario_is_complete_in_both_profiles(recorded: Recorded, profile: str) -> None:
    reference_scenario()
    records = [to_record(s, {c.SERVICE_NAME: "unit"})[0] for s in recorded.spans()]
    assert len(records) == 8
    assert codes(records, profile=profile) == []
