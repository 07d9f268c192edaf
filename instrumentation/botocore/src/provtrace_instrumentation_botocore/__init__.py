"""provtrace auto-instrumentation for botocore (and so boto3): AWS Secrets Manager, SSM Parameter
Store and STS.

Secret reads become ``secret_fetch`` steps (which secret, which version and stages, as which
caller identity; values tainted for redaction, never recorded), STS credential issuance a
``secret_fetch`` whose secret is the issued credential, and secret changes privileged ``action``
steps::

    import provtrace

    provtrace.configure(service_name="secops-agent")
    provtrace.instrument()  # or run the agent under `opentelemetry-instrument`

One wrap of ``BaseClient._make_api_call`` covers every client, including clients created before
instrumenting. While instrumented, botocore's own log records are redacted, and those that dump
request or response bodies are withheld during secret-bearing calls. See ``fetches`` and
``changes`` for what each operation records.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from provtrace.instrumentation import Patches, Target
from provtrace_instrumentation_botocore import calls, changes
from provtrace_instrumentation_botocore.changes import action_params
from provtrace_instrumentation_botocore.package import _instruments
from provtrace_instrumentation_botocore.version import __version__

__all__ = ["BotocoreInstrumentor", "__version__", "action_params"]

_PATCHES = Patches([Target("botocore.client", "BaseClient._make_api_call", calls.make_api_call)])


class BotocoreInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Wraps ``BaseClient._make_api_call`` and scrubs botocore's logs; ``uninstrument()`` undoes both.

    ``instrument(require=("policy", "approval"))`` makes every instrumented secret change a
    guarded action: refused before the request is sent unless the decision holds the evidence.
    Spans are recorded through the provtrace configuration in force, so a ``tracer_provider``
    passed to ``instrument()`` is accepted and not otherwise used.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        changes.GUARD.require = tuple(kwargs.get("require") or ())
        calls.SCRUBBER.install()
        _PATCHES.apply()

    def _uninstrument(self, **kwargs: Any) -> None:
        _PATCHES.remove()
        calls.SCRUBBER.uninstall()
        changes.GUARD.require = ()
