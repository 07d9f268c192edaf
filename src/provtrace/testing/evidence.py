"""The real evidence stack for tests: a private collector and Jaeger on free loopback ports, an
agent whose provtrace sends to it (and keeps a copy of what it sent), and reading back what
arrived in Jaeger and in the collector's archive."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import provtrace
from provtrace.integrity import write_key_pair
from provtrace.model import SpanRecord
from provtrace.otlpjson import decode_traces
from provtrace.testing.archive import Archive
from provtrace.testing.stack import Checkout, Ports, Stack, StackError, resolve_binaries
from provtrace.testing.waiting import wait_for

# Set (to 1) where the stack must run: a missing binary or checkout fails instead of skipping.
# `make test` sets it, and so does CI=true.
REQUIRE_ENV = "PROVTRACE_REQUIRE_STACK"
START_TIMEOUT_S = 120.0


def stack_required() -> bool:
    return os.environ.get(REQUIRE_ENV) == "1" or os.environ.get("CI") == "true"


def unavailable(rootpath: Path) -> str | None:
    """Why no stack can run here (no checkout, binaries not built), or None when one can."""
    checkout = Checkout.locate(rootpath)
    if checkout is None:
        return "no provtrace checkout (collector-config/, scripts/build-stack.sh) above the test root"
    try:
        binaries = resolve_binaries(checkout, build=False)
    except StackError as exc:
        return str(exc)
    missing = [str(path) for path in binaries if not os.access(path, os.X_OK)]
    return f"not executable: {', '.join(missing)}" if missing else None


def start_stack(directory: Path, rootpath: Path) -> Stack:
    """A stack of the checkout above ``rootpath``, on free ports, healthy (never builds: that is
    `make stack-build`, minutes the first time)."""
    stack = Stack(directory, Ports.free(), checkout=Checkout.locate(rootpath), build=False)
    stack.start(timeout=START_TIMEOUT_S)
    return stack


class Agent:
    """A provtrace configured against the stack, signing with its own key, and also writing a
    local copy of exactly what it sent (a second sink) to compare with what arrived."""

    def __init__(self, stack: Stack, home: Path, **options: Any) -> None:
        self.stack = stack
        self.home = home
        self.public_key = home / "keys" / "agent.pub"
        write_key_pair(home / "keys" / "agent.key", self.public_key)
        settings: dict[str, Any] = {
            "service_name": "integration-agent",
            "endpoint": stack.otlp_http_endpoint,
            "archive_dir": home / "sent",
            "spool_dir": home / "spool",
            "quarantine_dir": home / "quarantine",
            "signing_key": home / "keys" / "agent.key",
            "heartbeat_interval": 3600,
        }
        settings.update(options)
        self.handle = provtrace.configure(**settings)

    def sent(self, trace_id: str) -> list[SpanRecord]:
        """The records of the trace this agent sent, by span id."""
        return sorted(Archive(self.home / "sent").records(trace_id), key=lambda r: r.span_id)


def http_json(url: str) -> Any | None:
    """The JSON a loopback URL answers, or None on 404 (not there yet)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - the stack's loopback URL
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def jaeger_v3(stack: Stack, trace_id: str) -> Any | None:
    """Jaeger's API v3 answer for the trace (OTLP JSON under "result"), or None."""
    return http_json(f"{stack.jaeger_url}/api/v3/traces/{trace_id}?raw_traces=true")


def jaeger_v1(stack: Stack, trace_id: str) -> Any | None:
    """Jaeger's v1 (UI) API answer for the trace, or None."""
    return http_json(f"{stack.jaeger_url}/api/traces/{trace_id}?raw=true")


def in_jaeger(stack: Stack, trace_id: str) -> list[SpanRecord]:
    """The trace's records as Jaeger serves them (v3), by span id; empty while it has none."""
    data = jaeger_v3(stack, trace_id)
    return sorted(decode_traces(data["result"]), key=lambda r: r.span_id) if data else []


def archived(stack: Stack, trace_id: str) -> list[SpanRecord]:
    """The trace's records in the collector's archive, by span id."""
    return sorted(Archive(stack.archive_dir).records(trace_id), key=lambda r: r.span_id)


def wait_for_spans(
    read: Callable[[], list[SpanRecord]], count: int, what: str, *, timeout_s: float = 60.0
) -> list[SpanRecord]:
    """Poll ``read`` until it gives at least ``count`` records (bounded)."""

    def probe() -> list[SpanRecord] | None:
        records = read()
        return records if len(records) >= count else None

    return wait_for(what, probe, timeout_s=timeout_s)
