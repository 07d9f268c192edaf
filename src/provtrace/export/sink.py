"""The interface between the delivery worker and a destination."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from provtrace.errors import ProvtraceError


class SinkError(ProvtraceError):
    """A destination did not accept a batch; the spool keeps it and delivery retries.

    ``retry_after_s`` is the wait the destination asked for (an HTTP ``Retry-After``), when it
    named one; the deliverer should not retry sooner (and may cap what it honours).
    """

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PermanentSinkError(SinkError):
    """The destination refused the batch in a way that retrying the same bytes will not change
    (a malformed or oversized request, a rejected span, an endpoint that is not OTLP). The
    segments stay in the spool; moving them aside for inspection is the deliverer's decision."""


class SinkAuthError(SinkError):
    """The destination refused provtrace itself, not the batch: its credentials (HTTP 401/403:
    a missing, wrong or expired bearer token) or its TLS identity (a collector certificate the
    configured CA does not vouch for, a client certificate the collector does not accept).

    A configuration error: any batch would be refused the same way, so setting the batch aside
    would discard good evidence. The segments stay in the spool, ``health()`` is degraded and
    delivery retries at its longest backoff, so a fixed collector (a rotated token) is picked up
    without a restart."""


class Sink(Protocol):
    name: str

    def send(self, lines: Sequence[str]) -> None:
        """Deliver OTLP/JSON lines (one sealed segment each) or raise :class:`SinkError`."""

    def close(self) -> None: ...
