"""The real collector with collector-config/otelcol-secure.yaml over otelcol.yaml: OTLP/HTTP over
TLS with mutual TLS and a bearer token, certificates made by the test's own CA. Evidence arrives
with the right token; a wrong token, an untrusted collector certificate or a missing client
certificate is refused, reported, and keeps the evidence in the spool; the token appears in no
file, log, error, span or doctor output."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import provtrace
from provtrace import conventions as c
from provtrace.export.otlp import otlp_sink
from provtrace.export.sink import SinkAuthError
from provtrace.testing import CanaryScan, archived, wait_for, wait_for_spans
from provtrace.testing.stack import Checkout, Ports, Stack
from provtrace.testing.tls import Identity, TestCA
from tests.integration.stack import REPO
from tests.scenario import reference_scenario

TOKEN = "pt-canary-token-3b9e1f77"  # the canary: accepted by the collector, never written anywhere
WRONG = "pt-wrong-token-c0ffee42"


@dataclasses.dataclass(frozen=True)
class SecureStack:
    stack: Stack
    ca: TestCA
    client: Identity

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.stack.ports.otlp_http}"

    def agent_environment(self, token: str) -> dict[str, str]:
        """The standard OTLP exporter variables a deployment sets."""
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.endpoint,
            "OTEL_EXPORTER_OTLP_CERTIFICATE": str(self.ca.certificate),
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": str(self.client.certificate),
            "OTEL_EXPORTER_OTLP_CLIENT_KEY": str(self.client.key),
            "OTEL_EXPORTER_OTLP_HEADERS": f"Authorization=Bearer%20{token}",
        }


@pytest.fixture(scope="module")
def secure(stack_checkout: Checkout, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureStack]:
    """The collector alone (its archive is what is checked), TLS with client certificates
    required, one accepted token."""
    root = tmp_path_factory.mktemp("secure")
    ca = TestCA.create(root / "pki")
    server = ca.issue("collector", server=True)
    tokens = root / "tokens"
    tokens.write_text(f"{TOKEN} the agents' token\n")
    stack = Stack(
        root / "stack",
        Ports.free(),
        checkout=stack_checkout,
        collector_overlays=[REPO / "collector-config" / "otelcol-secure.yaml"],
        environment={
            "PROVTRACE_OTLP_TLS_CERT_FILE": str(server.certificate),
            "PROVTRACE_OTLP_TLS_KEY_FILE": str(server.key),
            "PROVTRACE_OTLP_CLIENT_CA_FILE": str(ca.certificate),
            "PROVTRACE_OTLP_TOKEN_FILE": str(tokens),
        },
        build=False,
    )
    stack.start_collector(timeout=120)
    try:
        yield SecureStack(stack, ca, ca.issue("agent-1", server=False))
    finally:
        stack.stop()


def configure(
    secure: SecureStack, home: Path, monkeypatch: pytest.MonkeyPatch, token: str
) -> provtrace.Provtrace:
    for name, value in secure.agent_environment(token).items():
        monkeypatch.setenv(name, value)
    return provtrace.configure(
        service_name="secure-agent",
        spool_dir=home / "spool",
        quarantine_dir=home / "quarantine",
        heartbeat_interval=3600,
    )


def doctor(environment: dict[str, str], home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provtrace.cli", "doctor"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **environment, "PROVTRACE_HOME": str(home)},
    )


def test_evidence_arrives_over_mutual_tls_with_the_bearer_token(
    secure: SecureStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, canaries: CanaryScan
) -> None:
    handle = configure(secure, tmp_path / "agent", monkeypatch, TOKEN)
    try:
        trace_id = reference_scenario()["decision"].trace_id
        assert handle.force_flush(timeout_s=60)
        assert handle.health().ok
        assert handle.counters["delivery_auth_failures"] == 0
    finally:
        assert handle.shutdown(timeout_s=60)
    arrived = wait_for_spans(lambda: archived(secure.stack, trace_id), 9, "the decision in the archive")
    assert c.SEAL_SPAN_NAME in {record.name for record in arrived}
    checked = doctor(secure.agent_environment(TOKEN), tmp_path / "doctor")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "ok    collector https://127.0.0.1" in checked.stdout
    assert "headers Authorization" in checked.stdout
    canaries.watch(tmp_path, secure.stack.dir)
    canaries.add_text(checked.stdout + checked.stderr)
    assert canaries.leaks(TOKEN) == []


def test_a_wrong_token_is_refused_reported_and_the_evidence_kept(
    secure: SecureStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, canaries: CanaryScan
) -> None:
    handle = configure(secure, tmp_path / "agent", monkeypatch, WRONG)
    try:
        trace_id = reference_scenario()["decision"].trace_id
        wait_for("the refusal to be counted", lambda: handle.counters["delivery_auth_failures"] or None)
        health = handle.health()
        assert not health.ok
        [problem] = [p for p in health.problems if "refused" in p]
        assert "HTTP 401" in problem
        assert handle.counters["spool_pending_bytes"] > 0
        assert handle.counters["spans_lost"] == 0
        assert archived(secure.stack, trace_id) == []
        checked = doctor(secure.agent_environment(WRONG), tmp_path / "doctor")
        assert checked.returncode == 1
        assert "FAIL  collector https://127.0.0.1" in checked.stdout and "HTTP 401" in checked.stdout
    finally:
        assert not handle.shutdown(timeout_s=2)  # undelivered: the spool still holds the decision
    journals = sorted((tmp_path / "agent" / "spool").rglob("journal-*.jsonl"))
    assert any(trace_id in path.read_text() for path in journals)
    canaries.watch(tmp_path, secure.stack.dir)
    canaries.add_text(checked.stdout + checked.stderr)
    assert canaries.leaks(TOKEN, WRONG) == []


def test_an_untrusted_collector_or_a_missing_client_certificate_is_refused(
    secure: SecureStack, tmp_path: Path
) -> None:
    url = secure.endpoint + "/v1/traces"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    other_ca = TestCA.create(tmp_path / "other", name="another CA")
    untrusting = otlp_sink(url, headers, (other_ca.certificate, secure.client.certificate, secure.client.key))
    with pytest.raises(SinkAuthError, match="TLS certificate is not trusted"):
        untrusting.probe()
    untrusting.close()
    anonymous = otlp_sink(url, headers, (secure.ca.certificate, None, None))
    with pytest.raises(SinkAuthError, match="client certificate"):
        anonymous.probe()
    anonymous.close()
    accepted = otlp_sink(url, headers, (secure.ca.certificate, secure.client.certificate, secure.client.key))
    accepted.probe()
    accepted.close()
