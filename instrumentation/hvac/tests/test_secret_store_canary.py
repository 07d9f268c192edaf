"""Canary: every secret value and credential that OpenBao and moto hand out is absent from every
byte written (archive, spool, quarantine, logs, the collector's archive and Jaeger), in every
capture mode, after the agent pastes each one into prompts, tool arguments, logs and errors."""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import urllib.parse
from pathlib import Path

import boto3
import hvac
import pytest
from provtrace_instrumentation_botocore import BotocoreInstrumentor
from provtrace_instrumentation_hvac import HvacInstrumentor
from vault_seed import AppRole, new_secret_id

import provtrace
from provtrace.testing import Agent, OpenBao, Stack, archived, encodings, jaeger_v3, wait_for_spans

pytestmark = pytest.mark.integration


def forms(value: str) -> set[bytes]:
    """The value raw and in each encoding it could take on the way (JSON, URL, base64, hex)."""
    return set(encodings(value).values())


def leak_everything(openbao: OpenBao, approle: AppRole, endpoint: str, secrets_seen: list[str]) -> list[str]:
    """Fetch from both stores, then paste every value everywhere; returns the decisions' trace ids."""
    kv_fields = {"username": "svc-" + secrets.token_hex(6), "password": "pw-" + secrets.token_urlsafe(18)}
    openbao.request("POST", "kv/data/agents/canary", {"data": kv_fields})
    aws = {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "AKIA" + secrets.token_hex(8).upper(),
        "aws_secret_access_key": "sk-" + secrets.token_urlsafe(30),
    }
    sm, ssm, sts = (boto3.client(name, **aws) for name in ("secretsmanager", "ssm", "sts"))  # type: ignore[call-overload]
    sm_value = json.dumps({"api_key": "ak-" + secrets.token_urlsafe(20)})
    name = "canary/" + secrets.token_hex(4)
    logging.disable(logging.CRITICAL)  # seeding is the test's doing, not the agent's: not logged
    try:
        with provtrace.instrumentation.suppressed():
            sm.create_secret(Name=name, SecretString=sm_value)
            ssm.put_parameter(Name=f"/{name}", Value="ssm-" + secrets.token_urlsafe(18), Type="SecureString")
    finally:
        logging.disable(logging.NOTSET)
    secret_id = new_secret_id(openbao, approle)
    new_value = "rotated-" + secrets.token_urlsafe(18)
    with provtrace.decision("canary", trigger="test", actor="agent") as decision:
        vault = hvac.Client(url=openbao.url)
        vault.auth.approle.login(role_id=approle.role_id, secret_id=secret_id)
        kv = vault.secrets.kv.v2.read_secret_version(
            path="agents/canary", mount_point="kv", raise_on_deleted_version=True
        )
        vault.secrets.kv.v2.create_or_update_secret(
            path="agents/canary", secret={"password": new_value}, mount_point="kv"
        )
        fetched = sm.get_secret_value(SecretId=name)["SecretString"]
        parameter = ssm.get_parameter(Name=f"/{name}", WithDecryption=True)["Parameter"]["Value"]
        issued = sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/canary", RoleSessionName="canary")
        values = [
            vault.token,
            secret_id,
            approle.role_id,
            *kv["data"]["data"].values(),
            new_value,
            fetched,
            json.loads(fetched)["api_key"],
            parameter,
            issued["Credentials"]["SecretAccessKey"],
            issued["Credentials"]["SessionToken"],
            aws["aws_secret_access_key"],
        ]
        for value in values:
            with provtrace.llm_call(model="m", provider="p") as llm:
                llm.record_input([{"role": "user", "content": f"use {value}"}])
                llm.record_output(
                    {"b64": base64.b64encode(value.encode()).decode(), "hex": value.encode().hex()}
                )
            with provtrace.tool_call("http") as tool:
                tool.record_input({"url": "https://api/x?token=" + urllib.parse.quote(value, safe="")})
                tool.record_output(json.dumps({"echo": value}))
            with pytest.raises(RuntimeError), provtrace.tool_call("fails"):
                raise RuntimeError(f"server rejected {value}")
    secrets_seen.extend(values)
    # A fetch outside any decision: its segment is quarantined.
    vault.secrets.kv.v2.read_secret_version(
        path="agents/canary", mount_point="kv", raise_on_deleted_version=True
    )
    return [decision.trace_id]


@pytest.mark.parametrize("mode", ["none", "digest", "redacted", "full"])
def test_no_secret_store_value_is_written_anywhere(
    evidence_stack: Stack,
    openbao: OpenBao,
    approle: AppRole,
    moto_server: str,
    tmp_path: Path,
    mode: str,
) -> None:
    log_file = tmp_path / "logs" / "all.log"
    log_file.parent.mkdir()
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    agent = Agent(evidence_stack, tmp_path / "agent", capture_content=mode)
    instrumentors = [HvacInstrumentor(), BotocoreInstrumentor()]
    for instrumentor in instrumentors:
        instrumentor.instrument()
    values: list[str] = []
    try:
        (trace_id,) = leak_everything(openbao, approle, moto_server, values)
        assert agent.handle.force_flush(timeout_s=60)
        sent = agent.sent(trace_id)
        wait_for_spans(lambda: archived(evidence_stack, trace_id), len(sent), "the collector's archive")
        jaeger = wait_for_spans(
            lambda: [
                r for r in sent if json.dumps(jaeger_v3(evidence_stack, trace_id) or {}).count(r.span_id)
            ],
            len(sent),
            "Jaeger",
        )
        assert jaeger
    finally:
        for instrumentor in instrumentors:
            instrumentor.uninstrument()
        agent.handle.shutdown(timeout_s=60)
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()
    written = [p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()]
    written += [p.read_bytes() for p in evidence_stack.archive_files()]
    written.append(json.dumps(jaeger_v3(evidence_stack, trace_id)).encode())
    blob = b"\n".join(written)
    assert b"canary" in blob  # the scan reads what was written
    counts = {value[:10] + "...": sum(blob.count(form) for form in forms(value)) for value in values}
    print(f"\ncanary scan, capture mode {mode}: {len(blob)} bytes, {len(values)} values, {counts}")
    where = {
        str(p): sum(p.read_bytes().count(form) for v in values for form in forms(v))
        for p in sorted(tmp_path.rglob("*"))
        if p.is_file()
    }
    assert sum(counts.values()) == 0, (counts, {k: n for k, n in where.items() if n})
    assert os.path.getsize(log_file) > 0
