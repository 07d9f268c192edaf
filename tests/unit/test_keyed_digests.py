"""A digest must not give back a secret: content that held a fetched secret is digested with the
evidence owner's key, and whoever holds the original and the key can still prove it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import provtrace
from provtrace import conventions as c
from provtrace.cli.main import main as cli
from provtrace.content import canonical_json, to_jsonable
from provtrace.keyed import load_digest_key
from tests.conftest import Recorded, make_recorded

WORDS = [
    "password", "sunshine", "dragon", "monkey", "letmein", "shadow", "master", "football", "baseball",
    "welcome", "iloveyou", "princess", "admin", "qwerty", "trustno1", "starwars", "whatever", "freedom",
]  # fmt: skip


def plain(value: object) -> str:
    return hashlib.sha256(canonical_json(to_jsonable(value))).hexdigest()


def fetch(secret: str) -> None:
    with provtrace.secret_fetch(store="vault", ref="kv/pin", nhi="svc"):
        pass
    with provtrace.secret_fetch(store="vault", ref="kv/pin", nhi="svc") as s:
        s.record_value(secret)


@pytest.fixture
def keyed(tmp_path: Path) -> Recorded:
    return make_recorded(tmp_path / "home", digest_key=tmp_path / "owner" / "digest.key")


@pytest.mark.parametrize(
    ("secret", "candidates"),
    [("4821", [f"{n:04d}" for n in range(10_000)]), ("sunshine", WORDS)],
    ids=["4-digit PIN", "dictionary word"],
)
def test_a_low_entropy_secret_cannot_be_recovered_from_the_digest(
    keyed: Recorded, tmp_path: Path, capsys: pytest.CaptureFixture[str], secret: str, candidates: list[str]
) -> None:
    try:
        with provtrace.decision("d", trigger="t", actor="agent"):
            fetch(secret)
            with provtrace.tool_call("unlock") as tool:
                tool.record_input({"door": "server-room", "pin": secret})
                tool.record_output({"opened": True})
    finally:
        keyed.handle.shutdown(10)
    attributes = dict(keyed.span("execute_tool unlock").attributes or {})
    recorded = attributes[c.INPUT_SHA256]
    assert attributes[c.CONTENT_KEYED] == (c.INPUT_SHA256,)
    assert recorded not in {plain({"door": "server-room", "pin": guess}) for guess in candidates}
    assert attributes[c.OUTPUT_SHA256] == plain({"opened": True})  # no secret: plain and provable by anyone

    original = tmp_path / "original.json"
    original.write_text(json.dumps({"door": "server-room", "pin": secret}))
    key = tmp_path / "owner" / "digest.key"
    assert cli(["digest", str(original), "--digest-key", str(key)]) == 0
    out = capsys.readouterr().out
    assert f"keyed ({attributes[c.CONTENT_KEY_ID]})  {recorded}" in out
    assert load_digest_key(key)  # owner-only, and never written into any record:
    assert key.read_text().strip().encode() not in keyed.files_bytes()


def test_a_generator_that_yields_a_secret_gets_a_keyed_digest(keyed: Recorded) -> None:
    @provtrace.tool_call("pins")
    def pins() -> object:
        yield "0000"
        yield "7391"

    try:
        with provtrace.decision("d", trigger="t", actor="agent"):
            fetch("7391")
            assert list(pins()) == ["0000", "7391"]
    finally:
        keyed.handle.shutdown(10)
    attributes = dict(keyed.span("execute_tool pins").attributes or {})
    assert attributes[c.CONTENT_KEYED] == (c.OUTPUT_SHA256,)
    assert attributes[c.OUTPUT_SHA256] not in {plain(["0000", f"{n:04d}"]) for n in range(10_000)}


def test_the_digest_key_is_created_owner_only_under_provtrace_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVTRACE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PROVTRACE_DIGEST_KEY", raising=False)
    recorded = make_recorded(tmp_path)
    recorded.handle.shutdown(10)
    key = tmp_path / "home" / "keys" / "digest.key"
    assert key.stat().st_mode & 0o777 == 0o600
    assert len(load_digest_key(key)) == 32
