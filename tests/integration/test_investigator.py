"""The investigator's tools on evidence that went the real way: the example agent and its MCP
server (a subprocess) sending through the OpenTelemetry Collector into Jaeger and the archive.
Reconstruction reads the same chain from Jaeger (v3 and v1) and from the collector's archive,
find searches both, and an attestation exported from Jaeger verifies against the archive."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from provtrace.cli.main import main as cli
from provtrace.integrity import key_id_of, load_public_key
from provtrace.readers.archive import ArchiveSource
from provtrace.readers.jaeger import JaegerSource
from provtrace.testing.openbao import OpenBao
from provtrace.verify import Keys, verify_trace
from tests.example_agent import ExampleRun, normalise, run_example
from tests.integration.stack import stack_module
from tests.waiting import wait_for


def _verified(records: list, run: ExampleRun, trace_id: str) -> bool:
    key = load_public_key(run.public_key)
    report = verify_trace(trace_id, records, Keys({key_id_of(key): key}, given=True))
    return bool(records) and report.ok


@pytest.fixture(scope="module")
def shipped(
    evidence_stack: stack_module.Stack, tmp_path_factory: pytest.TempPathFactory, openbao: OpenBao
) -> ExampleRun:
    """The example agent run against the stack; returns once Jaeger and the archive hold every
    sealed span of both decisions (the collector forwards asynchronously)."""
    run = run_example(
        tmp_path_factory.mktemp("shipped"),
        openbao,
        env={"OTEL_EXPORTER_OTLP_ENDPOINT": evidence_stack.otlp_http_endpoint},
    )
    jaeger = JaegerSource(evidence_stack.jaeger_url)
    for trace_id in (run.complete, run.refused):
        wait_for(
            f"trace {trace_id} whole in Jaeger",
            lambda t=trace_id: True if _verified(jaeger.trace(t), run, t) else None,
        )
        wait_for(
            f"trace {trace_id} whole in the archive",
            lambda t=trace_id: (
                True if _verified(ArchiveSource(evidence_stack.archive_dir).trace(t), run, t) else None
            ),
        )
    return run


def without_source(text: str) -> str:
    """A report without its SOURCE line (and the line a long source wraps onto)."""
    return re.sub(r"^SOURCE .*\n(?:.+\n)*", "", text, flags=re.M)


def reconstruct(
    capsys: pytest.CaptureFixture[str], run: ExampleRun, trace_id: str, *source: str, fmt: str = "text"
) -> tuple[int, str]:
    code = cli(
        [
            "reconstruct",
            trace_id,
            *source,
            "--public-key",
            str(run.public_key),
            "--format",
            fmt,
            "--width",
            "100",
        ]
    )
    return code, capsys.readouterr().out


def test_the_reference_trace_reads_the_same_from_jaeger_and_the_archive(
    shipped: ExampleRun, evidence_stack: stack_module.Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    jaeger = ["--jaeger", evidence_stack.jaeger_url]
    archive = ["--archive", str(evidence_stack.archive_dir)]
    code, from_jaeger = reconstruct(capsys, shipped, shipped.complete, *jaeger)
    assert code == 0, from_jaeger
    assert from_jaeger.startswith("EVIDENCE   COMPLETE")
    assert "INTEGRITY  VERIFIED" in from_jaeger
    assert "user: Alert INC-4711: partner integration 10.0.0.0/24 cannot reach the API on 443." in from_jaeger
    assert "→ proposes tool call call_2 open_rule" in from_jaeger
    assert '"rules": []' in from_jaeger  # the MCP lookup's result
    assert (
        '+   "rules": [{"rule": "rule-9", "port": 443, "proto": "tcp", "cidr": "10.0.0.0/24"}]' in from_jaeger
    )
    assert from_jaeger.count("server side in firewall-mcp, actor firewall: same digests as the client") == 3
    code, from_archive = reconstruct(capsys, shipped, shipped.complete, *archive)
    assert code == 0
    a, b = (without_source(normalise(t, evidence_stack.archive_dir)) for t in (from_jaeger, from_archive))
    assert a == b
    code, from_v1 = reconstruct(capsys, shipped, shipped.complete, *jaeger, "--jaeger-api", "v1")
    assert code == 0, from_v1
    assert without_source(normalise(from_v1)) == a


def test_the_json_report_from_jaeger_holds_every_step_with_both_sides(
    shipped: ExampleRun, evidence_stack: stack_module.Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = reconstruct(
        capsys, shipped, shipped.refused, "--jaeger", evidence_stack.jaeger_url, fmt="json"
    )
    assert code == 0
    data = json.loads(out)
    assert [s["step"] for s in data["steps"]] == [
        "llm_call",
        "tool_call",
        "secret_fetch",
        "policy_check",
        "action",
    ]
    action = data["steps"][-1]
    assert action["facts"]["provenance.outcome"] == "refused"
    assert action["facts"]["provenance.guard.violations"] == ["LINK-APPROVAL"]
    assert data["steps"][1]["server"]["service"] == "firewall-mcp"


def found(capsys: pytest.CaptureFixture[str], source: list[str], *criteria: str) -> list[str]:
    assert cli(["find", *source, "--format", "json", "--limit", "50", *criteria]) in (0, 1)
    return [row["trace_id"] for row in json.loads(capsys.readouterr().out)["decisions"]]


def test_find_searches_jaeger_and_the_archive_by_every_criterion(
    shipped: ExampleRun, evidence_stack: stack_module.Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    jaeger = ["--jaeger", evidence_stack.jaeger_url, "--service", "secops-agent"]
    mine = {shipped.complete, shipped.refused}
    for source in (jaeger, ["--archive", str(evidence_stack.archive_dir)]):
        assert set(found(capsys, source, "--target", "sg-123/rule-9")) >= mine
        assert shipped.complete in found(
            capsys, source, "--approver", "alice@example.com", "--outcome", "success"
        )
        assert shipped.refused not in found(capsys, source, "--approver", "alice@example.com")
        assert shipped.refused in found(capsys, source, "--outcome", "refused", "--policy", "fw-change")
        assert (
            set(found(capsys, source, "--secret-ref", "kv/fw-api-token", "--nhi", "svc-secops@prod")) >= mine
        )
        assert not mine & set(found(capsys, source, "--until", "2000-01-01T00:00Z"))
    assert cli(["find", *jaeger, "--action-type", "firewall.rule.open", "--limit", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and re.search(r"; [1-9]\d* more matched beyond --limit 1", lines[1])


def test_an_attestation_exported_from_jaeger_verifies_against_the_archive(
    shipped: ExampleRun,
    evidence_stack: stack_module.Stack,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    envelope = tmp_path / "attestation.json"
    key = ["--public-key", str(shipped.public_key)]
    signing = ["--signing-key", str(shipped.private_key), "-o", str(envelope)]
    jaeger = ["--jaeger", evidence_stack.jaeger_url]
    assert cli(["export", shipped.complete, "--format", "in-toto", *jaeger, *key, *signing]) == 0
    archive = ["--archive", str(evidence_stack.archive_dir)]
    assert cli(["verify", "--in-toto", str(envelope), *key, *archive]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"VERIFIED: in-toto statement, 5 seal(s) of trace {shipped.complete}")
