"""Evidence through the real pipeline: SDK → OTLP → OpenTelemetry Collector → Jaeger + archive."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from opentelemetry import context as otel_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import provtrace
from provtrace import conventions as c
from provtrace.integrity import span_digest
from provtrace.model import SpanRecord
from provtrace.readers.jaeger import interpretations, v1_records
from tests.integration.stack import (
    REPO,
    Agent,
    archived,
    jaeger_v1,
    jaeger_v3,
    stack_module,
    wait_for,
    wait_for_spans,
)
from tests.scenario import reference_scenario

CONFIG = REPO / "collector-config"


def run_scenario(agent: Agent) -> tuple[str, list[SpanRecord]]:
    trace_id = reference_scenario()["decision"].trace_id
    assert agent.handle.force_flush(timeout_s=60)
    sent = agent.sent(trace_id)
    assert len(sent) == 10  # eight steps, the seal and its checkpoint
    return trace_id, sent


def v3_records(stack: stack_module.Stack, trace_id: str, count: int) -> list[SpanRecord]:
    from provtrace.otlpjson import decode_traces

    def read() -> list[SpanRecord]:
        data = jaeger_v3(stack, trace_id)
        return sorted(decode_traces(data["result"]), key=lambda r: r.span_id) if data else []

    return wait_for_spans(read, count, f"trace {trace_id} in Jaeger v3")


def test_every_collector_and_jaeger_config_validates() -> None:
    collector, jaeger = stack_module.resolve_binaries(build=True)
    base = f"--config={CONFIG / 'otelcol.yaml'}"
    checks = [
        [str(collector), "validate", base],
        [str(collector), "validate", base, f"--config={CONFIG / 'otelcol-secure.yaml'}"],
        [str(collector), "validate", f"--config={CONFIG / 'otelcol-loadbalancer.yaml'}"],
        [
            str(collector),
            "validate",
            f"--config={CONFIG / 'otelcol-loadbalancer.yaml'}",
            f"--config={CONFIG / 'otelcol-secure.yaml'}",
            f"--config={CONFIG / 'otelcol-loadbalancer-secure.yaml'}",
        ],
        [str(jaeger), "validate", f"--config={CONFIG / 'jaeger.yaml'}"],
        [str(jaeger), "validate", f"--config={CONFIG / 'jaeger-badger.yaml'}"],
    ]
    # The secure overlay's required variables (validate reads no file).
    secure = {
        "PROVTRACE_OTLP_TLS_CERT_FILE": "server.crt",
        "PROVTRACE_OTLP_TLS_KEY_FILE": "server.key",
        "PROVTRACE_OTLP_TOKEN_FILE": "tokens",
        "PROVTRACE_GATEWAY_CA_FILE": "gateways-ca.crt",
        "PROVTRACE_GATEWAY_TOKEN_FILE": "gateway-token",
    }
    for argv in checks:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=120, check=False, env={**os.environ, **secure}
        )
        assert result.returncode == 0, f"{' '.join(argv)}\n{result.stdout}\n{result.stderr}"


def test_reference_scenario_arrives_identical_in_jaeger_v3_and_the_archive(agent: Agent) -> None:
    trace_id, sent = run_scenario(agent)
    from_jaeger = v3_records(agent.stack, trace_id, len(sent))
    from_archive = wait_for_spans(lambda: archived(agent.stack, trace_id), len(sent), "the archive")
    assert [r.span_id for r in sent] == [r.span_id for r in from_jaeger] == [r.span_id for r in from_archive]
    for original, jaeger, archive in zip(sent, from_jaeger, from_archive, strict=True):
        # Every field: ids, parent, name, kind, times, status, each attribute with its type,
        # events, links with their attributes, resource (service name) and scope.
        assert jaeger == original, f"span {original.name} changed on its way into Jaeger"
        assert archive == original, f"span {original.name} changed on its way into the archive"
        assert {k: type(v) for k, v in jaeger.attributes.items()} == {
            k: type(v) for k, v in original.attributes.items()
        }
        assert jaeger.service_name == "integration-agent"
    action = next(r for r in from_jaeger if r.step == c.STEP_ACTION)
    assert [(link.link_type, link.span_id) for link in action.links] == [
        (link.link_type, link.span_id) for link in next(r for r in sent if r.span_id == action.span_id).links
    ]
    assert action.attributes["firewall.change.ratio"] == 0.25
    assert isinstance(action.attributes[c.ACTION_PRIVILEGED], bool)


def test_reference_scenario_digests_hold_through_jaeger_v1(agent: Agent) -> None:
    trace_id, sent = run_scenario(agent)
    v3_records(agent.stack, trace_id, len(sent))
    data = wait_for("the v1 API", lambda: jaeger_v1(agent.stack, trace_id))
    from_v1 = {r.span_id: r for r in v1_records(data)}
    assert sorted(from_v1) == sorted(r.span_id for r in sent)
    for original in sent:
        digests = {span_digest(option) for option in interpretations(from_v1[original.span_id])}
        assert span_digest(original) in digests, f"{original.name} cannot be recomputed from v1"
        assert from_v1[original.span_id].service_name == "integration-agent"
    action = next(r for r in from_v1.values() if r.step == c.STEP_ACTION)
    assert {link.link_type for link in action.links} == {
        "authorized_by",
        "approved_by",
        "used_secret",
        "triggered_by",
    }


def test_collector_restart_while_evidence_is_queued_loses_nothing(agent: Agent) -> None:
    stack = agent.stack
    before_outage = reference_scenario()["decision"].trace_id
    assert agent.handle.force_flush(timeout_s=60)
    stack.stop_jaeger()  # the collector now holds evidence in its persistent queue
    try:
        queued_in_collector = reference_scenario()["decision"].trace_id
        assert agent.handle.force_flush(timeout_s=60)
        stack.stop_collector()  # ... and restarts with it on disk
        spooled_in_agent = [reference_scenario()["decision"].trace_id for _ in range(3)]
        assert not agent.handle.force_flush(timeout_s=2), (
            "nothing can be delivered while the collector is down"
        )
        assert agent.handle.counters["spool_pending_bytes"] > 0
        stack.start_collector(timeout=120)
    finally:
        stack.start_jaeger(timeout=120)
    assert agent.handle.force_flush(timeout_s=120)
    for trace_id in [before_outage, queued_in_collector, *spooled_in_agent]:
        sent = agent.sent(trace_id)
        assert len(sent) == 10  # eight steps, the seal and its checkpoint
        assert wait_for_spans(lambda t=trace_id: archived(stack, t), len(sent), "the archive") == sent
        if trace_id != before_outage:  # Jaeger's memory store forgot what it held before its restart
            assert v3_records(stack, trace_id, len(sent)) == sent


def test_unsampled_traceparent_from_upstream_does_not_suppress_evidence(agent: Agent) -> None:
    carrier = {"traceparent": "00-5af7183fb1d4cf5f0000000000000001-00f067aa0ba902b7-00"}
    token = otel_context.attach(TraceContextTextMapPropagator().extract(carrier))
    try:
        with provtrace.decision("called unsampled", trigger="upstream", actor="agent") as decision:
            with provtrace.tool_call("t") as tool:
                tool.record_input({})
                tool.record_output({})
    finally:
        otel_context.detach(token)
    assert decision.trace_id == "5af7183fb1d4cf5f0000000000000001"
    assert agent.handle.force_flush(timeout_s=60)
    spans = v3_records(agent.stack, decision.trace_id, 3)
    root = next(r for r in spans if r.step == c.STEP_DECISION)
    assert root.parent_span_id == "00f067aa0ba902b7"
    assert root.parent_is_remote
    assert root.attributes[c.UPSTREAM_SAMPLED] is False


def test_archive_files_are_where_the_readme_says(agent: Agent) -> None:
    run_scenario(agent)
    files = wait_for("archive files", lambda: agent.stack.archive_files() or None)
    assert files[-1] == Path(agent.stack.archive_dir) / "spans.jsonl"


# Content as a web page may hold it: every character str.splitlines() splits on besides "\n".
LINE_BREAKS = "\u2028\u2029\u0085\x0b\x0c\x1c\x1d\x1e"
# Values Jaeger's v1 API shows in a form the verifier can retype (bytes, nested and mixed arrays,
# kvlists of ints, strings and arrays, the empty value); and values only v3 and the archive keep
# exactly (bytes and whole doubles inside a kvlist become text and ints in v1).
V1_RETYPABLE = {
    "test.blob": b"\x00\x01\xfe\xff",
    "test.nested": [[1, 2], [], ["a", "b"]],
    "test.mixed": [1, "a", True, None],
    "test.mapping": {"port": 443, "cidrs": ["10.0.0.0/24"], "note": None, "deeper": {"x": "y"}},
    "test.nothing": None,
    "test.text": f"page{LINE_BREAKS}end",
}
V3_ONLY = {"test.mapping.typed": {"raw": b"\x00", "ratio": 2.0, "empty": {}, "none": [None]}}


def test_every_attribute_value_type_and_line_separator_arrives_unchanged(agent: Agent) -> None:
    with provtrace.decision(f"values{LINE_BREAKS}", trigger="test", actor="agent") as decision:
        with provtrace.tool_call("retypable") as retypable:
            retypable.record_input({})
            retypable.record_output({"text": f"result{LINE_BREAKS}end"})
            for key, value in V1_RETYPABLE.items():
                retypable.set_attribute(key, value)
        with provtrace.tool_call("v3 only") as exact:
            exact.record_input({})
            exact.record_output({})
            for key, value in V3_ONLY.items():
                exact.set_attribute(key, value)
    assert agent.handle.force_flush(timeout_s=60)
    sent = agent.sent(decision.trace_id)
    assert len(sent) == 5  # decision, two tools, the seal and its checkpoint
    from_jaeger = v3_records(agent.stack, decision.trace_id, len(sent))
    from_archive = wait_for_spans(lambda: archived(agent.stack, decision.trace_id), len(sent), "the archive")
    raw = b"".join(path.read_bytes() for path in agent.stack.archive_files())
    assert "\u2028".encode() in raw  # the collector writes it raw; the reader still reads the line
    for original, jaeger, archive in zip(sent, from_jaeger, from_archive, strict=True):
        assert repr(jaeger) == repr(original), f"span {original.name} changed on its way into Jaeger"
        assert repr(archive) == repr(original), f"span {original.name} changed on its way into the archive"
        assert span_digest(jaeger) == span_digest(archive) == span_digest(original)
    tool = next(r for r in sent if r.name == "execute_tool retypable")
    assert tool.attributes["test.blob"] == b"\x00\x01\xfe\xff" and tool.attributes["test.nothing"] is None
    data = wait_for("the v1 API", lambda: jaeger_v1(agent.stack, decision.trace_id))
    from_v1 = {r.span_id: r for r in v1_records(data)}
    digests = {span_digest(option) for option in interpretations(from_v1[tool.span_id])}
    assert span_digest(tool) in digests, "the retypable values cannot be recomputed from v1"
