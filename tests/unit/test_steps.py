"""Span names, attributes and causal links of every step, as DESIGN.md fixes them."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

import provtrace
from provtrace import clock
from provtrace import conventions as c
from provtrace.content import digest
from tests.conftest import Recorded
from tests.scenario import ANSWER, PROMPT, REQ, reference_scenario

REQ_JSON = '{"sg":"sg-123","rule":"rule-9","port":443,"proto":"tcp","cidr":"10.0.0.0/24"}'
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def pop_clock(attributes: dict[str, Any]) -> clock.Reading:
    return clock.Reading(attributes.pop(c.CLOCK_RUN), attributes.pop(c.CLOCK_MONOTONIC))


def links_of(span: ReadableSpan) -> list[tuple[str, int]]:
    return [(str((link.attributes or {})[c.LINK_TYPE]), link.context.span_id) for link in span.links]


def mirror(*links: tuple[str, ReadableSpan] | tuple[str, ReadableSpan, str]) -> tuple[str, ...]:
    """The provenance.links entries of ``(type, target[, tool call id])`` links."""
    return tuple(
        f"{link[0]}:{link[1].context.trace_id:032x}:{link[1].context.span_id:016x}"
        + (f":{link[2]}" if len(link) == 3 else "")
        for link in links
    )


def test_reference_scenario_names_attributes_and_links(recorded: Recorded) -> None:
    h = reference_scenario(guard=True)
    decision_id = h["decision"].id
    assert re.fullmatch(r"[0-9a-f]{32}", decision_id)
    common = {c.DECISION_ID: decision_id, c.ACTOR_ID: "secops-agent", c.CAPTURE_MODE: "redacted"}

    decision = recorded.span("decision contain INC-4711")
    assert decision.parent is None
    assert attrs(decision) == {
        c.STEP: "decision",
        c.DECISION_ID: decision_id,
        c.ACTOR_ID: "secops-agent",
        c.NHI_ID: "svc-secops@prod",
        c.CAPTURE_MODE: "redacted",
        c.DECISION_NAME: "contain INC-4711",
        c.DECISION_TRIGGER: "alert:INC-4711",
    }
    for span in recorded.spans():
        if span is not decision:
            assert span.parent is not None and span.parent.span_id == decision.context.span_id

    llm = recorded.span("chat gpt-4o")
    assert llm.kind is SpanKind.CLIENT
    assert attrs(llm) == {
        **common,
        c.STEP: "llm_call",
        c.NHI_ID: "svc-secops@prod",
        c.GEN_AI_OPERATION_NAME: "chat",
        c.GEN_AI_PROVIDER_NAME: "openai",
        c.GEN_AI_REQUEST_MODEL: "gpt-4o",
        c.INPUT_SHA256: digest(PROMPT),
        c.OUTPUT_SHA256: digest(ANSWER),
        c.GEN_AI_INPUT_MESSAGES: json.dumps(PROMPT, separators=(",", ":")),
        c.GEN_AI_OUTPUT_MESSAGES: json.dumps(ANSWER, separators=(",", ":")),
        c.GEN_AI_USAGE_INPUT_TOKENS: 12,
        c.GEN_AI_USAGE_OUTPUT_TOKENS: 9,
    }
    assert links_of(llm) == []

    tool = recorded.span("execute_tool lookup_rule")
    assert attrs(tool) == {
        **common,
        c.LINKS_MIRROR: mirror(("triggered_by", llm, "call_lookup")),
        c.STEP: "tool_call",
        c.NHI_ID: "svc-secops@prod",
        c.GEN_AI_OPERATION_NAME: "execute_tool",
        c.GEN_AI_TOOL_NAME: "lookup_rule",
        c.INPUT_SHA256: digest({"sg": "sg-123"}),
        c.OUTPUT_SHA256: digest({"rules": []}),
        c.GEN_AI_TOOL_CALL_ARGUMENTS: '{"sg":"sg-123"}',
        c.GEN_AI_TOOL_CALL_RESULT: '{"rules":[]}',
    }
    # The model proposed this call (same name and arguments): linked with its tool call id.
    assert links_of(tool) == [("triggered_by", llm.context.span_id)]
    assert dict(tool.links[0].attributes or {})[c.GEN_AI_TOOL_CALL_ID] == "call_lookup"

    secret = recorded.span("secret_fetch vault")
    assert attrs(secret) == {
        **common,
        c.STEP: "secret_fetch",
        c.NHI_ID: "svc-fw",
        c.SECRET_STORE: "vault",
        c.SECRET_REF: "kv/fw-api-token",
        c.SECRET_VERSION: "7",
    }
    assert links_of(secret) == []  # the model proposed no secret fetch

    policy = recorded.span("policy_check fw-change")
    policy_attrs = attrs(policy)
    policy_clock = pop_clock(policy_attrs)
    assert policy_attrs == {
        **common,
        c.STEP: "policy_check",
        c.NHI_ID: "svc-secops@prod",
        c.POLICY_ID: "fw-change",
        c.POLICY_VERSION: "3",
        c.POLICY_ENGINE: "opa",
        c.INPUT_SHA256: digest(REQ),
        c.INPUT_CONTENT: REQ_JSON,
        c.POLICY_DECISION: "allow",
        c.POLICY_REASON: "ticket CHG-42 open",
    }
    assert links_of(policy) == []

    approval = recorded.span("approval CHG-42")
    approval_attrs = attrs(approval)
    approval_clock = pop_clock(approval_attrs)
    assert re.fullmatch(r"[0-9a-f]{32}", approval_attrs.pop(c.APPROVAL_NONCE))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", approval_attrs.pop(c.APPROVAL_EXPIRES_AT))
    assert approval_attrs == {
        **common,
        c.STEP: "approval",
        c.NHI_ID: "svc-secops@prod",
        c.APPROVAL_APPROVER_ID: "alice@example.com",
        c.APPROVAL_METHOD: "slack",
        c.APPROVAL_TICKET: "CHG-42",
        c.APPROVAL_PARAMS_SHA256: digest(REQ),
        c.INPUT_CONTENT: REQ_JSON,
        c.APPROVAL_DECISION: "approved",
        c.APPROVAL_REASON: "matches change window",
    }

    action = recorded.span("action firewall.rule.open")
    action_attrs = attrs(action)
    action_clock = pop_clock(action_attrs)
    # The steps whose order authorises the action carry a monotonic reading of this process run.
    assert policy_clock.run == approval_clock.run == action_clock.run == clock.reading().run
    assert policy_clock.monotonic_ns < approval_clock.monotonic_ns < action_clock.monotonic_ns
    assert action_attrs == {
        **common,
        c.LINKS_MIRROR: mirror(
            ("authorized_by", policy),
            ("approved_by", approval),
            ("used_secret", secret),
            ("triggered_by", llm, "call_open"),
        ),
        c.STEP: "action",
        c.NHI_ID: "svc-secops@prod",
        c.ACTION_TYPE: "firewall.rule.open",
        c.ACTION_TARGET: "sg-123/rule-9",
        c.ACTION_PRIVILEGED: True,
        c.ACTION_PARAMS_SHA256: digest(REQ),
        c.ACTION_REQUIRE: ("policy", "approval"),
        c.ACTION_PARAMS_CONTENT: REQ_JSON,
        c.CHANGE_BEFORE_SHA256: digest({"open": []}),
        c.CHANGE_BEFORE_CONTENT: '{"open":[]}',
        c.CHANGE_AFTER_SHA256: digest({"open": [443]}),
        c.CHANGE_AFTER_CONTENT: '{"open":[443]}',
        "firewall.change.ratio": 0.25,
        c.OUTCOME: "success",
    }
    assert links_of(action) == [
        ("authorized_by", policy.context.span_id),
        ("approved_by", approval.context.span_id),
        ("used_secret", secret.context.span_id),
        ("triggered_by", llm.context.span_id),
    ]

    verification = recorded.span("verification firewall.rule.open")
    assert attrs(verification) == {
        **common,
        c.LINKS_MIRROR: mirror(("verifies", action)),
        c.STEP: "verification",
        c.NHI_ID: "svc-secops@prod",
        c.VERIFICATION_METHOD: "port-probe",
        c.VERIFICATION_RESULT: "pass",
        c.VERIFICATION_DETAIL: "443/tcp reachable from 10.0.0.0/24",
    }
    assert links_of(verification) == [("verifies", action.context.span_id)]
    assert all(HEX64.match(v) for k, v in attrs(action).items() if k.endswith(".sha256"))


def test_explicit_links_win_over_inference(recorded: Recorded) -> None:
    with provtrace.decision("d", trigger="t", actor="agent"):
        with provtrace.policy_check("p", input={}) as first:
            first.allow()
        with provtrace.policy_check("p", input={}) as second:
            second.allow()
        with provtrace.secret_fetch("vault", "kv/a", nhi="n") as s1:
            s1.record_value("value-a-1234")
        with provtrace.secret_fetch("vault", "kv/b", nhi="n"):
            pass
        with provtrace.llm_call(model="m", provider="p") as llm:
            pass
        with provtrace.action(
            "x",
            target="y",
            params={},
            authorized_by=first,
            used_secrets=[s1],
            approved_by=[],
            triggered_by=(),
        ):
            pass
    action = recorded.span("action x")
    assert links_of(action) == [
        ("authorized_by", first.context.span_id),
        ("used_secret", s1.context.span_id),
    ]
    assert llm.context.span_id not in [sid for _, sid in links_of(action)]


def test_inference_links_latest_allowing_policy_and_matching_approval(recorded: Recorded) -> None:
    other = {"port": 22}
    with provtrace.decision("d", trigger="t", actor="agent"):
        with provtrace.policy_check("p", input=REQ) as allowed:
            allowed.allow()
        with provtrace.policy_check("p", input=REQ) as denied:
            denied.deny(reason="outside window")
        with provtrace.approval(approver="bob", for_action=REQ) as matching:
            matching.approve()
        with provtrace.approval(approver="bob", for_action=other) as later:
            later.approve()
        with provtrace.action("x", target="y", params=REQ):
            pass
    assert links_of(recorded.span("action x")) == [
        ("authorized_by", allowed.context.span_id),
        ("approved_by", matching.context.span_id),
    ]


def test_step_outside_decision_starts_its_own_trace(recorded: Recorded) -> None:
    with provtrace.tool_call("lonely") as tool:
        tool.record_input({})
        tool.record_output(None)
    span = recorded.span("execute_tool lonely")
    assert span.parent is None
    assert c.DECISION_ID not in attrs(span)
    assert recorded.handle.force_flush(10)
    assert recorded.handle.counters["segments_quarantined"] == 1


def test_nested_steps_default_actor_and_nhi_and_may_override(recorded: Recorded) -> None:
    with provtrace.decision("d", trigger="t", actor="agent-a", nhi="svc-a"):
        with provtrace.tool_call("t", actor="agent-b", nhi="svc-b"):
            pass
    span = recorded.span("execute_tool t")
    assert attrs(span)[c.ACTOR_ID] == "agent-b"
    assert attrs(span)[c.NHI_ID] == "svc-b"


def test_decorators_sync_record_bound_arguments_and_result(recorded: Recorded) -> None:
    @provtrace.tool_call("lookup_ip")
    def lookup(host: str, *, port: int = 443) -> dict[str, Any]:
        return {"host": host, "ip": "10.0.0.7", "port": port}

    with provtrace.decision("d", trigger="t", actor="agent"):
        assert lookup("db1") == {"host": "db1", "ip": "10.0.0.7", "port": 443}
    span = recorded.span("execute_tool lookup_ip")
    assert attrs(span)[c.INPUT_SHA256] == digest({"host": "db1", "port": 443})
    assert attrs(span)[c.OUTPUT_SHA256] == digest({"host": "db1", "ip": "10.0.0.7", "port": 443})
    assert attrs(span)[c.GEN_AI_TOOL_CALL_ARGUMENTS] == '{"host":"db1","port":443}'


def test_bare_decorators_use_the_function_name(recorded: Recorded) -> None:
    @provtrace.decision
    def triage() -> str:
        return lookup_ip()

    @provtrace.tool_call
    def lookup_ip() -> str:
        return "10.0.0.7"

    assert triage() == "10.0.0.7"
    assert attrs(recorded.span("decision triage"))[c.DECISION_NAME] == "triage"
    tool = recorded.span("execute_tool lookup_ip")
    assert tool.parent is not None
    assert tool.parent.span_id == recorded.span("decision triage").context.span_id


def test_decorated_method_records_arguments_without_self(recorded: Recorded) -> None:
    class Firewall:
        @provtrace.tool_call("describe")
        def describe(self, sg: str) -> str:
            return f"rules of {sg}"

    assert Firewall().describe("sg-1") == "rules of sg-1"
    assert attrs(recorded.span("execute_tool describe"))[c.INPUT_SHA256] == digest({"sg": "sg-1"})


def test_async_function_decorator(recorded: Recorded) -> None:
    @provtrace.llm_call(model="claude", provider="anthropic")
    async def ask(prompt: str) -> str:
        await asyncio.sleep(0)
        return "answer to " + prompt

    @provtrace.decision("async", trigger="t", actor="agent")
    async def run() -> str:
        return await ask("q")

    assert asyncio.run(run()) == "answer to q"
    llm = recorded.span("chat claude")
    answer = [{"role": "assistant", "parts": [{"type": "text", "content": "answer to q"}]}]
    assert attrs(llm)[c.OUTPUT_SHA256] == digest(answer)
    assert llm.parent is not None
    assert llm.parent.span_id == recorded.span("decision async").context.span_id


def test_generator_span_covers_the_whole_iteration(recorded: Recorded) -> None:
    observed: list[bool] = []

    @provtrace.tool_call("pages")
    def pages(n: int) -> Any:
        for i in range(n):
            observed.append(recorded.exporter.get_finished_spans() == ())
            yield {"page": i}
        return "done"

    gen = pages(3)
    assert recorded.spans() == []
    assert list(gen) == [{"page": 0}, {"page": 1}, {"page": 2}]
    assert observed == [True, True, True]
    span = recorded.span("execute_tool pages")
    assert attrs(span)[c.OUTPUT_SHA256] == digest([{"page": 0}, {"page": 1}, {"page": 2}])
    assert attrs(span)[c.GEN_AI_TOOL_CALL_RESULT] == '[{"page":0},{"page":1},{"page":2}]'


def test_generator_send_throw_and_early_close(recorded: Recorded) -> None:
    @provtrace.tool_call("echo")
    def echo() -> Any:
        received = yield "ready"
        while True:
            try:
                received = yield f"got {received}"
            except ValueError:
                received = "recovered"

    gen = echo()
    assert next(gen) == "ready"
    assert gen.send("a") == "got a"
    assert gen.throw(ValueError("x")) == "got recovered"
    gen.close()
    span = recorded.span("execute_tool echo")
    assert span.status.status_code is StatusCode.UNSET
    assert attrs(span)[c.OUTPUT_SHA256] == digest(["ready", "got a", "got recovered"])


def test_async_generator_span_covers_the_iteration(recorded: Recorded) -> None:
    @provtrace.llm_call(model="m", provider="p")
    async def stream(prompt: str) -> Any:
        for token in prompt.split():
            await asyncio.sleep(0)
            yield token

    async def consume() -> list[str]:
        return [token async for token in stream("open port 443")]

    assert asyncio.run(consume()) == ["open", "port", "443"]
    span = recorded.span("chat m")
    assert attrs(span)[c.OUTPUT_SHA256] == digest(["open", "port", "443"])
    assert span.end_time is not None and span.start_time is not None


def test_user_exception_propagates_unchanged_and_marks_error(recorded: Recorded) -> None:
    class Boom(RuntimeError):
        pass

    error = Boom("tool failed")

    @provtrace.tool_call("fails")
    def fails() -> None:
        raise error

    with pytest.raises(Boom) as caught:
        fails()
    assert caught.value is error
    span = recorded.span("execute_tool fails")
    assert span.status.status_code is StatusCode.ERROR
    assert attrs(span)[c.ERROR_TYPE].endswith("Boom")
    assert [e.name for e in span.events] == ["exception"]


def test_action_outcome_failure_when_body_raises(recorded: Recorded) -> None:
    with pytest.raises(KeyError), provtrace.decision("d", trigger="t", actor="a"):
        with provtrace.action("x", target="y", params={}):
            raise KeyError("missing")
    assert attrs(recorded.span("action x"))[c.OUTCOME] == "failure"


def test_secret_fetch_decorator_taints_return_value_and_records_nothing_of_it(
    recorded: Recorded,
) -> None:
    @provtrace.secret_fetch(store="vault", ref="kv/db", nhi="svc-db")
    def read_secret(token: str) -> str:
        return "pw-decorated-51f0a2"

    value = read_secret("hvs.caller-token-not-recorded-123456")
    with provtrace.decision("d", trigger="t", actor="a"), provtrace.tool_call("use") as tool:
        tool.record_input({"dsn": f"postgres://app:{value}@db/app"})
    span = recorded.span("secret_fetch vault")
    assert set(attrs(span)) == {c.STEP, c.NHI_ID, c.CAPTURE_MODE, c.SECRET_STORE, c.SECRET_REF}
    content = attrs(recorded.span("execute_tool use"))[c.GEN_AI_TOOL_CALL_ARGUMENTS]
    assert value not in content
    assert "[REDACTED" in content


def test_policy_and_approval_decorators_read_verdicts_from_return_values(
    recorded: Recorded,
) -> None:
    @provtrace.policy_check("fw-change", version="3")
    def check(req: dict[str, Any]) -> bool:
        return req["port"] == 443

    @provtrace.approval(approver="alice", ticket="CHG-1")
    def ask_human(req: dict[str, Any]) -> str:
        return "approved"

    with provtrace.decision("d", trigger="t", actor="agent"):
        assert check(REQ) is True
        assert ask_human(REQ) == "approved"
    assert attrs(recorded.span("policy_check fw-change"))[c.POLICY_DECISION] == "allow"
    approval = attrs(recorded.span("approval CHG-1"))
    assert approval[c.APPROVAL_DECISION] == "approved"
    assert approval[c.APPROVAL_PARAMS_SHA256] == digest({"req": REQ})


def test_verification_decorator_reads_pass_and_fail(recorded: Recorded) -> None:
    @provtrace.verification(method="probe")
    def probe(ok: bool) -> bool:
        return ok

    with provtrace.decision("d", trigger="t", actor="agent"):
        with provtrace.action("x", target="y", params={}):
            pass
        probe(True)
        probe(False)
    results = [attrs(s)[c.VERIFICATION_RESULT] for s in recorded.spans() if s.name == "verification x"]
    assert results == ["pass", "fail"]


def test_steps_work_without_configure() -> None:
    assert provtrace.current() is None
    with provtrace.decision("d", trigger="t") as d, provtrace.tool_call("x") as tool:
        tool.record_input({"a": 1})
    assert d.id
    with pytest.raises(provtrace.ProvenanceViolation) as refused:
        with provtrace.action("x", target="y", require=("policy",)):
            pytest.fail("guarded code ran without a pipeline")
    assert "PIPELINE" in refused.value.codes


def test_triggered_by_links_only_the_steps_the_model_proposed(recorded: Recorded) -> None:
    answer = [
        {
            "role": "assistant",
            "parts": [
                {"type": "tool_call", "id": "c1", "name": "lookup", "arguments": '{"ip": "10.0.0.7"}'},
                {"type": "tool_call", "id": "c2", "name": "block", "arguments": {"ip": "10.0.0.7"}},
            ],
        }
    ]

    @provtrace.action("fw.block", target="10.0.0.7")
    def block(ip: str) -> None: ...

    with provtrace.decision("d", trigger="t", actor="agent"):
        with provtrace.llm_call(model="m", provider="p") as llm:
            llm.record_output(answer)
        with provtrace.tool_call("lookup") as proposed:  # same name, same arguments (JSON text parsed)
            proposed.record_input({"ip": "10.0.0.7"})
        with provtrace.tool_call("lookup") as other:  # the model did not propose these arguments
            other.record_input({"ip": "10.0.0.8"})
        with provtrace.tool_call("lookup") as again:  # proposed once, already carried out
            again.record_input({"ip": "10.0.0.7"})
        with provtrace.tool_call("whois", call_id="c1") as by_id:  # carries the model's call id
            by_id.record_input({"anything": True})
        block("10.0.0.7")  # an action whose parameters equal a proposal's arguments
    spans = [s for s in recorded.spans() if s.name == "execute_tool lookup"]
    assert [links_of(s) for s in spans] == [[("triggered_by", llm.context.span_id)], [], []]
    assert dict(spans[0].links[0].attributes or {})[c.GEN_AI_TOOL_CALL_ID] == "c1"
    assert links_of(recorded.span("execute_tool whois")) == [("triggered_by", llm.context.span_id)]
    action = recorded.span("action fw.block")
    assert [
        (kind, dict(link.attributes or {}).get(c.GEN_AI_TOOL_CALL_ID))
        for kind, link in zip([k for k, _ in links_of(action)], action.links, strict=True)
        if kind == "triggered_by"
    ] == [("triggered_by", "c2")]
    assert attrs(spans[0])[c.LINKS_MIRROR] == mirror(("triggered_by", llm, "c1"))
