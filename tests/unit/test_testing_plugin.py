"""provtrace's pytest plugin checks what it claims: the canary scan finds a value in each of its
encodings, in files and logs, and refuses to pass on nothing; the archive reads back what was
delivered; ``unconfigured`` is a process without configuration; and the evidence stack is skipped
where it cannot run, except where it must run."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

import provtrace
from provtrace import conventions as c
from provtrace.testing import CanaryScan, Recorded, attrs, encodings, triggered_by

CANARY = "cnry-plugin-7Q2vX9pL"


def test_the_scan_finds_every_encoding_of_a_value_in_the_files(tmp_path: Path) -> None:
    for name, form in encodings(CANARY + "/é").items():
        (tmp_path / "home" / name).mkdir(parents=True)
        (tmp_path / "home" / name / "out.json").write_bytes(b"{" + form + b"}")
        scan = CanaryScan().watch(tmp_path / "home" / name)
        assert scan.leaks(CANARY + "/é") != [], name
        with pytest.raises(AssertionError, match="canaries reached"):
            scan.assert_absent(CANARY + "/é")


def test_the_scan_reads_the_captured_logs_and_other_text(canaries: CanaryScan, tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "archive.jsonl").write_text("{}\n")
    canaries.watch(tmp_path / "home")
    canaries.assert_absent(CANARY)
    logging.getLogger("provtrace.test").debug("token %s", encodings(CANARY)["base64"].decode())
    found = canaries.leaks(CANARY)
    assert f"base64 of {CANARY!r} in logs" in found
    assert set(found) <= {f"base64 of {CANARY!r} in logs", f"base64url of {CANARY!r} in logs"}  # alike here
    assert canaries.add_text("stderr: " + CANARY).leaks(CANARY)[0] == f"raw of {CANARY!r} in logs"


def test_a_scan_of_nothing_proves_nothing(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="no home"):
        CanaryScan().assert_absent(CANARY)
    (tmp_path / "empty").mkdir()
    with pytest.raises(AssertionError, match="nothing was written"):
        CanaryScan().watch(tmp_path / "empty").assert_absent(CANARY)


def test_recorded_reads_back_what_its_pipeline_delivered(recorded: Recorded) -> None:
    with provtrace.decision("d", trigger="t", actor="agent") as decision:
        with provtrace.tool_call("lookup") as tool:
            tool.record_input({"sg": "sg-1"})
            tool.record_output({"rules": []})
    assert recorded.handle.force_flush(10)
    archive = recorded.archive
    assert [s.name for s in archive.spans(decision.trace_id)] == ["decision d", "execute_tool lookup"]
    assert len(archive.seals(decision.trace_id)) == 1
    lookup = archive.span("execute_tool lookup", decision.trace_id)
    assert archive.sealed_as(lookup.span_id) == c.COMPLETENESS_COMPLETE
    assert recorded.span("execute_tool lookup").context.span_id == int(lookup.span_id, 16)


def test_recorded_steps_are_the_spans_of_one_kind_and_their_links_read_back(recorded: Recorded) -> None:
    with provtrace.decision("d", trigger="t", actor="agent"):
        with provtrace.llm_call(model="m", provider="p") as llm:
            llm.record_input([{"role": "user", "content": "hi"}])
            llm.record_output({"role": "assistant", "content": "lookup"})
        with provtrace.tool_call("lookup", triggered_by=llm) as tool:
            tool.record_input({"sg": "sg-1"})
            tool.record_output({"rules": []})
    (step,) = recorded.steps(c.STEP_TOOL_CALL)
    assert step.name == "execute_tool lookup"
    assert attrs(step)[c.GEN_AI_TOOL_NAME] == "lookup"
    assert [s.name for s in recorded.steps(c.STEP_LLM_CALL)] == ["chat m"]
    assert triggered_by(step) == [(llm.context.span_id, None)]  # no tool call id: not proposed by one
    assert recorded.steps(c.STEP_ACTION) == []


def test_unconfigured_is_a_process_without_configuration(
    unconfigured: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert provtrace.current() is None
    with provtrace.decision("d", trigger="t"), provtrace.decision("e", trigger="t"):
        pass
    warned = [r for r in caplog.records if "configure() has not been called" in r.getMessage()]
    assert len(warned) == 1  # re-armed for this test, and said once


STACK_TEST = """
def test_needs_the_stack(evidence_stack):
    assert evidence_stack.jaeger_url
"""


@pytest.mark.parametrize(("required", "outcome"), [("0", "1 skipped"), ("1", "1 error")])
def test_the_evidence_stack_is_skipped_where_it_cannot_run_unless_required(
    tmp_path: Path, required: str, outcome: str
) -> None:
    (tmp_path / "test_stack_policy.py").write_text(STACK_TEST)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVTRACE_") and k != "CI"}
    env.update({"PROVTRACE_CHECKOUT": str(tmp_path / "no-checkout"), "PROVTRACE_REQUIRE_STACK": required})
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "provtrace.testing", "-p", "no:cacheprovider", "-rs", "-q"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert outcome in result.stdout, result.stdout + result.stderr
    assert "the evidence stack cannot run" in result.stdout
