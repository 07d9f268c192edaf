"""The interface between the delivery worker and a destination."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class SinkError(Exception):
    """A destination did not accept a batch; the spool keeps it and delivery retries."""


class Sink(Protocol):
    name: str

    def send(self, lines: Sequence[str]) -> None:
        """Deliver OTLP/JSON lines (one sealed segment each) or raise :class:`SinkError`."""

    def close(self) -> None: ...
