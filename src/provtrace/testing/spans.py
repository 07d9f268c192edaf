"""Looking at the SDK spans a test recorded (``Recorded.spans()``): their attributes, the JSON
content they carry, their causal links, and whether a secret reached any of them."""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from provtrace import conventions as c
from provtrace.testing.recording import Recorded


def attrs(span: ReadableSpan) -> dict[str, Any]:
    """The span's attributes as a plain dict (empty when it has none)."""
    return dict(span.attributes or {})


def content(span: ReadableSpan, attribute: str) -> Any:
    """The JSON an attribute holds (``gen_ai.input.messages``, ``provenance.output.content``, ...)."""
    return json.loads(attrs(span)[attribute])


def triggered_by(span: ReadableSpan) -> list[tuple[int, str | None]]:
    """(span id, tool call id) of each ``triggered_by`` link."""
    found: list[tuple[int, str | None]] = []
    for link in span.links:
        attributes = link.attributes or {}
        if attributes.get(c.LINK_TYPE) == c.LINK_TRIGGERED_BY:
            call_id = attributes.get(c.GEN_AI_TOOL_CALL_ID)
            found.append((link.context.span_id, None if call_id is None else str(call_id)))
    return found


def assert_never_recorded(secret: str, recorded: Recorded, logs: str) -> None:
    """No byte of ``secret`` in any exported span (name, status, attributes, events, links), in
    anything provtrace wrote to disk (archive, spool, quarantine) or in the logs; provtrace is
    shut down first, so that everything it would write is written."""
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
