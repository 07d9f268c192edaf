"""Secret reads and credential issuance: ``secret_fetch`` steps whose values are tainted, never kept.

A Secrets Manager secret is recorded under its name, an SSM parameter under its name, a batch
(``BatchGetSecretValue``, ``GetParameters``, ``GetParametersByPath``) as one step for the call
with a child step per item returned and a child error step per item it could not return, and an
STS credential issuance under the role ARN (or ``sts:<operation>``). What each one taints and
records is listed in docs/botocore.md.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import provtrace
from provtrace import conventions as c
from provtrace.instrumentation import SecretFetch, link_written, mark_failed, taint
from provtrace_instrumentation_botocore import aws


@dataclasses.dataclass(frozen=True)
class Reading:
    """A recorded read in progress: the step, its store and the identity that made it."""

    store: str
    fetch: SecretFetch
    nhi: str | None


Describe = Callable[[Mapping[str, Any]], str]
Absorb = Callable[[Reading, Mapping[str, Any]], None]


@dataclasses.dataclass(frozen=True)
class Fetch:
    """One reading operation: its store, how its request names the secret, what its answer holds."""

    store: str
    describe: Describe
    absorb: Absorb
    secret_request_fields: Sequence[str] = ()  # request fields that are credentials themselves


def _secret_value(fetch: SecretFetch, item: Mapping[str, Any], store: str) -> str:
    """Taint one Secrets Manager secret value and record what identifies it; returns its name."""
    fetch.record_value([item.get("SecretString"), item.get("SecretBinary")])
    name = item.get("Name")
    ref = name if isinstance(name, str) and name else str(item.get("ARN", ""))
    if ref:
        fetch.set_attribute(c.SECRET_REF, ref)
    arn = item.get("ARN")
    if isinstance(arn, str):
        fetch.set_attribute(c.SECRET_ARN, arn)
    stages = item.get("VersionStages")
    if isinstance(stages, list):
        fetch.set_attribute(c.SECRET_VERSION_STAGES, tuple(str(s) for s in stages))
    version = item.get("VersionId")
    if isinstance(version, str):
        fetch.set_version(version)
        link_written(fetch, store, ref, version)
    return ref


def _absorb_secret(reading: Reading, response: Mapping[str, Any]) -> None:
    _secret_value(reading.fetch, response, reading.store)


def _children(
    reading: Reading,
    items: Sequence[Any],
    errors: Sequence[tuple[str, str, str]],
    absorb_item: Callable[[SecretFetch, Mapping[str, Any], str], str],
) -> None:
    """A child step per item of a batch (inside the batch's step, same identity), and a child
    error step per item the batch could not return."""
    refs: list[str] = []
    for item in items:
        if isinstance(item, Mapping):
            ref = str(item.get("Name") or item.get("ARN") or "")
            with provtrace.secret_fetch(reading.store, ref, reading.nhi) as child:
                refs.append(absorb_item(child, item, reading.store))
    reading.fetch.set_attribute(c.SECRET_REFS, tuple(refs))
    for ref, code, message in errors:
        with provtrace.secret_fetch(reading.store, ref, reading.nhi) as child:
            mark_failed(child, code, message)
    if errors:
        reading.fetch.set_attribute(c.SECRET_ERRORS, tuple(f"{ref}:{code}" for ref, code, _ in errors))


def _absorb_batch(reading: Reading, response: Mapping[str, Any]) -> None:
    errors = [
        (str(e.get("SecretId", "")), str(e.get("ErrorCode", "")), str(e.get("Message", "")))
        for e in response.get("Errors") or ()
        if isinstance(e, Mapping)
    ]
    _children(reading, response.get("SecretValues") or (), errors, _secret_value)


def _parameter(fetch: SecretFetch, item: Mapping[str, Any], store: str) -> str:
    """Taint one SSM parameter's value if it is a SecureString; record what identifies it."""
    kind = item.get("Type")
    if kind == "SecureString" or str(item.get("Name", "")).startswith("/aws/reference/secretsmanager/"):
        fetch.record_value(item.get("Value"))
    name = str(item.get("Name", ""))
    fetch.set_attribute(c.SECRET_REF, name)
    if isinstance(kind, str):
        fetch.set_attribute(c.SECRET_TYPE, kind)
    arn = item.get("ARN")
    if isinstance(arn, str):
        fetch.set_attribute(c.SECRET_ARN, arn)
    version = item.get("Version")
    if isinstance(version, int):
        fetch.set_version(version)
        link_written(fetch, store, name, str(version))
    return name


def _absorb_parameter(reading: Reading, response: Mapping[str, Any]) -> None:
    item = response.get("Parameter")
    if isinstance(item, Mapping):
        _parameter(reading.fetch, item, reading.store)


def _absorb_parameters(reading: Reading, response: Mapping[str, Any]) -> None:
    invalid = [
        (str(name), "ParameterNotFound", f"no parameter {name}")
        for name in response.get("InvalidParameters") or ()
    ]
    _children(reading, response.get("Parameters") or (), invalid, _parameter)


def _isoformat(value: Any) -> str | None:
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return str(value) if value else None


def _absorb_credentials(reading: Reading, response: Mapping[str, Any]) -> None:
    fetch = reading.fetch
    credentials = response.get("Credentials")
    if not isinstance(credentials, Mapping):
        return
    fetch.record_value([credentials.get("SecretAccessKey"), credentials.get("SessionToken")])
    key = credentials.get("AccessKeyId")
    if isinstance(key, str) and key:
        fetch.set_attribute(c.CREDENTIAL_ACCESS_KEY_ID, key)
    expires = _isoformat(credentials.get("Expiration"))
    if expires:
        fetch.set_attribute(c.CREDENTIAL_EXPIRES_AT, expires)
    user = response.get("AssumedRoleUser") or response.get("FederatedUser")
    arn = user.get("Arn") if isinstance(user, Mapping) else None
    if isinstance(arn, str) and arn:
        fetch.set_attribute(c.CREDENTIAL_ARN, arn)
        if isinstance(key, str) and key:
            aws.CALLERS.put(key, aws.caller_of_arn(arn))
    subject = response.get("SubjectFromWebIdentityToken")
    if reading.nhi is None and isinstance(subject, str) and subject:
        # An unsigned AssumeRoleWithWebIdentity: the identity is the token's subject, as STS read it.
        provider = response.get("Provider")
        fetch.set_attribute(c.NHI_ID, f"{provider}:{subject}" if provider else subject)


def _field(name: str) -> Describe:
    def describe(params: Mapping[str, Any]) -> str:
        return str(params.get(name, ""))

    return describe


def _joined(name: str) -> Describe:
    def describe(params: Mapping[str, Any]) -> str:
        values = params.get(name)
        if isinstance(values, (list, tuple)):
            return ",".join(str(v) for v in values)
        filters = params.get("Filters")
        return "filters:" + json.dumps(filters, sort_keys=True, default=str) if filters else ""

    return describe


def _sts(operation: str) -> Describe:
    def describe(params: Mapping[str, Any]) -> str:
        for field in ("RoleArn", "TargetPrincipal"):
            value = params.get(field)
            if isinstance(value, str) and value:
                return value
        federated = params.get("Name")
        return f"sts:{operation}" + (f":{federated}" if isinstance(federated, str) and federated else "")

    return describe


_SM, _SSM, _STS = "aws.secretsmanager", "aws.ssm", "aws.sts"
_STS_SECRETS = ("WebIdentityToken", "SAMLAssertion", "TokenCode", "ExternalId")

FETCHES: dict[tuple[str, str], Fetch] = {
    ("secretsmanager", "GetSecretValue"): Fetch(_SM, _field("SecretId"), _absorb_secret),
    ("secretsmanager", "BatchGetSecretValue"): Fetch(_SM, _joined("SecretIdList"), _absorb_batch),
    ("ssm", "GetParameter"): Fetch(_SSM, _field("Name"), _absorb_parameter),
    ("ssm", "GetParameters"): Fetch(_SSM, _joined("Names"), _absorb_parameters),
    ("ssm", "GetParametersByPath"): Fetch(_SSM, _field("Path"), _absorb_parameters),
    **{
        ("sts", operation): Fetch(_STS, _sts(operation), _absorb_credentials, _STS_SECRETS)
        for operation in (
            "AssumeRole",
            "AssumeRoleWithWebIdentity",
            "AssumeRoleWithSAML",
            "AssumeRoot",
            "GetSessionToken",
            "GetFederationToken",
        )
    },
}


def issuance_attributes(operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """What an STS request says about the credential it asks for (no secret field)."""
    attributes: dict[str, Any] = {c.CREDENTIAL_METHOD: operation}
    role = params.get("RoleArn")
    if isinstance(role, str) and role:
        attributes[c.CREDENTIAL_ROLE] = role
    session = params.get("RoleSessionName")
    if isinstance(session, str) and session:
        attributes[c.CREDENTIAL_SESSION_NAME] = session
    return attributes


def taint_request(fetch: Fetch, params: Mapping[str, Any]) -> None:
    taint([params.get(name) for name in fetch.secret_request_fields])
