"""The OTLP sink over TLS against a stand-in receiver on loopback with a CA made by the test:
trust only in the configured CA, mutual TLS, and a refused TLS identity or credentials reported
as a configuration error that keeps the evidence (never as a segment to set aside). The same
against the real collector is tests/integration/test_secure_collector.py."""

from __future__ import annotations

import http.server
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

import provtrace
from provtrace.cli.main import main as provtrace_cli
from provtrace.config import build_settings
from provtrace.errors import ConfigurationError
from provtrace.export.otlp import otlp_sink, tls_context
from provtrace.export.sink import PermanentSinkError, SinkAuthError
from provtrace.otlpjson import dumps_line
from provtrace.testing import wait_for
from provtrace.testing.tls import Identity, TestCA
from tests.unit.test_otlp_sink import Collector, Handler, records

TOKEN = "tls-unit-token-6f1d"  # a canary: must never leave the wire


class Receiver:
    """A TLS stand-in collector; ``client_ca`` set: it requires a client certificate."""

    def __init__(self, server_identity: Identity, client_ca: Path | None, *, tls: bool = True) -> None:
        self.state = Collector()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(server_identity.certificate, server_identity.key)
        if client_ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(client_ca)
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.collector = self.state  # type: ignore[attr-defined]
        if tls:
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self.server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=30)


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return TestCA.create(tmp_path / "pki")


@pytest.fixture
def receiver(ca: TestCA) -> Iterator[Receiver]:
    server = Receiver(ca.issue("collector", server=True), client_ca=None)
    yield server
    server.close()


@pytest.fixture
def mtls_receiver(ca: TestCA) -> Iterator[Receiver]:
    server = Receiver(ca.issue("collector", server=True), client_ca=ca.certificate)
    yield server
    server.close()


def line() -> str:
    return dumps_line(records("t", 2))


def test_spans_arrive_over_tls_trusting_only_the_configured_ca(receiver: Receiver, ca: TestCA) -> None:
    sink = otlp_sink(receiver.url, {"Authorization": f"Bearer {TOKEN}"}, (ca.certificate, None, None))
    sink.send([line()])
    sink.close()
    [request] = receiver.state.requests
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_a_collector_certificate_no_configured_ca_vouches_for_is_a_refusal(receiver: Receiver) -> None:
    sink = otlp_sink(receiver.url, {"Authorization": f"Bearer {TOKEN}"})  # the system trust store
    with pytest.raises(SinkAuthError, match="TLS certificate is not trusted") as caught:
        sink.send([line()])
    sink.close()
    assert not isinstance(caught.value, PermanentSinkError)
    assert TOKEN not in str(caught.value)
    assert receiver.state.requests == []


def test_mutual_tls_needs_a_client_certificate_the_collector_accepts(
    mtls_receiver: Receiver, ca: TestCA
) -> None:
    without = otlp_sink(mtls_receiver.url, {}, (ca.certificate, None, None))
    with pytest.raises(SinkAuthError, match="client certificate"):
        without.send([line()])
    without.close()
    client = ca.issue("agent-1", server=False)
    sink = otlp_sink(mtls_receiver.url, {}, (ca.certificate, client.certificate, client.key))
    sink.send([line()])
    sink.close()
    assert len(mtls_receiver.state.requests) == 1


def test_an_endpoint_that_does_not_speak_tls_is_a_refusal(ca: TestCA) -> None:
    plain = Receiver(ca.issue("collector", server=True), client_ca=None, tls=False)
    try:
        sink = otlp_sink(plain.url, {"Authorization": f"Bearer {TOKEN}"}, (ca.certificate, None, None))
        with pytest.raises(SinkAuthError, match="speaks TLS") as caught:
            sink.send([line()])
        sink.close()
        assert TOKEN not in str(caught.value)
    finally:
        plain.close()


def test_unusable_tls_files_are_configuration_errors(tmp_path: Path, ca: TestCA) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(ConfigurationError, match="CA certificate"):
        tls_context(str(garbage))
    with pytest.raises(ConfigurationError, match="client certificate"):
        tls_context(str(ca.certificate), str(garbage))
    with pytest.raises(ConfigurationError, match="without a client certificate"):
        tls_context(str(ca.certificate), None, str(ca.key))


def test_the_standard_environment_variables_configure_tls_and_headers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ca: TestCA
) -> None:
    client = ca.issue("agent-1", server=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "https://127.0.0.1:4318")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", str(tmp_path / "elsewhere.crt"))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", str(ca.certificate))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", str(client.certificate))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_CLIENT_KEY", str(client.key))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20wrong")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", f"Authorization=Bearer%20{TOKEN}, X-Tenant=blue")
    settings, _ = build_settings()
    assert settings.endpoint == "https://127.0.0.1:4318/v1/traces"
    assert settings.tls_files == (ca.certificate, client.certificate, client.key)
    assert dict(settings.headers) == {"Authorization": f"Bearer {TOKEN}", "X-Tenant": "blue"}


def test_configure_keywords_win_over_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ca: TestCA
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", str(tmp_path / "missing.crt"))
    settings, _ = build_settings(endpoint="https://127.0.0.1:4318", certificate_file=ca.certificate)
    assert settings.tls_files == (ca.certificate, None, None)


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"OTEL_EXPORTER_OTLP_HEADERS": f"Authorization=Bearer {TOKEN},{TOKEN}"}, "entry 2 is not key=value"),
        ({"OTEL_EXPORTER_OTLP_CERTIFICATE": "/nonexistent/ca.crt"}, "OTEL_EXPORTER_OTLP_CERTIFICATE: "),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, "not https://"),
    ],
)
def test_tls_and_header_mistakes_are_refused_without_showing_a_value(
    monkeypatch: pytest.MonkeyPatch, ca: TestCA, variables: dict[str, str], message: str
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "https://127.0.0.1:4318")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", str(ca.certificate))
    for name, value in variables.items():
        if name == "OTEL_EXPORTER_OTLP_CERTIFICATE":
            monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE")
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=message) as caught:
        build_settings()
    assert TOKEN not in str(caught.value)


def test_refused_credentials_keep_the_evidence_and_degrade_health(
    tmp_path: Path, receiver: Receiver, ca: TestCA, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.state.answers.extend([(401, {}, b'{"code":16,"message":"Unauthenticated"}')] * 5)
    handle = provtrace.configure(
        service_name="tls-unit",
        endpoint=receiver.url,
        headers={"Authorization": f"Bearer {TOKEN}"},
        certificate_file=ca.certificate,
        spool_dir=tmp_path / "spool",
        quarantine_dir=tmp_path / "quarantine",
        completeness="off",
    )
    try:
        with handle.tracer.start_as_current_span("step"):
            pass
        wait_for("the 401 to be counted", lambda: handle.counters["delivery_auth_failures"] or None)
        health = handle.health()
        assert not health.ok
        assert any("HTTP 401" in problem and "credentials" in problem for problem in health.problems)
        assert handle.counters["spool_pending_bytes"] > 0
        assert handle.counters["spans_lost"] == 0
        assert any(record.levelname == "ERROR" and "401" in record.getMessage() for record in caplog.records)
        assert TOKEN not in caplog.text
        assert TOKEN not in " ".join(health.problems)
    finally:
        handle.shutdown(timeout_s=0.5)


def test_a_header_separator_mistake_never_shows_the_credential(monkeypatch: pytest.MonkeyPatch) -> None:
    """`Authorization:Bearer T=` (':' for '='): what stands before the '=' holds the token."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "https://127.0.0.1:4318")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"Authorization:Bearer {TOKEN}=")
    settings, _ = build_settings()
    with pytest.raises(ConfigurationError, match="header 1 has a name that is not a valid") as caught:
        otlp_sink(settings.endpoint or "", dict(settings.headers))
    assert TOKEN not in str(caught.value)


def test_doctor_shows_the_endpoint_without_its_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PROVTRACE_HOME", str(tmp_path))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"https://agent:{TOKEN}@127.0.0.1:9")
    assert provtrace_cli(["doctor"]) == 1
    out = capsys.readouterr()
    assert "collector https://127.0.0.1:9/v1/traces" in out.out
    assert TOKEN not in out.out + out.err


def test_an_encrypted_client_key_is_refused_at_configure_not_prompted_for(tmp_path: Path, ca: TestCA) -> None:
    client = ca.issue("agent-1", server=False)
    key = serialization.load_pem_private_key(client.key.read_bytes(), password=None)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    with pytest.raises(ConfigurationError, match="is encrypted"):
        tls_context(str(ca.certificate), str(client.certificate), str(encrypted))


def test_an_endpoint_host_name_that_cannot_be_encoded_is_a_configuration_error() -> None:
    for endpoint in ("https://a..b:4318/v1/traces", f"https://{'x' * 64}.example:4318/v1/traces"):
        with pytest.raises(ConfigurationError, match="empty or over-long label"):
            otlp_sink(endpoint, {})


def test_credentials_never_go_in_clear_beyond_this_host() -> None:
    with pytest.raises(ConfigurationError, match="would travel in clear") as caught:
        otlp_sink("http://collector.example:4318/v1/traces", {"Authorization": f"Bearer {TOKEN}"})
    assert TOKEN not in str(caught.value)
    otlp_sink("http://collector.example:4318/v1/traces", {"X-Tenant": "blue"}).close()  # not a credential
    otlp_sink("http://127.0.0.1:4318/v1/traces", {"Authorization": f"Bearer {TOKEN}"}).close()  # loopback
