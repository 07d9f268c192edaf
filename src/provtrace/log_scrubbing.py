"""Keeping an instrumented library's own log records free of secret values.

Some libraries log request and response bodies at DEBUG (botocore logs a GetSecretValue response,
SecretString included, before the caller even sees it). While its instrumentation is on, a
:class:`LogScrubber` sits on every logger of the library:

- every record's message is redacted (tainted secret values and credential shapes removed);
- while the instrumentation has a secret-bearing call in flight (:meth:`LogScrubber.withholding`),
  records of the loggers known to dump bodies are replaced by a one-line notice, because the
  secret they carry was not fetched yet when they were written, so redaction cannot know it.

A logging filter applies only to records created on the logger it is attached to, not on its
children, so the scrubber attaches to each logger under the library's prefix, and
:meth:`LogScrubber.refresh` picks up loggers the library created later.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
from collections.abc import Iterator

from provtrace.content import REDACTOR


class LogScrubber(logging.Filter):
    """Redacts (and, during secret-bearing calls, withholds) the log records of one library."""

    def __init__(self, prefixes: tuple[str, ...], withheld: frozenset[str]) -> None:
        super().__init__()
        self._prefixes = prefixes
        self._withheld = withheld
        self._in_flight: contextvars.ContextVar[str | None] = contextvars.ContextVar(
            f"provtrace_withholding_{id(self)}", default=None
        )
        self._lock = threading.Lock()
        self._attached: list[logging.Logger] = []
        self._known = -1
        self._installed = False

    def install(self) -> None:
        with self._lock:
            self._installed = True
        self.refresh()

    def uninstall(self) -> None:
        with self._lock:
            self._installed = False
            attached, self._attached = self._attached, []
            self._known = -1
        for log in attached:
            log.removeFilter(self)

    def refresh(self) -> None:
        """Attach to the library's loggers created since the last call (cheap when none were)."""
        registry = logging.Logger.manager.loggerDict
        if len(registry) == self._known:
            return
        with self._lock:
            if not self._installed:
                return
            self._known = len(registry)
            for name, log in list(registry.items()):
                if isinstance(log, logging.Logger) and self._covers(name) and log not in self._attached:
                    log.addFilter(self)
                    self._attached.append(log)

    @contextlib.contextmanager
    def withholding(self, what: str) -> Iterator[None]:
        """While the block runs, body-dumping records are replaced by a notice naming ``what``."""
        token = self._in_flight.set(what)
        try:
            yield
        finally:
            self._in_flight.reset(token)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._covers(record.name):
            return True
        what = self._in_flight.get()
        if what is not None and record.name in self._withheld:
            record.msg = f"[provtrace withheld this record: logged during {what}, it may hold secret values]"
            record.args = ()
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a record that cannot format is the library's business
            return True
        cleaned = REDACTOR.text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True

    def _covers(self, name: str) -> bool:
        return any(name == prefix or name.startswith(prefix + ".") for prefix in self._prefixes)
