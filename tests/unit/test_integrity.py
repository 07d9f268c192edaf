"""Span digests, seals, chains, heartbeats and `provtrace verify` on the embedded archive."""

from __future__ import annotations

import dataclasses
import json
import math
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import provtrace
from provtrace import conventions as c
from provtrace.cli.main import main as cli
from provtrace.integrity import (
    SealBody,
    Sealer,
    load_public_key,
    seal_digest,
    signed_message,
    span_digest,
    verify_signature,
    write_key_pair,
)
from provtrace.merkle import leaf_hash
from provtrace.model import EventRecord, LinkRecord, SpanRecord
from provtrace.otlpjson import dumps_line, loads_line
from provtrace.verify import Keys
from provtrace.verify_streams import verify_stream
from tests.conftest import make_recorded
from tests.scenario import reference_scenario
from tests.tamper import ATTACKS, Archive, attribute, rehash_after_edit, verify_attacked
from tests.waiting import wait_for

scalars = st.one_of(
    st.text(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([2**63 - 1, -(2**63), 2**53, 2**53 + 1, -(2**53) - 1, 0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
)
arrays = st.one_of(
    st.lists(st.text(), max_size=4),
    st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=4),
    st.lists(st.floats(allow_nan=False), max_size=4),
    st.lists(st.booleans(), max_size=4),
).map(tuple)
attributes = st.dictionaries(st.text(min_size=1, max_size=20), st.one_of(scalars, arrays), max_size=8)
hex16 = st.text("0123456789abcdef", min_size=16, max_size=16)


@st.composite
def records(draw: Any) -> SpanRecord:
    start = draw(st.integers(min_value=0, max_value=2**62)) // 1000 * 1000
    return SpanRecord(
        trace_id=draw(st.text("0123456789abcdef", min_size=32, max_size=32)),
        span_id=draw(hex16),
        parent_span_id=draw(st.one_of(st.just(""), hex16)),
        name=draw(st.text()),
        kind=draw(st.integers(min_value=0, max_value=5)),
        start_ns=start,
        end_ns=start + draw(st.integers(min_value=1, max_value=10**12)) * 1000,
        status_code=draw(st.integers(min_value=0, max_value=2)),
        status_message=draw(st.text(max_size=10)),
        attributes=draw(attributes),
        events=tuple(
            EventRecord(draw(st.text(max_size=10)), draw(st.integers(0, 2**62)), draw(attributes))
            for _ in range(draw(st.integers(0, 3)))
        ),
        links=tuple(
            LinkRecord(
                draw(st.text("0123456789abcdef", min_size=32, max_size=32)), draw(hex16), draw(attributes)
            )
            for _ in range(draw(st.integers(0, 3)))
        ),
        resource={c.SERVICE_NAME: draw(st.text(max_size=10))},
    )


def same_values(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(same_values(x, y) for x, y in zip(a, b, strict=True))
    return a == b and type(a) is type(b)


@settings(max_examples=300, deadline=None)
@given(record=records())
def test_digest_survives_the_archive_encoding(record: SpanRecord) -> None:
    (decoded,) = loads_line(dumps_line([record]))
    assert span_digest(decoded) == span_digest(record)
    for key, value in record.attributes.items():
        assert same_values(decoded.attributes[key], value), key


@settings(max_examples=200, deadline=None)
@given(record=records(), data=st.data())
def test_digest_changes_with_any_attribute_value(record: SpanRecord, data: Any) -> None:
    key = data.draw(st.text(min_size=1, max_size=5))
    changed = SpanRecord(**{**record.__dict__, "attributes": {**record.attributes, key: "tampered value"}})
    if record.attributes.get(key) == "tampered value":
        return
    assert span_digest(changed) != span_digest(record)


def test_digest_covers_every_field_an_attacker_could_change() -> None:
    events = (EventRecord("a", 1, {"x": 1}), EventRecord("b", 2, {}))
    links = (LinkRecord("1" * 32, "2" * 16, {c.LINK_TYPE: "authorized_by"}), LinkRecord("1" * 32, "3" * 16))
    base = SpanRecord(
        trace_id="1" * 32,
        span_id="4" * 16,
        parent_span_id="5" * 16,
        name="s",
        start_ns=0,
        end_ns=1000,
        events=events,
        links=links,
        resource={c.SERVICE_NAME: "agent", "host.name": "h1"},
        scope_name="provtrace",
        scope_version="0.1.0",
    )
    changes: dict[str, Any] = {
        "events": events[::-1],
        "links": links[::-1],
        "resource": {c.SERVICE_NAME: "agent", "host.name": "h2"},
        "scope_name": "other",
        "scope_version": "9",
        "trace_state": "k=v",
        "parent_is_remote": True,
        "dropped_attributes": 1,
        "dropped_events": 1,
        "dropped_links": 1,
    }
    for field, value in changes.items():
        changed = dataclasses.replace(base, **{field: value})
        assert span_digest(changed) != span_digest(base), field
    for event_or_link in ("events", "links"):
        items = getattr(base, event_or_link)
        changed = dataclasses.replace(
            base, **{event_or_link: (dataclasses.replace(items[0], dropped_attributes=2), items[1])}
        )
        assert span_digest(changed) != span_digest(base), event_or_link
    state = dataclasses.replace(base, links=(dataclasses.replace(links[0], trace_state="a=b"), links[1]))
    assert span_digest(state) != span_digest(base)


def test_seals_chain_and_sign(tmp_path: Path) -> None:
    write_key_pair(tmp_path / "k.key", tmp_path / "k.pub")
    from provtrace.integrity import load_private_key

    sealer = Sealer("stream-1", load_private_key(tmp_path / "k.key"), heartbeat_interval_s=60, resource={})
    span = SpanRecord(trace_id="1" * 32, span_id="2" * 16, name="s", start_ns=0, end_ns=1000)
    first = sealer.seal(
        trace_id="1" * 32,
        parent_span_id="",
        spans=[span],
        completeness="complete",
        violations=(),
        reason="root_ended",
        now_ns=5000,
    )
    second = sealer.seal(
        trace_id="3" * 32,
        parent_span_id="",
        spans=(),
        completeness="unchecked",
        violations=(),
        reason="heartbeat",
        now_ns=6000,
    )
    first_body, second_body = SealBody.from_record(first), SealBody.from_record(second)
    assert (first_body.seq, second_body.seq) == (0, 1)
    assert first_body.prev == ""
    assert second_body.prev == seal_digest(first) == first.attributes[c.SEAL_DIGEST]
    assert first_body.spans == (f"{'2' * 16}:{span_digest(span)}",)
    public = load_public_key(tmp_path / "k.pub")
    assert verify_signature(signed_message(first), str(first.attributes[c.SEAL_SIGNATURE]), public)
    assert not verify_signature(signed_message(second), str(first.attributes[c.SEAL_SIGNATURE]), public)
    assert f"seal 0 {seal_digest(first)}".encode() in signed_message(first)  # the signature covers the seal
    assert (first.attributes[c.SEAL_TREE_SIZE], second.attributes[c.SEAL_TREE_SIZE]) == (1, 1)
    assert first.attributes[c.SEAL_TREE_ROOT] == leaf_hash(bytes.fromhex(span_digest(span))).hex()
    assert first.end_ns > first.start_ns


def test_a_seal_covers_its_own_span_not_only_its_seal_attributes(tmp_path: Path) -> None:
    sealer = Sealer("stream-1", None, heartbeat_interval_s=60, resource={c.SERVICE_NAME: "a"})
    seal = sealer.seal(
        trace_id="1" * 32,
        parent_span_id="",
        spans=(),
        completeness="unchecked",
        violations=(),
        reason="heartbeat",
        now_ns=5000,
    )
    for change in (
        {"parent_span_id": "9" * 16},
        {"end_ns": seal.end_ns + 1000},
        {"start_ns": seal.start_ns - 1000},
        {"attributes": {**seal.attributes, "provenance.seal.note": "forged"}},
        {"resource": {c.SERVICE_NAME: "someone else"}},
    ):
        assert seal_digest(dataclasses.replace(seal, **change)) != seal.attributes[c.SEAL_DIGEST], change


def test_keygen_writes_a_private_key_only_the_owner_can_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = str(tmp_path / "agent")
    assert cli(["keygen", "--out", prefix]) == 0
    assert stat.S_IMODE((tmp_path / "agent.key").stat().st_mode) == 0o600
    assert "key id      ed25519:" in capsys.readouterr().out
    assert cli(["keygen", "--out", prefix]) == 2
    assert "already exists" in capsys.readouterr().err
    assert cli(["keygen", "--out", prefix, "--force"]) == 0


def signed_archive(tmp_path: Path, decisions: int = 4) -> tuple[Path, Path, list[str]]:
    write_key_pair(tmp_path / "keys" / "agent.key", tmp_path / "keys" / "agent.pub")
    recorded = make_recorded(
        tmp_path / "home", signing_key=tmp_path / "keys" / "agent.key", heartbeat_interval=60
    )
    traces = []
    try:
        for _ in range(decisions):
            traces.append(reference_scenario()["decision"].trace_id)
            assert recorded.handle.force_flush(30)  # one archive line per decision
    finally:
        assert recorded.handle.shutdown(30)
    return tmp_path / "home" / "archive", tmp_path / "keys" / "agent.pub", traces


def verify_json(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = cli(["verify", *args, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_untouched_archive_verifies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive, public, traces = signed_archive(tmp_path)
    code, report = verify_json(
        "--stream", "--archive", str(archive), "--public-key", str(public), capsys=capsys
    )
    assert code == 0, report
    assert report["seals_checked"] == 5  # four decisions and the closing seal
    assert report["spans_checked"] == 4 * 8
    assert [f["kind"] for f in report["findings"]] == []
    for trace_id in traces:
        code, _ = verify_json(trace_id, "--archive", str(archive), "--public-key", str(public), capsys=capsys)
        assert code == 0


def test_without_a_public_key_verify_is_never_verified(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROVTRACE_PUBLIC_KEY", raising=False)
    archive, _, traces = signed_archive(tmp_path, decisions=1)
    code, report = verify_json(traces[0], "--archive", str(archive), capsys=capsys)
    assert code == 1
    assert [f["kind"] for f in report["findings"] if f["severity"] == "error"] == ["signatures_unchecked"]
    assert cli(["verify", traces[0], "--archive", str(archive)]) == 1
    assert capsys.readouterr().out.startswith("NOT VERIFIED: ")
    recorded = make_recorded(tmp_path / "unsigned")
    reference_scenario()
    recorded.handle.shutdown(30)
    code, report = verify_json("--stream", "--archive", str(tmp_path / "unsigned" / "archive"), capsys=capsys)
    assert code == 1
    assert sorted(f["kind"] for f in report["findings"]) == ["signatures_unchecked", "unsigned_seal"]


def test_an_edited_archive_with_rehashed_seals_is_not_verified_without_a_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attacker edits the action and recomputes every digest and the chain: only a signature
    check can tell, so without a trusted key the answer must not be VERIFIED."""
    monkeypatch.delenv("PROVTRACE_PUBLIC_KEY", raising=False)
    archive, public, _ = signed_archive(tmp_path, decisions=1)
    copy = Archive(archive, tmp_path / "tampered")
    rehash_after_edit(copy)
    copy.save()
    code, report = verify_json("--stream", "--archive", str(copy.root), capsys=capsys)
    assert code == 1
    assert [f["kind"] for f in report["findings"] if f["severity"] == "error"] == ["signatures_unchecked"]
    code, report = verify_json(
        "--stream", "--archive", str(copy.root), "--public-key", str(public), capsys=capsys
    )
    assert code == 1
    assert "bad_signature" in [f["kind"] for f in report["findings"]]


def test_verify_of_an_empty_archive_is_a_finding(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    write_key_pair(tmp_path / "k.key", tmp_path / "k.pub")
    code, report = verify_json(
        "--stream",
        "--archive",
        str(tmp_path / "empty"),
        "--public-key",
        str(tmp_path / "k.pub"),
        capsys=capsys,
    )
    assert code == 1
    assert [f["kind"] for f in report["findings"]] == ["no_evidence"]


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.name)
def test_each_attack_is_named(tmp_path: Path, attack: Any) -> None:
    archive, public, _ = signed_archive(tmp_path)
    as_of = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    code, report, span_id = verify_attacked(
        attack, archive, tmp_path, public_key=public, private_key=public.with_suffix(".key"), as_of=as_of
    )
    assert code == 1
    kinds = [f["kind"] for f in report["findings"] if f["severity"] == "error"]
    assert attack.finding in kinds, report
    if span_id:
        assert span_id in [f["span_id"] for f in report["findings"] if f["kind"] == attack.finding]


def test_heartbeats_are_sealed_while_idle(tmp_path: Path) -> None:
    recorded = make_recorded(tmp_path, heartbeat_interval=0.05)
    try:
        wait_for("two heartbeats", lambda: recorded.handle.counters["heartbeats"] >= 2 or None, timeout_s=30)
    finally:
        recorded.handle.shutdown(30)
    lines = [
        line for path in (tmp_path / "archive").glob("*.jsonl") for line in path.read_text().splitlines()
    ]
    seals = [r for line in lines for r in loads_line(line) if r.is_seal]
    reasons = [attribute_of(s, c.SEAL_REASON) for s in sorted(seals, key=lambda s: s.attr_int(c.SEAL_SEQ))]
    assert reasons[:2] == [c.SEAL_REASON_HEARTBEAT, c.SEAL_REASON_HEARTBEAT]
    assert reasons[-1] == c.SEAL_REASON_CLOSE
    report = verify_stream(seals, Keys({}, False), now_ns=time.time_ns())
    assert report.ok


def attribute_of(record: SpanRecord, key: str) -> str:
    return record.attr_str(key) or ""


def test_truncated_tail_is_detected_once_a_heartbeat_is_overdue(tmp_path: Path) -> None:
    archive, public, _ = signed_archive(tmp_path, decisions=3)
    copy = Archive(archive, tmp_path / "cut")
    from tests.tamper import cut_the_tail

    cut_the_tail(copy)
    copy.save()
    records = [r for path in copy.files for line in path.read_text().splitlines() for r in loads_line(line)]
    last = max(r.start_ns for r in records if r.is_seal)
    keys = Keys({}, False)
    assert [
        f.kind for f in verify_stream(records, keys, now_ns=last + 10**9).findings if f.severity == "error"
    ] == []
    late = verify_stream(records, keys, now_ns=last + 121 * 10**9)
    assert [f.kind for f in late.findings if f.severity == "error"] == ["truncated_tail"]
    assert attribute is not None and public.exists()


def test_removing_the_closing_seal_is_detected_even_after_a_shutdown_flush(tmp_path: Path) -> None:
    recorded = make_recorded(tmp_path, heartbeat_interval=60)
    reference_scenario()
    open_decision = provtrace.decision("still open", trigger="t", actor="agent")
    open_decision.__enter__()  # still open at shutdown: flushed as UNFINISHED
    recorded.handle.shutdown(30)
    open_decision.__exit__(None, None, None)  # ends after shutdown (counted as lost), scope restored
    lines = [
        line for path in (tmp_path / "archive").glob("*.jsonl") for line in path.read_text().splitlines()
    ]
    records = [r for line in lines for r in loads_line(line)]
    seals = sorted((r for r in records if r.is_seal), key=lambda r: r.attr_int(c.SEAL_SEQ))
    assert [s.attr_str(c.SEAL_REASON) for s in seals][-2:] == [c.SEAL_REASON_SHUTDOWN, c.SEAL_REASON_CLOSE]
    later = seals[-1].start_ns + 10**12
    assert verify_stream(records, Keys({}, False), now_ns=later).ok
    without_close = [r for r in records if r.trace_id != seals[-1].trace_id]
    report = verify_stream(without_close, Keys({}, False), now_ns=later)
    assert [f.kind for f in report.findings if f.severity == "error"] == ["truncated_tail"]
