"""The investigator's CLI: outputs, exit codes, and one-line errors for bad input."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from provtrace.cli.main import main as cli
from provtrace.integrity import write_key_pair
from tests.conftest import make_recorded
from tests.scenario import reference_scenario
from tests.tamper import Archive, change_attribute


@pytest.fixture
def archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str, str]:
    """A signed archive of one complete and one quarantined decision; its public key is the
    trusted one ($PROVTRACE_PUBLIC_KEY) for the commands run in the test."""
    write_key_pair(tmp_path / "agent.key", tmp_path / "agent.pub")
    monkeypatch.setenv("PROVTRACE_PUBLIC_KEY", str(tmp_path / "agent.pub"))
    recorded = make_recorded(tmp_path, signing_key=tmp_path / "agent.key")
    try:
        complete = reference_scenario()["decision"].trace_id
        incomplete = reference_scenario(approve=False)["decision"].trace_id
    finally:
        recorded.handle.shutdown(30)
    return tmp_path / "archive", complete, incomplete


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provtrace.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize("fmt", ["text", "markdown", "json", "html"])
def test_reconstruct_formats(
    archive: tuple[Path, str, str], fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    directory, complete, _ = archive
    assert cli(["reconstruct", complete, "--archive", str(directory), "--format", fmt]) == 0
    out = capsys.readouterr().out
    if fmt == "json":
        chain = json.loads(out)
        assert chain["completeness"] == "complete"
        assert [s["step"] for s in chain["steps"]] == [
            "llm_call",
            "tool_call",
            "secret_fetch",
            "policy_check",
            "approval",
            "action",
            "verification",
        ]
        action = next(s for s in chain["steps"] if s["step"] == "action")
        assert {(link["link_type"], link["target_index"]) for link in action["links"]} == {
            ("authorized_by", 4),
            ("approved_by", 5),
            ("used_secret", 3),
            ("triggered_by", 1),
        }
    else:
        assert "firewall.rule.open on sg-123/rule-9" in out
        assert "kv/fw-api-token" in out
        assert "alice@example.com" in out
    if fmt == "html":
        assert out.startswith("<!doctype html>")


def test_reconstruct_of_an_incomplete_trace_exits_1_and_names_the_violation(
    archive: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    directory, _, incomplete = archive
    assert cli(["reconstruct", incomplete, "--archive", str(directory)]) == 1
    out = capsys.readouterr().out
    assert "LINK-APPROVAL" in out
    assert "EVIDENCE   INCOMPLETE" in out


def test_find_by_target_nhi_secret_action_and_time(
    archive: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    directory, complete, incomplete = archive
    base = ["find", "--archive", str(directory), "--format", "json"]

    def found(*criteria: str) -> list[str]:
        assert cli([*base, *criteria]) in (0, 1)
        return [row["trace_id"] for row in json.loads(capsys.readouterr().out)["decisions"]]

    assert found("--target", "sg-123/rule-9") == [complete]
    assert found("--nhi", "svc-fw", "--secret-ref", "kv/fw-api-token", "--since", "2000-01-01T00:00Z") == [
        complete
    ]
    assert found("--action-type", "firewall.rule.open", "--until", "2000-01-01T00:00Z") == []
    assert found("--policy", "fw-change", "--approver", "alice@example.com", "--outcome", "success") == [
        complete
    ]
    assert found("--approver", "bob@example.com") == []
    assert found("--outcome", "refused") == []
    assert found("--target", "sg-999/rule-1") == []
    # quarantined: its steps are not in the archive, only its violation record
    assert found() == [incomplete, complete]


def test_find_prints_one_line_per_decision_and_how_many_more_matched(
    archive: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    directory, complete, incomplete = archive
    assert cli(["find", "--archive", str(directory), "--limit", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{incomplete}  ")
    assert "held in quarantine at the source, evidence incomplete" in lines[0]
    assert (
        lines[1] == f"1 decision(s) in 1 trace(s); 1 more matched beyond --limit 1; from archive {directory}"
    )
    assert cli(["find", "--archive", str(directory), "--target", "sg-123/rule-9"]) == 0
    row, summary = capsys.readouterr().out.splitlines()
    assert row.split()[0] == complete
    assert row.split()[2:5] == ["firewall.rule.open", "sg-123/rule-9", "success,"]
    assert row.endswith("success, evidence complete  (contain INC-4711)")
    assert summary.endswith("no more matched; from archive " + str(directory))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["reconstruct", "not-a-trace", "--archive", "."], "is not a trace id"),
        (
            ["reconstruct", "0" * 32, "--archive", "/nonexistent"],
            "archive directory /nonexistent does not exist",
        ),
        (["verify", "--stream", "--jaeger", "http://127.0.0.1:1"], "verify --stream reads the archive"),
        (["verify", "0" * 32, "--jaeger", "ftp://x"], "needs an http(s) URL"),
        (
            ["verify", "0" * 32, "--archive", ".", "--public-key", "/nonexistent.pub"],
            "cannot read public key",
        ),
        (["find", "--since", "yesterday"], "is not an ISO 8601 time"),
        (["quarantine", "show", "q-bad"], "is not a quarantine id"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_an_unreadable_archive_line_is_a_finding_and_the_rest_is_still_read(
    archive: tuple[Path, str, str], tmp_path: Path
) -> None:
    directory, complete, _ = archive
    (directory / "zz-torn.jsonl").write_text('{"resourceSpans": []}\n{not json\n')
    result = run_cli("verify", "--stream", "--archive", str(directory))
    assert result.returncode == 1
    assert (
        f"ERROR unreadable_line: {directory / 'zz-torn.jsonl'}:2: not OTLP/JSON trace data" in result.stdout
    )
    shown = run_cli("reconstruct", complete, "--archive", str(directory))
    assert shown.returncode == 1  # the unreadable line might have held part of this trace
    assert f"warning: skipped {directory / 'zz-torn.jsonl'}:2" in shown.stderr
    assert "INTEGRITY  FAILED" in shown.stdout
    assert "unreadable_line" in shown.stdout
    assert "EVIDENCE   COMPLETE" in shown.stdout


def test_unreachable_jaeger_is_an_input_error(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run_cli("reconstruct", "0" * 32, "--jaeger", f"http://127.0.0.1:{port}")
    assert result.returncode == 2
    assert f"cannot reach Jaeger at http://127.0.0.1:{port}" in result.stderr


def test_doctor_reports_settings_and_fails_on_a_bad_one(tmp_path: Path) -> None:
    env = {"PROVTRACE_HOME": str(tmp_path), "OTEL_EXPORTER_OTLP_ENDPOINT": ""}
    result = run_cli("doctor", env=env)
    assert result.returncode == 0, result.stdout
    assert f"ok    archive directory {tmp_path / 'archive'}" in result.stdout
    assert "signing key: none: seals are chained but unsigned" in result.stdout
    bad = run_cli("doctor", env={**env, "PROVTRACE_COMPLETENESS": "strict"})
    assert bad.returncode == 1
    assert "FAIL  settings: completeness must be one of enforce, annotate, off" in bad.stdout


def test_reconstruct_of_an_altered_archive_exits_1_naming_the_finding(
    archive: tuple[Path, str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory, complete, _ = archive
    copy = Archive(directory, tmp_path / "altered")
    span_id = change_attribute(copy)  # the action's target
    copy.save()
    assert cli(["reconstruct", complete, "--archive", str(copy.root)]) == 1
    out = capsys.readouterr().out
    assert "INTEGRITY  FAILED" in out
    assert f"ERROR altered_span: span {span_id}" in out
    assert cli(["reconstruct", complete, "--archive", str(directory)]) == 0
    assert "INTEGRITY  VERIFIED" in capsys.readouterr().out
    assert cli(["reconstruct", complete, "--archive", str(copy.root), "--no-verify"]) == 0
    assert "INTEGRITY  NOT CHECKED" in capsys.readouterr().out


def test_reconstruct_without_a_trusted_key_says_signatures_were_not_checked(
    archive: tuple[Path, str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    directory, complete, _ = archive
    monkeypatch.delenv("PROVTRACE_PUBLIC_KEY")
    assert cli(["reconstruct", complete, "--archive", str(directory)]) == 1
    out = capsys.readouterr().out
    assert "INTEGRITY  NOT VERIFIED" in out
    assert "signatures_unchecked" in out
