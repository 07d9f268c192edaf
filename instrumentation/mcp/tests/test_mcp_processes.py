"""Real MCP clients and servers in separate processes (stdio, streamable HTTP on loopback) and in
one process, on the mcp line of this environment (each line has its nox session), and with client
and server on different lines: what each side's provtrace wrote, read back from its archive."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from apps.common import AGENT_SECRET, SERVER_SECRET
from mcp_harness import Python, Run, run_apps
from provtrace_instrumentation_mcp.protocol import META_TAINTED

from provtrace import conventions as c
from provtrace.testing import KIND_CLIENT, KIND_INTERNAL, KIND_SERVER, STATUS_ERROR, SpanRecord

CALLS = [
    "tools/call add",
    "tools/call whoami",
    "resources/read",
    "prompts/get triage",
    "tools/call fail",
    "tools/call open_rule",
]
TRANSPORTS = {"stdio": "pipe", "http": "tcp", "inprocess": None}


def by_name(spans: list[SpanRecord], name: str) -> SpanRecord:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, f"expected one {name!r}, got {[s.name for s in spans]}"
    return found[0]


def steps(spans: list[SpanRecord]) -> list[SpanRecord]:
    return [s for s in spans if s.step == c.STEP_TOOL_CALL]


def check_pair(
    run: Run, line: Python, transport: str, client: SpanRecord, server: SpanRecord, decision: SpanRecord
) -> None:
    """One call as each side recorded it: parentage, identities, claims, equal digests."""
    name = client.name
    assert client.parent_span_id == decision.span_id
    assert server.parent_span_id == client.span_id
    assert server.parent_is_remote is (transport != "inprocess")
    for record in (client, server):
        a = record.attributes
        assert a[c.STEP] == c.STEP_TOOL_CALL
        assert a[c.DECISION_ID] == run.out["decision_id"]
        assert a[c.MCP_METHOD_NAME] == name.split(" ")[0]
        assert len(str(a[c.INPUT_SHA256])) == 64
        assert len(str(a[c.OUTPUT_SHA256])) == 64
    if (line.line, transport) != (2, "inprocess"):  # mcp 2.x's in-process dispatcher has no JSON-RPC
        assert client.attributes[c.JSONRPC_REQUEST_ID] == server.attributes[c.JSONRPC_REQUEST_ID]
    assert client.attributes[c.INPUT_SHA256] == server.attributes[c.INPUT_SHA256]
    assert client.attributes[c.OUTPUT_SHA256] == server.attributes[c.OUTPUT_SHA256]
    assert client.attributes[c.ACTOR_ID] == "test-agent"
    assert client.attributes[c.NHI_ID] == "svc-agent"
    assert server.attributes[c.ACTOR_ID] == "test-tools"  # the server acts; the caller is a claim
    assert server.attributes[c.CLAIM_ACTOR_ID] == "test-agent"
    assert server.attributes[c.CLAIM_NHI_ID] == "svc-agent"
    assert server.attributes[c.CLAIM_CLIENT_NAME] == "mcp"
    assert client.attributes[c.CLAIM_SERVER_NAME] == "test-tools"
    assert c.MCP_PROTOCOL_VERSION in client.attributes
    assert c.MCP_PROTOCOL_VERSION in server.attributes
    assert client.attributes.get(c.NETWORK_TRANSPORT) == TRANSPORTS[transport]
    if transport == "http":
        assert server.attributes[c.NETWORK_TRANSPORT] == "tcp"
    if transport != "inprocess":
        assert str(server.attributes[c.CLAIM_PARENT]).split("-")[2] == client.span_id


def check_nested_steps(run: Run, spans: list[SpanRecord], tool: SpanRecord) -> None:
    """A tool's own steps nest under the server's span and continue the caller's decision."""
    nested = sorted((s for s in spans if s.parent_span_id == tool.span_id), key=lambda s: s.start_ns)
    assert [(s.step, s.kind) for s in nested] == [
        (c.STEP_SECRET_FETCH, KIND_INTERNAL),
        (c.STEP_POLICY_CHECK, KIND_INTERNAL),
        (c.STEP_ACTION, KIND_INTERNAL),
    ]
    for record in nested:
        assert record.attributes[c.DECISION_ID] == run.out["decision_id"]
        assert record.attributes[c.ACTOR_ID] == "test-tools"
    action = nested[2]
    assert [link.span_id for link in action.links_of(c.LINK_AUTHORIZED_BY)] == [nested[1].span_id]


@pytest.mark.parametrize("transport", list(TRANSPORTS))
def test_one_trace_joins_client_and_server_with_equal_digests(
    line: Python, transport: str, tmp_path: Path
) -> None:
    run = run_apps(line, "roundtrip", transport, tmp_path)
    assert run.out["add"] == "5"
    assert run.out["fail_is_error"] is True
    assert run.out["whoami"] == {"baggage": {"tenant": "blue"}, "trace_id": run.trace_id}
    spans = run.spans("agent") + run.spans("server")  # in process, both sides share one archive
    decision = by_name(spans, "decision test roundtrip")
    clients = {s.name: s for s in steps(spans) if s.kind == KIND_CLIENT}
    servers = {s.name: s for s in steps(spans) if s.kind == KIND_SERVER}
    assert sorted(clients) == sorted(servers) == sorted(CALLS)
    assert not [s.name for s in spans if s.name.startswith("MCP send tools/call")]  # one span per call
    assert run.quarantined() == []  # complete evidence on both sides, in enforce mode
    for name in CALLS:
        check_pair(run, line, transport, clients[name], servers[name], decision)
    add = clients["tools/call add"].attributes
    assert add[c.GEN_AI_TOOL_NAME] == "add"
    assert add[c.GEN_AI_OPERATION_NAME] == "execute_tool"
    assert add[c.GEN_AI_TOOL_CALL_ARGUMENTS] == '{"a":2,"b":3}'
    read = clients["resources/read"].attributes
    assert read[c.MCP_RESOURCE_URI] == "fw://rules/sg-123"
    assert c.GEN_AI_OPERATION_NAME not in read
    assert clients["prompts/get triage"].attributes[c.GEN_AI_PROMPT_NAME] == "triage"
    for failed in (clients["tools/call fail"], servers["tools/call fail"]):
        assert failed.attributes[c.ERROR_TYPE] == c.ERROR_TYPE_TOOL_ERROR
        assert failed.status_code == STATUS_ERROR
    check_nested_steps(run, spans, servers["tools/call open_rule"])


@pytest.mark.parametrize("client_here", [True, False], ids=["client-on-this-line", "server-on-this-line"])
def test_client_and_server_on_different_mcp_lines_join_one_trace(
    line: Python, peer: Python, client_here: bool, tmp_path: Path
) -> None:
    """An agent on one mcp line calls a server on the other over stdio: the claims, the trace
    context and the digests each side writes still meet."""
    client, server = (line, peer) if client_here else (peer, line)
    run = run_apps(client, "roundtrip", "stdio", tmp_path, server=server)
    assert run.out["add"] == "5"
    spans = run.spans("agent") + run.spans("server")
    decision = by_name(spans, "decision test roundtrip")
    clients = {s.name: s for s in steps(spans) if s.kind == KIND_CLIENT}
    servers = {s.name: s for s in steps(spans) if s.kind == KIND_SERVER}
    assert sorted(clients) == sorted(servers) == sorted(CALLS)
    assert run.quarantined() == []
    for name in CALLS:
        check_pair(run, client, "stdio", clients[name], servers[name], decision)
    check_nested_steps(run, spans, servers["tools/call open_rule"])


@pytest.mark.parametrize("capture", ["full", "none"])
def test_secrets_cross_the_wire_but_never_reach_either_sides_records(
    line: Python, capture: str, tmp_path: Path
) -> None:
    env = {"PROVTRACE_CAPTURE_CONTENT": capture}
    run = run_apps(line, "secrets", "stdio", tmp_path, agent_env=env, server_env=env)
    assert AGENT_SECRET in run.out["echo"]  # the tools really got and returned them
    assert SERVER_SECRET in run.out["issued"]
    written = run.files_bytes()
    assert len(written) > 1000
    for secret in (AGENT_SECRET, SERVER_SECRET):
        assert secret.encode() not in written
    echoed = by_name(run.spans("server"), "tools/call echo").attributes
    issued = by_name(run.spans("agent"), "tools/call issue_token").attributes
    if capture == "full":  # content is kept, only the secrets each side learned from the other go
        assert "[REDACTED:secret]" in str(echoed[c.GEN_AI_TOOL_CALL_ARGUMENTS])
        assert "[REDACTED:secret]" in str(issued[c.GEN_AI_TOOL_CALL_RESULT])
    else:
        assert c.GEN_AI_TOOL_CALL_ARGUMENTS not in echoed
        assert c.INPUT_SHA256 not in echoed


def test_the_taint_pointer_on_the_wire_never_carries_the_secret(line: Python, tmp_path: Path) -> None:
    """The agent's secret is a key of a tool's arguments: the bytes the client writes to the
    server process carry it in the arguments (the tool needs it) and nowhere else, and the
    server, which never fetched it, still redacts it because of the positions it was sent."""
    wire = tmp_path / "client-to-server.jsonl"
    env = {"PROVTRACE_CAPTURE_CONTENT": "full"}
    agent_env = {**env, "MCP_TEST_WIRE_LOG": str(wire)}
    run = run_apps(line, "secret_key", "stdio", tmp_path, agent_env=agent_env, server_env=env)
    assert run.out["stored"] == "stored 2 entries"
    raw = wire.read_bytes()
    messages = [json.loads(line) for line in raw.splitlines() if line.strip()]
    (request,) = [m for m in messages if (m.get("params") or {}).get("name") == "store"]
    arguments = request["params"].pop("arguments")
    assert arguments == {"data": {"note": "rotated", AGENT_SECRET: f"grant {AGENT_SECRET}"}}
    assert raw.count(AGENT_SECRET.encode()) == 2  # the key and its value, in the arguments only
    rest = json.dumps(messages, ensure_ascii=False)
    assert AGENT_SECRET not in rest
    n = len(AGENT_SECRET)
    assert request["params"]["_meta"][META_TAINTED] == [["/arguments/data/~21", 0, n, "key"]]
    assert AGENT_SECRET.encode() not in run.files_bytes()
    stored = by_name(run.spans("server"), "tools/call store").attributes[c.GEN_AI_TOOL_CALL_ARGUMENTS]
    redacted = {"data": {"note": "rotated", "[REDACTED:secret]": "grant [REDACTED:secret]"}}
    assert json.loads(str(stored)) == redacted


def test_a_cancelled_call_is_recorded_as_cancelled_on_both_sides(line: Python, tmp_path: Path) -> None:
    run = run_apps(line, "cancel", "stdio", tmp_path)
    assert run.out["cancelled"] is True
    assert run.quarantined() == []  # a call that failed has no output to digest: still complete
    for side, kind in (("agent", KIND_CLIENT), ("server", KIND_SERVER)):
        (blocked,) = [s for s in run.records(side) if s.name == "tools/call block"]
        assert blocked.kind == kind
        assert blocked.status_code == STATUS_ERROR
        assert blocked.attributes[c.ERROR_TYPE] == "CancelledError"
        assert c.OUTPUT_SHA256 not in blocked.attributes


def test_a_server_crashing_mid_call_leaves_the_agent_running_and_its_evidence(
    line: Python, tmp_path: Path
) -> None:
    run = run_apps(line, "crash", "stdio", tmp_path)
    assert run.out["survived"] is True
    assert run.out["error"] in ("MCPError", "McpError")
    (call,) = [s for s in run.records("agent") if s.name == "tools/call crash"]
    assert call.kind == KIND_CLIENT
    assert call.status_code == STATUS_ERROR
    assert call.attributes[c.RPC_RESPONSE_STATUS_CODE] == call.attributes[c.ERROR_TYPE]  # JSON-RPC code
    assert [e.name for e in call.events] == ["exception"]


def sealed_as(records: list[SpanRecord], span_id: str) -> str:
    """The completeness verdict of the one seal that covers the span."""
    (seal,) = [
        r
        for r in records
        if r.is_seal and any(s.startswith(f"{span_id}:") for s in r.attr_strings(c.SEAL_SPANS))
    ]
    return str(seal.attributes[c.SEAL_COMPLETENESS])


def served_decision(records: list[SpanRecord], step: SpanRecord) -> SpanRecord:
    """The decision a server step nests under (on mcp 2.x mcp's SERVER span is its plain parent)."""
    by_id = {r.span_id: r for r in records}
    decision = by_id[step.parent_span_id]
    assert decision.step == c.STEP_DECISION
    return decision


def test_unsampled_or_forged_traceparents_never_suppress_server_evidence(
    line: Python, tmp_path: Path
) -> None:
    run = run_apps(line, "forged", "stdio", tmp_path, agent_env={"MCP_TEST_BARE": "1"})
    assert run.out == {"unsampled": "2", "malformed": "2"}
    assert run.quarantined() == []  # a bare client sends no decision: the server records its own
    records = run.records("server")
    calls = [r for r in records if r.name == "tools/call add" and r.step == c.STEP_TOOL_CALL]
    claimed = {r.attributes[c.CLAIM_PARENT]: r for r in calls}
    unsampled = claimed["00-5a1ce0ffee5a1ce0ffee5a1ce0ffee01-00f067aa0ba902b7-00"]
    malformed = claimed["00-not-a-trace-context-zz"]
    assert unsampled.trace_id == "5a1ce0ffee5a1ce0ffee5a1ce0ffee01"
    (entry,) = [r for r in records if r.trace_id == unsampled.trace_id and r.parent_is_remote]
    assert entry.parent_span_id == "00f067aa0ba902b7"  # mcp's span on 2.x, the decision on 1.x
    assert entry.attributes[c.UPSTREAM_SAMPLED] is False
    assert malformed.trace_id != unsampled.trace_id
    assert not [
        r for r in records if r.trace_id == malformed.trace_id and r.parent_span_id and r.parent_is_remote
    ]
    for record in (unsampled, malformed):
        assert len(str(record.attributes[c.OUTPUT_SHA256])) == 64
        assert sealed_as(records, record.span_id) == c.COMPLETENESS_COMPLETE


def test_a_plain_client_gets_complete_evidence_of_what_the_server_served(
    line: Python, tmp_path: Path
) -> None:
    """A caller without provtrace: the server's side is a decision of its own, sealed complete in
    enforce mode, and provtrace says nothing in the server's logs."""
    run = run_apps(line, "", "", tmp_path, client="plain_client.py")
    assert run.out["add"] == "5"
    assert run.out["open_rule"]["sg"] == "sg-7"
    assert run.out["provtrace_loaded"] is False
    assert run.quarantined() == []
    assert not (run.agent_home / "archive").exists()
    records = run.records("server")
    steps = {r.name: r for r in records if r.step == c.STEP_TOOL_CALL}
    assert sorted(steps) == ["tools/call add", "tools/call open_rule"]
    for name, step in steps.items():
        decision = served_decision(records, step)
        assert step.kind == KIND_SERVER
        assert decision.name == f"decision serve {name}"
        assert decision.attributes[c.DECISION_NAME] == f"serve {name}"
        assert (
            decision.attributes[c.DECISION_TRIGGER]
            == f"mcp:tools/call#{step.attributes[c.JSONRPC_REQUEST_ID]}"
        )
        assert decision.attributes[c.ACTOR_ID] == step.attributes[c.ACTOR_ID] == "test-tools"
        assert step.attributes[c.DECISION_ID] == decision.attributes[c.DECISION_ID]
        assert c.CLAIM_ACTOR_ID not in step.attributes  # the caller claimed nothing
        assert len(str(step.attributes[c.OUTPUT_SHA256])) == 64
        for span_id in (decision.span_id, step.span_id):
            assert sealed_as(records, span_id) == c.COMPLETENESS_COMPLETE
    nested = [r for r in records if r.parent_span_id == steps["tools/call open_rule"].span_id]
    assert [r.step for r in sorted(nested, key=lambda r: r.start_ns)] == [
        c.STEP_SECRET_FETCH,
        c.STEP_POLICY_CHECK,
        c.STEP_ACTION,
    ]
    decision_id = steps["tools/call open_rule"].attributes[c.DECISION_ID]
    assert {r.attributes[c.DECISION_ID] for r in nested} == {decision_id}
    assert "provtrace" not in run.stderr  # the server's log (its stderr) holds nothing of provtrace
