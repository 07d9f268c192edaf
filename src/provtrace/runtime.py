"""The small interface the recording API needs from a configured provtrace, and where it is.

Steps, the guard and instrumentations depend on this module only, not on ``config``, the
pipeline or the export stack: ``configure()`` installs a runtime (the handle it returns) and
``shutdown()`` removes it. Recording before ``configure()`` finds no runtime, which the steps
report once and the guard refuses.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer, TracerProvider

    from provtrace.content import CapturePolicy


@dataclasses.dataclass(frozen=True)
class Health:
    """Whether evidence recorded now would be persisted, and if not, why (``problems``); and what
    is wrong further on, which does not stop it being persisted (``warnings``: delivery failing,
    segments refused by a destination, journals adopted from ended processes not yet delivered)."""

    ok: bool
    problems: tuple[str, ...]
    warnings: tuple[str, ...] = ()

    @property
    def degraded(self) -> bool:
        """Not everything recorded is reaching its destinations (or could not be persisted)."""
        return not self.ok or bool(self.warnings)


class Runtime(Protocol):
    """What a configured provtrace offers the code that records evidence."""

    @property
    def tracer(self) -> Tracer: ...

    @property
    def tracer_provider(self) -> TracerProvider: ...

    @property
    def capture(self) -> CapturePolicy: ...

    @property
    def counters(self) -> Mapping[str, int]: ...

    def health(self) -> Health: ...

    def count(self, name: str, amount: int = 1) -> None:
        """Add to one of the pipeline's counters (see provtrace.counters)."""

    def recording_error(self, what: str, exc: BaseException) -> None:
        """Log and count an internal error in recording; never raises."""

    def note_unrecorded(self, step: str) -> None:
        """A step ran but its span is not recorded by the tracer provider."""

    def seals(self, span_id: int) -> bool:
        """Whether the span with this id is being recorded and will be sealed as evidence."""


_lock = threading.Lock()
_current: Runtime | None = None


def current() -> Runtime | None:
    return _current


def install(runtime: Runtime) -> Runtime | None:
    """Make ``runtime`` the active one; returns the one it replaces."""
    global _current
    with _lock:
        previous, _current = _current, runtime
    return previous


def uninstall(runtime: Runtime) -> None:
    """Remove ``runtime`` if it is still the active one."""
    global _current  # noqa: PLW0603
    with _lock:
        if _current is runtime:
            _current = None


def reset_after_fork() -> None:
    """A lock held by another thread at fork time would never be released in the child."""
    global _lock  # noqa: PLW0603
    _lock = threading.Lock()
