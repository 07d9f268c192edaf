"""``secret_fetch``: which secret an identity used, by reference; its value is tainted, never kept.

Every value a secret fetch returns is registered with the redactor, so it is removed from any
content recorded later in this process, and the processor flags it if it reaches a span anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from provtrace import conventions as c
from provtrace.content import SECRETS
from provtrace.steps.base import Refs, StepHandle, StepSpec, _OutputStream
from provtrace.steps.scope import DecisionState

T = TypeVar("T")


class SecretFetch(StepHandle):
    step = c.STEP_SECRET_FETCH

    def record_value(self, value: T, *, version: str | None = None) -> T:
        """Taint the fetched value for redaction and return it unchanged; nothing of it is
        recorded (not even a digest, which would let a short secret be guessed)."""
        with self.recording("taint"):
            SECRETS.add(value)
        if version is not None:
            self.set_version(version)
        return value

    def set_version(self, version: Any) -> None:
        with self.recording("version"):
            self.span.set_attribute(c.SECRET_VERSION, str(version))

    def record_input(self, value: Any) -> str:
        """Inputs of a secret fetch (often credentials) are never recorded."""
        return ""

    def record_output(self, value: Any) -> str:
        """The output of a secret fetch is the secret: it is tainted, not recorded."""
        self.record_value(value)
        return ""


class _TaintingStream(_OutputStream):
    def add(self, item: Any) -> None:
        SECRETS.add(item)

    def finish(self) -> None:
        return None


class SecretFetchSpec(StepSpec[SecretFetch]):
    """A secret read: ``with provtrace.secret_fetch(store="vault", ref="kv/x", nhi="svc") as s:``
    then ``token = s.record_value(read())``. As a decorator the return value is the secret."""

    handle_type = SecretFetch
    step = c.STEP_SECRET_FETCH

    def __init__(
        self,
        store: str,
        ref: str,
        nhi: str | None = None,
        *,
        version: str | None = None,
        actor: str | None = None,
        triggered_by: Refs = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(actor=actor, nhi=nhi, triggered_by=triggered_by, attributes=attributes)
        self.store = store
        self.ref = ref
        self.version = version

    def span_name(self) -> str:
        return f"secret_fetch {self.store}"

    def step_attributes(self, decision: DecisionState | None) -> dict[str, Any]:
        attributes: dict[str, Any] = {c.SECRET_STORE: self.store, c.SECRET_REF: self.ref}
        if self.version is not None:
            attributes[c.SECRET_VERSION] = str(self.version)
        return attributes

    def stream_collector(self, handle: SecretFetch) -> _OutputStream:
        return _TaintingStream(handle)


secret_fetch = SecretFetchSpec
