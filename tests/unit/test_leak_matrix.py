"""The leak matrix of issue 10: every vector an attacker tried, in every capture mode, and not one
canary byte in the archive, the spool (read before shutdown, while it still holds the journal),
the quarantine or the logs.

A vector records content that carries a fetched canary secret in the form agents really produce
(or a credential provtrace never fetched, by its shape); ``forms`` are the byte strings that must
not appear anywhere afterwards: the raw secret and the exact encoded form the vector wrote.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import unicodedata
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState, set_span_in_context

import provtrace
from provtrace import conventions as c
from tests.conftest import make_recorded

SECRET = "cnry-Vb7Qx2Lm9Tz4Kd"
MODES = (c.CAPTURE_NONE, c.CAPTURE_DIGEST, c.CAPTURE_REDACTED, c.CAPTURE_FULL)


@dataclasses.dataclass(frozen=True)
class Vector:
    name: str
    run: Callable[[], None]  # records the leak attempt inside an open decision
    forms: tuple[str | bytes, ...]
    fetched: Any = SECRET  # what the secret fetch returned
    # Credentials provtrace never fetched are removed by shape in redacted mode; full capture
    # stores content as it is, by design (fetched secrets are still removed in every mode).
    modes: tuple[str, ...] = MODES


def tool(arguments: Any, result: Any = None) -> None:
    with provtrace.tool_call("leak") as t:
        t.record_input(arguments)
        t.record_output(result if result is not None else {"ok": True})


class Wrapper:
    def __init__(self, secret: str) -> None:
        self._token = secret


class FakeSecretStr:
    def __init__(self, secret: str) -> None:
        self._secret = secret

    def get_secret_value(self) -> str:
        return self._secret

    def __repr__(self) -> str:
        return "FakeSecretStr('**********')"


def fullwidth(text: str) -> str:
    return "".join(chr(ord(ch) + 0xFEE0) if 0x21 <= ord(ch) <= 0x7E else ch for ch in text)


def linked_with_trace_state() -> None:
    state = TraceState([("vendor", SECRET)])
    context = SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(1), trace_state=state)
    with provtrace.tool_call("linked", triggered_by=context) as t:
        t.record_input({})
        t.record_output({})


def library_status_after_recording() -> None:
    """An instrumented library sets the status after provtrace recorded the step (mcp's server
    middleware does this with the raw error message)."""
    with provtrace.tool_call("db") as t:
        t.record_input({})
        t.record_output({})
        t.span.set_status(provtrace_status(f"query failed: postgres://admin:{SECRET}@db/prod"))


def provtrace_status(message: str) -> Any:
    from opentelemetry.trace import Status, StatusCode

    return Status(StatusCode.ERROR, message)


def tool_named(name: str) -> Callable[[], None]:
    def run() -> None:
        with provtrace.tool_call(name) as t:
            t.record_input({})
            t.record_output({})

    return run


def exception_text(text: str) -> Callable[[], None]:
    def run() -> None:
        with pytest.raises(RuntimeError), provtrace.tool_call("raises"):
            raise RuntimeError(text)

    return run


blob = b"\x00\x01header " + SECRET.encode() + b" trailer\xff"
aws_json = json.dumps({"username": "fw-api", "password": SECRET})
doubled = json.dumps(json.dumps({"token": SECRET}))

VECTORS = [
    Vector("bytes content", lambda: tool({"blob": blob}), (SECRET, base64.b64encode(blob).decode())),
    Vector("hex-encoded", lambda: tool({"hex": SECRET.encode().hex()}), (SECRET.encode().hex(),)),
    Vector(
        "base64 inside a larger blob",
        lambda: tool({"b64": base64.b64encode(b"prefix-" + SECRET.encode() + b"-suffix").decode()}),
        (base64.b64encode(b"prefix-" + SECRET.encode() + b"-suffix").decode(),),
    ),
    Vector("upper-cased", lambda: tool({"u": SECRET.upper()}), (SECRET.upper(),)),
    Vector("lower-cased", lambda: tool({"l": SECRET.lower()}), (SECRET.lower(),)),
    Vector("split across two arguments", lambda: tool({"a": SECRET[:9], "b": SECRET[9:]}), (SECRET,)),
    Vector(
        "NFD",
        lambda: tool({"n": unicodedata.normalize("NFD", "é" + SECRET)}),
        ("e\u0301" + SECRET,),
        "é" + SECRET,
    ),
    Vector("fullwidth", lambda: tool({"f": fullwidth(SECRET)}), (fullwidth(SECRET),)),
    Vector(
        "URL-encoded with quote's default safe='/'",
        lambda: tool({"url": "https://api/x?t=" + urllib.parse.quote(SECRET + "/x")}),
        (urllib.parse.quote(SECRET + "/x"),),
        SECRET + "/x",
    ),
    Vector(
        "URL-encoded with lowercase %2f",
        lambda: tool({"url": urllib.parse.quote(SECRET + "/y", safe="").replace("%2F", "%2f")}),
        (urllib.parse.quote(SECRET + "/y", safe="").replace("%2F", "%2f"),),
        SECRET + "/y",
    ),
    Vector("JSON double-escaped", lambda: tool({"body": doubled}), (SECRET,)),
    Vector("pydantic-style SecretStr", lambda: tool({"t": SECRET}), (SECRET,), FakeSecretStr(SECRET)),
    Vector("an object holding the secret", lambda: tool({"t": SECRET}), (SECRET,), Wrapper(SECRET)),
    Vector("fetched with a newline, stripped later", lambda: tool({"t": SECRET}), (SECRET,), SECRET + "\n"),
    Vector("a JSON SecretString as AWS returns it", lambda: tool({"pw": SECRET}), (SECRET,), aws_json),
    Vector("'Bearer S', split later", lambda: tool({"t": SECRET}), (SECRET,), "Bearer " + SECRET),
    Vector("a link's trace state", linked_with_trace_state, (SECRET,)),
    Vector("a status set by the library after recording", library_status_after_recording, (SECRET,)),
    Vector("a secret as a tool name", tool_named("tool-" + SECRET), (SECRET,)),
    Vector("an exception message", exception_text("bad token " + SECRET), (SECRET,)),
    # credentials provtrace never fetched, recognised by shape (redacted mode)
    Vector(
        "a .env file read by a tool",
        lambda: tool(
            {}, "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY\nDB_PASSWORD=Sup3rS3cr3t!"
        ),
        ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY", "Sup3rS3cr3t!"),
        modes=(c.CAPTURE_NONE, c.CAPTURE_DIGEST, c.CAPTURE_REDACTED),
    ),
    Vector(
        "export and spaced assignments",
        lambda: tool(
            {},
            "export API_TOKEN=tkn9f8e7d6c5b4a3\n"
            "aws_secret_access_key = Zq8Lm2Xv9Pw4Rt6Yb1Nc3Kd5Hf7Gj0Sa2Dq4We6T",
        ),
        ("tkn9f8e7d6c5b4a3", "Zq8Lm2Xv9Pw4Rt6Yb1Nc3Kd5Hf7Gj0Sa2Dq4We6T"),
        modes=(c.CAPTURE_NONE, c.CAPTURE_DIGEST, c.CAPTURE_REDACTED),
    ),
    Vector(
        "never-fetched credential shapes",
        lambda: tool(
            {
                "aws": "Zq8Lm2Xv9Pw4Rt6Yb1Nc3Kd5Hf7Gj0Sa2Dq4We6U",
                "gitlab": "glpat-AbCdEfGhIjKlMnOpQrSt",
                "google": "ya29.a0AfH6SMBxZq8Lm2Xv9Pw4Rt6Yb1Nc3Kd5Hf7Gj0",
                "sas": "https://x.blob.core.windows.net/c?sv=2020&sig=Zq8Lm2Xv9Pw4Rt6Yb1Nc3Kd5Hf7Gj0%3D",
                "short": "password=abc12",
                "url": "postgres://admin:pa/ss@w0rd@db:5432/prod",
            }
        ),
        (
            "Zq8Lm2Xv9Pw4Rt6Yb1Nc3Kd5Hf7Gj0Sa2Dq4We6U",
            "glpat-AbCdEfGhIjKlMnOpQrSt",
            "ya29.a0AfH6SMBxZq8Lm2Xv9Pw4Rt6Yb1Nc3Kd5Hf7Gj0",
            "Zq8Lm2Xv9Pw4Rt6Yb1Nc3Kd5Hf7Gj0%3D",
            "abc12",
            "pa/ss@w0rd",
        ),
        modes=(c.CAPTURE_NONE, c.CAPTURE_DIGEST, c.CAPTURE_REDACTED),
    ),
    Vector(
        "a PuTTY private key file",
        lambda: tool(
            {},
            "PuTTY-User-Key-File-2: ssh-rsa\nEncryption: none\nPublic-Lines: 1\nAAAAB3NzaC1yc2EAAAADAQAB\n"
            "Private-Lines: 1\nAAAAgQDm8Lq2Xv9Pw4Rt6Yb1Nc3Kd5Hf7Gj0Sa\nPrivate-MAC: 0a1b2c3d4e5f\n",
        ),
        ("AAAAgQDm8Lq2Xv9Pw4Rt6Yb1Nc3Kd5Hf7Gj0Sa",),
        modes=(c.CAPTURE_NONE, c.CAPTURE_DIGEST, c.CAPTURE_REDACTED),
    ),
    Vector(
        "a credential-shaped tool name",
        tool_named("ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"),
        ("ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",),
    ),
    Vector(
        "a connection string in an error",
        exception_text("MCPError: cannot connect to postgres://admin:Hunter2Hunter2@db/prod"),
        ("Hunter2Hunter2",),
    ),
]


def scanned(home: Path, logs: str) -> bytes:
    files = b"".join(p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file())
    return files + logs.encode()


MATRIX = [
    pytest.param(vector, mode, id=f"{vector.name}-{mode}") for vector in VECTORS for mode in vector.modes
]


@pytest.mark.parametrize(("vector", "mode"), MATRIX)
def test_no_vector_leaks_a_canary_byte_in_any_mode(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: str, vector: Vector
) -> None:
    caplog.set_level(logging.DEBUG)
    home = tmp_path / "home"
    recorded = make_recorded(home, capture_content=mode, completeness="enforce")
    try:
        with provtrace.decision("leak", trigger="attack", actor="agent", nhi="svc"):
            with provtrace.secret_fetch(store="vault", ref="kv/canary", nhi="svc") as s:
                s.record_value(vector.fetched)
            vector.run()
        assert recorded.handle.force_flush(30)
        # The spool as it stands once everything was sealed and delivered (its journal and
        # progress log): shutdown removes a spool that holds nothing undelivered.
        spooled = b"".join(p.read_bytes() for p in sorted((home / "spool").rglob("*")) if p.is_file())
        assert b"resourceSpans" in spooled
    finally:
        recorded.handle.shutdown(30)
    data = scanned(home, caplog.text) + spooled
    found = [form for form in vector.forms if (form.encode() if isinstance(form, str) else form) in data]
    assert found == [], f"{vector.name} in {mode}: {found} reached disk or logs"


def test_a_trace_state_from_upstream_with_a_secret_is_scrubbed_and_flagged(tmp_path: Path) -> None:
    recorded = make_recorded(tmp_path)
    state = TraceState([("vendor", SECRET)])
    parent = NonRecordingSpan(SpanContext(0x1234, 0x5678, is_remote=True, trace_state=state))
    from opentelemetry import context as otel_context

    token = otel_context.attach(set_span_in_context(parent))
    try:
        with provtrace.decision("d", trigger="t", actor="agent"):
            with provtrace.secret_fetch(store="vault", ref="kv/canary", nhi="svc") as s:
                s.record_value(SECRET)
            linked_with_trace_state()
    finally:
        otel_context.detach(token)
    assert recorded.handle.force_flush(30)
    recorded.handle.shutdown(30)
    entries = [json.loads(p.read_text()) for p in (tmp_path / "quarantine").glob("q-*.json")]
    leaks = [v for e in entries for v in e["violations"] if v["code"] == c.RULE_SECRET_LEAK]
    assert {v["attribute"] for v in leaks} >= {"trace_state", "links[0].trace_state"}
    assert SECRET.encode() not in recorded.files_bytes()
