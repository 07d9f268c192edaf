"""provtrace auto-instrumentation for the MCP Python SDK (2.x, and the latest 1.x line).

Every tools/call, resources/read and prompts/get becomes a provenance ``tool_call`` step on both
sides of the wire, in one trace, with no change to agent or tool code::

    import provtrace

    provtrace.configure(service_name="secops-agent")
    provtrace.instrument()  # or run the agent under `opentelemetry-instrument`

Instrument before servers are constructed (a server built earlier gets no middleware); sessions
are covered whenever they were made. Spans are recorded through the provtrace configuration in
force, so a ``tracer_provider`` passed to ``instrument()`` is accepted and not otherwise used. See
``client`` and ``server`` for what each side records and how it relates to mcp's own spans.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import sys
import threading
from collections.abc import Callable, Collection
from importlib import metadata
from types import ModuleType
from typing import Any

import wrapt
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import unwrap

from provtrace_instrumentation_mcp import client, server
from provtrace_instrumentation_mcp.package import _instruments
from provtrace_instrumentation_mcp.version import __version__

__all__ = ["MCPInstrumentor", "__version__"]

logger = logging.getLogger("provtrace")


@dataclasses.dataclass(frozen=True)
class Target:
    """One attribute to wrap: a module function, or ``Class.method``."""

    module: str
    attribute: str
    wrapper: Callable[..., Any]

    def owner(self, module: ModuleType) -> tuple[Any, str]:
        prefix, _, name = self.attribute.rpartition(".")
        return (getattr(module, prefix) if prefix else module), name


_TRANSPORTS = (
    Target("mcp.client.stdio", "_create_platform_compatible_process", client.opening_transport("pipe")),
    Target("mcp.client.streamable_http", "StreamableHTTPTransport.__init__", client.opening_transport("tcp")),
)
_SESSION_INIT = Target("mcp.client.session", "ClientSession.__init__", client.session_init)
TARGETS: dict[int, tuple[Target, ...]] = {
    2: (
        Target(
            "mcp.client.session", "ClientSession.send_request", client.send_request(native_propagation=True)
        ),
        Target("mcp.shared.jsonrpc_dispatcher", "otel_span", client.lend_span),
        Target("mcp.server.lowlevel.server", "Server.__init__", server.server_init),
        _SESSION_INIT,
        *_TRANSPORTS,
    ),
    1: (
        Target(
            "mcp.shared.session", "BaseSession.send_request", client.send_request(native_propagation=False)
        ),
        Target("mcp.server.lowlevel.server", "Server._handle_request", server.handle_request),
        _SESSION_INIT,
        *_TRANSPORTS,
    ),
}


def mcp_line() -> int | None:
    """The installed mcp's major version, if it is one this instrumentation knows."""
    try:
        major = int(metadata.version("mcp").split(".")[0])
    except (metadata.PackageNotFoundError, ValueError):
        return None
    return major if major in TARGETS else None


class MCPInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Wraps the MCP SDK's client and server choke points (see ``TARGETS``) when their modules
    are imported, whatever the import order; ``uninstrument()`` undoes every wrap and removes the
    server middleware it added."""

    # Post-import hooks cannot be unregistered: each one applies only while the generation it
    # was registered in is current, and uninstrument() starts a new generation.
    _lock = threading.Lock()
    _generation = 0

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        line = mcp_line()
        if line is None:
            return
        with MCPInstrumentor._lock:
            generation = MCPInstrumentor._generation
        for target in TARGETS[line]:
            wrapt.register_post_import_hook(functools.partial(_wrap, target, generation), target.module)

    def _uninstrument(self, **kwargs: Any) -> None:
        with MCPInstrumentor._lock:
            MCPInstrumentor._generation += 1
            for target in {t for targets in TARGETS.values() for t in targets}:
                module = sys.modules.get(target.module)
                if module is not None:
                    unwrap(*target.owner(module))
        server.remove_middleware()


def _wrap(target: Target, generation: int, module: ModuleType) -> None:
    """Runs inside the application's import statement: logs, never raises."""
    with MCPInstrumentor._lock:
        if generation != MCPInstrumentor._generation:
            return
        try:
            owner, name = target.owner(module)
            wrapt.wrap_function_wrapper(owner, name, target.wrapper)
        except Exception:
            logger.warning(
                "provtrace could not instrument %s.%s", target.module, target.attribute, exc_info=True
            )
