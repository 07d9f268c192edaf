"""Load through the real collector: 8 agent threads and 200 asyncio tasks record decisions at
once, and every step produced arrives in the collector's archive, nothing lost, health ok.

Speed is not asserted here (bench/load.py measures spans/s, backlog and latency); this test
holds the pipeline to completeness while many producers race it. Its counts print on one ``FAULT``
line, as the fault tests' do (``pytest -s`` shows them).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import provtrace
from provtrace.testing import Agent, Stack
from tests.integration.test_faults import report, step_ids, wait_arrived
from tests.scenario import reference_scenario

THREADS = 8
DECISIONS_PER_THREAD = 40
TASKS = 200


async def one_async_decision(index: int) -> set[str]:
    ids: set[str] = set()
    with provtrace.decision(f"review INC-{index}", trigger=f"alert:{index}", actor="load-agent") as d:
        for sg in ("sg-123", "sg-456"):
            with provtrace.tool_call("lookup_rule") as tool:
                tool.record_input({"sg": sg})
                await asyncio.sleep(0)  # every task yields inside its step: 200 tasks interleave
                tool.record_output({"sg": sg, "rules": [index]})
            ids.add(tool.span_id)
    return ids | {d.span_id}


async def tasks() -> set[str]:
    trees = await asyncio.gather(*(one_async_decision(index) for index in range(TASKS)))
    return set().union(*trees)


def test_eight_threads_and_two_hundred_tasks_deliver_every_step(
    evidence_stack: Stack, tmp_path: Path
) -> None:
    agent = Agent(evidence_stack, tmp_path / "agent")
    produced: set[str] = set()
    lock = threading.Lock()
    errors: list[BaseException] = []

    def thread() -> None:
        try:
            for _ in range(DECISIONS_PER_THREAD):
                ids = step_ids(reference_scenario())
                with lock:
                    produced.update(ids)
        except BaseException as exc:
            errors.append(exc)

    try:
        workers = [threading.Thread(target=thread) for _ in range(THREADS)]
        for worker in workers:
            worker.start()
        produced_async = asyncio.run(tasks())
        for worker in workers:
            worker.join(timeout=600)
        assert not any(worker.is_alive() for worker in workers)
        assert errors == []
        assert agent.handle.force_flush(timeout_s=300)
        counters = agent.handle.counters
        assert agent.handle.health().ok, agent.handle.health()
    finally:
        agent.handle.shutdown(timeout_s=120)
    found = wait_arrived(evidence_stack, produced | produced_async, timeout_s=300)
    report(
        "load-8-threads-200-tasks",
        produced=len(produced | produced_async),
        arrived=len(found),
        lost=counters["spans_lost"],
        quarantined=counters["segments_quarantined"],
    )
    assert counters["spans_lost"] == 0
    assert counters["segments_quarantined"] == 0
    assert len(produced_async) == 3 * TASKS
