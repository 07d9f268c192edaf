"""The completeness contract end to end: through the real collector into Jaeger and the archive."""

from __future__ import annotations

from provtrace import conventions as c
from provtrace.model import SpanRecord
from provtrace.otlpjson import decode_traces
from tests.integration.stack import Agent, archived, jaeger_v3, wait_for, wait_for_spans
from tests.scenario import reference_scenario


def test_complete_trace_arrives_incomplete_does_not_but_its_violation_record_does(agent: Agent) -> None:
    complete = reference_scenario()["decision"].trace_id
    incomplete = reference_scenario(approve=False)["decision"].trace_id
    assert agent.handle.force_flush(timeout_s=60)

    arrived = wait_for_spans(lambda: archived(agent.stack, complete), 9, "the complete trace")
    assert {r.step for r in arrived if r.step} == set(c.STEPS)

    def jaeger(trace_id: str, count: int) -> list[SpanRecord]:
        def read() -> list[SpanRecord] | None:
            data = jaeger_v3(agent.stack, trace_id)
            spans = list(decode_traces(data["result"])) if data else []
            return spans if len(spans) >= count else None

        return wait_for(f"trace {trace_id} in Jaeger", read)

    assert len(jaeger(complete, 10)) == 10  # eight steps, the seal and its checkpoint
    visible = jaeger(incomplete, 3)
    assert sorted(r.name for r in visible) == [
        c.CHECKPOINT_SPAN_NAME,
        c.SEAL_SPAN_NAME,
        c.VIOLATION_SPAN_NAME,
    ]
    violation = next(r for r in visible if r.name == c.VIOLATION_SPAN_NAME)
    assert violation.attributes[c.VIOLATION_CODES] == (c.RULE_LINK_APPROVAL,)
    assert violation.status_code == 2
    quarantined = list(agent.handle.quarantine_dir.glob("q-*.json"))
    assert len(quarantined) == 1
    assert violation.attributes[c.VIOLATION_QUARANTINE_ID] == quarantined[0].stem
    assert {r.name for r in archived(agent.stack, incomplete)} == {
        c.SEAL_SPAN_NAME,
        c.CHECKPOINT_SPAN_NAME,
        c.VIOLATION_SPAN_NAME,
    }
