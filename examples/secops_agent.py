"""The reference scenario: a security agent contains incident INC-4711 by opening a firewall rule.

The agent asks a model what to do, looks the rule up, fetches the firewall API token, checks
policy ``fw-change``, gets a human approval bound to the exact change, opens the rule and verifies
reachability. A second run lacks the approval: the action guard refuses it before anything changes.

The model, the rule lookup, the secret store and the firewall are plain functions here, so the
example runs anywhere; provtrace records the same evidence whatever stands behind them.

Run it with ``make demo``, or directly: ``python examples/secops_agent.py`` (it prints the trace
ids; ``provtrace reconstruct TRACE_ID --archive DIR`` shows the chain).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from typing import Any

import provtrace

ALERT = {"id": "INC-4711", "signal": "partner integration 10.0.0.0/24 cannot reach the API on 443"}
FIREWALL: dict[str, list[dict[str, Any]]] = {"sg-123": []}


def call_model(messages: list[dict[str, str]]) -> dict[str, Any]:
    """Stands in for a chat completion: proposes the change as a tool call."""
    return {
        "role": "assistant",
        "content": "Open 443/tcp on sg-123 for 10.0.0.0/24; it matches change CHG-42.",
        "proposal": {
            "sg": "sg-123",
            "rule": "rule-9",
            "port": 443,
            "proto": "tcp",
            "cidr": "10.0.0.0/24",
        },
    }


@provtrace.tool_call("lookup_rule")
def lookup_rule(sg: str) -> dict[str, Any]:
    return {"sg": sg, "rules": list(FIREWALL[sg])}


def read_from_vault() -> str:
    """Stands in for a secret store read; the value is a fresh random token on every run."""
    return "fwtok-" + secrets.token_urlsafe(18)


def evaluate_policy(request: dict[str, Any]) -> tuple[bool, str]:
    allowed = request["port"] in (80, 443) and request["cidr"].startswith("10.")
    return allowed, "ticket CHG-42 open, internal range, web port" if allowed else "not allowed"


def open_rule(request: dict[str, Any], token: str) -> dict[str, Any]:
    if not token.startswith("fwtok-"):
        raise PermissionError("firewall API refused the token")
    FIREWALL[request["sg"]].append({k: request[k] for k in ("rule", "port", "proto", "cidr")})
    return {"sg": request["sg"], "rules": list(FIREWALL[request["sg"]])}


@provtrace.verification(method="port-probe")
def probe(cidr: str, port: int) -> bool:
    return any(r["port"] == port and r["cidr"] == cidr for r in FIREWALL["sg-123"])


def contain(incident: dict[str, str], *, with_approval: bool) -> str:
    """One decision; returns its trace id."""
    with provtrace.decision(
        f"contain {incident['id']}",
        trigger=f"alert:{incident['id']}",
        actor="secops-agent",
        nhi="svc-secops@prod",
    ) as decision:
        messages = [
            {"role": "system", "content": "You are a cautious security operations agent."},
            {
                "role": "user",
                "content": f"Alert {incident['id']}: {incident['signal']}. What should we change?",
            },
        ]
        with provtrace.llm_call(model="gpt-4o", provider="openai") as llm:
            llm.record_input(messages)
            answer = call_model(messages)
            llm.record_output([answer])
        request = answer["proposal"]
        before = lookup_rule(request["sg"])
        with provtrace.secret_fetch(
            store="vault", ref="kv/fw-api-token", nhi="svc-fw", version="7"
        ) as secret:
            token = secret.record_value(read_from_vault())
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
                after = open_rule(request, token)
                action.record_change(before=before, after=after)
        except provtrace.ProvenanceViolation as refusal:
            print(f"guard refused the change: {refusal} ({', '.join(refusal.codes)})", file=sys.stderr)
            return decision.trace_id
        probe(request["cidr"], request["port"])
    return decision.trace_id


def main() -> int:
    handle = provtrace.configure(service_name="secops-agent")
    try:
        complete = contain(ALERT, with_approval=True)
        refused = contain({**ALERT, "id": "INC-4712"}, with_approval=False)
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
