"""Reads and logins against a real OpenBao: which secret, which version, which identity, never the value."""

from __future__ import annotations

import json
import secrets
from typing import Any

import hvac
import pytest
from opentelemetry.trace import StatusCode, format_span_id
from vault_seed import AppRole, new_secret_id

import provtrace
from provtrace import conventions as c
from provtrace.instrumentation import redact
from provtrace.testing import OpenBao, Recorded


def attributes_text(recorded: Recorded) -> str:
    return json.dumps([dict(s.attributes or {}) for s in recorded.spans()], default=str)


def logged_in(openbao: OpenBao, approle: AppRole) -> tuple[hvac.Client, str]:
    """An agent client logged in with AppRole (the login is recorded); returns it and its secret_id."""
    secret_id = new_secret_id(openbao, approle)
    client = hvac.Client(url=openbao.url)
    client.auth.approle.login(role_id=approle.role_id, secret_id=secret_id)
    return client, secret_id


def seed(openbao: OpenBao, path: str, data: dict[str, Any], mount: str = "kv") -> None:
    if mount == "kv":
        openbao.request("POST", f"{mount}/data/{path}", {"data": data})
    else:
        openbao.request("POST", f"{mount}/{path}", data)


def test_kv_v2_read_is_a_fetch_joined_to_the_audit_log(
    recorded: Recorded, openbao: OpenBao, approle: AppRole
) -> None:
    value = "fwtok-" + secrets.token_urlsafe(16)
    seed(openbao, "agents/fw-api-token", {"token": value})
    with provtrace.decision("read", trigger="test", actor="agent"):
        client, _ = logged_in(openbao, approle)
        read = client.secrets.kv.v2.read_secret_version(
            path="agents/fw-api-token", mount_point="kv", raise_on_deleted_version=True
        )
    assert read["data"]["data"]["token"] == value  # the caller gets the value, unchanged
    recorded.handle.force_flush(10)
    login, fetch = recorded.steps(c.STEP_SECRET_FETCH)
    attributes = dict(fetch.attributes or {})
    assert attributes[c.SECRET_REF] == "kv/agents/fw-api-token"
    assert attributes[c.SECRET_STORE] == "vault"
    assert attributes[c.SECRET_ENGINE] == "kv-v2"
    assert attributes[c.SECRET_VERSION] == str(read["data"]["metadata"]["version"])
    assert attributes[c.SECRET_REQUEST_ID] == read["request_id"]
    assert attributes[c.NHI_ID] == "vault:approle/agent-x"
    assert attributes[c.NHI_ACCESSOR] == (login.attributes or {})[c.CREDENTIAL_ACCESSOR]
    assert "agent" in attributes[c.NHI_POLICIES]
    # Vault's audit log names the request id and, in the traceparent header, this very span.
    entries = [e for e in openbao.audit_entries() if e["request"].get("id") == read["request_id"]]
    assert entries
    traceparent = entries[0]["request"]["headers"]["traceparent"][0]
    assert traceparent.split("-")[2] == format_span_id(fetch.context.span_id)
    # The login seeded the identity: the token never had to look itself up.
    accessor = attributes[c.NHI_ACCESSOR]
    lookups = [e for e in openbao.audit_entries() if e["request"]["path"] == "auth/token/lookup-self"]
    assert all(e["auth"].get("accessor") != accessor for e in lookups)
    assert value.encode() not in recorded.files_bytes()
    assert value not in attributes_text(recorded)


def test_approle_login_is_credential_issuance_that_records_none_of_its_secrets(
    recorded: Recorded, openbao: OpenBao, approle: AppRole
) -> None:
    with provtrace.decision("login", trigger="test", actor="agent"):
        client, secret_id = logged_in(openbao, approle)
    token = client.token
    recorded.handle.force_flush(10)
    (login,) = recorded.steps(c.STEP_SECRET_FETCH)
    attributes = dict(login.attributes or {})
    assert login.name == "secret_fetch vault"
    assert attributes[c.SECRET_REF] == "auth/approle/login"
    assert attributes[c.SECRET_OPERATION] == "auth.login"
    assert attributes[c.CREDENTIAL_METHOD] == "approle"
    assert attributes[c.SECRET_MOUNT] == "approle"
    assert attributes[c.CREDENTIAL_ROLE] == "agent-x"
    assert attributes[c.NHI_ID] == "vault:approle/agent-x"
    assert attributes[c.CREDENTIAL_ACCESSOR]
    assert attributes[c.CREDENTIAL_ENTITY_ID]
    assert "agent" in attributes[c.CREDENTIAL_POLICIES]
    assert attributes[c.LEASE_DURATION] == 3600
    written = recorded.files_bytes()
    for credential in (token, secret_id, approle.role_id):
        assert credential not in attributes_text(recorded)
        assert credential.encode() not in written


def test_kv_v1_and_generic_reads(recorded: Recorded, openbao: OpenBao, approle: AppRole) -> None:
    value = "kv1-" + secrets.token_hex(12)
    seed(openbao, "agents/legacy", {"key": value}, mount="kv1")
    with provtrace.decision("read", trigger="test", actor="agent"):
        client, _ = logged_in(openbao, approle)
        assert (
            client.secrets.kv.v1.read_secret(path="agents/legacy", mount_point="kv1")["data"]["key"] == value
        )
        assert client.read("kv1/agents/legacy")["data"]["key"] == value
        assert client.read("kv1/agents/missing") is None  # hvac turns the 404 into None
    recorded.handle.force_flush(10)
    _, v1, generic, missing = recorded.steps(c.STEP_SECRET_FETCH)
    assert (v1.attributes or {})[c.SECRET_REF] == "kv1/agents/legacy"
    assert (v1.attributes or {})[c.SECRET_ENGINE] == "kv-v1"
    assert (generic.attributes or {})[c.SECRET_REF] == "kv1/agents/legacy"
    assert (generic.attributes or {})[c.SECRET_OPERATION] == "read"
    assert (missing.attributes or {})[c.ERROR_TYPE] == "InvalidPath"
    assert missing.status.status_code == StatusCode.ERROR
    assert value.encode() not in recorded.files_bytes()


def test_the_token_identity_is_looked_up_once_per_token(recorded: Recorded, openbao: OpenBao) -> None:
    seed(openbao, "agents/once", {"k": "v-" + secrets.token_hex(8)})
    # Made without hvac: a token created through the instrumentation is known from its creation.
    created: Any = openbao.request("POST", "auth/token/create", {"policies": ["agent"], "ttl": "10m"})
    child = created["auth"]["client_token"]

    def lookups() -> int:
        entries = openbao.audit_entries()  # one "request" and one "response" entry per request
        return sum(
            1 for e in entries if e["type"] == "request" and e["request"]["path"] == "auth/token/lookup-self"
        )

    before = lookups()
    with provtrace.decision("read", trigger="test", actor="agent"):
        agent = hvac.Client(url=openbao.url, token=child)
        for _ in range(3):
            agent.secrets.kv.v2.read_secret_version(
                path="agents/once", mount_point="kv", raise_on_deleted_version=True
            )
    assert lookups() == before + 1
    recorded.handle.force_flush(10)
    reads = [
        s
        for s in recorded.steps(c.STEP_SECRET_FETCH)
        if (s.attributes or {})[c.SECRET_REF] == "kv/agents/once"
    ]
    assert len(reads) == 3
    assert {(s.attributes or {})[c.NHI_AUTH_PATH] for s in reads} == {"auth/token/create"}
    assert child not in attributes_text(recorded)
    assert child.encode() not in recorded.files_bytes()


def test_denied_missing_and_throttled_reads_are_error_steps(
    recorded: Recorded, openbao: OpenBao, approle: AppRole
) -> None:
    seed(openbao, "other/x", {"k": "v"})
    seed(openbao, "bucket", {"k": "v"}, mount="throttled")
    openbao.request(
        "POST", "sys/quotas/rate-limit/one-a-minute", {"rate": 1, "interval": "60s", "path": "throttled/"}
    )
    raised: list[BaseException] = []
    with provtrace.decision("errors", trigger="test", actor="agent"):
        client, _ = logged_in(openbao, approle)
        calls = (
            lambda: client.secrets.kv.v2.read_secret_version(
                path="other/x", mount_point="kv", raise_on_deleted_version=True
            ),
            lambda: client.secrets.kv.v2.read_secret_version(
                path="agents/none", mount_point="kv", raise_on_deleted_version=True
            ),
            lambda: client.secrets.kv.v1.read_secret(path="bucket", mount_point="throttled"),
            lambda: client.secrets.kv.v1.read_secret(path="bucket", mount_point="throttled"),
        )
        for call in calls:
            try:
                call()
            except hvac.exceptions.VaultError as exc:
                raised.append(exc)
    assert [type(e) for e in raised] == [
        hvac.exceptions.Forbidden,
        hvac.exceptions.InvalidPath,
        hvac.exceptions.RateLimitExceeded,
    ]
    assert "permission denied" in str(raised[0])
    recorded.handle.force_flush(10)
    errors = {
        (s.attributes or {})[c.SECRET_REF]: (s.attributes or {}).get(c.ERROR_TYPE)
        for s in recorded.steps(c.STEP_SECRET_FETCH)
        if s.status.status_code == StatusCode.ERROR
    }
    assert errors == {
        "kv/other/x": "Forbidden",
        "kv/agents/none": "InvalidPath",
        "throttled/bucket": "RateLimitExceeded",
    }


def test_unwrapping_a_wrapped_secret(recorded: Recorded, openbao: OpenBao) -> None:
    value = "wrapped-" + secrets.token_hex(12)
    seed(openbao, "agents/wrapped", {"token": value})
    root = hvac.Client(url=openbao.url, token=openbao.root_token)
    with provtrace.decision("unwrap", trigger="test", actor="agent"):
        wrapped = root.read("kv/data/agents/wrapped", wrap_ttl="60s")
        wrapping_token = wrapped["wrap_info"]["token"]
        unwrapped = root.sys.unwrap(wrapping_token)
    assert unwrapped["data"]["data"]["token"] == value
    recorded.handle.force_flush(10)
    wrap, unwrap = recorded.steps(c.STEP_SECRET_FETCH)
    assert (wrap.attributes or {})[c.SECRET_REF] == "kv/data/agents/wrapped"
    assert (unwrap.attributes or {})[c.SECRET_REF] == "kv/data/agents/wrapped"
    assert (unwrap.attributes or {})[c.SECRET_OPERATION] == "unwrap"
    written = recorded.files_bytes()
    assert value.encode() not in written
    assert wrapping_token.encode() not in written


def test_a_token_created_is_issued_by_the_callers_identity(recorded: Recorded, openbao: OpenBao) -> None:
    root = hvac.Client(url=openbao.url, token=openbao.root_token)
    with provtrace.decision("issue", trigger="test", actor="agent"):
        issued = root.auth.token.create(policies=["agent"], ttl="10m")
    recorded.handle.force_flush(10)
    (create,) = recorded.steps(c.STEP_SECRET_FETCH)
    attributes = dict(create.attributes or {})
    assert attributes[c.SECRET_REF] == "auth/token/create"
    assert attributes[c.CREDENTIAL_METHOD] == "token"
    assert attributes[c.CREDENTIAL_ACCESSOR] == issued["auth"]["accessor"]
    assert attributes[c.NHI_POLICIES] == ("root",)  # the caller's, not the issued token's
    assert issued["auth"]["client_token"].encode() not in recorded.files_bytes()


def test_a_fetch_outside_a_decision_is_recorded_and_flagged(recorded: Recorded, openbao: OpenBao) -> None:
    value = "lonely-" + secrets.token_hex(12)
    seed(openbao, "agents/lonely", {"token": value})
    root = hvac.Client(url=openbao.url, token=openbao.root_token)
    root.secrets.kv.v2.read_secret_version(
        path="agents/lonely", mount_point="kv", raise_on_deleted_version=True
    )
    recorded.handle.force_flush(10)
    (fetch,) = recorded.steps(c.STEP_SECRET_FETCH)
    assert c.DECISION_ID not in (fetch.attributes or {})
    quarantine = recorded.home / "quarantine"
    assert b"STRUCT-ROOT" in b"".join(p.read_bytes() for p in quarantine.rglob("*") if p.is_file())
    assert value.encode() not in recorded.files_bytes()


def test_uninstrument_removes_every_wrap(recorded: Recorded, openbao: OpenBao) -> None:
    import wrapt
    from provtrace_instrumentation_hvac import HvacInstrumentor

    HvacInstrumentor().uninstrument()
    assert not isinstance(vars(hvac.adapters.RawAdapter)["request"], wrapt.ObjectProxy)
    assert not isinstance(vars(hvac.api.secrets_engines.kv_v2.KvV2)["read_secret_version"], wrapt.ObjectProxy)
    seed(openbao, "agents/plain", {"k": "v"})
    root = hvac.Client(url=openbao.url, token=openbao.root_token)
    with provtrace.decision("plain", trigger="test", actor="agent"):
        root.secrets.kv.v2.read_secret_version(
            path="agents/plain", mount_point="kv", raise_on_deleted_version=True
        )
    recorded.handle.force_flush(10)
    assert recorded.steps(c.STEP_SECRET_FETCH) == []
    HvacInstrumentor().instrument()  # the fixture uninstruments again


@pytest.mark.parametrize("adapter", ["JSONAdapter", "RawAdapter"])
def test_both_hvac_adapters_are_covered(recorded: Recorded, openbao: OpenBao, adapter: str) -> None:
    value = "adapter-" + secrets.token_hex(12)
    seed(openbao, "agents/adapter", {"token": value})
    client = hvac.Client(url=openbao.url, token=openbao.root_token, adapter=getattr(hvac.adapters, adapter))
    with provtrace.decision("adapters", trigger="test", actor="agent"):
        client.secrets.kv.v2.read_secret_version(
            path="agents/adapter", mount_point="kv", raise_on_deleted_version=True
        )
    recorded.handle.force_flush(10)
    (fetch,) = recorded.steps(c.STEP_SECRET_FETCH)
    assert (fetch.attributes or {})[c.SECRET_VERSION]
    assert redact(f"x {value} y") == "x [REDACTED:secret] y"  # the value was tainted
