"""What the OpenAI and Anthropic instrumentations' tests share: the local model server, provtrace
configured with an instrumentation on, and a look at the llm_call steps it recorded.

The server is examples/llm_server.py, the one the example and the benchmarks use: the real clients
talk HTTP to it on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan

from provtrace import conventions as c
from tests.conftest import Recorded, make_recorded

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "examples") not in sys.path:
    sys.path.insert(0, str(REPO / "examples"))

import llm_server  # noqa: E402 - examples/ is on the path now

__all__ = ["REPO", "Recorded", "instrumented", "llm_server", "llm_steps", "run_python", "server"]


@pytest.fixture
def server() -> Iterator[llm_server.Server]:
    """The local model server, serving for the test."""
    with llm_server.serve() as running:
        yield running


@contextlib.contextmanager
def instrumented(tmp_path: Path, instrumentor: Any, **options: object) -> Iterator[Recorded]:
    """provtrace with an in-memory view of its spans and ``instrumentor`` on, for the block."""
    recorded = make_recorded(tmp_path, **options)
    instrumentor.instrument()
    try:
        yield recorded
    finally:
        instrumentor.uninstrument()
        with contextlib.suppress(Exception):
            recorded.handle.shutdown(timeout_s=10)


def llm_steps(recorded: Recorded) -> list[ReadableSpan]:
    return [s for s in recorded.spans() if (s.attributes or {}).get(c.STEP) == c.STEP_LLM_CALL]


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def content(span: ReadableSpan, attribute: str) -> Any:
    return json.loads(attrs(span)[attribute])


def triggered_by(span: ReadableSpan) -> list[tuple[int, str | None]]:
    """(span id, tool call id) of each ``triggered_by`` link."""
    return [
        (link.context.span_id, (link.attributes or {}).get(c.GEN_AI_TOOL_CALL_ID))
        for link in span.links
        if (link.attributes or {}).get(c.LINK_TYPE) == c.LINK_TRIGGERED_BY
    ]


def run_python(
    code: str, tmp_path: Path, *, env: Mapping[str, str] | None = None, command: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter with provtrace's home under ``tmp_path`` (and the
    repository's examples/ importable); fails the test on a non-zero exit."""
    script = tmp_path / "program.py"
    script.write_text(code, encoding="utf-8")
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PROVTRACE_HOME": str(tmp_path / "home"),
        "PROVTRACE_ARCHIVE_DIR": str(tmp_path / "archive"),
        "PYTHONPATH": str(REPO / "examples"),
        **(env or {}),
    }
    result = subprocess.run(
        [*(command or [sys.executable]), str(script)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def assert_never_recorded(secret: str, recorded: Recorded, logs: str) -> None:
    """No byte of ``secret`` in any exported span (attributes, events, links, status, name), in
    anything provtrace wrote to disk (archive, spool, quarantine) or in the logs."""
    recorded.handle.shutdown(timeout_s=10)
    for span in recorded.spans():
        texts = [span.name, span.status.description or "", json.dumps(attrs(span), default=str)]
        texts += [json.dumps(dict(e.attributes or {}), default=str) for e in span.events]
        texts += [json.dumps(dict(li.attributes or {}), default=str) for li in span.links]
        assert not any(secret in text for text in texts), span.name
    written = recorded.files_bytes()
    assert written  # the evidence was written, and without the secret
    assert secret.encode() not in written
    assert secret not in logs
