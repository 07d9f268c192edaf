"""An MCP client for the instrumentation's tests, on mcp 2.x or 1.x.

``python tools_agent.py SCENARIO stdio|http|inprocess``: configures provtrace from the PROVTRACE_*
environment (unless MCP_TEST_BARE=1: a plain client without provtrace), opens a session to
``tools_server.py`` (spawned over stdio, spawned and reached over HTTP, or built in process), runs
one scenario inside a decision and prints what it saw as JSON. The server's environment is this
one plus the JSON object in MCP_TEST_SERVER_ENV. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import common  # next to this script, and a script's directory is first on its path
from opentelemetry import baggage
from opentelemetry import context as otel_context

import provtrace

HERE = Path(__file__).resolve().parent
# The interpreter the server runs with: this one, or one with another mcp line (cross-line tests).
SERVER_PYTHON = os.environ.get("MCP_TEST_SERVER_PYTHON") or sys.executable

TIMEOUT_S = 60
BARE = os.environ.get("MCP_TEST_BARE") == "1"
FORGED_PARENTS = {
    "unsampled": "00-5a1ce0ffee5a1ce0ffee5a1ce0ffee01-00f067aa0ba902b7-00",
    "malformed": "00-not-a-trace-context-zz",
}


def server_env() -> dict[str, str]:
    return {**os.environ, **json.loads(os.environ.get("MCP_TEST_SERVER_ENV", "{}"))}


@contextlib.asynccontextmanager
async def session(transport: str) -> AsyncIterator[Any]:
    from mcp import ClientSession

    if transport == "inprocess":
        async with inprocess_session() as connected:
            yield connected
        return
    async with streams(transport) as (read, write), ClientSession(read, write) as opened:
        await opened.initialize()
        yield opened


@contextlib.asynccontextmanager
async def inprocess_session() -> AsyncIterator[Any]:
    import tools_server

    server = tools_server.build()
    try:
        from mcp import Client  # 2.x: the in-process dispatcher, no JSON-RPC in between
    except ImportError:
        from mcp.shared.memory import create_connected_server_and_client_session

        async with create_connected_server_and_client_session(server) as connected:
            yield connected
        return
    async with Client(server) as client:
        yield client.session


@contextlib.asynccontextmanager
async def streams(transport: str) -> AsyncIterator[tuple[Any, Any]]:
    script = str(HERE / "tools_server.py")
    if transport == "stdio":
        from mcp import StdioServerParameters, stdio_client

        command = [SERVER_PYTHON, script, "stdio"]
        wire_log = os.environ.get("MCP_TEST_WIRE_LOG")
        if wire_log:  # every byte the client sends is also copied to this file
            command = [sys.executable, str(HERE / "tee_stdin.py"), wire_log, *command]
        params = StdioServerParameters(command=command[0], args=command[1:], env=server_env())
        async with stdio_client(params) as opened:
            yield opened[0], opened[1]
        return
    from anyio.streams.buffered import BufferedByteReceiveStream
    from mcp.client.streamable_http import streamable_http_client

    process = await anyio.open_process([SERVER_PYTHON, script, "http"], stderr=None, env=server_env())
    try:
        assert process.stdout is not None
        port = int(await BufferedByteReceiveStream(process.stdout).receive_until(b"\n", 16))
        async with streamable_http_client(f"http://127.0.0.1:{port}/mcp") as opened:
            yield opened[0], opened[1]
    finally:
        process.terminate()  # uvicorn shuts down and the server flushes its evidence
        await process.wait()


def text_of(result: Any) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


async def roundtrip(client: Any, out: dict[str, Any]) -> None:
    out["add"] = text_of(await client.call_tool("add", {"a": 2, "b": 3}))
    token = otel_context.attach(baggage.set_baggage("tenant", "blue"))
    try:
        out["whoami"] = json.loads(text_of(await client.call_tool("whoami", {})))
    finally:
        otel_context.detach(token)
    resource = await client.read_resource("fw://rules/sg-123")
    out["rules"] = resource.contents[0].text
    prompt = await client.get_prompt("triage", {"incident": "INC-4711"})
    out["prompt"] = prompt.messages[0].content.text
    failed = await client.call_tool("fail", {"reason": "no such rule"})
    out["fail_is_error"] = failed.isError if hasattr(failed, "isError") else failed.is_error
    out["open_rule"] = text_of(
        await client.call_tool("open_rule", {"sg": "sg-123", "port": 443, "cidr": "10.0.0.0/24"})
    )


async def secrets(client: Any, out: dict[str, Any]) -> None:
    with provtrace.secret_fetch(store="vault", ref="kv/agent", nhi="svc-agent") as fetch:
        token = fetch.record_value(common.AGENT_SECRET)
    out["echo"] = text_of(await client.call_tool("echo", {"text": f"use {token} for the API"}))
    out["issued"] = text_of(await client.call_tool("issue_token", {}))


async def secret_key(client: Any, out: dict[str, Any]) -> None:
    """The agent's secret as a JSON object key (and in a value) of a tool's arguments."""
    with provtrace.secret_fetch(store="vault", ref="kv/agent", nhi="svc-agent") as fetch:
        token = fetch.record_value(common.AGENT_SECRET)
    arguments = {"data": {"note": "rotated", token: f"grant {token}"}}
    out["stored"] = text_of(await client.call_tool("store", arguments))


async def cancel(client: Any, out: dict[str, Any]) -> None:
    with anyio.CancelScope() as scope:

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            scope.cancel()  # the server is inside the tool now

        await client.call_tool("block", {}, progress_callback=on_progress)
    out["cancelled"] = scope.cancelled_caught


async def crash(client: Any, out: dict[str, Any]) -> None:
    try:
        await client.call_tool("crash", {})
    except Exception as exc:  # noqa: BLE001 - the scenario reports what the agent saw
        out["error"] = type(exc).__name__
    out["survived"] = True


async def forged(client: Any, out: dict[str, Any]) -> None:
    for label, traceparent in FORGED_PARENTS.items():
        out[label] = text_of(
            await client.call_tool("add", {"a": 1, "b": 1}, meta={"traceparent": traceparent})
        )


SCENARIOS: dict[str, Callable[[Any, dict[str, Any]], Awaitable[None]]] = {
    "roundtrip": roundtrip,
    "secrets": secrets,
    "secret_key": secret_key,
    "cancel": cancel,
    "crash": crash,
    "forged": forged,
}


async def run(scenario: str, transport: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with anyio.fail_after(TIMEOUT_S):
        async with session(transport) as client:
            if BARE:
                await SCENARIOS[scenario](client, out)
                return out
            with provtrace.decision(
                f"test {scenario}", trigger="test", actor="test-agent", nhi="svc-agent"
            ) as decision:
                out["trace_id"] = decision.trace_id
                out["decision_id"] = decision.id
                await SCENARIOS[scenario](client, out)
    return out


def main() -> None:
    handle = None if BARE else provtrace.configure(service_name="test-mcp-agent")
    if not BARE:
        common.instrument()
    try:
        out = anyio.run(run, sys.argv[1], sys.argv[2])
    finally:
        if handle is not None:
            handle.shutdown(timeout_s=30)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
