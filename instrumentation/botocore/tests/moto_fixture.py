"""An AWS account on provtrace.testing's moto server (moto in server mode, over real HTTP):
Secrets Manager, SSM and STS.

The clients point at it through ``AWS_ENDPOINT_URL`` (botocore reads it for every service), with
dummy credentials that are long and random, since credentials in use are tainted for redaction.
"""

from __future__ import annotations

import dataclasses
import secrets

import boto3
import pytest


@dataclasses.dataclass(frozen=True)
class Moto:
    endpoint: str
    access_key_id: str
    secret_access_key: str
    session_token: str


@pytest.fixture
def moto(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Moto:
    account = Moto(
        moto_server,
        "AKIA" + secrets.token_hex(8).upper(),
        "sk-" + secrets.token_urlsafe(30),
        "st-" + secrets.token_urlsafe(60),
    )
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", account.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", account.secret_access_key)
    monkeypatch.setenv("AWS_SESSION_TOKEN", account.session_token)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # boto3's default session resolves credentials once: each test gets one with its own.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    return account
