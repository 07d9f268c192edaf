"""Tamper evidence on real data: the collector's archive and Jaeger's query APIs."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import pytest

import provtrace
from provtrace import conventions as c
from provtrace.cli.main import main as cli
from provtrace.integrity import span_digest
from provtrace.otlpjson import decode_traces, loads_line
from provtrace.readers.jaeger import interpretations, v1_records
from tests.integration.stack import Agent, archived, jaeger_v1, jaeger_v3, wait_for, wait_for_spans
from tests.scenario import reference_scenario
from tests.tamper import ATTACKS, stream_only, verify_attacked


def verify(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = cli(["verify", *args, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture
def collected(agent: Agent, tmp_path: Path) -> tuple[Agent, Path, list[str]]:
    """Four signed decisions through the real collector; a copy of this agent's part of the
    collector's archive once every span (and the closing seal) has arrived."""
    traces = []
    for _ in range(4):
        traces.append(reference_scenario()["decision"].trace_id)
        assert agent.handle.force_flush(timeout_s=60)  # one collector request, one archive line each
    stream = agent.handle.stream_id
    assert agent.handle.shutdown(timeout_s=60)
    for trace_id in traces:
        wait_for_spans(lambda t=trace_id: archived(agent.stack, t), 9, f"trace {trace_id} in the archive")

    def closing_seal_arrived() -> bool | None:
        copy = stream_only(agent.stack.archive_dir, tmp_path / f"probe-{time.monotonic_ns()}", stream)
        records = [r for line in (copy / "spans.jsonl").read_text().splitlines() for r in loads_line(line)]
        return (
            True
            if any(r.is_seal and r.attr_str(c.SEAL_REASON) == c.SEAL_REASON_CLOSE for r in records)
            else None
        )

    wait_for("the closing seal", closing_seal_arrived)
    return agent, stream_only(agent.stack.archive_dir, tmp_path / "ours", stream), traces


def test_collector_archive_and_jaeger_verify(
    collected: tuple[Agent, Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    agent, archive, traces = collected
    key = str(agent.public_key)
    code, report = verify(capsys, "--stream", "--archive", str(archive), "--public-key", key)
    assert code == 0, report
    assert report["seals_checked"] == 5
    for trace_id in traces:
        wait_for_spans(
            lambda t=trace_id: list(decode_traces((jaeger_v3(agent.stack, t) or {"result": {}})["result"])),
            9,
            f"trace {trace_id} in Jaeger",
        )
        code, report = verify(capsys, trace_id, "--jaeger", agent.stack.jaeger_url, "--public-key", key)
        assert code == 0, report
        assert report["spans_checked"] == 8
        code, report = verify(
            capsys, trace_id, "--jaeger", agent.stack.jaeger_url, "--jaeger-api", "v1", "--public-key", key
        )
        assert code == 0, report["findings"]
        code, _ = verify(capsys, trace_id, "--archive", str(archive), "--public-key", key)
        assert code == 0


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.name)
def test_each_attack_on_the_collector_archive_is_named(
    collected: tuple[Agent, Path, list[str]], tmp_path: Path, attack: Any
) -> None:
    agent, archive, _ = collected
    as_of = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3 * 3600))
    code, report, span_id = verify_attacked(
        attack,
        archive,
        tmp_path,
        public_key=agent.public_key,
        private_key=agent.home / "keys" / "agent.key",
        as_of=as_of,
    )
    assert code == 1
    assert attack.finding in [f["kind"] for f in report["findings"] if f["severity"] == "error"], report
    if span_id:
        assert span_id in [f["span_id"] for f in report["findings"] if f["kind"] == attack.finding]


def random_attributes(rng: random.Random) -> dict[str, Any]:
    """Every attribute type OTel allows, with the awkward values: unicode, int64 limits, floats that
    JSON writes without a decimal point, empty strings and arrays."""
    texts = ["", "é", "𝄞 music", "line\nbreak", '"quoted"', "\\", "tab\t", "ünïcødé ✓", "a" * 300]
    ints = [0, -1, 2**53, 2**53 + 1, -(2**53) - 1, 2**63 - 1, -(2**63), rng.randrange(-(2**63), 2**63)]
    floats = [0.1, 1.0, -2.5, 1e300, 5e-324, 123456789.0, rng.random()]
    values: list[Any] = [
        rng.choice(texts),
        rng.choice(ints),
        rng.choice(floats),
        rng.choice([True, False]),
        [rng.choice(texts) for _ in range(rng.randrange(0, 4))],
        [rng.choice(ints) for _ in range(rng.randrange(1, 4))],
        [rng.choice(floats) for _ in range(rng.randrange(1, 4))],
        [rng.choice([True, False]) for _ in range(rng.randrange(1, 3))],
        [],
    ]
    return {f"attr.{i}.{rng.choice(['x', 'ÿ', 'z'])}": value for i, value in enumerate(values)}


def test_digests_of_every_attribute_type_survive_jaeger_v3_and_v1(agent: Agent) -> None:
    rng = random.Random(20261128)  # a fixed corpus, so a failure can be reproduced
    with provtrace.decision("types", trigger="t", actor="agent") as decision:
        for i in range(12):
            with provtrace.tool_call(f"t{i}") as tool:
                tool.record_input({})
                tool.record_output({})
                for key, value in random_attributes(rng).items():
                    tool.set_attribute(key, value)
                tool.span.add_event("typed event", random_attributes(rng))
    assert agent.handle.force_flush(timeout_s=60)
    sent = {r.span_id: r for r in agent.sent(decision.trace_id)}

    def v3() -> list[Any] | None:
        data = jaeger_v3(agent.stack, decision.trace_id)
        records = list(decode_traces(data["result"])) if data else []
        return records if len(records) >= len(sent) else None

    for record in wait_for("the trace in Jaeger", v3):
        assert span_digest(record) == span_digest(sent[record.span_id]), record.name
    for record in v1_records(wait_for("the v1 API", lambda: jaeger_v1(agent.stack, decision.trace_id))):
        digests = {span_digest(option) for option in interpretations(record)}
        assert span_digest(sent[record.span_id]) in digests, record.name
