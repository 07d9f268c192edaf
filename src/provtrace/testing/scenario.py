"""The reference scenario of DESIGN.md with hand-written steps, for tests and the documentation.

``python -m provtrace.testing.scenario`` records it once with the settings of the environment
(``PROVTRACE_*``, ``OTEL_*``: with no endpoint, into the embedded archive) and prints the trace
id, so a page can show the evidence of a real decision without a model, an MCP server or a
secret store (examples/secops_agent.py is the agent that talks to all three).
"""

from __future__ import annotations

import argparse
from typing import Any

import provtrace

REQ = {"sg": "sg-123", "rule": "rule-9", "port": 443, "proto": "tcp", "cidr": "10.0.0.0/24"}
SECRET = "tok-scenario-8c1f0e2d"  # noqa: S105 - a canary the tests look for, not a credential
PROMPT = [{"role": "user", "parts": [{"type": "text", "content": "alert INC-4711"}]}]
# The model proposes two tool calls: the rule lookup and the change itself (GenAI message shape).
ANSWER = [
    {
        "role": "assistant",
        "parts": [
            {"type": "text", "content": "open 443/tcp on sg-123"},
            {"type": "tool_call", "id": "call_lookup", "name": "lookup_rule", "arguments": {"sg": "sg-123"}},
            {"type": "tool_call", "id": "call_open", "name": "open_rule", "arguments": REQ},
        ],
        "finish_reason": "tool_call",
    }
]


def reference_scenario(*, approve: bool = True, guard: bool = False, secret: str = SECRET) -> dict[str, Any]:
    """One decision through all eight steps; returns the step handles by name. Without ``guard``
    the action runs even without approval (to exercise the completeness check)."""
    handles: dict[str, Any] = {}
    with provtrace.decision(
        "contain INC-4711", trigger="alert:INC-4711", actor="secops-agent", nhi="svc-secops@prod"
    ) as d:
        handles["decision"] = d
        with provtrace.llm_call(model="gpt-4o", provider="openai") as llm:
            llm.record_input(PROMPT)
            llm.record_output(ANSWER)
            llm.set_usage(input_tokens=12, output_tokens=9)
            handles["llm"] = llm
        with provtrace.tool_call("lookup_rule") as tool:
            tool.record_input({"sg": "sg-123"})
            tool.record_output({"rules": []})
            handles["tool"] = tool
        with provtrace.secret_fetch(store="vault", ref="kv/fw-api-token", nhi="svc-fw") as s:
            s.record_value(secret, version="7")
            handles["secret"] = s
        with provtrace.policy_check("fw-change", version="3", engine="opa", input=REQ) as p:
            p.allow(reason="ticket CHG-42 open")
            handles["policy"] = p
        if approve:
            with provtrace.approval(
                approver="alice@example.com", method="slack", ticket="CHG-42", for_action=REQ
            ) as a:
                a.approve(reason="matches change window")
                handles["approval"] = a
        with provtrace.action(
            "firewall.rule.open",
            target="sg-123/rule-9",
            privileged=True,
            params=REQ,
            require=("policy", "approval") if guard else (),
        ) as act:
            act.record_change(before={"open": []}, after={"open": [443]})
            act.set_attribute("firewall.change.ratio", 0.25)
            handles["action"] = act
        with provtrace.verification(of=act, method="port-probe") as v:
            v.passed(detail="443/tcp reachable from 10.0.0.0/24")
            handles["verification"] = v
    return handles


def main(argv: list[str] | None = None) -> int:
    """Record the scenario once and say where it went; exit 1 if it could not be delivered."""
    parser = argparse.ArgumentParser(prog="python -m provtrace.testing.scenario", description=__doc__)
    parser.add_argument(
        "--without-approval",
        action="store_true",
        help="the second run of the scenario: the privileged action runs without an approval",
    )
    args = parser.parse_args(argv)
    handle = provtrace.configure(service_name="secops-agent")
    trace_id = reference_scenario(approve=not args.without_approval)["decision"].trace_id
    flushed = handle.force_flush(timeout_s=60)
    closed = handle.shutdown(timeout_s=60)
    print(f"trace {trace_id}")
    return 0 if flushed and closed else 1


if __name__ == "__main__":
    raise SystemExit(main())
