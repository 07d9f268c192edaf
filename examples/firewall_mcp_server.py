"""The firewall of the reference scenario, as a real MCP server over stdio.

Tools: ``lookup_rule`` (the rules of a security group) and ``open_rule`` (add one, authenticated
by the firewall API token). examples/secops_agent.py starts it and calls both through the
instrumented MCP client. The tool code knows nothing of provtrace: configured and instrumented
here too, the server records its side of every call in the agent's trace (a SERVER span under
the agent's call, with the same input and output digests), and the token the agent passes in is
redacted here as well, because the agent marks it as a secret in the request.

The rules live in this process for as long as the agent keeps it running.
"""

from __future__ import annotations

from typing import Any

import provtrace

HANDLE = provtrace.configure(service_name="firewall-mcp")  # settings: the agent's PROVTRACE_*, OTEL_*
provtrace.instrument()

from mcp.server.mcpserver import MCPServer  # noqa: E402 - instrumented before the server is built

FIREWALL: dict[str, list[dict[str, Any]]] = {"sg-123": []}
server = MCPServer("firewall")


@server.tool()
def lookup_rule(sg: str) -> dict[str, Any]:
    """The rules of security group ``sg``."""
    return {"sg": sg, "rules": list(FIREWALL[sg])}


@server.tool()
def open_rule(sg: str, rule: str, port: int, proto: str, cidr: str, token: str) -> dict[str, Any]:
    """Open ``port``/``proto`` from ``cidr`` on ``sg`` as rule ``rule``; returns the new rules."""
    if not token.startswith("fwtok-"):
        raise PermissionError("firewall API refused the token")
    FIREWALL[sg].append({"rule": rule, "port": port, "proto": proto, "cidr": cidr})
    return {"sg": sg, "rules": list(FIREWALL[sg])}


if __name__ == "__main__":
    try:
        server.run()
    finally:
        HANDLE.shutdown(timeout_s=30)
