"""The real evidence stack for integration tests: the collector and Jaeger built from the Go
module proxy, started once per session on free loopback ports, stopped at the end."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

import provtrace
from provtrace.integrity import write_key_pair
from provtrace.model import SpanRecord
from provtrace.otlpjson import loads_line
from provtrace.readers.archive import archive_lines
from tests.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
import stack as stack_module  # noqa: E402 - scripts/stack.py, the project's stack control

T = TypeVar("T")


def http_json(url: str) -> Any | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


@pytest.fixture(scope="session")
def evidence_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[stack_module.Stack]:
    stack = stack_module.Stack(tmp_path_factory.mktemp("stack"), stack_module.Ports.free())
    stack.start(timeout=120)
    try:
        yield stack
    finally:
        stack.stop()


class Agent:
    """A provtrace configured against the test stack, also writing a local copy of exactly what it
    sent (a second sink), to compare with what arrived."""

    def __init__(self, stack: stack_module.Stack, home: Path, **options: Any) -> None:
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
        return records_in(sorted((self.home / "sent").glob("*.jsonl")), trace_id)


def records_in(paths: list[Path], trace_id: str) -> list[SpanRecord]:
    found: dict[str, SpanRecord] = {}
    for path in paths:
        for _, line in archive_lines(path):  # split on "\n" only: the collector writes U+2028 raw
            if line is not None:
                for record in loads_line(line):
                    if record.trace_id == trace_id:
                        found[record.span_id] = record
    return sorted(found.values(), key=lambda r: r.span_id)


@pytest.fixture
def agent(evidence_stack: stack_module.Stack, tmp_path: Path) -> Iterator[Agent]:
    result = Agent(evidence_stack, tmp_path)
    yield result
    result.handle.shutdown(timeout_s=60)


def jaeger_v3(stack: stack_module.Stack, trace_id: str) -> Any | None:
    return http_json(f"{stack.jaeger_url}/api/v3/traces/{trace_id}?raw_traces=true")


def jaeger_v1(stack: stack_module.Stack, trace_id: str) -> Any | None:
    return http_json(f"{stack.jaeger_url}/api/traces/{trace_id}?raw=true")


def archived(stack: stack_module.Stack, trace_id: str) -> list[SpanRecord]:
    return records_in(stack.archive_files(), trace_id)


def wait_for_spans(
    read: Callable[[], list[SpanRecord]], count: int, what: str, *, timeout_s: float = 60.0
) -> list[SpanRecord]:
    def probe() -> list[SpanRecord] | None:
        records = read()
        return records if len(records) >= count else None

    return wait_for(what, probe, timeout_s=timeout_s)
