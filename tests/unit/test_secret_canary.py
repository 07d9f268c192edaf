"""Canaries: a fetched secret value never reaches a byte provtrace writes, in any capture mode.

Every file under the provtrace home (archive, spool, quarantine) and every log record is scanned
for the raw value and its common encodings, after the secret has been pushed through content,
attributes, exception messages and a quarantined segment.
"""

from __future__ import annotations

import base64
import json
import logging
import urllib.parse
from pathlib import Path

import pytest

import provtrace
from provtrace import conventions as c
from tests.conftest import make_recorded

CANARY = "cnry-7Q2vX9pL4sW8zK1m"
CANARY_DICT = {"username": "svc-fw", "password": "cnry-pw-Zx81Lq02"}


def encodings(value: str) -> list[bytes]:
    return [
        value.encode(),
        json.dumps(value)[1:-1].encode(),
        urllib.parse.quote(value, safe="").encode(),
        base64.b64encode(value.encode()).rstrip(b"="),
    ]


def leak_everywhere() -> None:
    with provtrace.decision("canary", trigger="test", actor="agent", nhi="svc"):
        with provtrace.secret_fetch(store="vault", ref="kv/canary", nhi="svc") as s:
            token = s.record_value(CANARY)
            creds = s.record_value(CANARY_DICT)
        with provtrace.llm_call(model="m", provider="p") as llm:
            llm.record_input([{"role": "user", "content": f"use {token} please"}])
            llm.record_output({"tool_args": {"auth": token, "pw": creds["password"]}})
        with provtrace.tool_call("http") as tool:
            tool.record_input(
                {"url": f"https://svc:{creds['password']}@api/x?token={urllib.parse.quote(token)}"}
            )
            tool.record_output(base64.b64encode(token.encode()).decode())
            tool.set_attribute("user.raw", f"raw {token}")  # bypasses redaction: SECRET-LEAK
        with pytest.raises(RuntimeError), provtrace.tool_call("fails"):
            raise RuntimeError(f"server said: bad token {token}")

        @provtrace.tool_call("decorated")
        def decorated(arg: str) -> str:
            return f"echo {arg}"

        decorated(token)
        with provtrace.policy_check("p", input={"token": token}) as p:
            p.allow(reason=f"token {token} valid")
        with provtrace.action("x", target="y", params={"auth": token}) as act:
            act.record_change(before={"k": creds["password"]}, after={"k": token})
        with provtrace.verification(of=act) as v:
            v.passed(detail=f"probe with {token} ok")


@pytest.mark.parametrize("mode", ["none", "digest", "redacted", "full"])
@pytest.mark.parametrize("completeness", ["enforce", "annotate"])
def test_secret_values_never_leave_the_process(
    tmp_path: Path, mode: str, completeness: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    recorded = make_recorded(tmp_path, capture_content=mode, completeness=completeness)
    try:
        leak_everywhere()
        assert recorded.handle.force_flush(10)
        counters = recorded.handle.counters
    finally:
        assert recorded.handle.shutdown(10)
    written = recorded.files_bytes()
    assert written, "nothing was written: the scan would prove nothing"
    logs = "\n".join(r.getMessage() for r in caplog.records).encode()
    for value in (CANARY, CANARY_DICT["password"]):
        for encoded in encodings(value):
            assert encoded not in written, f"{encoded!r} reached disk in mode {mode}"
            assert encoded not in logs, f"{encoded!r} reached the log in mode {mode}"
    assert counters["segments_incomplete"] == 1  # the raw attribute was caught as SECRET-LEAK
    if completeness == "enforce":
        assert counters["segments_quarantined"] == 1
        assert b"SECRET-LEAK" in written
    quarantined = list((tmp_path / "quarantine").glob("*.json"))
    assert len(quarantined) == (1 if completeness == "enforce" else 0)


def test_secret_leak_names_the_field_and_scrubs_it(tmp_path: Path) -> None:
    recorded = make_recorded(tmp_path)
    try:
        with provtrace.decision("d", trigger="t", actor="agent"):
            with provtrace.secret_fetch("vault", "kv/a", nhi="svc") as s:
                s.record_value(CANARY)
            with provtrace.tool_call("t") as tool:
                tool.record_input({})
                tool.record_output({})
                tool.set_attribute("debug.header", f"Authorization: {CANARY}")
        assert recorded.handle.force_flush(10)
    finally:
        recorded.handle.shutdown(10)
    (entry,) = _entries(tmp_path)
    assert entry["violations"] == [
        {
            "code": c.RULE_SECRET_LEAK,
            "span_id": entry["violations"][0]["span_id"],
            "step": "tool_call",
            "attribute": "debug.header",
            "message": "a fetched secret value appeared in debug.header (removed before export)",
        }
    ]
    assert "[REDACTED:secret]" in json.dumps(entry["spans"])


def _entries(tmp_path: Path) -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in sorted((tmp_path / "quarantine").glob("*.json"))]


def test_structured_secrets_and_secret_bearing_keys_never_reach_disk(tmp_path: Path) -> None:
    import dataclasses

    @dataclasses.dataclass
    class Lease:
        value: str
        ttl: int

    recorded = make_recorded(tmp_path)
    try:

        @provtrace.secret_fetch(store="vault", ref="kv/lease", nhi="svc")
        def lease() -> Lease:
            return Lease(value="cnry-lease-Zq9pR7w2", ttl=3600)

        @provtrace.tool_call("use")
        def use(credential: Lease) -> str:
            return "ok"

        with provtrace.decision("d", trigger="t", actor="agent"):
            use(lease())
            with provtrace.tool_call("raw") as tool:
                tool.record_input({})
                tool.record_output({})
                tool.set_attribute("hdr.cnry-lease-Zq9pR7w2", "Bearer cnry-lease-Zq9pR7w2")
        assert recorded.handle.force_flush(10)
    finally:
        recorded.handle.shutdown(10)
    written = recorded.files_bytes()
    assert b"cnry-lease-Zq9pR7w2" not in written
    assert b"SECRET-LEAK" in written  # the raw attribute was caught (by its scrubbed name)
