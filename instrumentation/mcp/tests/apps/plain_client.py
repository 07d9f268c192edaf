"""A plain MCP client, on mcp 2.x or 1.x, in a process without provtrace (it never imports it).

``python plain_client.py``: spawns ``tools_server.py`` over stdio with this environment plus the
JSON object in MCP_TEST_SERVER_ENV, calls a few tools and prints what it got as JSON. Its calls
carry no ``io.provtrace/caller`` claims and no trace context. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio
from mcp import ClientSession, StdioServerParameters, stdio_client

SERVER = Path(__file__).resolve().parent / "tools_server.py"
TIMEOUT_S = 60


def text_of(result: Any) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


async def run() -> dict[str, Any]:
    env = {**os.environ, **json.loads(os.environ.get("MCP_TEST_SERVER_ENV", "{}"))}
    params = StdioServerParameters(command=sys.executable, args=[str(SERVER), "stdio"], env=env)
    out: dict[str, Any] = {}
    with anyio.fail_after(TIMEOUT_S):
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            out["add"] = text_of(await session.call_tool("add", {"a": 2, "b": 3}))
            change = {"sg": "sg-7", "port": 443, "cidr": "10.0.0.0/24"}
            out["open_rule"] = json.loads(text_of(await session.call_tool("open_rule", change)))
    return out


def main() -> None:
    out = anyio.run(run)
    out["provtrace_loaded"] = "provtrace" in sys.modules
    print(json.dumps(out))


if __name__ == "__main__":
    main()
