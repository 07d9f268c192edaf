"""Client side: each tools/call, resources/read and prompts/get a session sends is a ``tool_call``
step, a CLIENT span named ``{method} {target}``, and the server learns through ``_meta`` for whom
it works and which argument values are secrets.

mcp 2.x opens its own CLIENT span (``MCP send ...``) in its JSON-RPC dispatcher and injects that
span's context into ``_meta``. The MCP conventions ask for one span per call, enriched rather than
doubled, so the dispatcher's span helper is wrapped: for a call provtrace records, it lends the
step's span instead of opening a second one, and mcp sets its attributes (``jsonrpc.request.id``,
the JSON-RPC error code) and injects its context there, so the server's span is the step's child.
Where that seam does not exist (mcp 1.x, the in-process dispatcher, a future mcp that moved it)
the step stays the parent of whatever mcp records; on 1.x provtrace injects the context itself.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import weakref
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import Any

from opentelemetry import propagate
from opentelemetry.trace import Span, SpanKind

from provtrace import conventions as c
from provtrace.instrumentation import (
    ToolCall,
    report_recording_error,
    taint_spans,
    tainted_spans,
    to_jsonable,
)
from provtrace_instrumentation_mcp.protocol import (
    META_CALLER,
    META_TAINTED,
    Call,
    describe,
    implementation,
    is_tool_error,
    output_of,
    request_wire,
    result_meta,
    result_wire,
    rpc_error_code,
)

Wrapped = Callable[..., Any]


@dataclasses.dataclass(frozen=True)
class _Lending:
    method: str
    span: Span


@dataclasses.dataclass(frozen=True)
class _Peer:
    name: str | None = None
    version: str | None = None
    protocol: str | None = None


_lending: contextvars.ContextVar[_Lending | None] = contextvars.ContextVar(
    "provtrace_mcp_lending", default=None
)
# Set by the transport that is being opened, taken by the session built on it.
_opening: contextvars.ContextVar[str | None] = contextvars.ContextVar("provtrace_mcp_transport", default=None)
_transports: weakref.WeakKeyDictionary[object, str] = weakref.WeakKeyDictionary()
_peers: weakref.WeakKeyDictionary[object, _Peer] = weakref.WeakKeyDictionary()
# Steps waiting for their answer, by span id: a server in this same process (in-memory transport)
# parents its span on the step itself, not on a remote copy of its context.
in_flight: dict[int, Span] = {}


def send_request(*, native_propagation: bool) -> Callable[..., Coroutine[Any, Any, Any]]:
    """The wrapper of ``send_request``; mcp 1.x has no ``native_propagation`` of trace context."""

    async def wrapper(wrapped: Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        request = args[0] if args else kwargs.get("request")
        call: Call | None = None
        method: object = None
        try:
            method, params = request_wire(request)
            call = describe(method, params)
        except Exception as exc:  # noqa: BLE001 - recording never breaks the call
            report_recording_error("mcp request", exc)
        if call is None:
            result = await wrapped(*args, **kwargs)
            if method == "initialize":
                _remember_peer(instance, result)
            return result
        return await _traced_call(call, request, native_propagation, wrapped, instance, args, kwargs)

    return wrapper


async def _traced_call(
    call: Call,
    request: Any,
    native_propagation: bool,
    wrapped: Wrapped,
    instance: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    attributes = _session_attributes(instance)
    request_id = None if native_propagation else getattr(instance, "_request_id", None)
    if isinstance(request_id, int):  # 1.x numbers requests itself; 2.x's dispatcher sets the id
        attributes[c.JSONRPC_REQUEST_ID] = str(request_id)
    with call.spec(SpanKind.CLIENT, attributes) as tool:
        tool.record_input(call.input)
        with tool.recording("request _meta"):
            outgoing = _with_meta(request, call, tool, inject=not native_propagation)
            args, kwargs = (
                ((outgoing, *args[1:]), kwargs) if args else (args, {**kwargs, "request": outgoing})
            )
        token = _lending.set(_Lending(call.method, tool.span))
        in_flight[tool.context.span_id] = tool.span
        try:
            result = await wrapped(*args, **kwargs)
        except Exception as exc:
            code = rpc_error_code(exc)
            if code is not None:
                tool.mark_rpc_error(code, str(getattr(getattr(exc, "error", None), "message", "")))
            raise
        finally:
            _lending.reset(token)
            in_flight.pop(tool.context.span_id, None)
        with tool.recording("result"):
            record_result(tool, call, result_wire(result))
        return result


def record_result(tool: ToolCall, call: Call, wire: Mapping[str, Any]) -> None:
    """Output digest and content (after tainting what the peer said are secrets), tool errors."""
    taint_spans(dict(wire), result_meta(wire).get(META_TAINTED))
    tool.record_output(output_of(call.method, wire))
    if is_tool_error(call.method, wire):
        tool.mark_tool_error()


def _with_meta(request: Any, call: Call, tool: ToolCall, *, inject: bool) -> Any:
    """The request with provtrace's `_meta`: the caller's claims, where its secrets are, and on
    1.x the trace context (the step's span is current here)."""
    extra: dict[str, Any] = {}
    decision = tool.decision
    if decision is not None:
        caller = {"decision_id": decision.decision_id, "actor_id": decision.actor, "nhi_id": decision.nhi}
        extra[META_CALLER] = {key: value for key, value in caller.items() if value}
    spans = tainted_spans(call.params)
    if spans:
        extra[META_TAINTED] = [list(span) for span in spans]
    if inject:
        propagate.inject(extra)
    return _replace_meta(request, extra) if extra else request


def _replace_meta(request: Any, extra: Mapping[str, Any]) -> Any:
    """A copy of ``request`` whose params' `_meta` also holds ``extra`` (the caller's object is
    left alone). 1.x requests are RootModels around the typed request."""
    root = getattr(request, "root", None)
    typed = root if root is not None and hasattr(root, "params") else request
    params = typed.params
    data = params.model_dump(by_alias=True, mode="json", exclude_none=True)
    current = to_jsonable(params.meta) if params.meta is not None else {}
    data["_meta"] = {**current, **extra}
    copy = typed.model_copy(update={"params": type(params).model_validate(data)})
    return type(request)(copy) if typed is root else copy


def _session_attributes(session: object) -> dict[str, Any]:
    """What the session knows of its peer (self-reported) and of its transport."""
    attributes: dict[str, Any] = {}
    peer = _peer(session)
    for key, value in (
        (c.MCP_PROTOCOL_VERSION, peer.protocol),
        (c.CLAIM_SERVER_NAME, peer.name),
        (c.CLAIM_SERVER_VERSION, peer.version),
        (c.NETWORK_TRANSPORT, _transports.get(session)),
    ):
        if value:
            attributes[key] = value
    if attributes.get(c.NETWORK_TRANSPORT) == "tcp":
        attributes[c.NETWORK_PROTOCOL_NAME] = "http"
    return attributes


def _peer(session: object) -> _Peer:
    """2.x sessions say what they negotiated (also over ``server/discover``); 1.x ones do not, so
    the instrumentation remembers their initialize result."""
    protocol = getattr(session, "protocol_version", None)
    if isinstance(protocol, str):
        name, version = implementation(getattr(session, "server_info", None))
        return _Peer(name, version, protocol)
    return _peers.get(session, _Peer())


def _remember_peer(session: object, result: object) -> None:
    with contextlib.suppress(Exception):
        wire = result_wire(result)
        name, version = implementation(wire.get("serverInfo"))
        protocol = wire.get("protocolVersion")
        _peers[session] = _Peer(name, version, protocol if isinstance(protocol, str) else None)


# --- mcp 2.x: one CLIENT span per call --------------------------------------------------------


def lend_span(wrapped: Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Wraps the dispatcher's ``otel_span``: lends the step's span to the call it records."""
    lending = _lending.get()
    attributes = kwargs.get("attributes") or {}
    if (
        lending is None
        or kwargs.get("kind") is not SpanKind.CLIENT
        or attributes.get(c.MCP_METHOD_NAME) != lending.method
    ):
        return wrapped(*args, **kwargs)
    _lending.set(None)  # one request per step: a request sent inside it gets mcp's own span
    return _lent(lending.span, attributes)


@contextlib.contextmanager
def _lent(span: Span, attributes: Mapping[str, Any]) -> Iterator[Span]:
    """The step ends the span (with its output), not mcp's ``with`` block."""
    span.set_attributes(attributes)
    yield span


# --- transports ---------------------------------------------------------------------------------


def opening_transport(transport: str) -> Wrapped:
    """Wraps what a transport calls while it opens (the stdio process spawn, the HTTP transport's
    constructor): its ``network.transport`` waits for the session built on it."""

    def wrapper(wrapped: Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        _opening.set(transport)
        return wrapped(*args, **kwargs)

    return wrapper


def session_init(wrapped: Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    wrapped(*args, **kwargs)
    transport = _opening.get()
    if transport is not None:
        _transports[instance] = transport
        _opening.set(None)
