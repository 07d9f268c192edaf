"""A real MCP server for the instrumentation's tests, on mcp 2.x (MCPServer) or 1.x (FastMCP).

``python tools_server.py stdio|http``: configures provtrace from the PROVTRACE_* environment,
turns the instrumentation on (see ``apps.common``) and serves. Over HTTP it listens on a free
loopback port it prints first. The agent imports ``build`` to run it in process instead.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

import anyio
import common  # next to this script, and a script's directory is first on its path
from opentelemetry import baggage, trace

import provtrace

try:  # mcp 2.x
    from mcp.server.mcpserver import Context
    from mcp.server.mcpserver import MCPServer as Server
except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import Context
    from mcp.server.fastmcp import FastMCP as Server

RULES: dict[str, list[dict[str, Any]]] = {"sg-123": [{"port": 22, "cidr": "10.0.0.0/8"}]}


def build() -> Any:
    server = Server("test-tools")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    def whoami() -> dict[str, Any]:
        """What the handler sees of the caller's context: its baggage and the current trace."""
        span = trace.get_current_span().get_span_context()
        return {"baggage": dict(baggage.get_all()), "trace_id": trace.format_trace_id(span.trace_id)}

    @server.tool()
    def fail(reason: str) -> str:
        """Always raises: the SDK answers with an error result."""
        raise ValueError(reason)

    @server.tool()
    def issue_token() -> str:
        """Returns a secret this server fetched: it must not reach either side's records."""
        with provtrace.secret_fetch(store="vault", ref="kv/issued", nhi="svc-tools") as fetch:
            token = fetch.record_value(common.SERVER_SECRET)
        return f"here you go: {token}"

    @server.tool()
    def echo(text: str) -> str:
        """Returns its argument (the agent passes its own secret through it)."""
        return f"echo: {text}"

    @server.tool()
    def store(data: dict[str, str]) -> str:
        """Stores a mapping (the agent uses its secret as a key)."""
        return f"stored {len(data)} entries"

    @server.tool()
    def open_rule(sg: str, port: int, cidr: str) -> dict[str, Any]:
        """A tool with provenance steps of its own, which nest under the server's span."""
        change = {"sg": sg, "port": port, "cidr": cidr}
        with provtrace.secret_fetch(store="vault", ref="kv/fw-api-token", nhi="svc-fw") as fetch:
            fetch.record_value(common.SERVER_SECRET)
        with provtrace.policy_check("fw-change", version="3", engine="test", input=change) as policy:
            policy.allow(reason="internal range")
        before = list(RULES.setdefault(sg, []))
        with provtrace.action("firewall.rule.open", target=f"{sg}/{port}", params=change) as action:
            RULES[sg].append({"port": port, "cidr": cidr})
            action.record_change(before=before, after=RULES[sg])
        return {"sg": sg, "rules": RULES[sg]}

    @server.tool()
    async def block(ctx: Context) -> str:
        """Reports progress, then waits until the call is cancelled."""
        await ctx.report_progress(1, 2)
        await anyio.Event().wait()
        return "unreachable"

    @server.tool()
    def crash() -> str:
        """Dies in the middle of the call, as a server process can."""
        os._exit(3)

    @server.resource("fw://rules/{sg}")
    def rules(sg: str) -> str:
        """The rules of one security group."""
        return repr(RULES.get(sg, []))

    @server.prompt()
    def triage(incident: str) -> str:
        """A prompt template."""
        return f"Triage incident {incident} and propose the smallest change."

    return server


def serve_http(server: Any) -> None:
    import uvicorn

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)  # connections queue here until uvicorn accepts: no startup race
    print(listener.getsockname()[1], flush=True)
    config = uvicorn.Config(server.streamable_http_app(), log_level="warning", lifespan="on")
    anyio.run(uvicorn.Server(config).serve, [listener])


def main() -> None:
    handle = provtrace.configure(service_name="test-mcp-server")
    common.instrument()
    server = build()
    try:
        if sys.argv[1] == "http":
            serve_http(server)
        else:
            server.run()
    finally:
        handle.shutdown(timeout_s=30)


if __name__ == "__main__":
    main()
