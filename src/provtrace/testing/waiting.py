"""Bounded waiting for something that happens elsewhere (another thread, process or server)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], *, timeout_s: float = 60.0) -> T:
    """Poll ``probe`` until it returns something other than None, within a bounded time: the
    collector and Jaeger forward asynchronously, so arrival is observed, never assumed."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = probe()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.2)
