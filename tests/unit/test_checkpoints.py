"""Checkpoints, offline proofs, consistency between checkpoints, keyrings and clocks."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings

from provtrace import conventions as c
from provtrace.checkpoint import note_key_id, origin_of, parse_note, raw_public_key, signed_note
from provtrace.cli.main import main as cli
from provtrace.errors import InputError
from provtrace.integrity import load_private_key, write_key_pair
from provtrace.model import EventRecord, LinkRecord, SpanRecord
from provtrace.otlpjson import dumps_line, loads_line
from provtrace.scan import scan_files
from provtrace.spanview import canonical_view, reference_canonical_view, span_digest
from tests.conftest import make_recorded
from tests.scenario import reference_scenario
from tests.tamper import Archive, add_span, checkpoint_notes
from tests.unit.test_hostile_input import mutated
from tests.unit.test_integrity import records, signed_archive


def run_cli(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = cli([*args, "--format", "json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def kinds(report: dict[str, Any], severity: str = "error") -> list[str]:
    return [f["kind"] for f in report.get("findings", []) if f["severity"] == severity]


# --- the note format ----------------------------------------------------------------------


def test_a_checkpoint_is_a_c2sp_signed_note() -> None:
    key = Ed25519PrivateKey.generate()
    origin = origin_of("agent 1+2@host/42/ab")
    assert " " not in origin and "+" not in origin
    text = f"{origin}\n3\n{'A' * 43}=\nseal 2 {'0' * 64}\nend\n"
    note = signed_note(text, origin, key.public_key(), key.sign(text.encode()))
    body, _, signature_line = note.rpartition("\n\n")
    assert body + "\n" == text
    assert signature_line.startswith(f"\u2014 {origin} ")
    expected_id = hashlib.sha256(origin.encode() + b"\n\x01" + raw_public_key(key.public_key())).digest()[:4]
    assert note_key_id(origin, key.public_key()) == expected_id
    parsed = parse_note(note)
    assert (parsed.checkpoint.size, parsed.checkpoint.seq, parsed.checkpoint.end) == (3, 2, True)
    assert parsed.signed_by([key.public_key()]) == key.public_key()
    assert parsed.signed_by([Ed25519PrivateKey.generate().public_key()]) is None
    assert parse_note(note.replace("\n3\n", "\n4\n")).signed_by([key.public_key()]) is None
    for broken in (
        note[:-1],
        note.replace("\u2014", "-"),
        note.replace("seal 2", "seal 02"),
        "x\n\n\u2014 a b\n",
    ):
        with pytest.raises(InputError):
            parse_note(broken)


# --- checkpoints from the pipeline ----------------------------------------------------------


def test_every_seal_has_a_checkpoint_beside_the_archive_and_as_a_span(tmp_path: Path) -> None:
    archive, public, _ = signed_archive(tmp_path, decisions=3)
    copy = Archive(archive, tmp_path / "copy")
    notes = checkpoint_notes(copy)
    assert sorted(notes) == [0, 1, 2, 3]  # three decisions and the closing seal
    files = sorted((archive / "checkpoints").rglob("*.checkpoint"))
    assert [f.read_text() for f in files] == [notes[seq] for seq in sorted(notes)]
    sizes = [parse_note(notes[seq]).checkpoint.size for seq in sorted(notes)]
    assert sizes == [8, 16, 24, 24]
    assert [parse_note(notes[seq]).checkpoint.end for seq in sorted(notes)] == [False, False, False, True]
    code = cli(["verify", "--consistency", str(files[0]), str(files[-1]), "--archive", str(archive),
                "--public-key", str(public)])  # fmt: skip
    assert code == 0


def test_a_kept_checkpoint_catches_a_rewrite_that_verifies_on_its_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An operator with the signing key can rewrite and re-sign the whole archive; the result
    verifies by itself. A checkpoint that left the host before the rewrite does not match it."""
    from tests.tamper import rewrite_history_with_the_key

    archive, public, _ = signed_archive(tmp_path, decisions=3)
    kept = tmp_path / "kept.checkpoint"
    shutil.copy(sorted((archive / "checkpoints").rglob("*.checkpoint"))[1], kept)
    copy = Archive(archive, tmp_path / "rewritten", key=load_private_key(public.with_suffix(".key")))
    rewrite_history_with_the_key(copy)
    copy.save()
    shutil.rmtree(copy.root / "checkpoints")
    args = ["verify", "--stream", "--archive", str(copy.root), "--public-key", str(public)]
    code, report = run_cli(*args, capsys=capsys)
    assert code == 0, report
    code, report = run_cli(*args, "--checkpoint", str(kept), capsys=capsys)
    assert code == 1
    assert kinds(report) == ["rewritten_history"]
    forged = tmp_path / "forged.checkpoint"
    forged.write_text(checkpoint_notes(copy)[1])
    code, report = run_cli("verify", "--consistency", str(kept), str(forged), "--public-key", str(public),
                           "--archive", str(copy.root), capsys=capsys)  # fmt: skip
    assert (code, kinds(report)) == (1, ["forked_history"])


# --- offline inclusion proofs -------------------------------------------------------------


def test_a_proof_of_a_scenario_span_verifies_offline_and_fails_after_any_one_byte_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive, public, _ = signed_archive(tmp_path, decisions=2)
    action = next(r for r in Archive(archive, tmp_path / "read").records() if r.step == c.STEP_ACTION)
    bundle = tmp_path / "action.proof"
    assert cli(["prove", action.span_id, "--archive", str(archive), "--out", str(bundle)]) == 0
    capsys.readouterr()
    shutil.rmtree(archive)  # offline: the auditor has the bundle and the public key only
    code, report = run_cli("verify", "--proof", str(bundle), "--public-key", str(public), capsys=capsys)
    assert code == 0, report
    assert "proven" in kinds(report, "info")
    data = bundle.read_bytes()
    span_at = data.index(b'"span"')
    positions = {0, 1, len(data) // 2, len(data) - 2, len(data) - 1, span_at + 40,
                 data.index(b'"leaf_index"') + 13, data.index(b'"audit_path"') + 16,
                 data.index(b"seal "), data.index(b"\\u2014".decode("unicode_escape").encode())}  # fmt: skip
    for position in sorted(positions):
        for replacement in {data[position] ^ 0x01, ord(" "), ord("0")} - {data[position]}:
            changed = bytearray(data)
            changed[position] = replacement
            bundle.write_bytes(bytes(changed))
            code = cli(["verify", "--proof", str(bundle), "--public-key", str(public)])
            assert code != 0, (position, chr(replacement))
    capsys.readouterr()
    bundle.write_bytes(data)
    code, report = run_cli("verify", "--proof", str(bundle), capsys=capsys)
    assert (code, kinds(report)) == (1, ["signatures_unchecked"])


def test_no_proof_for_a_span_no_seal_covers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive, _, _ = signed_archive(tmp_path, decisions=1)
    copy = Archive(archive, tmp_path / "added")
    forged = add_span(copy)
    copy.save()
    assert cli(["prove", forged, "--archive", str(copy.root)]) == 1
    assert "not_in_log" in capsys.readouterr().err


# --- the fast paths equal the reference ---------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(record=records())
def test_the_fast_canonical_view_is_the_reference_rfc_8785_view(record: SpanRecord) -> None:
    assert canonical_view(record) == reference_canonical_view(record)


@settings(max_examples=150, deadline=None)
@given(record=records())
def test_reading_the_archive_directly_gives_the_reference_digests(
    record: SpanRecord, tmp_path_factory: Any
) -> None:
    path = tmp_path_factory.mktemp("scan") / "a.jsonl"
    path.write_text(dumps_line([record]))
    scan = scan_files([path])
    (decoded,) = loads_line(path.read_text())
    assert [e.digest for e in scan.entries] == [span_digest(decoded)] == [span_digest(record)]


def test_odd_archive_shapes_are_read_the_reference_way(tmp_path: Path) -> None:
    """The fast reader of verify --stream agrees with the reference reader on every line: the
    same digests where the reference reads it, unreadable where the reference refuses it."""
    base = json.loads(
        dumps_line([SpanRecord(trace_id="a" * 32, span_id="b" * 16, name="n", start_ns=1, end_ns=2)])
    )

    def variant(**changes: Any) -> dict[str, Any]:
        line = json.loads(json.dumps(base))
        line["resourceSpans"][0]["scopeSpans"][0]["spans"][0].update(changes)
        return line

    readable = variant(attributes=[{"key": "k", "value": {}}, {"key": "é", "value": {"intValue": "7"}}])
    refused = [variant(kind=True), variant(startTimeUnixNano=1.5), variant(traceId="Z" * 32)]
    for number, line in enumerate([readable, *refused]):
        path = tmp_path / f"odd-{number}.jsonl"
        path.write_text(json.dumps(line) + "\n")
        scan = scan_files([path])
        try:
            (record,) = loads_line(path.read_text())
        except InputError:
            assert scan.entries == [] and len(scan.unreadable) == 1, line
        else:
            assert [e.digest for e in scan.entries] == [span_digest(record)]


# --- keys: periods and revocation; clocks -------------------------------------------------


def test_a_revoked_or_retired_key_is_a_finding(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive, public, _ = signed_archive(tmp_path, decisions=1)
    ring = str(tmp_path / "ring.json")

    def keyring(*args: str) -> None:
        assert cli(["keyring", *args]) == 0
        capsys.readouterr()

    keyring("add", ring, "--public-key", str(public), "--not-before", "2000-01-01T00:00:00Z")
    args = ["verify", "--stream", "--archive", str(archive), "--public-key", ring]
    assert run_cli(*args, capsys=capsys)[0] == 0
    key_id = json.loads(Path(ring).read_text())["keys"][0]["key_id"]
    keyring("revoke", ring, key_id, "--at", "2001-01-01T00:00:00Z")
    code, report = run_cli(*args, capsys=capsys)
    assert code == 1 and set(kinds(report)) == {"revoked_key"}
    keyring("add", ring, "--public-key", str(public), "--not-after", "2001-01-01T00:00:00Z")
    code, report = run_cli(*args, capsys=capsys)
    assert set(kinds(report)) == {"revoked_key", "key_out_of_period"}  # the revocation is kept


def test_a_clock_that_goes_back_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_key_pair(tmp_path / "k.key", tmp_path / "k.pub")
    recorded = make_recorded(tmp_path / "home", signing_key=tmp_path / "k.key")
    reference_scenario()
    assert recorded.handle.force_flush(30)
    earlier = time.time_ns() - 3600 * 10**9
    monkeypatch.setattr("provtrace.pipeline.now_ns", lambda: earlier)
    reference_scenario()
    assert recorded.handle.shutdown(30)
    assert recorded.handle.counters["clock_steps_back"] == 1
    code, report = run_cli("verify", "--stream", "--archive", str(tmp_path / "home" / "archive"),
                           "--public-key", str(tmp_path / "k.pub"), capsys=capsys)  # fmt: skip
    assert code == 0  # not tampering: reported, and its times are not trusted
    assert kinds(report, "warning") == ["clock_backwards"]


def test_time_stamps_that_contradict_the_order_of_checkpoints_are_a_finding() -> None:
    """The TSA's word is trusted time, so two stamps out of order mean one of them lies."""
    from provtrace.checkpoint import origin_of
    from provtrace.integrity import SealBody, Sealer
    from provtrace.timestamp import Stamp
    from provtrace.verify import Report
    from provtrace.verify_time import check_clocks

    sealer = Sealer("s", None, heartbeat_interval_s=60, resource={})
    now = time.time_ns() // 1000 * 1000
    chain = {}
    for seq in range(3):
        seal = sealer.seal(trace_id="1" * 32, parent_span_id="", spans=(), completeness="unchecked",
                           violations=(), reason="heartbeat", now_ns=now + seq * 10**9)  # fmt: skip
        chain[seq] = (SealBody.from_record(seal), seal)
    ok = {(origin_of("s"), seq): Stamp(now + seq * 10**9, 0, "tsa", seq) for seq in range(3)}
    report = Report()
    check_clocks("s", chain, ok, report)
    assert report.findings == []
    backwards = {**ok, (origin_of("s"), 2): Stamp(now - 60 * 10**9, 0, "tsa", 9)}
    check_clocks("s", chain, backwards, report)
    assert sorted(f.kind for f in report.findings) == ["clock_skew", "timestamp_backwards"]


def rich_line() -> dict[str, Any]:
    """A line with every field the fast reader handles: events, links, flags, counts, types."""
    record = SpanRecord(
        trace_id="ab" * 16,
        span_id="cd" * 8,
        parent_span_id="ef" * 8,
        parent_is_remote=True,
        name="n",
        kind=2,
        start_ns=1_700_000_000_000_000_000,
        end_ns=1_700_000_000_000_001_000,
        status_code=2,
        status_message="m",
        attributes={"s": "x", "b": True, "i": 7, "d": 2.5, "a": ("p", "q")},
        events=(EventRecord("e", 1_700_000_000_000_000_500, {"k": "v"}, dropped_attributes=1),),
        links=(LinkRecord("12" * 16, "34" * 8, {c.LINK_TYPE: "triggered_by"}, "k=v", 2),),
        resource={c.SERVICE_NAME: "svc"},
        scope_name="provtrace",
        scope_version="1",
        trace_state="a=b",
        dropped_attributes=3,
    )
    line: dict[str, Any] = json.loads(dumps_line([record]))
    return line


@settings(max_examples=300, deadline=None)
@given(line=mutated(rich_line()))
def test_property_the_fast_reader_accepts_exactly_what_the_reference_reader_does(
    line: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No line reads one way in verify --stream and another way everywhere else."""
    path = tmp_path_factory.mktemp("agree") / "line.jsonl"
    path.write_text(json.dumps(line) + "\n")
    scan = scan_files([path])
    try:
        records = loads_line(path.read_text())
    except InputError:
        assert scan.entries == [] and scan.records == [] and len(scan.unreadable) == 1
        return
    assert scan.unreadable == []
    assert sorted(e.digest for e in scan.entries) == sorted(span_digest(r) for r in records)
