"""Secret changes: KV writes and deletes are privileged ``action`` steps, never carrying a value.

The action's target is the secret's reference (``mount/path``); its parameters (what a policy
check or an approval binds to) are :func:`action_params`: the store, the hvac operation, the
reference and the non-secret options (``cas``, ``versions``), never the data written, which is
tainted before the request is sent. KV v2 versions are sequential, so a write that made version
``n`` replaced version ``n - 1``; deletes name the versions they remove (the latest one is looked
up, suppressed, when the caller did not say). The written version is remembered, so that a later
read of it links ``written_by`` to the write.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import provtrace
from provtrace import conventions as c
from provtrace.instrumentation import remember_written, report_recording_error, suppressed, taint
from provtrace_instrumentation_hvac import vault

Wrapped = Callable[..., Any]


@dataclasses.dataclass
class Guard:
    """How instrumented secret changes are guarded: ``require`` as for ``provtrace.action``
    (set by ``HvacInstrumentor().instrument(require=...)``)."""

    require: tuple[str, ...] = ()


GUARD = Guard()


def action_params(operation: str, mount_point: str, path: str, **options: Any) -> dict[str, Any]:
    """The parameters an instrumented KV change is recorded with, for an approval to bind to:
    ``provtrace.approval(..., for_action=action_params("kv_v2.create_or_update_secret", "kv",
    "fw-api-token"))``. ``options`` are the call's non-secret arguments (``cas``, ``versions``);
    None values are left out, as the instrumentation leaves them out."""
    params: dict[str, Any] = {
        "store": vault.STORE,
        "operation": operation,
        "ref": vault.ref_of(mount_point, path),
    }
    params.update({key: value for key, value in options.items() if value is not None})
    return params


@dataclasses.dataclass(frozen=True)
class Change:
    """One KV change method: its signature positions and what it does."""

    operation: str  # e.g. kv_v2.create_or_update_secret
    action_type: str
    engine: str
    mount_index: int  # position of mount_point in the method's arguments (after self)
    secret_index: int | None = None  # position of the data written, if any
    option_names: Sequence[tuple[str, int]] = ()  # non-secret options and their positions
    writes_version: bool = False


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str, default: Any = None) -> Any:
    return args[index] if len(args) > index else kwargs.get(name, default)


def _latest_version(instance: Any, path: str, mount: str) -> int | None:
    try:
        with suppressed():
            env = vault.envelope(instance.read_secret_metadata(path=path, mount_point=mount))
        version = ((env or {}).get("data") or {}).get("current_version")
    except Exception:  # noqa: BLE001 - without it the change records no version before
        return None
    return version if isinstance(version, int) and version > 0 else None


def _versions_before(change: Change, instance: Any, path: str, mount: str, options: Mapping[str, Any]) -> Any:
    versions = options.get("versions")
    if isinstance(versions, (list, tuple)):
        return ",".join(str(v) for v in versions)
    if change.engine == "kv-v2" and change.action_type == c.ACTION_SECRET_DELETE:
        latest = _latest_version(instance, path, mount)
        return str(latest) if latest is not None else None
    return None


def change_wrapper(change: Change) -> Callable[..., Any]:
    def wrapper(wrapped: Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if vault.inside_recorded_call():
            return wrapped(*args, **kwargs)
        adapter = vault.adapter_of(instance)
        try:
            path = str(_arg(args, kwargs, 0, "path"))
            mount = str(_arg(args, kwargs, change.mount_index, "mount_point", "secret"))
            if change.secret_index is not None:
                taint(_arg(args, kwargs, change.secret_index, "secret"))
            options = {name: _arg(args, kwargs, index, name) for name, index in change.option_names}
            ref = vault.ref_of(mount, path)
            params = action_params(change.operation, mount, path, **options)
            attributes = vault.call_attributes(adapter, change.operation, change.engine, mount)
            attributes[c.SECRET_STORE] = vault.STORE
            before = _versions_before(change, instance, path, mount, options)
            if before is not None:
                attributes[c.CHANGE_BEFORE_VERSION] = before
            nhi = vault.with_identity(adapter, attributes)
        except Exception as exc:  # noqa: BLE001 - recording never breaks the change
            report_recording_error("hvac change", exc)
            return wrapped(*args, **kwargs)
        spec = provtrace.action(
            change.action_type,
            target=ref,
            privileged=True,
            params=params,
            require=GUARD.require,
            nhi=nhi,
            attributes=attributes,
        )
        with spec as act:
            with vault.recorded_call():
                result = wrapped(*args, **kwargs)
            with act.recording("change response"):
                env = vault.record_envelope(act, result)
                version = ((env or {}).get("data") or {}).get("version") if change.writes_version else None
                if isinstance(version, int):
                    previous = str(version - 1) if version > 1 else None
                    if previous is not None:
                        act.set_attribute(c.CHANGE_BEFORE_VERSION, previous)
                    act.set_attribute(c.CHANGE_AFTER_VERSION, str(version))
                    act.record_change(
                        before={"ref": ref, "version": previous}, after={"ref": ref, "version": str(version)}
                    )
                    remember_written(act, vault.STORE, ref, str(version))
        return result

    return wrapper


_KV = "hvac.api.secrets_engines"
_CHANGES = (
    (
        "kv_v2",
        "KvV2.create_or_update_secret",
        Change("kv_v2.create_or_update_secret", c.ACTION_SECRET_WRITE, "kv-v2", 3, 1, (("cas", 2),), True),
    ),
    ("kv_v2", "KvV2.patch", Change("kv_v2.patch", c.ACTION_SECRET_WRITE, "kv-v2", 2, 1, (), True)),
    (
        "kv_v2",
        "KvV2.delete_latest_version_of_secret",
        Change("kv_v2.delete_latest_version_of_secret", c.ACTION_SECRET_DELETE, "kv-v2", 1),
    ),
    (
        "kv_v2",
        "KvV2.delete_secret_versions",
        Change("kv_v2.delete_secret_versions", c.ACTION_SECRET_DELETE, "kv-v2", 2, None, (("versions", 1),)),
    ),
    (
        "kv_v2",
        "KvV2.destroy_secret_versions",
        Change("kv_v2.destroy_secret_versions", c.ACTION_SECRET_DELETE, "kv-v2", 2, None, (("versions", 1),)),
    ),
    (
        "kv_v2",
        "KvV2.undelete_secret_versions",
        Change(
            "kv_v2.undelete_secret_versions", c.ACTION_SECRET_RESTORE, "kv-v2", 2, None, (("versions", 1),)
        ),
    ),
    (
        "kv_v2",
        "KvV2.delete_metadata_and_all_versions",
        Change("kv_v2.delete_metadata_and_all_versions", c.ACTION_SECRET_DELETE, "kv-v2", 1),
    ),
    (
        "kv_v1",
        "KvV1.create_or_update_secret",
        Change("kv_v1.create_or_update_secret", c.ACTION_SECRET_WRITE, "kv-v1", 3, 1),
    ),
    ("kv_v1", "KvV1.delete_secret", Change("kv_v1.delete_secret", c.ACTION_SECRET_DELETE, "kv-v1", 1)),
)


def targets() -> list[tuple[str, str, Callable[..., Any]]]:
    return [(f"{_KV}.{module}", attribute, change_wrapper(change)) for module, attribute, change in _CHANGES]
