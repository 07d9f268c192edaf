"""Recording never breaks the agent: bad input inside provtrace is logged and counted, the user's
code still runs, and the user's own exceptions propagate unchanged."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.trace import StatusCode

import provtrace
from provtrace import conventions as c
from provtrace.rules import SegmentContext, Violation
from tests.conftest import Recorded, make_recorded


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")


class BadModel:
    def model_dump(self, **_: Any) -> Any:
        raise ValueError("model_dump exploded")

    def __repr__(self) -> str:
        return "BadModel()"


def cyclic() -> dict[str, Any]:
    node: dict[str, Any] = {"name": "loop"}
    node["self"] = node
    return node


leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.binary(max_size=64),
    st.builds(BadRepr),
    st.builds(BadModel),
    st.builds(cyclic),
    st.builds(object),
)
shapes = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.tuples(children, children),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), children, max_size=5),
        st.frozensets(st.one_of(st.integers(), st.text(max_size=5)), max_size=4),
    ),
    max_leaves=20,
)


@pytest.fixture(scope="module")
def module_recorded(tmp_path_factory: pytest.TempPathFactory) -> Any:
    result = make_recorded(tmp_path_factory.mktemp("never-break"))
    yield result
    result.handle.shutdown(10)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=shapes)
def test_any_argument_shape_is_recorded_and_returned_unchanged(module_recorded: Recorded, value: Any) -> None:
    @provtrace.tool_call("shape")
    def echo(arg: Any, *rest: Any, **named: Any) -> Any:
        return arg

    module_recorded.exporter.clear()
    with provtrace.decision("d", trigger="t", actor="agent"):
        assert echo(value, value, key=value) is value
    span = module_recorded.span("execute_tool shape")
    attributes = dict(span.attributes or {})
    assert len(attributes[c.INPUT_SHA256]) == 64
    assert len(attributes[c.OUTPUT_SHA256]) == 64
    assert span.status.status_code is StatusCode.UNSET


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=shapes)
def test_user_exception_propagates_unchanged_whatever_the_arguments(
    module_recorded: Recorded, value: Any
) -> None:
    error = LookupError("user failure")

    @provtrace.tool_call("raises")
    def raises(arg: Any) -> Any:
        raise error

    module_recorded.exporter.clear()
    with pytest.raises(LookupError) as caught:
        raises(value)
    assert caught.value is error
    assert module_recorded.span("execute_tool raises").status.status_code is StatusCode.ERROR


def test_huge_values_are_capped_but_digested_in_full(recorded: Recorded) -> None:
    huge = "x" * 5_000_000

    @provtrace.tool_call("huge")
    def big(payload: str) -> int:
        return len(payload)

    assert big(huge) == 5_000_000
    attributes = dict(recorded.span("execute_tool huge").attributes or {})
    assert len(str(attributes[c.GEN_AI_TOOL_CALL_ARGUMENTS]).encode()) <= 16 * 1024
    assert attributes[c.CONTENT_TRUNCATED] == (c.GEN_AI_TOOL_CALL_ARGUMENTS,)
    assert attributes[c.INPUT_SHA256] == provtrace.digest({"payload": huge})


def test_non_utf8_bytes_are_recorded(recorded: Recorded) -> None:
    with provtrace.tool_call("bytes") as tool:
        tool.record_input(b"\xff\xfe\x00binary")
    attributes = dict(recorded.span("execute_tool bytes").attributes or {})
    assert attributes[c.GEN_AI_TOOL_CALL_ARGUMENTS] == '{"\\u0000bytes":"//4AYmluYXJ5"}'


def test_internal_recording_error_is_counted_and_logged_and_code_runs(
    recorded: Recorded, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(_: Any) -> bytes:
        raise MemoryError("simulated failure inside provtrace")

    monkeypatch.setattr("provtrace.steps.base.capture", broken)
    ran: list[int] = []

    @provtrace.tool_call("robust")
    def robust(x: int) -> int:
        ran.append(x)
        return x * 2

    with caplog.at_level(logging.WARNING, logger="provtrace"):
        assert robust(21) == 42
    assert ran == [21]
    assert recorded.handle.counters["recording_errors"] >= 1
    assert any("could not record" in r.getMessage() for r in caplog.records)


def test_raising_violation_handler_and_rule_do_not_stop_the_pipeline(tmp_path: Path) -> None:
    def handler(_: object) -> None:
        raise RuntimeError("handler bug")

    def rule(_: SegmentContext) -> list[Violation]:
        raise RuntimeError("rule bug")

    recorded = make_recorded(tmp_path, violation_handler=handler, rules=[rule])
    try:
        with provtrace.tool_call("outside decision"):
            pass
        assert recorded.handle.force_flush(10)
        counters = recorded.handle.counters
    finally:
        recorded.handle.shutdown(10)
    assert counters["handler_errors"] == 1
    assert counters["rule_errors"] == 1
    assert counters["segments_quarantined"] == 1


def test_cancelled_task_marks_error_and_propagates(recorded: Recorded) -> None:
    async def main() -> None:
        started = asyncio.Event()

        @provtrace.tool_call("slow")
        async def slow() -> None:
            started.set()
            await asyncio.Event().wait()

        task = asyncio.create_task(slow())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    span = recorded.span("execute_tool slow")
    assert span.status.status_code is StatusCode.ERROR
    assert dict(span.attributes or {})[c.ERROR_TYPE] == "CancelledError"
