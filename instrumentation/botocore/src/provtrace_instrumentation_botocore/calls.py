"""The one choke point: ``BaseClient._make_api_call(operation_name, api_params)``.

Every botocore client call goes through it, whenever the client was created, so one wrap covers
them all; calls outside the operations of ``fetches.FETCHES`` and ``changes.CHANGES`` pass
straight through. Errors (denied, missing, throttled after botocore's retries) make the step an
error step with AWS's error code as ``error.type``; the exception reaches the caller unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import provtrace
from provtrace import conventions as c
from provtrace.instrumentation import (
    LogScrubber,
    StepHandle,
    is_suppressed,
    remember_written,
    report_recording_error,
    taint,
)
from provtrace_instrumentation_botocore import aws, changes, fetches

Wrapped = Callable[..., Any]

# botocore logs request and response bodies (botocore.endpoint, botocore.parsers) and signed
# headers (botocore.auth) at DEBUG: withheld during secret-bearing calls, redacted always.
SCRUBBER = LogScrubber(
    ("botocore", "aiobotocore", "boto3"),
    frozenset({"botocore.endpoint", "botocore.parsers", "botocore.auth"}),
)


def make_api_call(wrapped: Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    SCRUBBER.refresh()
    if is_suppressed():
        return wrapped(*args, **kwargs)
    try:
        operation = str(args[0] if args else kwargs["operation_name"])
        params = args[1] if len(args) > 1 else kwargs.get("api_params", {})
        service = instance.meta.service_model.service_name
    except Exception as exc:  # noqa: BLE001 - recording never breaks the call
        report_recording_error("botocore call", exc)
        return wrapped(*args, **kwargs)
    key = (service, operation)
    fetch = fetches.FETCHES.get(key)
    if fetch is not None:
        return _fetch(fetch, service, operation, params, wrapped, instance, args, kwargs)
    change = changes.CHANGES.get(key)
    if change is not None:
        return _change(change, service, operation, params, wrapped, instance, args, kwargs)
    return wrapped(*args, **kwargs)


def _call(
    handle: StepHandle, what: str, wrapped: Wrapped, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Run the call with body-dumping logs withheld; an AWS error becomes the step's error.type."""
    try:
        with SCRUBBER.withholding(what):
            return wrapped(*args, **kwargs)
    except Exception as exc:
        with handle.recording("error"):
            handle.error_type = aws.error_code(exc)
            response = getattr(exc, "response", None)
            if isinstance(response, Mapping):
                for key, value in aws.metadata_attributes(response).items():
                    handle.set_attribute(key, value)
        raise


def _fetch(
    fetch: fetches.Fetch,
    service: str,
    operation: str,
    params: Mapping[str, Any],
    wrapped: Wrapped,
    instance: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    try:
        fetches.taint_request(fetch, params)
        ref = fetch.describe(params)
        attributes = aws.client_attributes(instance, operation)
        if service == "sts":
            attributes.update(fetches.issuance_attributes(operation, params))
        nhi, identity = aws.caller(instance)
        attributes.update(identity)
    except Exception as exc:  # noqa: BLE001
        report_recording_error("botocore fetch", exc)
        return wrapped(*args, **kwargs)
    with provtrace.secret_fetch(fetch.store, ref, nhi, attributes=attributes) as step:
        response = _call(step, f"{service}.{operation}", wrapped, args, kwargs)
        with step.recording("response"):
            for key, value in aws.metadata_attributes(response).items():
                step.set_attribute(key, value)
            fetch.absorb(fetches.Reading(fetch.store, step, nhi), response)
    return response


def _change(
    change: changes.Change,
    service: str,
    operation: str,
    params: Mapping[str, Any],
    wrapped: Wrapped,
    instance: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    try:
        if changes.taints_value(service, params):
            taint([params.get(name) for name in changes.VALUE_FIELDS])
        target = str(params.get(change.target_field, ""))
        attributes = aws.client_attributes(instance, operation)
        nhi, identity = aws.caller(instance)  # first: it taints the client's own credentials
        attributes.update(identity)
        attributes[c.SECRET_STORE] = change.store
        before = changes.version_before(instance, service, operation, params)
        if before is not None:
            attributes[c.CHANGE_BEFORE_VERSION] = before
        spec = provtrace.action(
            change.action_type,
            target=target,
            privileged=True,
            params=changes.action_params(service, operation, params),
            require=changes.GUARD.require,
            nhi=nhi,
            attributes=attributes,
        )
    except Exception as exc:  # noqa: BLE001
        report_recording_error("botocore change", exc)
        return wrapped(*args, **kwargs)
    with spec as act:
        response = _call(act, f"{service}.{operation}", wrapped, args, kwargs)
        with act.recording("change response"):
            for key, value in aws.metadata_attributes(response).items():
                act.set_attribute(key, value)
            name = response.get("Name")
            if isinstance(name, str) and name:
                target = name
                act.set_attribute(c.ACTION_TARGET, name)
            arn = response.get("ARN")
            if isinstance(arn, str):
                act.set_attribute(c.SECRET_ARN, arn)
            after = changes.version_after(service, operation, params, response)
            if service == "ssm":
                before = changes.ssm_version_before(after)
                if before is not None:
                    act.set_attribute(c.CHANGE_BEFORE_VERSION, before)
            stages = response.get("VersionStages") or (
                [params["VersionStage"]] if operation == "UpdateSecretVersionStage" else None
            )
            if isinstance(stages, list):
                act.set_attribute(c.SECRET_VERSION_STAGES, tuple(str(s) for s in stages))
            if after is not None:
                act.set_attribute(c.CHANGE_AFTER_VERSION, after)
                if change.action_type in (c.ACTION_SECRET_WRITE, c.ACTION_SECRET_ROTATE):
                    remember_written(act, change.store, target, after)
            act.record_change(
                before={"ref": target, "version": before}, after={"ref": target, "version": after}
            )
    return response
