"""Client methods wrapped as model calls, from one table of targets per instrumentation.

:func:`method`, :func:`async_method` and :func:`stream_manager` build the wrapt wrappers: an
instrumentation only says how to describe a call's request and how to read its answers.
:class:`Targets` applies them when the client's modules are imported, whatever the import order,
and removes exactly them again.

provtrace's wrapper goes innermost, right around the client's own method, even when another
instrumentation wrapped the method first: that instrumentation's span is then current when
provtrace runs, and becomes the step (see :mod:`provtrace.genai.calls`) rather than a second span
around or inside it. A wrapper that outlives ``uninstrument()`` (the clients cache bound methods,
for ``with_raw_response``) calls straight through.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any, cast

import wrapt

from provtrace.genai.calls import Request, Response, start
from provtrace.genai.streams import Answers, TracedStreamManager, areturned, returned
from provtrace.steps.base import report_recording_error

logger = logging.getLogger("provtrace")

Describe = Callable[[Any, Mapping[str, Any]], Request]  # (the resource instance, kwargs) -> Request
Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


def _request(describe: Describe, instance: Any, kwargs: Mapping[str, Any]) -> Request | None:
    try:
        return describe(instance, kwargs)
    except Exception as exc:  # noqa: BLE001 - recording never breaks the call
        report_recording_error("llm_call request", exc)
        return None


def method(describe: Describe, answers: Answers) -> Wrapper:
    """The wrapper of a synchronous client method that makes one model call."""

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        request = _request(describe, instance, kwargs)
        call = start(request) if request is not None else None
        if call is None or request is None:
            return wrapped(*args, **kwargs)
        try:
            with call.running():
                result = wrapped(*args, **kwargs)
        except BaseException as exc:
            call.fail(exc)
            raise
        return returned(call, request, result, answers)

    return wrapper


def async_method(describe: Describe, answers: Answers) -> Wrapper:
    """:func:`method` for a coroutine method of an async client."""

    async def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        request = _request(describe, instance, kwargs)
        call = start(request) if request is not None else None
        if call is None or request is None:
            return await wrapped(*args, **kwargs)
        try:
            with call.running():
                result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            call.fail(exc)
            raise
        return await areturned(call, request, result, answers)

    return wrapper


def stream_manager(describe: Describe, final: Callable[[Any], Response | None]) -> Wrapper:
    """The wrapper of a method returning a stream manager (sync or async): the step spans the
    manager's ``with`` block, and ``final`` reads the answer from the manager's stream."""

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        manager = wrapped(*args, **kwargs)
        request = _request(describe, instance, kwargs)
        if request is None:
            return manager
        return TracedStreamManager(manager, request, final)

    return wrapper


@dataclasses.dataclass(frozen=True)
class Target:
    """One method to wrap: ``module`` and ``Class.method`` in it."""

    module: str
    attribute: str
    wrapper: Wrapper

    def owner(self, module: ModuleType) -> tuple[Any, str]:
        prefix, _, name = self.attribute.rpartition(".")
        owner: Any = module
        for part in prefix.split(".") if prefix else ():
            owner = getattr(owner, part)
        return owner, name


class Targets:
    """The wrapped methods of one instrumentor.

    Post-import hooks cannot be unregistered: each applies only while the generation it was
    registered in is current, and :meth:`uninstrument` starts a new generation.
    """

    def __init__(self, targets: Sequence[Target]) -> None:
        self.targets = tuple(targets)
        self._lock = threading.Lock()
        self._generation = 0
        self._active = False
        self._applied: dict[Target, wrapt.FunctionWrapper[..., Any]] = {}

    @property
    def active(self) -> bool:
        return self._active

    def instrument(self) -> None:
        with self._lock:
            self._active = True
            generation = self._generation
        for target in self.targets:
            wrapt.register_post_import_hook(functools.partial(self._wrap, target, generation), target.module)

    def uninstrument(self) -> None:
        with self._lock:
            self._active = False
            self._generation += 1
            for target, applied in list(self._applied.items()):
                module = sys.modules.get(target.module)
                if module is not None:
                    unwrap_applied(*target.owner(module), applied)
                del self._applied[target]

    def _gated(self, wrapper: Wrapper) -> Wrapper:
        def gated(
            wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> Any:
            if not self._active:
                return wrapped(*args, **kwargs)
            return wrapper(wrapped, instance, args, kwargs)

        return gated

    def _wrap(self, target: Target, generation: int, module: ModuleType) -> None:
        """Runs inside the application's import statement: logs, never raises."""
        with self._lock:
            if generation != self._generation or target in self._applied:
                return
            try:
                owner, name = target.owner(module)
                self._applied[target] = wrap_innermost(owner, name, self._gated(target.wrapper))
            except Exception:
                logger.warning(
                    "provtrace could not instrument %s.%s", target.module, target.attribute, exc_info=True
                )


def wrap_innermost(owner: Any, name: str, wrapper: Wrapper) -> wrapt.FunctionWrapper[..., Any]:
    """Wrap ``owner.name`` right around the original method, beneath any wrapt wrappers that
    other instrumentations put on it already; returns the wrapper made."""
    current = vars(owner).get(name) if isinstance(owner, type) else None
    parent: wrapt.FunctionWrapper[..., Any] | None = None
    node = current
    while isinstance(node, wrapt.FunctionWrapper):
        parent, node = node, node.__wrapped__
    if parent is None:
        wrapt.wrap_function_wrapper(owner, name, wrapper)
        made: wrapt.FunctionWrapper[..., Any] = (
            vars(owner)[name] if isinstance(owner, type) else getattr(owner, name)
        )
        return made
    made = wrapt.FunctionWrapper(cast(Callable[..., Any], node), wrapper)
    parent.__wrapped__ = made
    return made


def unwrap_applied(owner: Any, name: str, applied: wrapt.FunctionWrapper[..., Any]) -> None:
    """Take ``applied`` out of the chain of wrappers on ``owner.name``, wherever it sits now."""
    parent: wrapt.FunctionWrapper[..., Any] | None = None
    node = vars(owner).get(name) if isinstance(owner, type) else getattr(owner, name, None)
    while isinstance(node, wrapt.FunctionWrapper):
        if node is applied:
            if parent is None:
                setattr(owner, name, node.__wrapped__)
            else:
                parent.__wrapped__ = node.__wrapped__
            return
        parent, node = node, node.__wrapped__
