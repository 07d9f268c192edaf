"""Secret changes: privileged ``action`` steps that name the secret and its versions, never a value.

Secrets Manager changes record the ``AWSCURRENT`` version they replace (``DescribeSecret``, with
instrumentation suppressed; ``UpdateSecretVersionStage`` names it itself) and the version they
made; SSM parameter versions are sequential, so ``PutParameter`` replacing version ``n`` made
``n + 1``. The action's parameters (what a policy check or approval binds to) are
:func:`action_params`: the request without its value fields (``SecretString``, ``SecretBinary``,
``Value``), which are tainted before the request is sent. The table per operation is in
docs/botocore.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from provtrace import conventions as c
from provtrace.instrumentation import suppressed

VALUE_FIELDS = frozenset({"SecretString", "SecretBinary", "Value"})


@dataclasses.dataclass
class Guard:
    """How instrumented secret changes are guarded: ``require`` as for ``provtrace.action``
    (set by ``BotocoreInstrumentor().instrument(require=...)``)."""

    require: tuple[str, ...] = ()


GUARD = Guard()


@dataclasses.dataclass(frozen=True)
class Change:
    store: str
    action_type: str
    target_field: str  # the request field naming the secret


def action_params(service: str, operation: str, api_params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters an instrumented secret change is recorded with, for an approval to bind to:
    ``provtrace.approval(..., for_action=action_params("secretsmanager", "PutSecretValue",
    request))`` where ``request`` is what the code passes to ``put_secret_value(**request)``."""
    return {
        "service": service,
        "operation": operation,
        **{key: value for key, value in api_params.items() if key not in VALUE_FIELDS},
    }


def _stage_holder(client: Any, secret_id: str, stage: str) -> str | None:
    try:
        with suppressed():
            described = client.describe_secret(SecretId=secret_id)
    except Exception:  # noqa: BLE001 - without it the change records no version before
        return None
    for version, stages in (described.get("VersionIdsToStages") or {}).items():
        if stage in (stages or ()):
            return str(version)
    return None


def version_before(client: Any, service: str, operation: str, params: Mapping[str, Any]) -> str | None:
    if service != "secretsmanager":
        return None
    if operation == "UpdateSecretVersionStage":
        removed = params.get("RemoveFromVersionId")
        if isinstance(removed, str) and removed:
            return removed
        return _stage_holder(client, str(params.get("SecretId")), str(params.get("VersionStage")))
    return _stage_holder(client, str(params.get("SecretId")), "AWSCURRENT")


def version_after(
    service: str, operation: str, params: Mapping[str, Any], response: Mapping[str, Any]
) -> str | None:
    if operation == "UpdateSecretVersionStage":
        moved = params.get("MoveToVersionId")
        return moved if isinstance(moved, str) and moved else None
    version = response.get("VersionId") if service == "secretsmanager" else response.get("Version")
    return str(version) if version is not None else None


def ssm_version_before(after: str | None) -> str | None:
    if after is None or not after.isdigit() or int(after) <= 1:
        return None
    return str(int(after) - 1)


_SM, _SSM = "aws.secretsmanager", "aws.ssm"
CHANGES: dict[tuple[str, str], Change] = {
    ("secretsmanager", "PutSecretValue"): Change(_SM, c.ACTION_SECRET_WRITE, "SecretId"),
    ("secretsmanager", "UpdateSecret"): Change(_SM, c.ACTION_SECRET_WRITE, "SecretId"),
    ("secretsmanager", "RotateSecret"): Change(_SM, c.ACTION_SECRET_ROTATE, "SecretId"),
    ("secretsmanager", "UpdateSecretVersionStage"): Change(_SM, c.ACTION_SECRET_STAGE, "SecretId"),
    ("secretsmanager", "DeleteSecret"): Change(_SM, c.ACTION_SECRET_DELETE, "SecretId"),
    ("ssm", "PutParameter"): Change(_SSM, c.ACTION_SECRET_WRITE, "Name"),
    ("ssm", "DeleteParameter"): Change(_SSM, c.ACTION_SECRET_DELETE, "Name"),
}


def taints_value(service: str, params: Mapping[str, Any]) -> bool:
    """Whether the value written is a secret: always for Secrets Manager; for SSM unless the
    parameter is declared a plain ``String`` or ``StringList``."""
    return service != "ssm" or params.get("Type") not in ("String", "StringList")
