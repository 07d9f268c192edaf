"""The instrumentation in programs of its own: turned on by ``opentelemetry-instrument`` and by
``provtrace.instrument()``, and next to the OpenTelemetry GenAI OpenAI instrumentation
(``opentelemetry-instrumentation-genai-openai``), in either order.

That instrumentation is installed for these tests only, into a directory of its own under the
user's cache that only the programs started here have on their path, so no other test sees it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from provtrace import conventions as c
from provtrace.testing import KIND_CLIENT, Archive, SpanRecord, run_python

OTEL_GENAI = ("opentelemetry-instrumentation-genai-openai==1.3b0", "opentelemetry-util-genai==1.3b0")
OTEL_SCOPE = "opentelemetry.instrumentation.genai.openai"

AGENT = """
import os, secrets
import openai
import provtrace
from provtrace.testing import llm_server

handle = provtrace.configure(service_name="coexist")
{instrument}
secret = "fwtok-" + secrets.token_hex(12)
with llm_server.serve() as server:
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0)
    with provtrace.decision("ask", trigger="t", actor="agent", nhi="svc"):
        with provtrace.secret_fetch(store="vault", ref="kv/x", nhi="svc") as fetch:
            token = fetch.record_value(secret)
        messages = [{{"role": "user", "content": f"use {{token}}"}}]
        client.chat.completions.create(model="fake-gpt", messages=messages)
        list(client.chat.completions.create(model="fake-gpt", messages=messages, stream=True))
assert handle.shutdown(timeout_s=30)
print(secret)
"""

PROVTRACE_ONLY = "print(provtrace.instrument())"
OTEL_FIRST = """
from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor as OTel
OTel().instrument()
print(provtrace.instrument())
"""
PROVTRACE_FIRST = """
from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor as OTel
print(provtrace.instrument())
OTel().instrument()
"""


def otel_genai_path() -> Path:
    """The OpenTelemetry GenAI OpenAI instrumentation (its dependencies are provtrace's own),
    installed once under the cache, under a lock, moved into place only when complete."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "provtrace" / "pythonpath"
    target = cache / ("otel-genai-openai-" + OTEL_GENAI[0].split("==")[1])
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.exists():
            building = target.with_name(target.name + ".building")
            shutil.rmtree(building, ignore_errors=True)
            install = [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--target",
                str(building),
            ]
            subprocess.run([*install, *OTEL_GENAI], check=True, timeout=600)  # noqa: S603 - pinned packages
            building.rename(target)
    return target


def run_agent(tmp_path: Path, instrument: str, *, with_otel: bool) -> tuple[list[SpanRecord], str, bytes]:
    env = {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "span_only"}
    if with_otel:
        env["PYTHONPATH"] = str(otel_genai_path())
    result = run_python(AGENT.format(instrument=instrument), tmp_path, env=env)
    printed = result.stdout.strip().splitlines()
    records = Archive(tmp_path / "archive").records()
    written = b"".join(
        p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file() and p.name != "program.py"
    )
    assert "openai" in printed[0]
    return records, printed[-1], written


def llm_calls(records: list[SpanRecord]) -> list[SpanRecord]:
    return [r for r in records if r.step == c.STEP_LLM_CALL]


def test_provtrace_instrument_turns_it_on(tmp_path: Path) -> None:
    records, secret, written = run_agent(tmp_path, PROVTRACE_ONLY, with_otel=False)
    calls = llm_calls(records)
    assert len(calls) == 2
    assert {r.scope_name for r in calls} == {c.INSTRUMENTATION_NAME}
    assert len({r.attributes[c.OUTPUT_SHA256] for r in calls}) == 1
    assert secret.encode() not in written


@pytest.mark.parametrize("order", [OTEL_FIRST, PROVTRACE_FIRST], ids=["otel-first", "provtrace-first"])
def test_next_to_the_otel_genai_instrumentation_each_call_is_one_span(tmp_path: Path, order: str) -> None:
    """Whichever turned on first, the OTel instrumentation's span is the step; what it writes as
    content (its content capture is on) cannot replace provtrace's redacted content."""
    records, secret, written = run_agent(tmp_path, order, with_otel=True)
    clients = [r for r in records if r.kind == KIND_CLIENT]
    assert len(clients) == 2
    assert clients == llm_calls(records)
    assert {r.scope_name for r in clients} == {OTEL_SCOPE}
    unstreamed, streamed = clients
    assert unstreamed.attributes[c.OUTPUT_SHA256] == streamed.attributes[c.OUTPUT_SHA256]
    assert unstreamed.attributes[c.GEN_AI_RESPONSE_MODEL] == "fake-gpt"
    messages = json.loads(str(unstreamed.attributes[c.GEN_AI_INPUT_MESSAGES]))
    assert messages == [{"role": "user", "parts": [{"type": "text", "content": "use [REDACTED:secret]"}]}]
    assert secret.encode() not in written
    assert not any(c.RULE_SECRET_LEAK in str(r.attributes.get(c.SEAL_VIOLATIONS, "")) for r in records)


def test_opentelemetry_instrument_turns_it_on(tmp_path: Path) -> None:
    launcher = shutil.which("opentelemetry-instrument", path=str(Path(sys.executable).parent))
    assert launcher is not None
    quiet = {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"}
    result = run_python(AGENT.format(instrument=""), tmp_path, env=quiet, command=[launcher, sys.executable])
    assert result.stdout.strip().splitlines()[-1].startswith("fwtok-")
    calls = llm_calls(Archive(tmp_path / "archive").records())
    assert len(calls) == 2
