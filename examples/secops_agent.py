"""The reference scenario: a security agent contains incident INC-4711 by opening a firewall rule.

The agent asks a model what to do, looks the rule up, fetches the firewall API token, checks
policy ``fw-change``, gets a human approval bound to the exact change, opens the rule and verifies
reachability. A second run lacks the approval: the action guard refuses it before anything changes.

The rule lookup and the firewall change go through a real MCP server over stdio
(examples/firewall_mcp_server.py), reached through the instrumented MCP client: both sides of
each call land in the decision's trace. The model is asked through the real ``openai`` client,
instrumented too, against the OpenAI-compatible server in examples/llm_server.py, started here on
loopback (or the one ``OPENAI_BASE_URL`` names): it proposes the lookup and the change as tool
calls, and the steps that carry them out are linked ``triggered_by`` its answer. The firewall
token is read from OpenBao (or Vault) with plain hvac, at ``VAULT_ADDR`` with ``VAULT_TOKEN``: the
hvac instrumentation records the fetch (which secret, which version, as which identity) and
taints the value. No step of the agent is hand-written except the policy check, the approval,
the action and the verification, which are the agent's own decisions.

Run it with ``make demo`` (which starts a dev OpenBao holding ``kv/fw-api-token``), or directly
with ``VAULT_ADDR`` and ``VAULT_TOKEN`` set: ``python examples/secops_agent.py`` (it prints the
trace ids; ``provtrace reconstruct TRACE_ID --archive DIR`` shows the chain).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import hvac
import openai
from llm_server import Reply, ToolCall, serve
from mcp import ClientSession, StdioServerParameters, stdio_client

import provtrace

ALERT = {"id": "INC-4711", "signal": "partner integration 10.0.0.0/24 cannot reach the API on 443"}
FIREWALL_SERVER = StdioServerParameters(
    command=sys.executable,
    args=[str(Path(__file__).resolve().with_name("firewall_mcp_server.py"))],
    # The server records its side with the same settings (home, endpoint or archive, signing key).
    env={k: v for k, v in os.environ.items() if k.startswith(("PROVTRACE_", "OTEL_"))},
)


CHANGE = {"sg": "sg-123", "rule": "rule-9", "port": 443, "proto": "tcp", "cidr": "10.0.0.0/24"}
MODEL = "gpt-4o"
TOOLS = [
    {"type": "function", "function": {"name": name, "description": text, "parameters": {"type": "object"}}}
    for name, text in (("lookup_rule", "the rules of a security group"), ("open_rule", "open a port"))
]
# What the local model server answers to the alert: a rule lookup and the change, as tool calls.
PROPOSAL = Reply(
    match="What should we change?",
    text="Open 443/tcp on sg-123 for 10.0.0.0/24; it matches change CHG-42.",
    tool_calls=(ToolCall("lookup_rule", {"sg": "sg-123"}), ToolCall("open_rule", CHANGE)),
)


def ask_model(model: openai.OpenAI, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """A chat completion offering the firewall tools (the instrumentation records it as an
    llm_call, its tool calls as proposals); returns the arguments of the proposed change."""
    answer = model.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)  # type: ignore[arg-type]
    calls = answer.choices[0].message.tool_calls or []
    change = next(call for call in calls if call.type == "function" and call.function.name == "open_rule")
    return dict(json.loads(change.function.arguments))


async def firewall(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call a firewall tool over MCP (the instrumentation records the call as a tool_call step)."""
    result = await session.call_tool(tool, arguments)
    if result.is_error or result.structured_content is None:
        raise RuntimeError(f"firewall {tool} failed: {result.content}")
    return result.structured_content


def read_firewall_token() -> str:
    """Plain hvac: no provtrace call here, the instrumentation records the fetch."""
    vault = hvac.Client(url=os.environ["VAULT_ADDR"], token=os.environ.get("VAULT_TOKEN"))
    answer = vault.secrets.kv.v2.read_secret_version(
        path="fw-api-token", mount_point="kv", raise_on_deleted_version=True
    )
    token: str = answer["data"]["data"]["token"]
    return token


def evaluate_policy(request: dict[str, Any]) -> tuple[bool, str]:
    allowed = request["port"] in (80, 443) and request["cidr"].startswith("10.")
    return allowed, "ticket CHG-42 open, internal range, web port" if allowed else "not allowed"


async def verify(session: ClientSession, request: dict[str, Any]) -> None:
    """Read the rules back from the firewall: the change is verified by what the firewall says."""
    with provtrace.verification(method="rule-lookup") as check:
        rules = (await firewall(session, "lookup_rule", sg=request["sg"]))["rules"]
        if any(r["port"] == request["port"] and r["cidr"] == request["cidr"] for r in rules):
            check.passed(detail=f"{request['port']}/{request['proto']} from {request['cidr']} is open")
        else:
            check.failed(detail="the rule is not in the firewall")


async def contain(
    session: ClientSession, model: openai.OpenAI, incident: dict[str, str], *, with_approval: bool
) -> str:
    """One decision; returns its trace id."""
    with provtrace.decision(
        f"contain {incident['id']}",
        trigger=f"alert:{incident['id']}",
        actor="secops-agent",
        nhi="svc-secops@prod",
    ) as decision:
        question = f"Alert {incident['id']}: {incident['signal']}. What should we change?"
        messages = [
            {"role": "system", "content": "You are a cautious security agent."},
            {"role": "user", "content": question},
        ]
        request = ask_model(model, messages)
        before = await firewall(session, "lookup_rule", sg=request["sg"])
        token = read_firewall_token()
        with provtrace.policy_check("fw-change", version="3", engine="opa", input=request) as policy:
            allowed, reason = evaluate_policy(request)
            if allowed:
                policy.allow(reason=reason)
            else:
                policy.deny(reason=reason)
        if with_approval:
            with provtrace.approval(
                approver="alice@example.com", method="slack", ticket="CHG-42", for_action=request
            ) as approval:
                approval.approve(reason="matches the change window of CHG-42")
        try:
            with provtrace.action(
                "firewall.rule.open",
                target=f"{request['sg']}/{request['rule']}",
                privileged=True,
                params=request,
                require=("policy", "approval"),
            ) as action:
                after = await firewall(session, "open_rule", **request, token=token)
                action.record_change(before=before, after=after)
        except provtrace.ProvenanceViolation as refusal:
            print(f"guard refused the change: {refusal} ({', '.join(refusal.codes)})", file=sys.stderr)
            return decision.trace_id
        await verify(session, request)
    return decision.trace_id


async def both_incidents(model: openai.OpenAI) -> tuple[str, str]:
    async with stdio_client(FIREWALL_SERVER) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        complete = await contain(session, model, ALERT, with_approval=True)
        refused = await contain(session, model, {**ALERT, "id": "INC-4712"}, with_approval=False)
    return complete, refused


def run_incidents() -> tuple[str, str]:
    """Both incidents, asking the model server ``OPENAI_BASE_URL`` names, else a local one."""
    if os.environ.get("OPENAI_BASE_URL"):
        return anyio.run(both_incidents, openai.OpenAI())
    with serve(replies=[PROPOSAL]) as server:
        model = openai.OpenAI(base_url=server.url + "/v1", api_key="local-model-server", max_retries=0)
        return anyio.run(both_incidents, model)


def main() -> int:
    if not os.environ.get("VAULT_ADDR"):
        print(
            "set VAULT_ADDR and VAULT_TOKEN to an OpenBao or Vault holding kv/fw-api-token (make demo does)"
        )
        return 2
    handle = provtrace.configure(service_name="secops-agent")
    provtrace.instrument()
    try:
        complete, refused = run_incidents()
        delivered = handle.force_flush(timeout_s=30)
    finally:
        handle.shutdown(timeout_s=30)
    result = {
        "complete_trace_id": complete,
        "refused_trace_id": refused,
        "delivered": delivered,
        "archive_dir": str(handle.archive_dir) if handle.archive_dir else None,
        "endpoint": handle.endpoint,
        "counters": handle.counters,
    }
    output = os.environ.get("SECOPS_RESULT_FILE")
    if output:
        with open(output, "w", encoding="utf-8") as file:
            json.dump(result, file, indent=2)
    print(json.dumps({k: result[k] for k in ("complete_trace_id", "refused_trace_id", "delivered")}))
    return 0 if delivered else 1


if __name__ == "__main__":
    raise SystemExit(main())
