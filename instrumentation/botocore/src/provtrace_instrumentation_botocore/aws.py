"""What every recorded AWS call shares: the client's region, the caller identity, the response
metadata and error codes.

The caller identity (``sts:GetCallerIdentity``: ARN, account) is looked up once per access key
id, instrumentation suppressed, and cached; AssumeRole and GetSessionToken responses seed the
cache for the keys they issue. The client's secret access key and session token are tainted on
every recorded call and never read otherwise; the access key id is recorded (CloudTrail logs it).
"""

from __future__ import annotations

import dataclasses
import threading
import urllib.parse
from collections.abc import Mapping
from typing import Any

from provtrace import conventions as c
from provtrace.instrumentation import CredentialCache, taint

AWS_HOST_SUFFIXES = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws")


@dataclasses.dataclass(frozen=True)
class Caller:
    """An AWS identity: ``nhi_id`` (its ARN) None when the lookup failed (``attributes`` says why)."""

    nhi_id: str | None
    attributes: Mapping[str, Any]


CALLERS: CredentialCache[Caller] = CredentialCache("aws caller identity")

_session_lock = threading.Lock()
_session: list[Any] = []


def caller_of_arn(arn: str) -> Caller:
    parts = arn.split(":")
    attributes: dict[str, Any] = {c.NHI_ARN: arn}
    if len(parts) > 4 and parts[4]:
        attributes[c.NHI_ACCOUNT] = parts[4]
    return Caller(arn, attributes)


def _lookup_session() -> Any:
    """One botocore session for identity lookups (it reads the user's AWS configuration)."""
    import botocore.session  # type: ignore[import-untyped]

    with _session_lock:
        if not _session:
            _session.append(botocore.session.get_session())
        return _session[0]


def _emulator_endpoint(client: Any) -> str | None:
    """The client's endpoint when it is not AWS's (moto, LocalStack serve every service on one)."""
    url = getattr(client.meta, "endpoint_url", None)
    host = urllib.parse.urlsplit(url).hostname if isinstance(url, str) else None
    if not host or host.endswith(AWS_HOST_SUFFIXES):
        return None
    return str(url)


def _get_caller_identity(client: Any, frozen: Any) -> Caller:
    try:
        if client.meta.service_model.service_name == "sts":
            answer = client.get_caller_identity()
        else:
            sts = _lookup_session().create_client(
                "sts",
                region_name=client.meta.region_name,
                endpoint_url=_emulator_endpoint(client),
                aws_access_key_id=frozen.access_key,
                aws_secret_access_key=frozen.secret_key,
                aws_session_token=frozen.token,
            )
            answer = sts.get_caller_identity()
    except Exception as exc:  # noqa: BLE001 - the key may not be allowed to ask, or AWS unreachable
        return Caller(None, {c.NHI_LOOKUP_ERROR: error_code(exc)})
    arn = answer.get("Arn")
    return caller_of_arn(arn) if isinstance(arn, str) else Caller(None, {c.NHI_LOOKUP_ERROR: "no Arn"})


def caller(client: Any) -> tuple[str | None, dict[str, Any]]:
    """The NHI id and identity attributes of the client's credentials (none for unsigned ones)."""
    try:
        credentials = client._get_credentials()
    except Exception:  # noqa: BLE001 - a client without credentials acts as nobody
        credentials = None
    if credentials is None:
        return None, {}
    frozen = credentials.get_frozen_credentials()
    taint([frozen.secret_key, frozen.token])
    attributes: dict[str, Any] = {c.NHI_ACCESS_KEY_ID: frozen.access_key}
    method = getattr(credentials, "method", None)
    if isinstance(method, str) and method:
        attributes[c.NHI_CREDENTIAL_SOURCE] = method
    looked = CALLERS.get(frozen.access_key, lambda: _get_caller_identity(client, frozen))
    if looked is None:
        return None, attributes
    attributes.update(looked.attributes)
    return looked.nhi_id, attributes


def client_attributes(client: Any, operation: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        c.SECRET_OPERATION: operation,
        c.SECRET_ENGINE: client.meta.service_model.service_name,
    }
    region = getattr(client.meta, "region_name", None)
    if isinstance(region, str) and region:
        attributes[c.CLOUD_REGION] = region
    return attributes


def metadata_attributes(response: Mapping[str, Any]) -> dict[str, Any]:
    """The request id (CloudTrail's ``requestID``) and how many times botocore retried."""
    metadata = response.get("ResponseMetadata")
    attributes: dict[str, Any] = {}
    if isinstance(metadata, Mapping):
        request_id = metadata.get("RequestId")
        if isinstance(request_id, str) and request_id:
            attributes[c.SECRET_REQUEST_ID] = request_id
        retries = metadata.get("RetryAttempts")
        if isinstance(retries, int):
            attributes[c.SECRET_RETRIES] = retries
    return attributes


def error_code(exc: BaseException) -> str:
    """AWS's error code for a ClientError (``ResourceNotFoundException``), else the type name."""
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        code = (response.get("Error") or {}).get("Code")
        if isinstance(code, str) and code:
            return code
    return type(exc).__name__
