"""The local model server the example agent talks to, runnable on its own (``python
examples/llm_server.py`` prints its URL). It lives in provtrace's test tooling,
``provtrace.testing.llm_server``, which the LLM instrumentations' tests, the demo and the
benchmarks share; see that module for what it answers."""

from __future__ import annotations

from provtrace.testing.llm_server import Reply, Server, ToolCall, main, serve

__all__ = ["Reply", "Server", "ToolCall", "serve"]

if __name__ == "__main__":
    main()
