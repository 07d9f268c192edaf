"""Wrapping a library's functions so that an instrumentation can be switched on and off cleanly.

An instrumentation names what it wraps as targets (:class:`Target`); :class:`Patches` wraps each one
with wrapt when its module is imported (at once if it already is, whatever the import order) and
``remove()`` undoes them. Two things make that symmetric even in awkward cases:

- post-import hooks cannot be unregistered, so each hook applies only while the generation it was
  registered in is current, and ``remove()`` starts a new generation;
- when another instrumentation wrapped the same function after this one (OpenTelemetry's botocore
  instrumentation and provtrace's both wrap ``BaseClient._make_api_call``), unwrapping would
  remove the other's wrapper too; this one is then left in place but inert, passing every call
  straight through.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

logger = logging.getLogger("provtrace")

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


@dataclasses.dataclass(frozen=True)
class Target:
    """One attribute to wrap: a module function (``"function"``) or a method (``"Class.method"``),
    with a wrapt-style wrapper ``wrapper(wrapped, instance, args, kwargs)``."""

    module: str
    attribute: str
    wrapper: Wrapper


@dataclasses.dataclass
class _Applied:
    owner: Any
    name: str
    proxy: Any
    had_own: bool  # whether the attribute was defined on the owner itself (not inherited)


class Patches:
    """The wraps of one instrumentation: ``apply()`` when instrumenting, ``remove()`` when not."""

    def __init__(self, targets: Sequence[Target]) -> None:
        self._targets = tuple(targets)
        self._lock = threading.Lock()
        self._generation = 0
        self._applied: list[_Applied] = []

    def apply(self) -> None:
        import wrapt

        with self._lock:
            generation = self._generation
        for target in self._targets:
            wrapt.register_post_import_hook(functools.partial(self._wrap, target, generation), target.module)

    def remove(self) -> None:
        with self._lock:
            self._generation += 1
            applied, self._applied = self._applied, []
        for entry in reversed(applied):
            if vars(entry.owner).get(entry.name) is not entry.proxy:
                continue  # wrapped again on top of ours: left in place, inert
            if entry.had_own:
                setattr(entry.owner, entry.name, entry.proxy.__wrapped__)
            else:
                delattr(entry.owner, entry.name)

    def _wrap(self, target: Target, generation: int, module: ModuleType) -> None:
        """Runs inside the application's import statement: logs, never raises."""
        import wrapt

        with self._lock:
            if generation != self._generation:
                return
            try:
                owner: Any = module
                *path, name = target.attribute.split(".")
                for part in path:
                    owner = getattr(owner, part)
                had_own = name in vars(owner)
                guarded = functools.partial(self._guarded, target.wrapper, generation)
                proxy = wrapt.wrap_function_wrapper(owner, name, guarded)
                self._applied.append(_Applied(owner, name, proxy, had_own))
            except Exception:
                logger.warning(
                    "provtrace could not instrument %s.%s", target.module, target.attribute, exc_info=True
                )

    def _guarded(
        self,
        wrapper: Wrapper,
        generation: int,
        wrapped: Callable[..., Any],
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        if generation != self._generation:
            return wrapped(*args, **kwargs)
        return wrapper(wrapped, instance, args, kwargs)
