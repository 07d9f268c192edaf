"""The OTLP sink posts the spooled OTLP/JSON as it is: through the real collector, every field of
the record model arrives unchanged in its archive, and large gzipped or split requests arrive whole."""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)

import provtrace
from provtrace import conventions as c
from provtrace.cli.main import main as cli
from provtrace.export import otlp
from provtrace.integrity import span_digest
from provtrace.model import SpanRecord
from provtrace.otlpjson import dumps_line
from provtrace.tracing import AuditSampler
from tests.integration.stack import Agent, archived, stack_module, wait_for_spans
from tests.tamper import stream_only

# Every attribute value type of the record model, with the awkward values.
TYPED: dict[str, Any] = {
    "t.str": 'ünïcødé 𝄞 "quoted" \\ line\nbreak\ttab',
    "t.str.empty": "",
    "t.bool.true": True,
    "t.bool.false": False,
    "t.int.max": 2**63 - 1,
    "t.int.min": -(2**63),
    "t.int.zero": 0,
    "t.int.past_double": 2**53 + 1,
    "t.double": 0.1,
    "t.double.whole": 123456789.0,
    "t.double.subnormal": 5e-324,
    "t.double.huge": -1e300,
    "t.double.nan": math.nan,
    "t.double.inf": math.inf,
    "t.double.ninf": -math.inf,
    "t.strs": ("a", "", "é"),
    "t.bools": (True, False),
    "t.ints": (1, -1, 2**53 + 1),
    "t.doubles": (0.5, -2.5, 1.0),
    "t.empty_array": (),
}
LIMITS = SpanLimits(
    max_span_attributes=len(TYPED),
    max_events=2,
    max_links=2,
    max_event_attributes=5,
    max_link_attributes=5,
    max_attribute_length=None,
)


def record_typed_segment(provider: TracerProvider) -> str:
    """A root with a remote parent (and its trace state), typed attributes, events and links with
    trace state, each limit exceeded by one or more; and a child span."""
    tracer = provider.get_tracer("typed-scope", "1.2.3")
    remote = SpanContext(
        0x5AF7183FB1D4CF5F00000000000000AB,
        0x00F067AA0BA902B7,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("congo", "t61rcWkgMzE"), ("rojo", "00f067aa0ba902b7")]),
    )
    linked = [
        Link(
            SpanContext(
                0x0AF7651916CD43DD8448EB211C80319C,
                0xB7AD6B7169203331 + i,
                is_remote=True,
                trace_state=TraceState([("vendor", f"v{i}")]),
            ),
            {**dict(list(TYPED.items())[:4]), "link.index": i, "link.extra": "dropped"},
        )
        for i in range(3)
    ]
    token = otel_context.attach(trace.set_span_in_context(NonRecordingSpan(remote)))
    try:
        with tracer.start_as_current_span("typed root", kind=SpanKind.SERVER, links=linked) as root:
            root.set_attribute("dropped.one", 1)  # the SDK drops the oldest past a limit
            root.set_attribute("dropped.two", "2")
            root.set_attributes(TYPED)
            for i in range(3):
                root.add_event(
                    f"event {i}",
                    {**dict(list(TYPED.items())[i : i + 5]), "event.extra": i},
                    timestamp=10**18 + i,
                )
            with tracer.start_as_current_span("typed child", kind=SpanKind.CLIENT) as child:
                child.set_attribute("t.doubles", (math.nan, math.inf))
            root.set_status(Status(StatusCode.ERROR, "deliberate error: ✗"))
    finally:
        otel_context.detach(token)
    return f"{remote.trace_id:032x}"


def exact(record: SpanRecord) -> str:
    """Every field, NaN included (a NaN is not equal to itself, its encoding is)."""
    return dumps_line([record])


def test_every_field_of_the_record_model_arrives_unchanged_in_the_collector_archive(
    evidence_stack: stack_module.Stack, tmp_path: Path
) -> None:
    provider = TracerProvider(sampler=AuditSampler(), span_limits=LIMITS)
    agent = Agent(evidence_stack, tmp_path, tracer_provider=provider, completeness="off")
    try:
        trace_id = record_typed_segment(provider)
        assert agent.handle.force_flush(timeout_s=60)
        sent = agent.sent(trace_id)
    finally:
        agent.handle.shutdown(timeout_s=60)
    assert len(sent) == 4  # root, child, the seal and its checkpoint
    root = next(r for r in sent if r.name == "typed root")
    # The segment holds what the test is about (so a recording change cannot empty it silently).
    assert root.parent_is_remote and root.parent_span_id == "00f067aa0ba902b7"
    assert root.trace_state == "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
    assert (root.dropped_attributes, root.dropped_events, root.dropped_links) == (2, 1, 1)
    assert [e.dropped_attributes for e in root.events] == [1, 1]
    assert [(link.trace_state, link.dropped_attributes) for link in root.links] == [
        ("vendor=v1", 1),  # the SDK keeps the latest links past the limit
        ("vendor=v2", 1),
    ]
    assert {k: type(v) for k, v in root.attributes.items()} == {k: type(v) for k, v in TYPED.items()}
    assert (root.kind, root.status_code, root.scope_name, root.scope_version) == (
        2,
        2,
        "typed-scope",
        "1.2.3",
    )

    arrived = wait_for_spans(lambda: archived(evidence_stack, trace_id), len(sent), "the archive")
    assert [r.span_id for r in arrived] == [r.span_id for r in sent]
    for original, received in zip(sent, arrived, strict=True):
        assert exact(received) == exact(original), f"{original.name} changed on its way to the archive"
        assert span_digest(received) == span_digest(original)
        assert {k: type(v) for k, v in received.attributes.items()} == {
            k: type(v) for k, v in original.attributes.items()
        }


@pytest.fixture
def compressed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of the request bodies the sink gzipped (the real gzip runs)."""
    sizes: list[int] = []
    real: Callable[..., bytes] = gzip.compress

    def spy(data: bytes, *args: Any, **kwargs: Any) -> bytes:
        sizes.append(len(data))
        return real(data, *args, **kwargs)

    monkeypatch.setattr(otlp.gzip, "compress", spy)
    return sizes


@pytest.mark.parametrize(
    ("results", "requests"),
    [
        pytest.param(1, 1, id="one 2 MB tool result, one gzipped request"),
        pytest.param(3, 2, id="three 2 MB results, a segment split across requests"),
    ],
)
def test_large_content_arrives_intact_and_verifies(
    evidence_stack: stack_module.Stack,
    tmp_path: Path,
    compressed: list[int],
    capsys: pytest.CaptureFixture[str],
    results: int,
    requests: int,
) -> None:
    payload = "".join(f"{i:07d} ünïcødé row of a large tool result\n" for i in range(2 * 1024 * 1024 // 46))
    agent = Agent(evidence_stack, tmp_path, capture_content="full", content_max_bytes=3 * 1024 * 1024)
    try:
        with provtrace.decision("large", trigger="t", actor="agent") as decision:
            for i in range(results):
                with provtrace.tool_call(f"dump{i}") as tool:
                    tool.record_input({"part": i})
                    tool.record_output(payload)
        assert agent.handle.force_flush(timeout_s=120)
        sent = agent.sent(decision.trace_id)
        stream = agent.handle.stream_id
    finally:
        agent.handle.shutdown(timeout_s=60)
    tools = [r for r in sent if r.step == c.STEP_TOOL_CALL]
    assert len(tools) == results
    assert all(json.loads(str(r.attributes[c.GEN_AI_TOOL_CALL_RESULT])) == payload for r in tools)
    assert len(compressed) >= requests
    assert all(size <= otlp.MAX_REQUEST_BYTES for size in compressed)

    arrived = wait_for_spans(lambda: archived(evidence_stack, decision.trace_id), len(sent), "the archive")
    for original, received in zip(sent, arrived, strict=True):
        assert received == original, f"{original.name} changed on its way to the archive"
    archive = stream_only(evidence_stack.archive_dir, tmp_path / "ours", stream)
    code = cli(
        ["verify", decision.trace_id, "--archive", str(archive), "--public-key", str(agent.public_key)]
    )
    assert code == 0, capsys.readouterr().out
