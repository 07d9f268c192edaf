"""The guard's worst "yes": evidence that looks right but is not must never let an action run,
and the completeness rules must agree with the guard on every case (one shared predicate)."""

from __future__ import annotations

import dataclasses
import math
import pathlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import provtrace
from provtrace import conventions as c
from provtrace.authorization import canonical_identity
from provtrace.content import capture
from provtrace.records import to_record
from provtrace.rules import SegmentContext, evaluate
from tests.conftest import Recorded

REQ = {"sg": "sg-123", "port": 443}
GUARD = ("policy", "approval")
AUTHORIZATION_CODES = {c.RULE_LINK_AUTHZ, c.RULE_LINK_APPROVAL, c.RULE_APPROVAL_BINDING, c.RULE_SOD}


def attempt(
    recorded: Recorded,
    setup: Callable[[], dict[str, Any]],
    *,
    actor: str | None = "secops-agent",
    params: Any = REQ,
) -> tuple[bool, tuple[str, ...], set[str]]:
    """Run ``setup`` and a guarded action in one decision. Returns whether the body ran, the
    guard's codes, and the authorization codes the completeness rules give the same action
    (evaluated as if it had run unguarded, so both judge the same evidence)."""
    ran: list[bool] = []
    codes: tuple[str, ...] = ()
    with provtrace.decision("d", trigger="t", actor=actor):
        links = setup()
        try:
            with provtrace.action(
                "fw.open", target="sg-123", privileged=True, params=params, require=GUARD, **links
            ):
                ran.append(True)
        except provtrace.ProvenanceViolation as refusal:
            codes = refusal.codes
    records = [to_record(s, {c.SERVICE_NAME: "unit"})[0] for s in recorded.spans()]
    trace_id = records[-1].trace_id
    records = [
        dataclasses.replace(r, attributes={**r.attributes, c.OUTCOME: c.OUTCOME_SUCCESS})
        if r.step == c.STEP_ACTION
        else r
        for r in records
        if r.trace_id == trace_id
    ]
    violations, _ = evaluate(SegmentContext(trace_id, records))
    recorded.exporter.clear()
    return bool(ran), codes, {v.code for v in violations} & AUTHORIZATION_CODES


def allow(input: Any = REQ, policy: str = "fw-change", **options: Any) -> Any:
    with provtrace.policy_check(policy, version="3", input=input, **options) as p:
        p.allow()
    return p


def approve(params: Any = REQ, approver: str = "alice@example.com") -> Any:
    with provtrace.approval(approver=approver, for_action=params) as a:
        a.approve()
    return a


def evidence(approver: str = "alice@example.com") -> Callable[[], dict[str, Any]]:
    def setup() -> dict[str, Any]:
        allow()
        approve(approver=approver)
        return {}

    return setup


def test_complete_evidence_runs_and_the_rules_agree(recorded: Recorded) -> None:
    assert attempt(recorded, evidence()) == (True, (), set())


@pytest.mark.parametrize(
    "approver",
    [
        "SecOps-Agent",
        "secops-agent ",
        " secops-agent",
        "\uff53\uff45\uff43\uff4f\uff50\uff53-agent",  # fullwidth
        "secops\u200b-agent",
        "SECOPS-AGENT",
    ],
)
def test_separation_of_duties_compares_identities_in_canonical_form(
    recorded: Recorded, approver: str
) -> None:
    assert canonical_identity(approver) == canonical_identity("secops-agent")
    assert attempt(recorded, evidence(approver)) == (False, (c.RULE_SOD,), {c.RULE_SOD})


def test_an_action_with_no_actor_cannot_be_self_approved_by_omission(recorded: Recorded) -> None:
    ran, codes, rules = attempt(recorded, evidence(), actor=None)
    assert not ran
    assert codes == (c.RULE_SOD,)
    assert rules == {c.RULE_SOD}


def test_evidence_from_another_decision_does_not_authorise(recorded: Recorded) -> None:
    with provtrace.decision("other", trigger="t", actor="someone-else"):
        foreign_policy, foreign_approval = allow(), approve()
    recorded.exporter.clear()

    ran, codes, rules = attempt(
        recorded, lambda: {"authorized_by": foreign_policy, "approved_by": foreign_approval}
    )
    assert not ran
    assert set(codes) == {c.RULE_LINK_AUTHZ, c.RULE_LINK_APPROVAL}
    assert rules == {c.RULE_LINK_AUTHZ, c.RULE_LINK_APPROVAL}


def test_a_later_deny_of_the_same_policy_revokes_the_earlier_allow(recorded: Recorded) -> None:
    def setup() -> dict[str, Any]:
        allow()
        with provtrace.policy_check("fw-change", version="3", input=REQ) as p:
            p.deny(reason="change freeze started")
        approve()
        return {}

    assert attempt(recorded, setup) == (False, (c.RULE_LINK_AUTHZ,), {c.RULE_LINK_AUTHZ})


def test_an_allow_of_an_unrelated_policy_does_not_authorise(recorded: Recorded) -> None:
    def setup() -> dict[str, Any]:
        allow(input={"user": "bob", "role": "reader"}, policy="iam-read")
        approve()
        return {}

    assert attempt(recorded, setup) == (False, (c.RULE_LINK_AUTHZ,), {c.RULE_LINK_AUTHZ})


def test_a_policy_that_names_the_action_type_authorises_it(recorded: Recorded) -> None:
    def setup() -> dict[str, Any]:
        allow(input={"change": "CHG-42"}, actions=("fw.open",))
        approve()
        return {}

    assert attempt(recorded, setup) == (True, (), set())


class Opaque:
    def __repr__(self) -> str:
        return "Opaque()"


def deep(levels: int, leaf: object) -> object:
    value = leaf
    for _ in range(levels):
        value = [value]
    return value


# Pairs that earlier canonicalisations mapped onto one digest (issue 9) and that are not equal as
# JSON data; and pairs that are (an approval for one covers the other, as documented).
COLLIDING = [
    ({1: "x"}, {"1": "x"}),
    ({1: "a", "1": "b"}, {"1": "b"}),
    ({"s": "a\ud800b"}, {"s": "a?b"}),
    ({"s": "a\ud800b"}, {"s": "a\ufffdb"}),
    ({"o": Opaque()}, {"o": Opaque()}),
    ({"o": Opaque()}, {"o": "Opaque()"}),
    (deep(70, 1), deep(70, 2)),
    ({"n": 2**53 + 1}, {"n": "9007199254740993"}),
    ({"n": 2**53 + 1}, {"n": 2**53}),
    ({"n": math.nan}, {"n": "nan"}),
    ({"b": b"\x01"}, {"b": {"$bytes": "AQ=="}}),
    ({"b": b"\x01"}, {"b": {"\x00bytes": "AQ=="}}),
    ({"s": {1, 2}}, {"s": [1, 2]}),
    ({"t": True}, {"t": 1}),
    ({"p": pathlib.Path("/etc")}, {"p": "/etc"}),
]
EQUAL_AS_JSON = [({"port": 443.0}, {"port": 443}), ({"a": (1, 2)}, {"a": [1, 2]})]


@pytest.mark.parametrize(("approved", "acted"), COLLIDING + [(b, a) for a, b in COLLIDING])
def test_an_approval_never_covers_parameters_that_merely_digest_alike(
    recorded: Recorded, approved: Any, acted: Any
) -> None:
    def setup() -> dict[str, Any]:
        allow(input={}, actions=("fw.open",))
        approve(params=approved)
        return {}

    ran, codes, rules = attempt(recorded, setup, params=acted)
    assert not ran
    assert c.RULE_APPROVAL_BINDING in codes
    assert c.RULE_APPROVAL_BINDING in rules


@pytest.mark.parametrize(("approved", "acted"), EQUAL_AS_JSON)
def test_an_approval_covers_parameters_equal_as_json_data(
    recorded: Recorded, approved: Any, acted: Any
) -> None:
    def setup() -> dict[str, Any]:
        allow(input={}, actions=("fw.open",))
        approve(params=approved)
        return {}

    assert attempt(recorded, setup, params=acted) == (True, (), set())


SAFE = 2**53 - 1


def model_equal(a: Any, b: Any) -> bool:
    """Equality in provtrace's documented data model: JSON data compares as JSON (numbers as
    numbers, so 443.0 equals 443; lists equal tuples; booleans are not numbers); the tagged types
    JSON cannot express compare only with their own kind (bytes with bytes, sets with sets, NaN
    with NaN, an integer beyond 2**53 with the same integer); objects known only by their repr
    equal nothing (they cannot be bound)."""
    if isinstance(a, Opaque) or isinstance(b, Opaque):
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        plain = all(math.isfinite(x) and (not isinstance(x, int) or abs(x) <= SAFE) for x in (a, b))
        if plain:
            return a == b
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return True
        return type(a) is type(b) and a == b
    if isinstance(a, (str, bytes)) or isinstance(b, (str, bytes)):
        return type(a) is type(b) and a == b
    if a is None or b is None:
        return a is b
    if isinstance(a, (set, frozenset)) and isinstance(b, (set, frozenset)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return False
        keys_b = {k: k for k in b}
        return all(
            type(k) is type(keys_b[k]) or {type(k), type(keys_b[k])} <= {int, float} for k in a
        ) and all(model_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(model_equal(x, y) for x, y in zip(a, b, strict=True))
    return False


leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, 0.0, 1.0, -0.0, 443, 443.0, 2**53, 2**53 + 1, "9007199254740993", "nan", "1"]),
    st.text(max_size=4),
    st.text(alphabet=st.sampled_from("a\ud800\ufffd?"), max_size=3),
    st.binary(max_size=3),
    st.builds(Opaque),
)
values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.frozensets(st.integers(0, 3), max_size=3),
        st.dictionaries(
            st.one_of(st.text(max_size=2), st.integers(0, 2), st.just("\x00bytes")), inner, max_size=3
        ),
    ),
    max_leaves=8,
)


@settings(max_examples=400, deadline=None)
@given(a=values, b=values)
def test_property_exact_digests_are_injective_on_json_data(a: Any, b: Any) -> None:
    """What binds an approval is an exact digest: equal exact digests only for equal JSON data."""
    first, second = capture(a), capture(b)
    if first.exact and second.exact and first.digest == second.digest:
        assert model_equal(a, b), (a, b)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(approved=values, acted=values)
def test_property_an_approval_never_authorises_other_parameters(
    recorded: Recorded, approved: Any, acted: Any
) -> None:
    """For any two parameter values that are not equal as JSON data, the approval for one never
    authorises the other; and guard and rules agree on it."""

    def setup() -> dict[str, Any]:
        allow(input={}, actions=("fw.open",))
        approve(params=approved)
        return {}

    ran, codes, rules = attempt(recorded, setup, params=acted)
    if not model_equal(approved, acted):
        assert not ran and c.RULE_APPROVAL_BINDING in codes
    assert ran == (not rules), (codes, rules)


def test_the_used_nonce_store_is_bounded_and_never_forgets_an_unexpired_approval() -> None:
    from provtrace.steps.scope import FactRegistry

    now = [0.0]
    store = FactRegistry(nonce_capacity=2, clock=lambda: now[0])
    assert store.consume_nonce("a", 10)
    assert not store.consume_nonce("a", 10)  # single use
    assert store.consume_nonce("b", 100)
    assert not store.consume_nonce("c", 10)  # full of unexpired approvals: refuse, forget nothing
    now[0] = 11.0  # "a" expired: its approval can no longer authorise anything, so it may go
    assert store.consume_nonce("c", 10)
    assert store.nonce_used("b") and store.nonce_used("c") and not store.nonce_used("a")
