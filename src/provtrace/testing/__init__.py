"""provtrace's pytest plugin: the test tooling of the SDK and of every instrumentation package.

Load it explicitly, in the conftest.py at the root of a test run::

    pytest_plugins = ["provtrace.testing"]

(or ``-p provtrace.testing`` in ``addopts``). It is deliberately not a ``pytest11`` entry point:
installing provtrace must not change the test runs of every application that depends on it.

Fixtures (see docs/testing.md):

- ``recorded``: provtrace configured into a temporary home, with an in-memory view of its spans
  (:class:`Recorded`; ``recorded.archive`` reads back what it delivered);
- ``unconfigured``: a process in which ``provtrace.configure()`` was never called;
- ``canaries``: a :class:`CanaryScan` of every byte provtrace wrote under the homes it watches and
  of the log text captured meanwhile, for a value and its encodings;
- ``evidence_stack`` (once per session) and ``stack_agent``: the real OpenTelemetry Collector and
  Jaeger on free loopback ports, and a provtrace sending to them (:class:`Agent`);
- the real servers the instrumentations talk to, on free loopback ports: ``openbao`` (once per
  session, :class:`OpenBao`), ``moto_server`` (once per session, moto in server mode: its URL)
  and ``model_server`` (the local model server of :mod:`provtrace.testing.llm_server`).

For every test it also points ``PROVTRACE_HOME`` at a temporary directory (nothing reaches the
real one) and forgets the secret values fetched during the test.

The names below are the plugin's helpers, and the read side of the records (``SpanRecord`` and
its kinds and status codes) that tests check; instrumentation tests import them from here.
Importing this package needs provtrace's own dependencies only: moto, starlette and uvicorn are
imported by the fixtures that start their servers (and by ``provtrace.testing.llm_server``).
"""

from __future__ import annotations

from provtrace.integrity import write_key_pair
from provtrace.model import (
    KIND_CLIENT,
    KIND_INTERNAL,
    KIND_SERVER,
    STATUS_ERROR,
    STATUS_OK,
    STATUS_UNSET,
    SpanRecord,
)
from provtrace.testing.archive import Archive
from provtrace.testing.canary import CanaryScan, encodings
from provtrace.testing.evidence import (
    Agent,
    archived,
    in_jaeger,
    jaeger_v1,
    jaeger_v3,
    stack_required,
    wait_for_spans,
)
from provtrace.testing.openbao import OpenBao, OpenBaoError
from provtrace.testing.programs import run_python
from provtrace.testing.recording import Recorded, forget_secrets, instrumented, make_recorded, unconfigure
from provtrace.testing.spans import assert_never_recorded, attrs, content, triggered_by
from provtrace.testing.stack import Stack, StackError
from provtrace.testing.waiting import wait_for

# The fixtures and hooks (a plugin module may load further plugins by name).
pytest_plugins = ["provtrace.testing.fixtures"]

__all__ = [
    "KIND_CLIENT",
    "KIND_INTERNAL",
    "KIND_SERVER",
    "STATUS_ERROR",
    "STATUS_OK",
    "STATUS_UNSET",
    "Agent",
    "Archive",
    "CanaryScan",
    "OpenBao",
    "OpenBaoError",
    "Recorded",
    "SpanRecord",
    "Stack",
    "StackError",
    "archived",
    "assert_never_recorded",
    "attrs",
    "content",
    "encodings",
    "forget_secrets",
    "in_jaeger",
    "instrumented",
    "jaeger_v1",
    "jaeger_v3",
    "make_recorded",
    "run_python",
    "stack_required",
    "triggered_by",
    "unconfigure",
    "wait_for",
    "wait_for_spans",
    "write_key_pair",
]
