"""provtrace auto-instrumentation for hvac, the HashiCorp Vault / OpenBao client.

Every secret read becomes a ``secret_fetch`` step (which secret, which version, which lease, as
which identity; the value is tainted for redaction and never recorded), every auth login and token
creation a ``secret_fetch`` whose secret is the issued credential, and every KV write or delete a
privileged ``action``; each Vault request carries a ``traceparent`` header for the audit log::

    import provtrace

    provtrace.configure(service_name="secops-agent")
    provtrace.instrument()  # or run the agent under `opentelemetry-instrument`

The wrapped methods are class attributes, so clients made before instrumenting are covered. See
``reads``, ``issuance`` and ``changes`` for what each operation records.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from provtrace.instrumentation import Patches, Target
from provtrace_instrumentation_hvac import changes, headers, issuance, reads
from provtrace_instrumentation_hvac.changes import action_params
from provtrace_instrumentation_hvac.package import _instruments
from provtrace_instrumentation_hvac.version import __version__

__all__ = ["HvacInstrumentor", "__version__", "action_params"]

_PATCHES = Patches(
    [
        Target(module, attribute, wrapper)
        for module, attribute, wrapper in (
            *headers.targets(),
            *reads.targets(),
            *issuance.targets(),
            *changes.targets(),
        )
    ]
)


class HvacInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Wraps hvac's reads, logins, KV changes and its HTTP adapter; ``uninstrument()`` undoes it.

    ``instrument(require=("policy", "approval"))`` makes every instrumented secret change a
    guarded action: refused before the request is sent unless the decision holds the evidence.
    Spans are recorded through the provtrace configuration in force, so a ``tracer_provider``
    passed to ``instrument()`` is accepted and not otherwise used.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        changes.GUARD.require = tuple(kwargs.get("require") or ())
        _PATCHES.apply()

    def _uninstrument(self, **kwargs: Any) -> None:
        _PATCHES.remove()
        changes.GUARD.require = ()
