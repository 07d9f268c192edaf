"""Seals signed through a real OpenBao transit engine: the private key stays in OpenBao."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest

from provtrace import conventions as c
from provtrace.cli.main import main as cli
from provtrace.keyring import iso
from provtrace.signing.transit import TransitSigner
from provtrace.testing import OpenBao
from tests.conftest import make_recorded
from tests.scenario import reference_scenario
from tests.tamper import Archive


def agent_key(openbao: OpenBao) -> tuple[str, str]:
    """A fresh Ed25519 transit key and a token that may only sign with it and read its public keys."""
    openbao.enable_transit()
    name = f"provtrace-{secrets.token_hex(4)}"
    openbao.request("POST", f"transit/keys/{name}", {"type": "ed25519"})
    policy = f'path "transit/sign/{name}" {{ capabilities = ["update"] }}\n'
    policy += f'path "transit/keys/{name}" {{ capabilities = ["read"] }}\n'
    return name, openbao.token_for(f"sign-{name}", policy)


def verify(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = cli(["verify", *args, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def errors(report: dict[str, Any]) -> set[str]:
    return {f["kind"] for f in report["findings"] if f["severity"] == "error"}


def test_transit_signs_rotates_and_verify_follows_the_keyring(
    openbao: OpenBao, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    name, token = agent_key(openbao)
    signer = TransitSigner(openbao.url, name, token=token, refresh_s=0)
    recorded = make_recorded(tmp_path, signing_key=signer)
    reference_scenario()
    assert recorded.handle.force_flush(30)
    openbao.request("POST", f"transit/keys/{name}/rotate")  # rotation while the agent runs
    reference_scenario()
    assert recorded.handle.shutdown(30)
    assert recorded.handle.counters["signing_errors"] == 0
    archive = tmp_path / "archive"
    seals = sorted((r for r in Archive(archive, tmp_path / "read").records() if r.is_seal),
                   key=lambda r: r.attr_int(c.SEAL_SEQ))  # fmt: skip
    key_ids = [s.attr_str(c.SEAL_KEY_ID) for s in seals]
    assert len(set(key_ids)) == 2 and key_ids[0] != key_ids[-1]  # v1, then v2 after the rotation

    # The private key never left OpenBao: it is not exportable, and the agent's token cannot read it.
    with pytest.raises(OSError, match=r"HTTP Error (400|403)"):
        openbao.request("GET", f"transit/export/signing-key/{name}", token=token)
    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert token.encode() not in written and b"PRIVATE KEY" not in written

    ring = str(tmp_path / "ring.json")
    monkeypatch.setenv("BAO_TOKEN", openbao.root_token)
    assert cli(["keyring", "transit", ring, "--address", openbao.url, "--key", name]) == 0
    capsys.readouterr()
    code, report = verify("--stream", "--archive", str(archive), "--public-key", ring, capsys=capsys)
    assert code == 0, report
    keys = json.loads(Path(ring).read_text())["keys"]
    assert [k["not_after"] is None for k in keys] == [False, True]  # v1 retired at rotation (+ grace)

    latest = tmp_path / "latest.json"
    latest.write_text(json.dumps({"format": "provtrace-keyring/v1", "keys": keys[1:]}))
    code, report = verify("--stream", "--archive", str(archive), "--public-key", str(latest), capsys=capsys)
    assert (code, errors(report)) == (1, {"unknown_key"})

    assert cli(["keyring", "revoke", ring, keys[0]["key_id"], "--at", iso(seals[0].start_ns - 10**9)]) == 0
    capsys.readouterr()
    code, report = verify("--stream", "--archive", str(archive), "--public-key", ring, capsys=capsys)
    assert (code, errors(report)) == (1, {"revoked_key"})


def test_transit_from_the_environment_and_an_outage_never_breaks_the_agent(
    openbao: OpenBao, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    name, token = agent_key(openbao)
    monkeypatch.setenv("BAO_ADDR", openbao.url)
    monkeypatch.setenv("BAO_TOKEN", token)
    recorded = make_recorded(tmp_path / "env", signing_key=f"transit:transit/{name}")
    reference_scenario()
    assert recorded.handle.shutdown(30)
    assert recorded.handle.counters["signing_errors"] == 0
    ring = str(tmp_path / "ring.json")
    monkeypatch.setenv("BAO_TOKEN", openbao.root_token)
    assert cli(["keyring", "transit", ring, "--address", openbao.url, "--key", name]) == 0
    capsys.readouterr()
    code, report = verify("--stream", "--archive", str(tmp_path / "env" / "archive"), "--public-key", ring,
                          capsys=capsys)  # fmt: skip
    assert code == 0, report

    signer = TransitSigner(openbao.url, name, token=token, refresh_s=0)
    signer.refresh()
    signer.address = "http://127.0.0.1:9"  # the service goes away after start
    down = make_recorded(tmp_path / "down", signing_key=signer)
    reference_scenario()  # the agent is unaffected
    assert down.handle.shutdown(30)
    assert down.handle.counters["signing_errors"] >= 1
    code, report = verify("--stream", "--archive", str(tmp_path / "down" / "archive"), "--public-key", ring,
                          capsys=capsys)  # fmt: skip
    assert code == 1 and errors(report) == {"unsigned_seal"}
