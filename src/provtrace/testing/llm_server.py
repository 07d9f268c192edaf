"""A small OpenAI- and Anthropic-compatible model server on loopback, for the LLM
instrumentations' tests (the ``model_server`` fixture), the example, the demo and the benchmarks:
the real ``openai`` and ``anthropic`` clients talk to it over HTTP exactly as they talk to the
providers. It needs ``starlette`` and ``uvicorn`` (in those instrumentations' ``[test]`` extras),
so it is not imported with the rest of ``provtrace.testing``; ``python -m
provtrace.testing.llm_server`` (or ``python examples/llm_server.py``) runs it on its own.

Endpoints: ``POST /v1/chat/completions``, ``POST /v1/responses`` (OpenAI) and ``POST /v1/messages``
(Anthropic), each plain or streamed (server-sent events), and ``GET /v1/models``. The answer to a
request is decided by its last user message, deterministically:

- a registered :class:`Reply` whose ``match`` occurs in it (``serve(replies=[...])``): its text and
  tool calls;
- lines ``call:NAME {json arguments}`` (when the request offers tools): one tool call per line,
  ids ``call_1``, ``call_2``, ...;
- ``error:CODE``: an error response with that HTTP status, in the provider's error shape;
- ``ratelimit:N``: 429 with ``Retry-After`` for the first N requests carrying that message, then
  an answer;
- ``hold``: no answer until the server is stopped (for client timeouts);
- anything else: ``echo: <message>``.

Every request is kept in ``Server.requests`` (path, headers, body) for tests to look at.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
import socket
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

RETRY_AFTER_S = "0.01"
_CALL_LINE = re.compile(r"^call:(\w+)\s*(.*)$")


@dataclasses.dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Reply:
    """What the model answers when ``match`` occurs in the last user message."""

    match: str
    text: str = ""
    tool_calls: Sequence[ToolCall] = ()


@dataclasses.dataclass(frozen=True)
class Answer:
    text: str
    tool_calls: Sequence[ToolCall]
    prompt: str

    @property
    def usage(self) -> tuple[int, int]:
        return len(self.prompt.split()) or 1, len(self.text.split()) + len(self.tool_calls)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def last_user_text(body: dict[str, Any]) -> str:
    messages = body.get("messages")
    if messages is None:  # the Responses API
        items = body.get("input")
        messages = [{"role": "user", "content": items}] if isinstance(items, str) else items or []
    for item in reversed(messages):
        if isinstance(item, dict) and item.get("role") == "user":
            return _text_of(item.get("content"))
    return ""


def pieces(text: str) -> list[str]:
    """Stream chunks that join to exactly ``text`` (each word with the space before it)."""
    return re.findall(r"\s*\S+", text) or [text]


class Server:
    """The app, its state, and the thread that serves it on 127.0.0.1."""

    def __init__(self, replies: Sequence[Reply] = ()) -> None:
        self.replies = list(replies)
        self.requests: list[dict[str, Any]] = []
        self._limited: dict[str, int] = {}
        self._stopping: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.app = Starlette(
            routes=[
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/responses", self._responses, methods=["POST"]),
                Route("/v1/messages", self._messages, methods=["POST"]),
            ]
        )
        self._socket = socket.create_server(("127.0.0.1", 0))
        # Inherited by every connection: a response's head and body leave at once, not 40 ms
        # apart (Nagle's algorithm waiting for the client's delayed ACK).
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.port = self._socket.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="llm-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        await self._server.serve(sockets=[self._socket])

    def start(self) -> Server:
        """Serve in a thread; the socket already listens, so clients may connect at once."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release held requests, stop serving, and wait for the thread (bounded)."""
        self._server.should_exit = True
        if self._loop is not None and self._stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(timeout=10)
        self._socket.close()

    # --- deciding the answer ---------------------------------------------------------------------

    async def _answer(self, request: Request, provider: str) -> tuple[dict[str, Any], Answer | Response]:
        body = await request.json()
        self.requests.append({"path": request.url.path, "headers": dict(request.headers), "body": body})
        prompt = last_user_text(body)
        if prompt.startswith("error:"):
            return body, _error(provider, int(prompt.split(":", 1)[1]), "the model server refused")
        if prompt.startswith("ratelimit:"):
            seen = self._limited.get(prompt, 0)
            self._limited[prompt] = seen + 1
            if seen < int(prompt.split(":", 1)[1]):
                return body, _error(provider, 429, "slow down", {"retry-after": RETRY_AFTER_S})
        if prompt == "hold":
            assert self._stopping is not None
            await self._stopping.wait()
            return body, _error(provider, 503, "the server stopped")
        for reply in self.replies:
            if reply.match in prompt:
                return body, Answer(reply.text, reply.tool_calls, prompt)
        calls = [m for m in (_CALL_LINE.match(line.strip()) for line in prompt.splitlines()) if m]
        if calls and body.get("tools"):
            return body, Answer("", [ToolCall(m[1], json.loads(m[2] or "{}")) for m in calls], prompt)
        return body, Answer(f"echo: {prompt}", (), prompt)

    async def _models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": "fake-gpt", "object": "model", "created": 0}]})

    # --- OpenAI chat completions ------------------------------------------------------------------

    async def _chat(self, request: Request) -> Response:
        body, answer = await self._answer(request, "openai")
        if isinstance(answer, Response):
            return answer
        model, cid = body.get("model", "fake-gpt"), f"chatcmpl-{len(self.requests)}"
        calls: list[dict[str, Any]] = [
            {
                "id": f"call_{i}",
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
            }
            for i, c in enumerate(answer.tool_calls, 1)
        ]
        finish = "tool_calls" if calls else "stop"
        prompt_tokens, completion_tokens = answer.usage
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        headers = {"x-request-id": f"req_{len(self.requests)}"}
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": answer.text or None}
            if calls:
                message["tool_calls"] = calls
            choice = {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
            return JSONResponse(
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": 0,
                    "model": model,
                    "choices": [choice],
                    "usage": usage,
                },
                headers=headers,
            )
        base = {"id": cid, "object": "chat.completion.chunk", "created": 0, "model": model}

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}

        events = [chunk({"role": "assistant", "content": ""})]
        events += [chunk({"content": piece}) for piece in (pieces(answer.text) if answer.text else [])]
        for index, call in enumerate(calls):
            arguments = call["function"]["arguments"]
            head = {"index": index, "id": call["id"], "type": "function"}
            events.append(
                chunk(
                    {
                        "tool_calls": [
                            {**head, "function": {"name": call["function"]["name"], "arguments": ""}}
                        ]
                    }
                )
            )
            for start in range(0, len(arguments), 7):
                fragment = {"index": index, "function": {"arguments": arguments[start : start + 7]}}
                events.append(chunk({"tool_calls": [fragment]}))
        events.append(chunk({}, finish))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append({**base, "choices": [], "usage": usage})
        return _sse([("", e) for e in events], done=True, headers=headers)

    # --- OpenAI responses -------------------------------------------------------------------------

    async def _responses(self, request: Request) -> Response:
        body, answer = await self._answer(request, "openai")
        if isinstance(answer, Response):
            return answer
        rid = f"resp_{len(self.requests)}"
        output: list[dict[str, Any]] = []
        if answer.text:
            output.append(
                {
                    "type": "message",
                    "id": f"msg_{rid}",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": answer.text, "annotations": []}],
                }
            )
        for i, call in enumerate(answer.tool_calls, 1):
            output.append(
                {
                    "type": "function_call",
                    "id": f"fc_{i}",
                    "call_id": f"call_{i}",
                    "name": call.name,
                    "arguments": json.dumps(call.arguments),
                    "status": "completed",
                }
            )
        input_tokens, output_tokens = answer.usage
        response = {
            "id": rid,
            "object": "response",
            "created_at": 0,
            "status": "completed",
            "model": body.get("model", "fake-gpt"),
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": {
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens_details": {"reasoning_tokens": 0},
            },
        }
        if not body.get("stream"):
            return JSONResponse(response)
        started = {**response, "status": "in_progress", "output": [], "usage": None}
        events: list[tuple[str, dict[str, Any]]] = [
            ("response.created", {"type": "response.created", "response": started})
        ]
        for index, item in enumerate(output):
            if item["type"] == "message":
                text = item["content"][0]["text"]
                events.append(
                    (
                        "response.output_item.added",
                        {
                            "type": "response.output_item.added",
                            "output_index": index,
                            "item": {**item, "status": "in_progress", "content": []},
                        },
                    )
                )
                events.append(
                    (
                        "response.content_part.added",
                        {
                            "type": "response.content_part.added",
                            "output_index": index,
                            "content_index": 0,
                            "item_id": item["id"],
                            "part": {"type": "output_text", "text": "", "annotations": []},
                        },
                    )
                )
                for piece in pieces(text):
                    events.append(
                        (
                            "response.output_text.delta",
                            {
                                "type": "response.output_text.delta",
                                "output_index": index,
                                "content_index": 0,
                                "item_id": item["id"],
                                "delta": piece,
                            },
                        )
                    )
                events.append(
                    (
                        "response.output_text.done",
                        {
                            "type": "response.output_text.done",
                            "output_index": index,
                            "content_index": 0,
                            "item_id": item["id"],
                            "text": text,
                        },
                    )
                )
            else:
                events.append(
                    (
                        "response.output_item.added",
                        {
                            "type": "response.output_item.added",
                            "output_index": index,
                            "item": {**item, "status": "in_progress", "arguments": ""},
                        },
                    )
                )
                for start in range(0, len(item["arguments"]), 7):
                    events.append(
                        (
                            "response.function_call_arguments.delta",
                            {
                                "type": "response.function_call_arguments.delta",
                                "output_index": index,
                                "item_id": item["id"],
                                "delta": item["arguments"][start : start + 7],
                            },
                        )
                    )
            events.append(
                (
                    "response.output_item.done",
                    {"type": "response.output_item.done", "output_index": index, "item": item},
                )
            )
        events.append(("response.completed", {"type": "response.completed", "response": response}))
        return _sse(events, done=False)

    # --- Anthropic messages -----------------------------------------------------------------------

    async def _messages(self, request: Request) -> Response:
        body, answer = await self._answer(request, "anthropic")
        if isinstance(answer, Response):
            return answer
        content: list[dict[str, Any]] = [{"type": "text", "text": answer.text}] if answer.text else []
        content += [
            {"type": "tool_use", "id": f"toolu_{i}", "name": c.name, "input": c.arguments}
            for i, c in enumerate(answer.tool_calls, 1)
        ]
        stop = "tool_use" if answer.tool_calls and body.get("tools") else "end_turn"
        input_tokens, output_tokens = answer.usage
        message = {
            "id": f"msg_{len(self.requests)}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "fake-claude"),
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "cache_read_input_tokens": 0,
            },
        }
        headers = {"request-id": f"req_{len(self.requests)}"}
        if not body.get("stream"):
            return JSONResponse(message, headers=headers)
        start = {
            **message,
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": 0},
        }
        events: list[tuple[str, dict[str, Any]]] = [
            ("message_start", {"type": "message_start", "message": start})
        ]
        for index, block in enumerate(content):
            if block["type"] == "text":
                events.append(
                    (
                        "content_block_start",
                        {
                            "type": "content_block_start",
                            "index": index,
                            "content_block": {"type": "text", "text": ""},
                        },
                    )
                )
                for piece in pieces(block["text"]):
                    events.append(
                        (
                            "content_block_delta",
                            {
                                "type": "content_block_delta",
                                "index": index,
                                "delta": {"type": "text_delta", "text": piece},
                            },
                        )
                    )
            else:
                events.append(
                    (
                        "content_block_start",
                        {
                            "type": "content_block_start",
                            "index": index,
                            "content_block": {**block, "input": {}},
                        },
                    )
                )
                arguments = json.dumps(block["input"])
                for begin in range(0, len(arguments), 7):
                    events.append(
                        (
                            "content_block_delta",
                            {
                                "type": "content_block_delta",
                                "index": index,
                                "delta": {
                                    "type": "input_json_delta",
                                    "partial_json": arguments[begin : begin + 7],
                                },
                            },
                        )
                    )
            events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        events.append(
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": output_tokens},
                },
            )
        )
        events.append(("message_stop", {"type": "message_stop"}))
        return _sse(events, done=False, headers=headers)


def _sse(
    events: list[tuple[str, dict[str, Any]]], *, done: bool, headers: dict[str, str] | None = None
) -> Response:
    async def lines() -> AsyncIterator[str]:
        for name, data in events:
            yield (f"event: {name}\n" if name else "") + f"data: {json.dumps(data)}\n\n"
        if done:
            yield "data: [DONE]\n\n"

    return StreamingResponse(lines(), media_type="text/event-stream", headers=headers)


def _error(provider: str, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    if provider == "anthropic":
        kind = {429: "rate_limit_error", 400: "invalid_request_error"}.get(status, "api_error")
        body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message}}
    else:
        body = {
            "error": {
                "message": message,
                "type": "server_error" if status >= 500 else "invalid_request_error",
                "code": str(status),
            }
        }
    return JSONResponse(body, status_code=status, headers=headers)


@contextlib.contextmanager
def serve(replies: Sequence[Reply] = ()) -> Iterator[Server]:
    """The server, serving, for the block."""
    server = Server(replies).start()
    try:
        yield server
    finally:
        server.stop()


def main() -> None:
    """Serve until interrupted; the first line printed names the URL."""
    with serve() as running:
        print(f"serving on {running.url} (Ctrl-C stops)", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
