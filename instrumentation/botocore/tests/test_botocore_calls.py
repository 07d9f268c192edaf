"""Secrets Manager, SSM and STS through a real moto server: what is recorded, and what never is."""

from __future__ import annotations

import http.server
import io
import json
import logging
import secrets
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import pytest
from moto_fixture import Moto
from opentelemetry.trace import StatusCode
from provtrace_instrumentation_botocore import BotocoreInstrumentor, action_params, aws

import provtrace
from provtrace import conventions as c
from provtrace.instrumentation import redact
from provtrace.testing import Recorded, attrs


def everything(recorded: Recorded) -> bytes:
    """Every attribute of every span and every byte written to disk."""
    spans = json.dumps([attrs(s) for s in recorded.spans()], default=str).encode()
    return spans + recorded.files_bytes()


def test_a_client_made_before_instrumenting_is_covered(recorded: Recorded, moto: Moto) -> None:
    BotocoreInstrumentor().uninstrument()
    early = boto3.client("secretsmanager")
    BotocoreInstrumentor().instrument()
    fields = {"username": "svc-db-" + secrets.token_hex(4), "password": "pw-" + secrets.token_urlsafe(16)}
    created = early.create_secret(Name="prod/db-" + secrets.token_hex(4), SecretString=json.dumps(fields))
    with provtrace.decision("read", trigger="test", actor="agent"):
        answer = early.get_secret_value(SecretId=created["Name"])
    assert json.loads(answer["SecretString"]) == fields
    recorded.handle.force_flush(10)
    (fetch,) = recorded.steps(c.STEP_SECRET_FETCH)
    attributes = attrs(fetch)
    assert fetch.name == "secret_fetch aws.secretsmanager"
    assert attributes[c.SECRET_REF] == created["Name"]
    assert attributes[c.SECRET_ARN] == created["ARN"]
    assert attributes[c.SECRET_VERSION] == answer["VersionId"]
    assert attributes[c.SECRET_VERSION_STAGES] == ("AWSCURRENT",)
    assert attributes[c.SECRET_REQUEST_ID] == answer["ResponseMetadata"]["RequestId"]
    assert attributes[c.CLOUD_REGION] == "us-east-1"
    assert attributes[c.NHI_ID] == "arn:aws:sts::123456789012:user/moto"
    assert attributes[c.NHI_ACCESS_KEY_ID] == moto.access_key_id
    assert attributes[c.NHI_CREDENTIAL_SOURCE] == "env"
    for value in (answer["SecretString"], *fields.values(), moto.secret_access_key, moto.session_token):
        assert value.encode() not in everything(recorded)
    assert redact(f"pw={fields['password']}") == "pw=[REDACTED:secret]"  # each field is tainted


def test_the_caller_identity_is_looked_up_once_per_access_key(
    recorded: Recorded, moto: Moto, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []
    real = aws._get_caller_identity

    def counting(client: Any, frozen: Any) -> aws.Caller:
        asked.append(frozen.access_key)
        return real(client, frozen)

    monkeypatch.setattr(aws, "_get_caller_identity", counting)
    sm, ssm = boto3.client("secretsmanager"), boto3.client("ssm")
    name = "prod/once-" + secrets.token_hex(4)
    sm.create_secret(Name=name, SecretString="s-" + secrets.token_hex(8))
    with provtrace.decision("read", trigger="test", actor="agent"):
        for _ in range(3):
            sm.get_secret_value(SecretId=name)
        with pytest.raises(botocore.exceptions.ClientError):
            ssm.get_parameter(Name="/missing-" + secrets.token_hex(4), WithDecryption=True)
    assert asked == [moto.access_key_id]


def test_batches_record_each_secret_and_each_failure(recorded: Recorded, moto: Moto) -> None:
    sm, ssm = boto3.client("secretsmanager"), boto3.client("ssm")
    token = "tok-" + secrets.token_urlsafe(16)
    name = "prod/batch-" + secrets.token_hex(4)
    sm.create_secret(Name=name, SecretString=token)
    ssm.put_parameter(Name=f"/{name}/secure", Value="sec-" + secrets.token_hex(8), Type="SecureString")
    ssm.put_parameter(Name=f"/{name}/plain", Value="us-east-1", Type="String")
    with provtrace.decision("batch", trigger="test", actor="agent"):
        batch = sm.batch_get_secret_value(SecretIdList=[name, "prod/absent"])
        by_path = ssm.get_parameters_by_path(Path=f"/{name}", WithDecryption=True)
        named = ssm.get_parameters(Names=[f"/{name}/secure", f"/{name}/nope"], WithDecryption=True)
    recorded.handle.force_flush(10)
    fetched = {
        (attrs(s)[c.SECRET_REF], attrs(s).get(c.ERROR_TYPE)) for s in recorded.steps(c.STEP_SECRET_FETCH)
    }
    assert fetched == {
        (f"{name},prod/absent", None),
        (name, None),
        ("prod/absent", "ResourceNotFoundException"),
        (f"/{name}", None),
        (f"/{name}/secure", None),
        (f"/{name}/plain", None),
        (f"/{name}/secure,/{name}/nope", None),
        (f"/{name}/nope", "ParameterNotFound"),
    }
    secure = next(p["Value"] for p in named["Parameters"] if p["Name"].endswith("secure"))
    assert redact(secure) == "[REDACTED:secret]"
    assert redact("us-east-1") == "us-east-1"  # a plain String parameter is not a secret
    assert batch["SecretValues"][0]["SecretString"] == token
    assert len(by_path["Parameters"]) == 2
    written = everything(recorded)
    assert token.encode() not in written
    assert secure.encode() not in written


def test_assume_role_is_credential_issuance(
    recorded: Recorded, moto: Moto, monkeypatch: pytest.MonkeyPatch
) -> None:
    sts = boto3.client("sts")
    role = "arn:aws:iam::123456789012:role/fw-admin"
    with provtrace.decision("assume", trigger="test", actor="agent"):
        issued = sts.assume_role(RoleArn=role, RoleSessionName="secops-agent")
        credentials = issued["Credentials"]
        monkeypatch.setattr(aws, "_get_caller_identity", lambda *_: pytest.fail("issued keys are known"))
        assumed = boto3.client(
            "secretsmanager",
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )
        with pytest.raises(assumed.exceptions.ResourceNotFoundException):
            assumed.get_secret_value(SecretId="prod/none")
    recorded.handle.force_flush(10)
    issuance, denied = recorded.steps(c.STEP_SECRET_FETCH)
    attributes = attrs(issuance)
    assert attributes[c.SECRET_STORE] == "aws.sts"
    assert attributes[c.SECRET_REF] == role
    assert attributes[c.CREDENTIAL_METHOD] == "AssumeRole"
    assert attributes[c.CREDENTIAL_ROLE] == role
    assert attributes[c.CREDENTIAL_SESSION_NAME] == "secops-agent"
    assert attributes[c.CREDENTIAL_ACCESS_KEY_ID] == credentials["AccessKeyId"]
    assert attributes[c.CREDENTIAL_ARN] == issued["AssumedRoleUser"]["Arn"]
    assert attributes[c.CREDENTIAL_EXPIRES_AT] == credentials["Expiration"].isoformat()
    assert attributes[c.NHI_ID] == "arn:aws:sts::123456789012:user/moto"
    assert attrs(denied)[c.NHI_ID] == issued["AssumedRoleUser"]["Arn"]
    assert attrs(denied)[c.ERROR_TYPE] == "ResourceNotFoundException"
    assert denied.status.status_code == StatusCode.ERROR
    written = everything(recorded)
    assert credentials["SecretAccessKey"].encode() not in written
    assert credentials["SessionToken"].encode() not in written


class _Throttling(http.server.BaseHTTPRequestHandler):
    """Answers the first ``budget`` GetSecretValue requests with ThrottlingException, forwards
    everything else to moto."""

    budget = 0
    upstream = ""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        throttled = self.headers.get("X-Amz-Target", "").endswith(".GetSecretValue")
        if throttled and type(self).budget > 0:
            type(self).budget -= 1
            self._answer(400, b'{"__type":"ThrottlingException","message":"Rate exceeded"}', {})
            return
        request = urllib.request.Request(self.upstream + self.path, data=body, method="POST")  # noqa: S310 - moto
        for key, value in self.headers.items():
            if key.lower() not in ("host", "content-length"):
                request.add_header(key, value)
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback moto
            self._answer(response.status, response.read(), dict(response.headers))

    def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", headers.get("Content-Type", "application/x-amz-json-1.1"))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def throttling(moto: Moto) -> Iterator[type[_Throttling]]:
    handler = type("Throttling", (_Throttling,), {"upstream": moto.endpoint, "budget": 0})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.upstream = moto.endpoint
    handler.url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()


def test_throttling_and_retries(recorded: Recorded, moto: Moto, throttling: type[_Throttling]) -> None:
    name = "prod/throttled-" + secrets.token_hex(4)
    boto3.client("secretsmanager").create_secret(Name=name, SecretString="t-" + secrets.token_hex(8))
    retrying = botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 3})
    client = boto3.client("secretsmanager", endpoint_url=throttling.url, config=retrying)  # type: ignore[attr-defined]
    with provtrace.decision("throttled", trigger="test", actor="agent"):
        throttling.budget = 2
        client.get_secret_value(SecretId=name)  # two throttled attempts, then through
        throttling.budget = 3
        with pytest.raises(botocore.exceptions.ClientError) as raised:
            client.get_secret_value(SecretId=name)
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"
    recorded.handle.force_flush(10)
    retried, throttled = recorded.steps(c.STEP_SECRET_FETCH)
    assert attrs(retried)[c.SECRET_RETRIES] == 2
    assert retried.status.status_code != StatusCode.ERROR
    assert attrs(throttled)[c.ERROR_TYPE] == "ThrottlingException"
    assert attrs(throttled)[c.SECRET_RETRIES] == 2


def test_secret_changes_are_actions_with_versions(recorded: Recorded, moto: Moto) -> None:
    sm, ssm = boto3.client("secretsmanager"), boto3.client("ssm")
    name = "prod/rotating-" + secrets.token_hex(4)
    first = sm.create_secret(Name=name, SecretString="old-" + secrets.token_hex(8))
    new_value = "new-" + secrets.token_urlsafe(16)
    parameter_value = "param-" + secrets.token_urlsafe(16)
    request = {"SecretId": name, "SecretString": new_value}
    with provtrace.decision("write", trigger="test", actor="agent"):
        put = sm.put_secret_value(**request)
        read = sm.get_secret_value(SecretId=name)
        ssm.put_parameter(Name=f"/{name}", Value=parameter_value, Type="SecureString")
        ssm.put_parameter(Name=f"/{name}", Value=parameter_value + "2", Type="SecureString", Overwrite=True)
    recorded.handle.force_flush(10)
    write, first_param, second_param = recorded.steps(c.STEP_ACTION)
    attributes = attrs(write)
    assert write.name == "action secret.write"
    assert attributes[c.ACTION_TARGET] == name
    assert attributes[c.ACTION_PRIVILEGED] is True
    stores = (attributes[c.SECRET_STORE], attrs(first_param)[c.SECRET_STORE])
    assert stores == ("aws.secretsmanager", "aws.ssm")
    assert attributes[c.CHANGE_BEFORE_VERSION] == first["VersionId"]
    assert attributes[c.CHANGE_AFTER_VERSION] == put["VersionId"]
    assert attributes[c.ACTION_PARAMS_SHA256] == provtrace.digest(
        action_params("secretsmanager", "PutSecretValue", request)
    )
    (fetch,) = recorded.steps(c.STEP_SECRET_FETCH)
    assert attrs(fetch)[c.SECRET_VERSION] == read["VersionId"] == put["VersionId"]
    assert [link.context.span_id for link in fetch.links] == [write.context.span_id]
    assert (attrs(first_param)[c.CHANGE_AFTER_VERSION], c.CHANGE_BEFORE_VERSION in attrs(first_param)) == (
        "1",
        False,
    )
    assert (attrs(second_param)[c.CHANGE_BEFORE_VERSION], attrs(second_param)[c.CHANGE_AFTER_VERSION]) == (
        "1",
        "2",
    )
    written = everything(recorded)
    for value in (new_value, parameter_value):
        assert value.encode() not in written


def test_a_guarded_change_is_refused_before_it_is_sent(recorded: Recorded, moto: Moto) -> None:
    BotocoreInstrumentor().uninstrument()
    BotocoreInstrumentor().instrument(require=("policy", "approval"))
    sm = boto3.client("secretsmanager")
    name = "prod/guarded-" + secrets.token_hex(4)
    sm.create_secret(Name=name, SecretString="kept-" + secrets.token_hex(8))
    with (
        provtrace.decision("write", trigger="test", actor="agent"),
        pytest.raises(provtrace.ProvenanceViolation),
    ):
        sm.put_secret_value(SecretId=name, SecretString="never-" + secrets.token_hex(8))
    versions = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    assert len(versions) == 1  # nothing reached the store
    recorded.handle.force_flush(10)
    (refused,) = recorded.steps(c.STEP_ACTION)
    assert attrs(refused)[c.OUTCOME] == c.OUTCOME_REFUSED


def test_botocore_debug_logs_hold_no_secret_while_instrumented(recorded: Recorded, moto: Moto) -> None:
    sm, sts = boto3.client("secretsmanager"), boto3.client("sts")
    name = "prod/logged-" + secrets.token_hex(4)
    sm.create_secret(Name=name, SecretString="first-" + secrets.token_hex(8))

    def calls_logged() -> tuple[str, list[str]]:
        captured = io.StringIO()
        handler = logging.StreamHandler(captured)
        root = logging.getLogger()
        level = root.level
        root.addHandler(handler)
        root.setLevel(logging.DEBUG)
        try:
            with provtrace.decision("logged", trigger="test", actor="agent"):
                written = "w-" + secrets.token_urlsafe(16)
                sm.put_secret_value(SecretId=name, SecretString=written)
                read = sm.get_secret_value(SecretId=name)["SecretString"]
                issued = sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/r", RoleSessionName="logged")
        finally:
            root.removeHandler(handler)
            root.setLevel(level)
        credentials = issued["Credentials"]
        values = [
            written,
            read,
            credentials["SecretAccessKey"],
            credentials["SessionToken"],
            moto.session_token,
        ]
        return captured.getvalue(), values

    BotocoreInstrumentor().uninstrument()
    plain, values = calls_logged()
    assert all(value in plain for value in values)  # botocore itself prints them all at DEBUG
    BotocoreInstrumentor().instrument()
    scrubbed, values = calls_logged()
    assert "botocore.parsers" not in scrubbed or "withheld" in scrubbed
    assert [value for value in values if value in scrubbed] == []
