"""``opentelemetry-instrument python app.py`` configures provtrace from the environment alone.

``opentelemetry-instrument`` loads one distro (entry point group ``opentelemetry_distro``, chosen
by ``OTEL_PYTHON_DISTRO``, else the first found) and one configurator (``opentelemetry_configurator``,
chosen by ``OTEL_PYTHON_CONFIGURATOR``, else the first found), then the instrumentations. provtrace
registers both under the name ``provtrace``, and either one is enough:

- the configurator calls ``provtrace.configure()`` with no arguments, so ``OTEL_SERVICE_NAME``,
  ``OTEL_EXPORTER_OTLP_ENDPOINT`` and ``PROVTRACE_*`` decide everything; provtrace's own tracer
  provider becomes the global one;
- the distro makes provtrace's configurator the default choice, and when another configurator was
  chosen on purpose (opentelemetry-distro's, for its metrics and logs exporters) configures
  provtrace right after it, on top of the tracer provider that one installed, before the first
  instrumentation is turned on.

Configuration happens at most once per process and never breaks the application: an invalid
setting is logged as one ERROR naming it, and the program runs without provenance (its first step
says so once, and guarded actions are refused). The pipeline is shut down, and what it buffered
delivered, when the interpreter exits.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from importlib.metadata import EntryPoint
from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]
from opentelemetry.instrumentation.environment_variables import OTEL_PYTHON_CONFIGURATOR

from provtrace.content import REDACTOR
from provtrace.errors import ProvtraceError

logger = logging.getLogger("provtrace")

ENTRY_POINT_NAME = "provtrace"  # under both groups, in pyproject.toml

_lock = threading.Lock()
_attempted = False


def configure_from_environment() -> None:
    """``provtrace.configure()`` from the environment, the first time only; never raises."""
    global _attempted  # noqa: PLW0603 - once per process, by design
    with _lock:
        if _attempted:
            return
        _attempted = True
    from provtrace import config

    if config.current() is not None:
        return
    try:
        handle = config.configure()
    except ProvtraceError as exc:
        logger.error(
            "provtrace is not recording: its configuration from the environment (PROVTRACE_*, "
            "OTEL_*) is invalid: %s; the application runs without provenance and guarded actions "
            "are refused until this is fixed",
            REDACTOR.text(str(exc)),
        )
        return
    except Exception as exc:  # noqa: BLE001 - the application must start whatever went wrong
        logger.error(
            "provtrace is not recording: it could not start from the environment: %s: %s",
            type(exc).__name__,
            REDACTOR.text(str(exc)),
        )
        return
    atexit.register(handle.shutdown)


class ProvtraceConfigurator:
    """The ``opentelemetry_configurator`` entry point: configures provtrace, not the SDK's own
    exporters (provtrace seals and delivers every span of its tracer provider itself)."""

    def configure(self, **kwargs: Any) -> None:
        configure_from_environment()


class ProvtraceDistro(BaseDistro):  # type: ignore[misc]
    """The ``opentelemetry_distro`` entry point: provtrace's configurator by default, and provtrace
    configured even when another configurator ran."""

    def _configure(self, **kwargs: Any) -> None:
        os.environ.setdefault(OTEL_PYTHON_CONFIGURATOR, ENTRY_POINT_NAME)

    def load_instrumentor(self, entry_point: EntryPoint, **kwargs: Any) -> None:
        configure_from_environment()  # runs after the configurator, whichever it was
        super().load_instrumentor(entry_point, **kwargs)
