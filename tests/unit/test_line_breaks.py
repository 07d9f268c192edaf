"""Line separators inside content: every JSON line provtrace writes has one line break, its last,
and readers split only on "\\n" (the Collector's file exporter writes U+2028 and U+0085 raw)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import provtrace
from provtrace import conventions as c
from provtrace.cli.main import main as cli
from provtrace.integrity import write_key_pair
from provtrace.otlpjson import dumps_line, encode_traces, loads_line
from provtrace.readers.archive import ArchiveSource
from tests.conftest import make_recorded

# Everything str.splitlines() splits on, besides "\n" and "\r".
BREAKS = "\u2028\u2029\u0085\x0b\x0c\x1c\x1d\x1e"
RESULT = f"page text{BREAKS}after the breaks\r\nand a CRLF"


def test_a_tool_result_with_line_separators_verifies_and_is_found_in_the_archive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_key_pair(tmp_path / "agent.key", tmp_path / "agent.pub")
    recorded = make_recorded(tmp_path, signing_key=tmp_path / "agent.key", capture_content=c.CAPTURE_FULL)
    try:
        with provtrace.decision(f"read{BREAKS}page", trigger="alert", actor="agent") as decision:
            with provtrace.tool_call("fetch_page") as tool:
                tool.record_input({"url": "https://example.test/"})
                tool.record_output({"text": RESULT})
    finally:
        assert recorded.handle.shutdown(30)
    archive = tmp_path / "archive"
    raw = b"".join(path.read_bytes() for path in archive.glob("*.jsonl"))
    for char in "\u2028\u2029\u0085":
        assert char.encode("utf-8") not in raw
    assert all(line.startswith(b'{"resourceSpans"') for line in raw.split(b"\n") if line)
    spans = ArchiveSource(archive).trace(decision.trace_id)
    (tool_span,) = [r for r in spans if r.step == c.STEP_TOOL_CALL]
    assert json.loads(str(tool_span.attributes[c.GEN_AI_TOOL_CALL_RESULT])) == {"text": RESULT}
    public = str(tmp_path / "agent.pub")
    assert cli(["verify", "--stream", "--archive", str(archive), "--public-key", public]) == 0, (
        capsys.readouterr()
    )
    assert cli(["verify", decision.trace_id, "--archive", str(archive), "--public-key", public]) == 0
    capsys.readouterr()
    assert cli(["reconstruct", decision.trace_id, "--archive", str(archive), "--format", "json"]) in (0, 1)
    steps = json.loads(capsys.readouterr().out)["steps"]
    assert [step["name"] for step in steps] == ["execute_tool fetch_page"]


def test_dumps_line_escapes_the_separators_json_leaves_raw() -> None:
    from provtrace.model import SpanRecord

    record = SpanRecord("ab" * 16, "cd" * 8, f"name{BREAKS}", 0, 1000, attributes={f"k{BREAKS}": RESULT})
    line = dumps_line([record])
    assert line.splitlines() == [line[:-1]]
    assert json.loads(line) == encode_traces([record])
    (decoded,) = loads_line(line)
    assert decoded == record


def test_the_reader_copes_with_separators_written_raw_as_the_collector_does(tmp_path: Path) -> None:
    from provtrace.model import SpanRecord

    records = [
        SpanRecord("ab" * 16, f"{i:016x}", f"span{BREAKS}{i}", 0, 1000, attributes={"text": RESULT})
        for i in (1, 2)
    ]
    raw_lines = [json.dumps(encode_traces([r]), ensure_ascii=False) + "\n" for r in records]
    assert "\u2028" in raw_lines[0] and "\u0085" in raw_lines[0]
    (tmp_path / "spans.jsonl").write_text("".join(raw_lines), encoding="utf-8")
    source = ArchiveSource(tmp_path)
    assert source.trace("ab" * 16) == records
    assert source.unreadable == []
    assert [number for _, number, _ in source.lines] == [1, 2]
