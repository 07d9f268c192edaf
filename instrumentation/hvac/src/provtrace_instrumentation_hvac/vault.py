"""What every recorded Vault call shares: the server, the response envelope, the token's identity.

The identity of the token in use (accessor, entity, policies, where it was issued) is looked up
once per token with ``auth/token/lookup-self``, instrumentation suppressed, and cached; the
lookup's ``id`` field is the token itself and is never read. Logins and token creation seed the
cache from their response, so a freshly issued token costs no lookup.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import urllib.parse
from collections.abc import Iterator, Mapping
from typing import Any

from provtrace import conventions as c
from provtrace.instrumentation import CredentialCache, StepHandle, taint

STORE = "vault"

# Set while a recorded hvac call runs: the hvac calls it makes itself (KV v2 patch reads, then
# writes) are part of it, not steps of their own.
_inside: contextvars.ContextVar[bool] = contextvars.ContextVar("provtrace_hvac_inside", default=False)


@contextlib.contextmanager
def recorded_call() -> Iterator[None]:
    token = _inside.set(True)
    try:
        yield
    finally:
        _inside.reset(token)


def inside_recorded_call() -> bool:
    return _inside.get()


@dataclasses.dataclass(frozen=True)
class Identity:
    """Who a Vault token is: ``nhi_id`` None when the lookup failed (``attributes`` says why)."""

    nhi_id: str | None
    attributes: Mapping[str, Any]


IDENTITIES: CredentialCache[Identity] = CredentialCache("vault token identity")


def adapter_of(instance: Any) -> Any:
    """The hvac adapter behind a client, an API class (KvV2, ...) or an adapter itself."""
    return getattr(instance, "_adapter", instance)


def ref_of(mount_point: str, path: str) -> str:
    """``mount/path``, the reference a KV secret is recorded under (slashes normalised)."""
    return "/".join(part for part in f"{mount_point}/{path}".split("/") if part)


def server_attributes(adapter: Any) -> dict[str, Any]:
    base = getattr(adapter, "base_uri", None)
    if not isinstance(base, str):
        return {}
    parsed = urllib.parse.urlsplit(base)
    attributes: dict[str, Any] = {}
    if parsed.hostname:
        attributes[c.SERVER_ADDRESS] = parsed.hostname
    port = parsed.port or {"https": 443, "http": 80}.get(parsed.scheme)
    if port:
        attributes[c.SERVER_PORT] = port
    return attributes


def envelope(result: Any) -> Mapping[str, Any] | None:
    """Vault's response envelope: hvac's JSONAdapter returns it as a dict, RawAdapter as a
    ``requests.Response``."""
    if isinstance(result, Mapping):
        return result
    json_method = getattr(result, "json", None)
    if callable(json_method):
        try:
            parsed = json_method()
        except ValueError:
            return None
        return parsed if isinstance(parsed, Mapping) else None
    return None


def envelope_attributes(env: Mapping[str, Any]) -> dict[str, Any]:
    """The request id (the audit log's ``request.id``) and the lease, when there is one."""
    attributes: dict[str, Any] = {}
    request_id = env.get("request_id")
    if isinstance(request_id, str) and request_id:
        attributes[c.SECRET_REQUEST_ID] = request_id
    lease_id = env.get("lease_id")
    if isinstance(lease_id, str) and lease_id:
        attributes[c.LEASE_ID] = lease_id
    duration = env.get("lease_duration")
    if isinstance(duration, int) and duration > 0:
        attributes[c.LEASE_DURATION] = duration
        attributes[c.LEASE_RENEWABLE] = bool(env.get("renewable"))
    return attributes


def record_envelope(handle: StepHandle, result: Any) -> Mapping[str, Any] | None:
    env = envelope(result)
    if env is not None:
        for key, value in envelope_attributes(env).items():
            handle.set_attribute(key, value)
    return env


def nhi_of(auth_path: str, names: Mapping[str, Any], display_name: Any = None) -> str:
    """``vault:<auth mount>/<role, username or display name>``, e.g. ``vault:approle/agent-x``."""
    parts = [p for p in auth_path.split("/") if p]
    mount = parts[1] if len(parts) > 1 and parts[0] == "auth" else (parts[0] if parts else "token")
    for key in ("role_name", "role", "username"):
        value = names.get(key)
        if isinstance(value, str) and value:
            return f"vault:{mount}/{value}"
    name = display_name if isinstance(display_name, str) and display_name else "unknown"
    return f"vault:{mount}/{name}"


def identity_from(data: Mapping[str, Any], auth_path: str) -> Identity:
    """An identity from lookup-self's ``data`` or a login's ``auth`` block (never its token)."""
    meta = data.get("meta") or data.get("metadata") or {}
    meta = meta if isinstance(meta, Mapping) else {}
    attributes: dict[str, Any] = {c.NHI_AUTH_PATH: auth_path}
    accessor = data.get("accessor")
    if isinstance(accessor, str) and accessor:
        attributes[c.NHI_ACCESSOR] = accessor
    entity = data.get("entity_id")
    if isinstance(entity, str) and entity:
        attributes[c.NHI_ENTITY_ID] = entity
    policies = data.get("policies") or data.get("token_policies")
    if isinstance(policies, list):
        attributes[c.NHI_POLICIES] = tuple(str(p) for p in policies)
    return Identity(nhi_of(auth_path, meta, data.get("display_name")), attributes)


def _lookup_self(adapter: Any) -> Identity:
    try:
        env = envelope(adapter.get("/v1/auth/token/lookup-self"))
    except Exception as exc:  # noqa: BLE001 - the token may not be allowed to look itself up
        return Identity(None, {c.NHI_LOOKUP_ERROR: type(exc).__name__})
    data = env.get("data") if env is not None else None
    if not isinstance(data, Mapping):
        return Identity(None, {c.NHI_LOOKUP_ERROR: "no lookup-self data"})
    path = data.get("path")
    return identity_from(data, path if isinstance(path, str) else "")


def identity(adapter: Any) -> Identity | None:
    """The identity of the adapter's token (None without a token); the token is tainted."""
    token = getattr(adapter, "token", None)
    if not isinstance(token, str) or not token:
        return None
    taint(token)
    return IDENTITIES.get(token, lambda: _lookup_self(adapter))


def call_attributes(adapter: Any, operation: str, engine: str, mount: str | None) -> dict[str, Any]:
    attributes: dict[str, Any] = {c.SECRET_OPERATION: operation, c.SECRET_ENGINE: engine}
    if mount:
        attributes[c.SECRET_MOUNT] = mount.strip("/")
    attributes.update(server_attributes(adapter))
    return attributes


def with_identity(adapter: Any, attributes: dict[str, Any]) -> str | None:
    """Add the token's identity to ``attributes``; returns the NHI id (None when unknown)."""
    who = identity(adapter)
    if who is None:
        return None
    attributes.update(who.attributes)
    return who.nhi_id
