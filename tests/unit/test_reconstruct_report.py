"""provtrace reconstruct over the evidence the example agent leaves: what each step saw and
changed, in causal order, an MCP call as one step with both sides, integrity beside completeness,
and golden files for the text and markdown reports (times, ids and digests normalised)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import jsonschema
import pytest

import provtrace
from provtrace.cli.main import main as cli
from tests.conftest import make_recorded
from tests.example_agent import ExampleRun, normalise
from tests.tamper import Archive, change_attribute

GOLDEN = Path(__file__).with_name("golden")
SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "reconstruct.schema.json"
UPDATE = os.environ.get("PROVTRACE_UPDATE_GOLDEN") == "1"


def reconstruct(run: ExampleRun, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = cli(["reconstruct", *args, "--archive", str(run.archive), "--public-key", str(run.public_key)])
    return code, capsys.readouterr().out


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} changed; PROVTRACE_UPDATE_GOLDEN=1 rewrites it"


@pytest.mark.parametrize(
    ("fmt", "golden"), [("text", "example-complete.txt"), ("markdown", "example-complete.md")]
)
def test_the_reference_reconstruction_matches_its_golden_file(
    example_run: ExampleRun, capsys: pytest.CaptureFixture[str], fmt: str, golden: str
) -> None:
    code, out = reconstruct(example_run, capsys, example_run.complete, "--format", fmt, "--width", "100")
    assert code == 0
    check_golden(golden, normalise(out, example_run.archive))


def test_the_refused_decision_matches_its_golden_file(
    example_run: ExampleRun, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = reconstruct(example_run, capsys, example_run.refused, "--width", "100")
    assert code == 0  # refused by the guard before it ran: complete evidence of a refusal
    check_golden("example-refused.txt", normalise(out, example_run.archive))


def test_the_text_report_shows_what_the_agent_saw_proposed_and_changed(
    example_run: ExampleRun, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out = reconstruct(example_run, capsys, example_run.complete)
    lines = out.splitlines()
    assert lines[0].startswith("EVIDENCE   COMPLETE")
    assert lines[1].startswith("INTEGRITY  VERIFIED")
    assert max(len(line) for line in lines) <= 100
    assert "user: Alert INC-4711: partner integration 10.0.0.0/24 cannot reach the API on 443." in out
    assert (
        '→ proposes tool call call_2 open_rule\n           {"sg": "sg-123", "rule": "rule-9", "port": 443'
        in out
    )
    assert '"token": "[REDACTED:credential]"' in out  # the argument the agent passed, as stored
    assert '-   "rules": []' in out
    assert '+   "rules": [{"rule": "rule-9", "port": 443, "proto": "tcp", "cidr": "10.0.0.0/24"}]' in out
    assert "detail: 443/tcp from 10.0.0.0/24 is open" in out
    assert "bound to the parameters of #6: digests equal" in out
    headers = [line for line in lines if re.match(r"\s*#\d+\s+\+\d", line)]
    # one header line per step; the MCP server's spans are sides of the client's steps
    assert [h.split()[2] for h in headers] == [
        "llm_call",
        "tool_call",
        "secret_fetch",
        "policy_check",
        "approval",
        "action",
        "tool_call",
        "verification",
        "tool_call",
    ]
    nested = [h for h in headers if h.startswith("  #")]
    assert [h.split()[0] for h in nested] == ["#7", "#9"]  # inside the action and the verification
    assert (
        sum("server side in firewall-mcp, actor firewall: same digests as the client" in x for x in lines)
        == 3
    )


def test_long_content_folds_and_full_or_one_step_shows_it_whole(
    example_run: ExampleRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recorded = make_recorded(tmp_path)
    try:
        with provtrace.decision("read the log", trigger="test", actor="agent") as decision:
            with provtrace.tool_call("read_log") as tool:
                tool.record_input({"file": "fw.log"})
                tool.record_output({"lines": [f"line {i:02}" for i in range(40)]})
    finally:
        recorded.handle.shutdown(30)
    base = ["reconstruct", decision.trace_id, "--archive", str(tmp_path / "archive"), "--no-verify"]
    assert cli(base) == 0
    folded = capsys.readouterr().out
    assert '"line 08",' in folded and '"line 09"' not in folded
    assert "… 33 more line(s): --full, or --step 1" in folded
    assert cli([*base, "--full"]) == 0
    whole = capsys.readouterr().out
    assert '"line 39"' in whole and "more line(s)" not in whole
    assert cli([*base, "--step", "1"]) == 0
    step = capsys.readouterr().out
    assert '"line 39"' in step
    assert 'gen_ai.tool.name = "read_log"' in step  # every recorded attribute of the step
    code, one = reconstruct(example_run, capsys, example_run.complete, "--step", "6")
    assert code == 0
    assert re.search(r"^#6 .* action ", one, re.M) and not re.search(r"^#5 ", one, re.M)
    assert cli([*base, "--step", "2"]) == 2
    assert "has no step #2" in capsys.readouterr().err


def test_json_is_whole_and_valid_against_the_published_schema(
    example_run: ExampleRun, capsys: pytest.CaptureFixture[str]
) -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    for trace_id in (example_run.complete, example_run.refused):
        _, out = reconstruct(example_run, capsys, trace_id, "--format", "json")
        data = json.loads(out)
        jsonschema.validate(data, schema)
    _, out = reconstruct(example_run, capsys, example_run.complete, "--format", "json")
    data = json.loads(out)
    assert data["verdict"] == {"completeness": "complete", "integrity": "VERIFIED", "ok": True}
    action = next(s for s in data["steps"] if s["step"] == "action")
    after = next(part for part in action["contents"] if part["label"] == "after")
    assert len(after["sha256"]) == 64
    assert after["json"]["rules"][0]["port"] == 443
    call = next(s for s in data["steps"] if s["parent_index"] == action["index"])
    assert call["server"]["service"] == "firewall-mcp" and call["server"]["same_content"] is True
    # a document that breaks the schema is refused by it (the schema is not a no-op)
    broken = {**data, "verdict": {"completeness": "complete"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_an_altered_archive_is_named_at_the_top_and_exits_1(
    example_run: ExampleRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = Archive(example_run.archive, tmp_path / "altered")
    span_id = change_attribute(copy)
    copy.save()
    code = cli(
        [
            "reconstruct",
            example_run.complete,
            "--archive",
            str(copy.root),
            "--public-key",
            str(example_run.public_key),
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("EVIDENCE   COMPLETE")
    assert lines[1].startswith("INTEGRITY  FAILED") and "altered_span" in lines[1]
    assert lines[2].strip().startswith(f"ERROR altered_span: span {span_id}")
    step = next(line for line in lines if re.match(r"#\d+\s+\+\d.* action ", line))
    assert step.endswith("✗ ALTERED_SPAN")


def test_with_no_source_the_configured_archive_is_read_and_named(
    example_run: ExampleRun, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROVTRACE_ARCHIVE_DIR", raising=False)
    monkeypatch.setenv("PROVTRACE_HOME", str(example_run.archive.parent))
    assert cli(["reconstruct", example_run.complete, "--public-key", str(example_run.public_key)]) == 0
    words = " ".join(capsys.readouterr().out.split())  # a long path wraps at 100 columns
    assert f"SOURCE archive {example_run.archive} (from $PROVTRACE_HOME)" in words
    monkeypatch.setenv("PROVTRACE_ARCHIVE_DIR", str(example_run.archive))
    assert cli(["find", "--target", "sg-123/rule-9"]) == 0
    assert f"from archive {example_run.archive} (from $PROVTRACE_ARCHIVE_DIR)" in capsys.readouterr().out
    monkeypatch.setenv("PROVTRACE_ARCHIVE_DIR", str(example_run.archive / "missing"))
    assert cli(["reconstruct", example_run.complete]) == 2
    assert "name the source with --jaeger URL or --archive DIR" in capsys.readouterr().err
