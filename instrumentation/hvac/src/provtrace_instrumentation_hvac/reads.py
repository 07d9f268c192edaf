"""Secret reads: each one a ``secret_fetch`` step whose value is tainted, never recorded.

KV v2 ``read_secret_version`` (``read_secret`` calls it) and KV v1 ``read_secret`` are recorded
under ``mount/path``; ``Client.read`` under its path (the server's configuration, ``sys/``, and
token and identity metadata are not secrets and not recorded); database and AWS dynamic
credentials under ``mount/creds/name``; ``Wrapping.unwrap`` under the wrapped response's
``creation_path``, looked up before the wrapping token is used up. What each one taints and
records is listed in docs/hvac.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import provtrace
from provtrace import conventions as c
from provtrace.instrumentation import (
    SecretFetch,
    link_written,
    mark_failed,
    report_recording_error,
    suppressed,
    taint,
)
from provtrace_instrumentation_hvac import vault
from provtrace_instrumentation_hvac.issuance import record_issued

Wrapped = Callable[..., Any]
Describe = Callable[[Any, tuple[Any, ...], dict[str, Any]], tuple[str | None, str, str, str | None]]
Absorb = Callable[[SecretFetch, Mapping[str, Any], str], None]


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str, default: Any = None) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _fetch(
    describe: Describe, absorb: Absorb
) -> Callable[[Wrapped, Any, tuple[Any, ...], dict[str, Any]], Any]:
    """A wrapper recording one read: ``describe`` names it from the call's arguments as
    (ref, operation, engine, mount), ``absorb`` taints the secret in the envelope and records
    what is safe (version, identifiers)."""

    def wrapper(wrapped: Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if vault.inside_recorded_call():
            return wrapped(*args, **kwargs)
        adapter = vault.adapter_of(instance)
        try:
            ref, operation, engine, mount = describe(instance, args, kwargs)
            attributes = vault.call_attributes(adapter, operation, engine, mount)
            nhi = vault.with_identity(adapter, attributes)
        except Exception as exc:  # noqa: BLE001 - recording never breaks the call
            report_recording_error("hvac read", exc)
            return wrapped(*args, **kwargs)
        if ref is None:
            return wrapped(*args, **kwargs)
        with provtrace.secret_fetch(vault.STORE, ref, nhi, attributes=attributes) as fetch:
            with vault.recorded_call():
                result = wrapped(*args, **kwargs)
            with fetch.recording("response"):
                env = vault.record_envelope(fetch, result)
                if env is None:
                    mark_failed(fetch, "InvalidPath", f"nothing at {ref}")
                else:
                    absorb(fetch, env, ref)
        return result

    return wrapper


def _kv_v2_describe(
    instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[str, str, str, str]:
    path = _arg(args, kwargs, 0, "path")
    mount = _arg(args, kwargs, 2, "mount_point", "secret")
    return vault.ref_of(mount, path), "kv.read", "kv-v2", mount


def _kv_v1_describe(
    instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[str, str, str, str]:
    path = _arg(args, kwargs, 0, "path")
    mount = _arg(args, kwargs, 1, "mount_point", "secret")
    return vault.ref_of(mount, path), "kv.read", "kv-v1", mount


_NOT_SECRETS = (
    "sys",
    "identity",
    "auth/token/lookup",
    "auth/token/lookup-self",
    "auth/token/lookup-accessor",
)


def _read_describe(
    instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[str | None, str, str, None]:
    path = vault.ref_of("", str(_arg(args, kwargs, 0, "path")))
    if path.startswith("v1/"):
        path = path[3:]
    # The server's configuration, tokens' and identities' metadata: not secrets, not a fetch.
    metadata = any(path == p or path.startswith(p + "/") for p in _NOT_SECRETS)
    return (None if metadata else path), "read", "generic", None


def _database_describe(
    kind: str,
) -> Describe:
    def describe(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, str, str, str]:
        name = _arg(args, kwargs, 0, "name")
        mount = _arg(args, kwargs, 1, "mount_point", "database")
        operation = "creds.generate" if kind == "creds" else "creds.static"
        return vault.ref_of(mount, f"{kind}/{name}"), operation, "database", mount

    return describe


def _aws_describe(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, str, str, str]:
    name = _arg(args, kwargs, 0, "name")
    endpoint = _arg(args, kwargs, 3, "endpoint", "creds")
    mount = _arg(args, kwargs, 4, "mount_point", "aws")
    return vault.ref_of(mount, f"{endpoint}/{name}"), "creds.generate", "aws", mount


def _unwrap_describe(
    instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[str, str, str, None]:
    """The wrapped response's creation path, looked up (suppressed) before the token is used up."""
    adapter = vault.adapter_of(instance)
    token = _arg(args, kwargs, 0, "token") or getattr(adapter, "token", None)
    ref = "sys/wrapping/unwrap"
    if isinstance(token, str) and token:
        taint(token)
        try:
            with suppressed():
                env = vault.envelope(adapter.post("/v1/sys/wrapping/lookup", json={"token": token}))
            path = ((env or {}).get("data") or {}).get("creation_path")
            if isinstance(path, str) and path:
                ref = path
        except Exception:  # noqa: BLE001, S110 - an unknown origin is recorded as the unwrap itself
            pass
    return ref, "unwrap", "wrapping", None


def _data(env: Mapping[str, Any]) -> Any:
    return env.get("data")


def _absorb_kv_v2(fetch: SecretFetch, env: Mapping[str, Any], ref: str) -> None:
    data = _data(env) or {}
    fetch.record_value(data.get("data"))
    metadata = data.get("metadata") or {}
    version = metadata.get("version")
    if version is not None:
        fetch.set_version(version)
        link_written(fetch, vault.STORE, ref, str(version))


def _absorb_data(fetch: SecretFetch, env: Mapping[str, Any], ref: str) -> None:
    data = _data(env)
    if isinstance(data, Mapping) and isinstance(data.get("metadata"), Mapping) and "data" in data:
        _absorb_kv_v2(fetch, env, ref)  # a KV v2 path read through Client.read
    else:
        fetch.record_value(data)
    _absorb_wrapping(fetch, env)


def _absorb_wrapping(fetch: SecretFetch, env: Mapping[str, Any]) -> None:
    """A response wrapped with ``wrap_ttl``: the wrapping token is the secret now."""
    info = env.get("wrap_info")
    if isinstance(info, Mapping):
        fetch.record_value(info.get("token"))
        path = info.get("creation_path")
        if isinstance(path, str) and path:
            fetch.set_attribute(c.SECRET_REF, path)


def _absorb_aws(fetch: SecretFetch, env: Mapping[str, Any], ref: str) -> None:
    data = _data(env) or {}
    fetch.record_value([data.get("secret_key"), data.get("security_token")])
    access_key = data.get("access_key")
    if isinstance(access_key, str) and access_key:
        fetch.set_attribute(c.CREDENTIAL_ACCESS_KEY_ID, access_key)


def _absorb_unwrapped(fetch: SecretFetch, env: Mapping[str, Any], ref: str) -> None:
    fetch.record_value(_data(env))
    if isinstance(env.get("auth"), Mapping):
        record_issued(fetch, env, "unwrap", "sys/wrapping/unwrap")


def targets() -> list[tuple[str, str, Callable[..., Any]]]:
    kv = "hvac.api.secrets_engines"
    return [
        (f"{kv}.kv_v2", "KvV2.read_secret_version", _fetch(_kv_v2_describe, _absorb_kv_v2)),
        (f"{kv}.kv_v1", "KvV1.read_secret", _fetch(_kv_v1_describe, _absorb_data)),
        ("hvac.v1", "Client.read", _fetch(_read_describe, _absorb_data)),
        (
            f"{kv}.database",
            "Database.generate_credentials",
            _fetch(_database_describe("creds"), _absorb_data),
        ),
        (
            f"{kv}.database",
            "Database.get_static_credentials",
            _fetch(_database_describe("static-creds"), _absorb_data),
        ),
        (f"{kv}.aws", "Aws.generate_credentials", _fetch(_aws_describe, _absorb_aws)),
        ("hvac.api.system_backend.wrapping", "Wrapping.unwrap", _fetch(_unwrap_describe, _absorb_unwrapped)),
    ]
