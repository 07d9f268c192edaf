"""RFC 3161 time-stamps of checkpoints from a real TSA (OpenSSL's ``openssl ts``) on loopback."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from provtrace import conventions as c
from provtrace.cli.main import main as cli
from provtrace.integrity import write_key_pair
from provtrace.keyring import iso
from tests.conftest import make_recorded
from tests.integration.tsa import OPENSSL, Tsa
from tests.scenario import reference_scenario
from tests.tamper import Archive, attribute, set_attribute


def stamped_archive(home: Path, tsa_url: str, *, decisions: int = 2, clock: Any = None) -> tuple[Path, Path]:
    write_key_pair(home / "keys" / "agent.key", home / "keys" / "agent.pub")
    recorded = make_recorded(home, signing_key=home / "keys" / "agent.key", tsa_url=tsa_url)
    for _ in range(decisions):
        reference_scenario()
        assert recorded.handle.force_flush(30)
    assert recorded.handle.shutdown(60)
    assert recorded.handle.counters["timestamp_errors"] == 0
    return home / "archive", home / "keys" / "agent.pub"


def verify(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = cli(["verify", *args, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def kinds(report: dict[str, Any], severity: str) -> list[str]:
    return [f["kind"] for f in report["findings"] if f["severity"] == severity]


def test_every_checkpoint_is_stamped_and_verified(
    tsa: Tsa, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive, public = stamped_archive(tmp_path, tsa.url)
    notes = sorted((archive / "checkpoints").rglob("*.checkpoint"))
    tokens = sorted((archive / "checkpoints").rglob("*.tsr"))
    assert len(notes) == len(tokens) == 3  # two decisions and the closing seal
    # OpenSSL itself agrees that each stored reply stamps its checkpoint note.
    for note, token in zip(notes, tokens, strict=True):
        assert OPENSSL is not None
        checked = subprocess.run(
            [OPENSSL, "ts", "-verify", "-in", str(token), "-data", str(note), "-CAfile", str(tsa.root_cert)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert "Verification: OK" in checked.stdout, checked.stderr
    code, report = verify("--stream", "--archive", str(archive), "--public-key", str(public),
                          "--tsa-cert", str(tsa.root_cert), capsys=capsys)  # fmt: skip
    assert code == 0, report
    assert report["timestamps_checked"] == 3
    assert kinds(report, "warning") == []
    code, report = verify("--stream", "--archive", str(archive), "--public-key", str(public), capsys=capsys)
    assert (code, kinds(report, "warning")) == (0, ["timestamps_unchecked"])


def test_a_changed_token_is_a_finding(tsa: Tsa, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive, public = stamped_archive(tmp_path, tsa.url, decisions=1)
    copy = Archive(archive, tmp_path / "copy")
    stamp = next(s for *_, s in copy.spans() if s["name"] == c.TIMESTAMP_SPAN_NAME)
    token = bytearray(base64.b64decode(attribute(stamp, c.TIMESTAMP_TOKEN)))
    token[len(token) // 2] ^= 0x01
    set_attribute(stamp, c.TIMESTAMP_TOKEN, {"stringValue": base64.b64encode(bytes(token)).decode()})
    copy.save()
    code, report = verify("--stream", "--archive", str(copy.root), "--public-key", str(public),
                          "--tsa-cert", str(tsa.root_cert), capsys=capsys)  # fmt: skip
    assert (code, kinds(report, "error")) == (1, ["bad_timestamp"])


def test_a_clock_running_ahead_of_the_tsa_is_reported_not_trusted(
    tsa: Tsa, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ahead = 3600 * 10**9
    monkeypatch.setattr("provtrace.pipeline.now_ns", lambda: time.time_ns() // 1000 * 1000 + ahead)
    archive, public = stamped_archive(tmp_path, tsa.url, decisions=1)
    code, report = verify("--stream", "--archive", str(archive), "--public-key", str(public),
                          "--tsa-cert", str(tsa.root_cert), capsys=capsys)  # fmt: skip
    assert code == 0
    assert kinds(report, "warning") == ["clock_ahead", "clock_skew"]  # ahead of verify's clock too


def test_a_revoked_key_is_trusted_only_for_seals_stamped_before_the_revocation(
    tsa: Tsa, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive, public = stamped_archive(tmp_path, tsa.url, decisions=1)
    ring = str(tmp_path / "ring.json")
    assert cli(["keyring", "add", ring, "--public-key", str(public)]) == 0
    key_id = json.loads(Path(ring).read_text())["keys"][0]["key_id"]
    assert cli(["keyring", "revoke", ring, key_id, "--at", iso(time.time_ns() + 60 * 10**9)]) == 0
    capsys.readouterr()
    args = ["--stream", "--archive", str(archive), "--public-key", ring]
    code, report = verify(*args, "--tsa-cert", str(tsa.root_cert), capsys=capsys)
    assert code == 0, report
    assert "revoked_key" in kinds(report, "info")
    code, report = verify(*args, capsys=capsys)  # without trusted time, the revocation wins
    assert code == 1 and set(kinds(report, "error")) == {"revoked_key"}


def test_a_proof_carries_its_time_stamp_and_any_byte_change_fails(
    tsa: Tsa, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive, public = stamped_archive(tmp_path, tsa.url, decisions=1)
    action = next(r for r in Archive(archive, tmp_path / "read").records() if r.step == c.STEP_ACTION)
    bundle = tmp_path / "action.proof"
    assert cli(["prove", action.span_id, "--archive", str(archive), "--out", str(bundle)]) == 0
    capsys.readouterr()
    shutil.rmtree(archive)
    keys = ["--public-key", str(public), "--tsa-cert", str(tsa.root_cert)]
    code, report = verify("--proof", str(bundle), *keys, capsys=capsys)
    assert code == 0, report
    assert report["timestamps_checked"] == 1 and "timestamped" in kinds(report, "info")
    data = bundle.read_bytes()
    start = data.index(b'"timestamp":"') + len(b'"timestamp":"')
    for position in (start, start + 200, start + 1000, data.index(b'"', start) - 3):
        changed = bytearray(data)
        changed[position] = ord("A") if changed[position] != ord("A") else ord("B")
        bundle.write_bytes(bytes(changed))
        assert cli(["verify", "--proof", str(bundle), *keys]) != 0, position
    capsys.readouterr()


def test_an_unreachable_tsa_never_stops_sealing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_key_pair(tmp_path / "agent.key", tmp_path / "agent.pub")
    recorded = make_recorded(tmp_path, signing_key=tmp_path / "agent.key", tsa_url="http://127.0.0.1:9/tsa")
    reference_scenario()
    assert recorded.handle.shutdown(60)
    assert recorded.handle.counters["timestamp_errors"] >= 1
    code, report = verify("--stream", "--archive", str(tmp_path / "archive"), "--public-key",
                          str(tmp_path / "agent.pub"), capsys=capsys)  # fmt: skip
    assert code == 0, report
