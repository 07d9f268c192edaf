"""provtrace export: the in-toto attestation checked by the in-toto reference bindings and
securesystemslib's DSSE verifier (not by provtrace's own code), PROV-JSON read by the W3C PROV
reference library, and verify --in-toto catching every way an attestation can be wrong."""

from __future__ import annotations

import base64
import json
import urllib.parse
from pathlib import Path

import pytest
from google.protobuf import json_format
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement
from prov.model import ProvActivity, ProvAgent, ProvDocument, ProvEntity
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey

from provtrace.cli.main import main as cli
from provtrace.integrity import load_public_key, write_key_pair
from provtrace.readers.archive import ArchiveSource
from provtrace.reconstruct import reconstruct
from tests.example_agent import ExampleRun
from tests.tamper import Archive, change_attribute


def export(run: ExampleRun, tmp_path: Path, fmt: str, archive: Path | None = None) -> tuple[int, Path]:
    out = tmp_path / f"export.{fmt}.json"
    code = cli(
        [
            "export",
            run.complete,
            "--format",
            fmt,
            "--archive",
            str(archive or run.archive),
            "--public-key",
            str(run.public_key),
            "--signing-key",
            str(run.private_key),
            "-o",
            str(out),
        ]
    )
    return code, out


def seal_digests(run: ExampleRun) -> set[str]:
    digests = set()
    for path in run.archive.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            for rs in json.loads(line)["resourceSpans"]:
                for ss in rs["scopeSpans"]:
                    for span in ss["spans"]:
                        attrs = {a["key"]: a["value"] for a in span.get("attributes", [])}
                        if span["name"] == "provenance.seal" and span["traceId"] == run.complete:
                            digests.add(attrs["provenance.seal.digest"]["stringValue"])
    return digests


def test_the_in_toto_export_is_a_statement_v1_in_a_dsse_envelope_the_reference_tools_accept(
    example_run: ExampleRun, tmp_path: Path
) -> None:
    code, path = export(example_run, tmp_path, "in-toto")
    assert code == 0
    data = json.loads(path.read_text())
    # DSSE: securesystemslib verifies the signature over PAE with the agent's public key.
    public = load_public_key(example_run.public_key)
    key_id = data["signatures"][0]["keyid"]
    key = SSlibKey.from_crypto(public, keyid=key_id)
    envelope = Envelope.from_dict(json.loads(path.read_text()))
    assert set(envelope.verify([key], 1)) == {key_id}
    assert envelope.payload_type == "application/vnd.in-toto+json"
    # The Statement: the in-toto attestation bindings parse it (unknown fields refused) and validate it.
    proto = json_format.Parse(envelope.payload.decode(), statement_pb2.Statement())
    Statement.copy_from_pb(proto).validate()
    statement = json.loads(envelope.payload)
    assert {s["digest"]["sha256"] for s in statement["subject"]} == seal_digests(example_run)
    assert statement["predicate"]["completeness"] == "complete"
    assert statement["predicate"]["integrity"] == "VERIFIED"
    action = statement["predicate"]["actions"][0]
    assert (action["type"], action["target"], action["outcome"]) == (
        "firewall.rule.open",
        "sg-123/rule-9",
        "success",
    )


def test_verify_in_toto_accepts_the_export_and_names_every_fault(
    example_run: ExampleRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, path = export(example_run, tmp_path, "in-toto")
    key = ["--public-key", str(example_run.public_key)]
    assert cli(["verify", "--in-toto", str(path), *key, "--archive", str(example_run.archive)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("VERIFIED: in-toto statement, 5 seal(s) of trace " + example_run.complete)
    assert "compared with archive" in out

    assert cli(["verify", "--in-toto", str(path)]) == 1  # no trusted key: nothing proves who signed
    assert "signatures_unchecked" in capsys.readouterr().out

    write_key_pair(tmp_path / "other.key", tmp_path / "other.pub")
    assert cli(["verify", "--in-toto", str(path), "--public-key", str(tmp_path / "other.pub")]) == 1
    assert "unknown_key" in capsys.readouterr().out

    data = json.loads(path.read_text())
    statement = json.loads(base64.b64decode(data["payload"]))
    statement["predicate"]["completeness"] = "complete, honestly"
    forged = tmp_path / "forged.json"
    forged.write_text(
        json.dumps({**data, "payload": base64.b64encode(json.dumps(statement).encode()).decode()})
    )
    assert cli(["verify", "--in-toto", str(forged), *key]) == 1
    assert "bad_signature" in capsys.readouterr().out

    altered = Archive(example_run.archive, tmp_path / "altered")
    change_attribute(altered)
    altered.save()
    assert cli(["verify", "--in-toto", str(path), *key, "--archive", str(altered.root)]) == 1
    assert "altered_span" in capsys.readouterr().out


def test_exporting_altered_evidence_signs_what_was_found_and_exits_1(
    example_run: ExampleRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    altered = Archive(example_run.archive, tmp_path / "altered")
    change_attribute(altered)
    altered.save()
    code, out = export(example_run, tmp_path, "in-toto", archive=altered.root)
    assert code == 1
    assert "integrity FAILED" in capsys.readouterr().err
    predicate = json.loads(base64.b64decode(json.loads(out.read_text())["payload"]))["predicate"]
    assert predicate["integrity"] == "FAILED" and "altered_span" in predicate["integrityFindings"]


def test_an_in_toto_export_needs_a_signing_key(
    example_run: ExampleRun, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROVTRACE_SIGNING_KEY", raising=False)
    assert (
        cli(["export", example_run.complete, "--format", "in-toto", "--archive", str(example_run.archive)])
        == 2
    )
    assert "an in-toto export is signed" in capsys.readouterr().err


def test_the_prov_export_is_read_by_the_w3c_prov_library_with_every_relation(
    example_run: ExampleRun, tmp_path: Path
) -> None:
    code, path = export(example_run, tmp_path, "prov")
    assert code == 0
    document = ProvDocument.deserialize(str(path), format="json")
    records = document.get_records()
    kinds = {type(r).__name__ for r in records}
    assert {
        "ProvActivity",
        "ProvAgent",
        "ProvEntity",
        "ProvUsage",
        "ProvGeneration",
        "ProvAssociation",
        "ProvDelegation",
        "ProvCommunication",
        "ProvStart",
        "ProvDerivation",
        "ProvSpecialization",
    } <= kinds
    activities = {str(r.identifier) for r in document.get_records(ProvActivity)}
    agents = {str(r.identifier) for r in document.get_records(ProvAgent)}
    entities = {str(r.identifier) for r in document.get_records(ProvEntity)}
    assert len(activities) == 13  # the decision, 9 steps and the server halves of 3 MCP calls
    chain = reconstruct(example_run.complete, ArchiveSource(example_run.archive).trace(example_run.complete))
    fetch = next(step for step in chain.steps if step.step == "secret_fetch")
    secret_nhi = "nhi:" + urllib.parse.quote(fetch.nhi, safe="-_.")  # as the secret store's client saw it
    assert {"agent:secops-agent", "nhi:svc-secops%40prod", secret_nhi, "agent:alice%40example.com"} <= agents
    assert "secret:kv%2Ffw-api-token" in entities
    # every relation names records the document declares (no dangling reference)
    declared = activities | agents | entities
    for record in records:
        if record.is_relation():
            for _, value in record.formal_attributes:
                assert value is None or str(value) in declared, record
    informed = [
        r for r in records if type(r).__name__ == "ProvCommunication" and "linkType" in str(r.attributes)
    ]
    link_types = {
        str(value) for r in informed for key, value in r.attributes if str(key) == "provtrace:linkType"
    }
    assert link_types == {
        "authorized_by",
        "approved_by",
        "used_secret",
        "triggered_by",
        "verifies",
        "serves_call",
    }
    # the round trip through the library's own serializer keeps every record
    again = ProvDocument.deserialize(content=document.serialize(format="json"), format="json")
    assert len(again.get_records()) == len(records)
