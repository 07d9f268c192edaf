"""The instrumentation in programs of its own, turned on by ``opentelemetry-instrument`` and by
``provtrace.instrument()``."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from provtrace import conventions as c
from provtrace.testing import Archive, run_python

AGENT = """
import anthropic
import provtrace
from provtrace.testing import llm_server

handle = provtrace.configure(service_name="auto")
{instrument}
with llm_server.serve() as server:
    client = anthropic.Anthropic(base_url=server.url, api_key="k", max_retries=0)
    request = dict(model="fake-claude", max_tokens=8, messages=[{{"role": "user", "content": "hi"}}])
    with provtrace.decision("ask", trigger="t", actor="agent"):
        client.messages.create(**request)
        with client.messages.stream(**request) as streamed:
            streamed.until_done()
assert handle.shutdown(timeout_s=30)
"""


@pytest.mark.parametrize("launch", ["provtrace.instrument()", "opentelemetry-instrument"])
def test_it_is_turned_on_in_a_program_of_its_own(tmp_path: Path, launch: str) -> None:
    if launch == "opentelemetry-instrument":
        launcher = shutil.which("opentelemetry-instrument", path=str(Path(sys.executable).parent))
        assert launcher is not None
        quiet = {
            "OTEL_TRACES_EXPORTER": "none",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
        }
        run_python(AGENT.format(instrument=""), tmp_path, env=quiet, command=[launcher, sys.executable])
    else:
        run_python(AGENT.format(instrument="assert 'anthropic' in provtrace.instrument()"), tmp_path)
    calls = [r for r in Archive(tmp_path / "archive").records() if r.step == c.STEP_LLM_CALL]
    assert len(calls) == 2
    assert len({r.attributes[c.OUTPUT_SHA256] for r in calls}) == 1  # streamed digests like unstreamed
