"""What provtrace records of an MCP request and its result.

The same functions serve both sides of the wire and both SDK lines (1.x camelCase models, 2.x
snake_case models, raw wire dicts): everything is read from the wire form, so the client and the
server of one call record equal input and output digests, and an investigator can check that what
the server answered is what the client received.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Final

from opentelemetry.trace import SpanKind

import provtrace
from provtrace import conventions as c
from provtrace.instrumentation import JsonValue, ToolCallSpec, redact, to_jsonable

TOOLS_CALL: Final = "tools/call"
RESOURCES_READ: Final = "resources/read"
PROMPTS_GET: Final = "prompts/get"

# provtrace's own `_meta` keys (MCP reserves unprefixed names and io.modelcontextprotocol/).
META_CALLER: Final = "io.provtrace/caller"  # {"decision_id", "actor_id", "nhi_id"} of the caller
META_TAINTED: Final = "io.provtrace/tainted"  # [[pointer, start, end(, "key")], ...]: provtrace.content
META_CLIENT_INFO: Final = "io.modelcontextprotocol/clientInfo"  # per request since 2026-07-28
TRACEPARENT: Final = "traceparent"

_OUTPUT_FIELDS: Final = {
    TOOLS_CALL: ("content", "structuredContent", "isError"),
    RESOURCES_READ: ("contents",),
    PROMPTS_GET: ("description", "messages"),
}
MAX_CLAIM_LENGTH: Final = 256


@dataclasses.dataclass(frozen=True)
class Call:
    """One MCP request that becomes a ``tool_call`` step: tools/call, resources/read, prompts/get."""

    method: str
    target: str  # the tool name, resource URI (redacted) or prompt name
    input: JsonValue  # the arguments object; for a resource read, {"uri": ...}
    params: dict[str, JsonValue]  # the wire params without `_meta`, where taint pointers point

    @property
    def span_name(self) -> str:
        """``{method} {target}`` per the MCP conventions; a resource URI is high-cardinality and
        stays out of the name."""
        return self.method if self.method == RESOURCES_READ else f"{self.method} {self.target}"

    def spec(self, kind: SpanKind, attributes: Mapping[str, Any]) -> ToolCallSpec:
        """The step, with ``gen_ai.operation.name`` only for tools."""
        own: dict[str, Any] = {c.MCP_METHOD_NAME: self.method, **attributes}
        if self.method == RESOURCES_READ:
            own[c.MCP_RESOURCE_URI] = self.target
        elif self.method == PROMPTS_GET:
            own[c.GEN_AI_PROMPT_NAME] = self.target
        return provtrace.tool_call(
            self.target,
            span_name=self.span_name,
            kind=kind,
            operation=c.GEN_AI_OPERATION_EXECUTE_TOOL if self.method == TOOLS_CALL else None,
            attributes=own,
        )


def describe(method: object, params: object) -> Call | None:
    """The call a request makes, from its method and wire params; None for other requests."""
    if method not in _OUTPUT_FIELDS or not isinstance(params, Mapping):
        return None
    wire = {str(k): to_jsonable(v) for k, v in params.items() if k != "_meta"}
    if method == RESOURCES_READ:
        uri = wire.get("uri")
        if not isinstance(uri, str):
            return None
        return Call(RESOURCES_READ, redact(uri), {"uri": uri}, wire)
    name = wire.get("name")
    if not isinstance(name, str):
        return None
    arguments = wire.get("arguments")
    return Call(str(method), name, arguments if arguments is not None else {}, wire)


def request_wire(request: object) -> tuple[object, dict[str, Any] | None]:
    """Method and params of a typed request (1.x wraps it in a RootModel; the dump unwraps it)."""
    dump = getattr(request, "model_dump", None)
    if not callable(dump):
        return None, None
    data = dump(by_alias=True, mode="json", exclude_none=True)
    if not isinstance(data, dict):
        return None, None
    params = data.get("params")
    return data.get("method"), params if isinstance(params, dict) else {}


def result_wire(result: object) -> dict[str, JsonValue]:
    """The wire form of a result, whether a typed model (client, 1.x server) or a dict (2.x server)."""
    wire = to_jsonable(result)
    return wire if isinstance(wire, dict) else {}


def output_of(method: str, wire: Mapping[str, JsonValue]) -> dict[str, JsonValue]:
    """The recorded output: the result's content fields, without `_meta` (server stamps, cache
    hints, taint pointers) and without fields a client drops or defaults, so both sides agree."""
    out = {key: wire[key] for key in _OUTPUT_FIELDS.get(method, ()) if key in wire}
    if method == TOOLS_CALL:
        out["isError"] = wire.get("isError") is True
    return out


def is_tool_error(method: str, wire: Mapping[str, JsonValue]) -> bool:
    return method == TOOLS_CALL and wire.get("isError") is True


def result_meta(wire: Mapping[str, JsonValue]) -> Mapping[str, JsonValue]:
    meta = wire.get("_meta")
    return meta if isinstance(meta, dict) else {}


def rpc_error_code(error: BaseException) -> int | None:
    """The JSON-RPC error code an MCP exception carries (2.x MCPError, 1.x McpError)."""
    code = getattr(getattr(error, "error", None), "code", None)
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def claim(value: object) -> str | None:
    """A peer's self-reported string, bounded and redacted (it is recorded, never trusted)."""
    if not isinstance(value, str) or not value:
        return None
    return redact(value[:MAX_CLAIM_LENGTH])


def implementation(info: object) -> tuple[str | None, str | None]:
    """Name and version of an MCP ``Implementation`` (clientInfo/serverInfo), model or dict."""
    wire = to_jsonable(info) if info is not None else None
    if not isinstance(wire, dict):
        return None, None
    return claim(wire.get("name")), claim(wire.get("version"))
