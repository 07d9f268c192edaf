"""NHI credential issuance: a Vault login or token creation is a ``secret_fetch`` step whose secret
is the issued token.

Every auth method's ``login`` ends in ``Adapter.login(url, ...)``, which is recorded; the auth
method classes' own login methods are wrapped only to name the method (``approle``, ``jwt``,
``kubernetes``, ...), since the mount path (``auth/<mount>/login``) is the operator's choice.
Recorded: method, mount, role, the issued token's accessor, entity, policies, type and lease.
Never recorded, all tainted: the token, and every login field but the role name (``secret_id``,
``role_id``, ``password``, ``jwt``, ...). A login's NHI is the identity that logged in; a token
created by ``auth/token/create`` is issued by the caller's identity.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Mapping
from typing import Any

import provtrace
from provtrace import conventions as c
from provtrace.instrumentation import SecretFetch, report_recording_error, taint
from provtrace_instrumentation_hvac import vault

Wrapped = Callable[..., Any]

# Login fields that name something rather than prove anything: recorded, not tainted.
_NAMES = frozenset({"role", "name"})

_method: contextvars.ContextVar[str | None] = contextvars.ContextVar("provtrace_hvac_method", default=None)


def name_method(wrapped: Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """On an auth method class's login: the method is the class (``AppRole`` -> ``approle``)."""
    token = _method.set(type(instance).__name__.lower())
    try:
        return wrapped(*args, **kwargs)
    finally:
        _method.reset(token)


def record_issued(
    fetch: SecretFetch, env: Mapping[str, Any], method: str, auth_path: str, *, acting: bool = True
) -> None:
    """Record the token in ``env["auth"]`` as the issued credential (tainted, never recorded), and
    remember its identity; ``acting``: the step's NHI is the identity the token belongs to."""
    auth = env.get("auth")
    if not isinstance(auth, Mapping):
        return
    token = auth.get("client_token")
    fetch.record_value(token)
    fetch.set_attribute(c.CREDENTIAL_METHOD, method)
    for key, attribute in (
        ("accessor", c.CREDENTIAL_ACCESSOR),
        ("entity_id", c.CREDENTIAL_ENTITY_ID),
        ("token_type", c.CREDENTIAL_TOKEN_TYPE),
    ):
        value = auth.get(key)
        if isinstance(value, str) and value:
            fetch.set_attribute(attribute, value)
    policies = auth.get("policies") or auth.get("token_policies")
    if isinstance(policies, list):
        fetch.set_attribute(c.CREDENTIAL_POLICIES, tuple(str(p) for p in policies))
    metadata = _mapping(auth.get("metadata"))
    role = next((metadata[k] for k in ("role_name", "role") if isinstance(metadata.get(k), str)), None)
    if role:
        fetch.set_attribute(c.CREDENTIAL_ROLE, role)
    duration = auth.get("lease_duration")
    if isinstance(duration, int) and duration > 0:
        fetch.set_attribute(c.LEASE_DURATION, duration)
        fetch.set_attribute(c.LEASE_RENEWABLE, bool(auth.get("renewable")))
    who = vault.identity_from(auth, auth_path)
    if isinstance(token, str) and token:
        vault.IDENTITIES.put(token, who)
    if acting and who.nhi_id:
        fetch.set_attribute(c.NHI_ID, who.nhi_id)
        for key, value in who.attributes.items():
            fetch.set_attribute(key, value)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _path(url: Any) -> str:
    path = vault.ref_of("", str(url))
    return path[3:] if path.startswith("v1/") else path


def login(wrapped: Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``Adapter.login(url, use_token=True, **kwargs)``: every auth method's login."""
    if vault.inside_recorded_call():
        return wrapped(*args, **kwargs)
    try:
        path = _path(args[0] if args else kwargs.get("url", ""))
        parts = path.split("/")
        is_auth = len(parts) >= 3 and parts[0] == "auth"
        mount = parts[1] if is_auth else ""
        method = _method.get() or (mount if is_auth else "unwrap")
        ref = "/".join(parts[:3]) if is_auth else path
        payload = _mapping(kwargs.get("json"))
        taint([value for key, value in payload.items() if key not in _NAMES])
        wrapping_token = getattr(instance, "token", None) if not is_auth else None
        if isinstance(wrapping_token, str) and wrapping_token:
            taint(wrapping_token)  # auth_cubbyhole: the client's token is the wrapping token
        attributes = vault.call_attributes(instance, "auth.login", "auth", mount or None)
        attributes[c.CREDENTIAL_METHOD] = method
        role = payload.get("role")
        if isinstance(role, str) and role:
            attributes[c.CREDENTIAL_ROLE] = role
        username = parts[3] if is_auth and len(parts) > 3 else None
        named = role or username
        nhi = f"vault:{mount}/{named}" if is_auth and named else None
    except Exception as exc:  # noqa: BLE001 - recording never breaks the login
        report_recording_error("hvac login", exc)
        return wrapped(*args, **kwargs)
    with provtrace.secret_fetch(vault.STORE, ref, nhi, attributes=attributes) as fetch:
        with vault.recorded_call():
            result = wrapped(*args, **kwargs)
        with fetch.recording("login response"):
            env = vault.record_envelope(fetch, result)
            if env is not None:
                record_issued(fetch, env, method, ref if is_auth else path)
    return result


def create_token(endpoint: str) -> Callable[..., Any]:
    """``Token.create`` / ``create_orphan``: a child token issued by the caller's identity."""

    def wrapper(wrapped: Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if vault.inside_recorded_call():
            return wrapped(*args, **kwargs)
        adapter = vault.adapter_of(instance)
        try:
            custom_id = args[0] if args else kwargs.get("id")
            if isinstance(custom_id, str) and custom_id:
                taint(custom_id)
            mount = str(kwargs.get("mount_point", "token"))
            role = kwargs.get("role_name") if endpoint == "create" else None
            if endpoint == "create" and len(args) > 1:
                role = args[1]
            ref = vault.ref_of(f"auth/{mount}", endpoint + (f"/{role}" if role else ""))
            attributes = vault.call_attributes(adapter, "auth.token.create", "auth", mount)
            attributes[c.CREDENTIAL_METHOD] = "token"
            if isinstance(role, str) and role:
                attributes[c.CREDENTIAL_ROLE] = role
            nhi = vault.with_identity(adapter, attributes)
        except Exception as exc:  # noqa: BLE001
            report_recording_error("hvac token create", exc)
            return wrapped(*args, **kwargs)
        with provtrace.secret_fetch(vault.STORE, ref, nhi, attributes=attributes) as fetch:
            with vault.recorded_call():
                result = wrapped(*args, **kwargs)
            with fetch.recording("token response"):
                env = vault.record_envelope(fetch, result)
                if env is not None:
                    record_issued(fetch, env, "token", ref, acting=False)
        return result

    return wrapper


_AUTH = "hvac.api.auth_methods"
_LOGIN_METHODS = (
    ("approle", "AppRole.login"),
    ("jwt", "JWT.jwt_login"),
    ("kubernetes", "Kubernetes.login"),
    ("userpass", "Userpass.login"),
    ("ldap", "Ldap.login"),
    ("okta", "Okta.login"),
    ("github", "Github.login"),
    ("cert", "Cert.login"),
    ("gcp", "Gcp.login"),
    ("azure", "Azure.login"),
    ("radius", "Radius.login"),
    ("aws", "Aws.iam_login"),
    ("aws", "Aws.ec2_login"),
)


def targets() -> list[tuple[str, str, Callable[..., Any]]]:
    return [
        ("hvac.adapters", "Adapter.login", login),
        (f"{_AUTH}.token", "Token.create", create_token("create")),
        (f"{_AUTH}.token", "Token.create_orphan", create_token("create-orphan")),
        *((f"{_AUTH}.{module}", attribute, name_method) for module, attribute in _LOGIN_METHODS),
    ]
