"""Agent code as a user writes it, checked with ``mypy --strict`` by tests/unit/test_typing.py:
every ``reveal_type`` line states the type it must reveal after ``# expect:``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import provtrace


@provtrace.tool_call("lookup_rule")
def lookup_rule(sg: str, *, port: int = 443) -> dict[str, int]:
    return {sg: port}


@provtrace.tool_call
async def probe(host: str) -> bool:
    return bool(host)


@provtrace.llm_call(model="gpt-4o", provider="openai")
def pages(count: int) -> Iterator[str]:
    yield from ("page",) * count


@provtrace.secret_fetch(store="vault", ref="kv/token", nhi="svc")
async def tokens() -> AsyncIterator[str]:
    yield "t"


@provtrace.decision
def triage(alert: str) -> str:
    return alert


def main() -> None:
    reveal_type(lookup_rule)  # expect: def (sg: str, *, port: int =) -> dict[str, int]
    reveal_type(probe)  # expect: def (host: str) -> typing.Coroutine[Any, Any, bool]
    reveal_type(pages)  # expect: def (count: int) -> typing.Iterator[str]
    reveal_type(tokens)  # expect: def () -> typing.AsyncIterator[str]
    reveal_type(triage)  # expect: def (alert: str) -> str
    with provtrace.decision("contain INC-4711", trigger="alert:INC-4711", actor="agent") as d:
        reveal_type(d)  # expect: provtrace.steps.decision.Decision
        with provtrace.llm_call(model="gpt-4o", provider="openai") as llm:
            reveal_type(llm)  # expect: provtrace.steps.calls.LlmCall
        with provtrace.tool_call("lookup") as tool:
            reveal_type(tool)  # expect: provtrace.steps.calls.ToolCall
        with provtrace.secret_fetch(store="vault", ref="kv/x", nhi="svc") as s:
            token = s.record_value("secret")
            reveal_type(token)  # expect: str
        with provtrace.policy_check("fw-change", version="3", input={"port": 443}) as p:
            reveal_type(p)  # expect: provtrace.steps.governance.PolicyCheck
            p.allow(reason="ok")
        with provtrace.approval(approver="alice", for_action={"port": 443}) as a:
            reveal_type(a)  # expect: provtrace.steps.governance.Approval
            a.approve()
        with provtrace.action("fw.open", target="sg-1", privileged=True, params={"port": 443}) as act:
            reveal_type(act)  # expect: provtrace.steps.action.Action
        with provtrace.verification(of=act, method="probe") as v:
            reveal_type(v)  # expect: provtrace.steps.action.Verification
    handle = provtrace.configure(service_name="agent")
    reveal_type(handle)  # expect: provtrace.config.Provtrace
    reveal_type(handle.health())  # expect: provtrace.runtime.Health
