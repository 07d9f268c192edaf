"""Server side: each tools/call, resources/read and prompts/get a server handles is a ``tool_call``
step, SERVER kind, with the same input and output digests as the client recorded.

mcp 2.x opens the SERVER span itself (its ``OpenTelemetryMiddleware``, first in
``Server.middleware``, parented on the context in ``_meta``). provtrace appends its own middleware
to every server and adopts that span rather than opening a second one; it opens its own only when
mcp's is not recording (mcp 1.x has none) or when the request needs a decision of this server's
own (below). Either way, inside the handler:

- the incoming baggage is current (mcp 2.x uses the context only as the span's parent);
- the caller's decision continues: the tool's own steps (a secret fetch, an action) nest under
  the span and carry the decision id the caller sent, with this server as their actor;
- a caller without provtrace (a plain MCP client) sends no decision: the server then records
  what it served as a decision of its own (``decision serve tools/call {name}``, the server as
  actor, triggered by the request), complete evidence rather than a quarantined fragment. mcp's
  span cannot be the step then (it would sit above the decision): it stays the decision's plain
  parent, and the step is a span of provtrace's under the decision;
- what the caller says about itself (clientInfo, provtrace's ``_meta`` claims, the traceparent)
  is recorded as ``provenance.claim.*``, never trusted. A ``traceparent`` that asks not to sample,
  or a forged one, changes nothing about what is recorded (provtrace's AuditSampler);
- secret values the caller marked in the arguments are redacted here too, and secrets this
  process fetched are marked in the result for the caller.
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.trace import SpanKind

import provtrace
from provtrace import conventions as c
from provtrace.instrumentation import (
    ToolCall,
    adopted,
    continued_decision,
    report_recording_error,
    taint_spans,
    tainted_spans,
    tracer_provider,
)
from provtrace_instrumentation_mcp.client import in_flight, record_result
from provtrace_instrumentation_mcp.protocol import (
    META_CALLER,
    META_CLIENT_INFO,
    META_TAINTED,
    TRACEPARENT,
    Call,
    claim,
    describe,
    implementation,
    result_wire,
    rpc_error_code,
)

Wrapped = Callable[..., Any]

# Servers provtrace added its middleware to, so that uninstrument() takes it out again.
_servers: weakref.WeakSet[Any] = weakref.WeakSet()


@contextlib.contextmanager
def served(
    call: Call,
    meta: Mapping[str, Any],
    *,
    actor: str | None,
    sdk_span: SdkSpan | None,
    attributes: Mapping[str, Any],
    client_info: object,
    request_id: str | None,
) -> Iterator[ToolCall]:
    """The step of one handled request, around the handler, inside the caller's decision (when
    it sent one) or this server's own (see :func:`_decision_for`). mcp's own span (``sdk_span``)
    is adopted as the step when provtrace's pipeline records it and the caller's decision
    continues; otherwise the step opens its own span."""
    caller = meta.get(META_CALLER)
    caller = caller if isinstance(caller, Mapping) else {}
    decision_id = claim(caller.get("decision_id"))
    recorded = sdk_span if sdk_span is not None and _recorded_by_provtrace() else None
    parent = _parent(meta, sdk_span, recorded)
    token = otel_context.attach(parent)
    try:
        with _decision_for(call, decision_id, actor=actor, request_id=request_id):
            spec = call.spec(SpanKind.SERVER, {**attributes, **_claims(meta, caller, client_info)})
            adopt = recorded if decision_id is not None else None
            with adopted(spec, adopt) if adopt is not None else spec as tool:
                taint_spans(call.params, meta.get(META_TAINTED))
                tool.record_input(call.input)
                yield tool
    finally:
        otel_context.detach(token)


def _parent(meta: Mapping[str, Any], sdk_span: SdkSpan | None, recorded: SdkSpan | None) -> Context:
    """Where the request's spans go. Under mcp's span when provtrace records it (it is current,
    already parented on what the caller sent; only the baggage still has to be made current);
    otherwise where mcp's span would be: under what the caller sent (a claim), or mcp's span's
    parent, or the caller's step itself when the caller is in this process."""
    current = otel_context.get_current()
    carrier = {k: v for k, v in meta.items() if isinstance(v, str)}
    if recorded is not None:
        return W3CBaggagePropagator().extract(carrier, context=current)
    parent = propagate.extract(carrier, context=current)
    if sdk_span is not None:
        mcp_parent = sdk_span.parent
        parent = trace.set_span_in_context(
            trace.NonRecordingSpan(mcp_parent) if mcp_parent is not None else trace.INVALID_SPAN, parent
        )
    claimed = trace.get_current_span(parent).get_span_context()
    local = in_flight.get(claimed.span_id)
    if local is not None and local.get_span_context().trace_id == claimed.trace_id:
        parent = trace.set_span_in_context(local, parent)  # the caller is in this process
    return parent


def _decision_for(
    call: Call, decision_id: str | None, *, actor: str | None, request_id: str | None
) -> contextlib.AbstractContextManager[object]:
    """The decision the request's steps belong to.

    A caller with provtrace says which decision it works for: the steps here continue it (its
    id, this server as their actor, facts kept local). A caller without provtrace (any plain MCP
    client) says nothing, and what this server did for it is still complete evidence of its own:
    a decision of this server, named after what it serves, triggered by the request, with the
    server as its actor, so the step and the tool's own steps nest under a decision root.
    """
    if decision_id is not None:
        return continued_decision(
            decision_id, actor=actor, context=trace.get_current_span().get_span_context()
        )
    trigger = f"mcp:{call.method}" + (f"#{request_id}" if request_id else "")
    return provtrace.decision(f"serve {call.span_name}", trigger=trigger, actor=actor)


def _claims(meta: Mapping[str, Any], caller: Mapping[str, Any], client_info: object) -> dict[str, str]:
    """The caller's self-reported identity: its MCP clientInfo (per request since 2026-07-28,
    else from the handshake), provtrace's caller claims, and the trace context it sent."""
    name, version = implementation(meta.get(META_CLIENT_INFO) or client_info)
    found = {
        c.CLAIM_CLIENT_NAME: name,
        c.CLAIM_CLIENT_VERSION: version,
        c.CLAIM_ACTOR_ID: claim(caller.get("actor_id")),
        c.CLAIM_NHI_ID: claim(caller.get("nhi_id")),
        c.CLAIM_PARENT: claim(meta.get(TRACEPARENT)),
    }
    return {key: value for key, value in found.items() if value}


def answered(tool: ToolCall, call: Call, wire: dict[str, Any]) -> list[list[Any]]:
    """Record the result; returns where it holds secrets fetched here, for the caller."""
    spans: list[list[Any]] = []
    with tool.recording("result"):
        spans = [list(span) for span in tainted_spans(wire)]
        record_result(tool, call, wire)
    return spans


def failed(tool: ToolCall, error: BaseException) -> None:
    code = rpc_error_code(error)
    if code is not None:
        tool.mark_rpc_error(code, str(getattr(getattr(error, "error", None), "message", "")))


def _transport_attributes(http_request: object) -> dict[str, str]:
    """Requests over HTTP carry the HTTP request; stdio and in-process ones carry none, and the
    two cannot be told apart from here, so nothing is claimed for them."""
    if http_request is None:
        return {}
    return {c.NETWORK_TRANSPORT: "tcp", c.NETWORK_PROTOCOL_NAME: "http"}


# --- mcp 2.x: a middleware on every Server ------------------------------------------------------


class ProvenanceMiddleware:
    """Appended to ``Server.middleware``, so it runs inside mcp's ``OpenTelemetryMiddleware``."""

    def __init__(self, actor: str | None) -> None:
        self.actor = actor

    async def __call__(self, ctx: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
        call: Call | None = None
        try:
            call = describe(ctx.method, ctx.params)
        except Exception as exc:  # noqa: BLE001 - recording never breaks the handler
            report_recording_error("mcp request", exc)
        if call is None:
            return await call_next(ctx)
        request_id = str(ctx.request_id) if ctx.request_id is not None else None
        attributes: dict[str, Any] = {
            c.MCP_PROTOCOL_VERSION: ctx.protocol_version,
            **_transport_attributes(ctx.request),
        }
        if request_id is not None:
            attributes[c.JSONRPC_REQUEST_ID] = request_id
        with served(
            call,
            dict(ctx.meta or {}),
            actor=self.actor,
            sdk_span=_sdk_span(ctx),
            attributes=attributes,
            client_info=getattr(ctx.session.client_params, "client_info", None),
            request_id=request_id,
        ) as tool:
            try:
                result = await call_next(ctx)
            except Exception as exc:
                failed(tool, exc)
                raise
            wire = result if isinstance(result, dict) else result_wire(result)
            spans = answered(tool, call, wire)
            if spans:
                meta = wire.get("_meta")
                result = {**wire, "_meta": {**(meta if isinstance(meta, dict) else {}), META_TAINTED: spans}}
            return result


def _recorded_by_provtrace() -> bool:
    """mcp records with the global tracer provider, which need not be provtrace's."""
    provider = tracer_provider()
    return provider is None or trace.get_tracer_provider() is provider


def _sdk_span(ctx: Any) -> SdkSpan | None:
    """mcp's SERVER span of this very request, if it is recording."""
    span = trace.get_current_span()
    if not (span.is_recording() and isinstance(span, SdkSpan) and span.kind is SpanKind.SERVER):
        return None
    attributes = span.attributes or {}
    if attributes.get(c.MCP_METHOD_NAME) != ctx.method:
        return None
    if ctx.request_id is not None and attributes.get(c.JSONRPC_REQUEST_ID) != str(ctx.request_id):
        return None
    return span


def server_init(wrapped: Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    wrapped(*args, **kwargs)
    middleware = getattr(instance, "middleware", None)
    if isinstance(middleware, list):
        middleware.append(ProvenanceMiddleware(getattr(instance, "name", None)))
        _servers.add(instance)


def remove_middleware() -> None:
    for server in list(_servers):
        server.middleware[:] = [m for m in server.middleware if not isinstance(m, ProvenanceMiddleware)]
    _servers.clear()


# --- mcp 1.x: around Server._handle_request -----------------------------------------------------


async def handle_request(
    wrapped: Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """``_handle_request(message, req, session, lifespan_context, raise_exceptions)``: the
    handler's response goes out through ``message.respond``, where the result is recorded."""
    message, req, session = _arguments(*args, **kwargs)
    call: Call | None = None
    try:
        params = req.params.model_dump(by_alias=True, mode="json", exclude_none=True) if req.params else {}
        call = describe(getattr(req, "method", None), params)
    except Exception as exc:  # noqa: BLE001 - recording never breaks the handler
        report_recording_error("mcp request", exc)
    if call is None:
        return await wrapped(*args, **kwargs)
    client_params = getattr(session, "client_params", None)
    attributes: dict[str, Any] = {c.JSONRPC_REQUEST_ID: str(message.request_id)}
    protocol = getattr(client_params, "protocolVersion", None)
    if isinstance(protocol, str):
        attributes[c.MCP_PROTOCOL_VERSION] = protocol
    metadata = getattr(message, "message_metadata", None)
    attributes.update(_transport_attributes(getattr(metadata, "request_context", None)))
    with served(
        call,
        params.get("_meta") or {},
        actor=getattr(instance, "name", None),
        sdk_span=None,
        attributes=attributes,
        client_info=getattr(client_params, "clientInfo", None),
        request_id=str(message.request_id),
    ) as tool:
        respond = message.respond
        message.respond = functools.partial(_respond, respond, tool, call)
        try:
            return await wrapped(*args, **kwargs)
        finally:
            message.respond = respond
            if message.cancelled:
                tool.mark_tool_error("CancelledError")  # as when the cancellation reaches the step


def _arguments(message: Any, req: Any, session: Any, *_: Any, **__: Any) -> tuple[Any, Any, Any]:
    return message, req, session


async def _respond(
    respond: Callable[[Any], Awaitable[None]], tool: ToolCall, call: Call, response: Any
) -> None:
    root = getattr(response, "root", response)  # ServerResult, or ErrorData
    if hasattr(root, "code") and hasattr(root, "message"):
        tool.mark_rpc_error(root.code, str(root.message))
    else:
        spans = answered(tool, call, result_wire(root))
        if spans:
            with tool.recording("result _meta"):
                root.meta = {**(root.meta or {}), META_TAINTED: spans}
    await respond(response)
