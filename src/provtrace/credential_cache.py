"""Who a credential belongs to, looked up once per credential and remembered.

Secret-store instrumentations record which identity made each fetch (a Vault token's accessor and
entity, an AWS key's caller ARN). Asking the store costs a request, so it is asked once per
credential, with instrumentation suppressed so the lookup is not itself recorded, and the answer
kept here under a SHA-256 of the credential: the cache never holds the credential itself.
"""

from __future__ import annotations

import collections
import hashlib
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from provtrace.steps.base import report_recording_error
from provtrace.suppression import suppressed

T = TypeVar("T")

DEFAULT_MAX_CREDENTIALS = 1024


class CredentialCache(Generic[T]):
    """A bounded map from credential to identity; the least recently used entry goes first."""

    def __init__(self, what: str, max_entries: int = DEFAULT_MAX_CREDENTIALS) -> None:
        self._what = what
        self._max = max_entries
        self._entries: collections.OrderedDict[str, T] = collections.OrderedDict()
        # Held during a lookup, so that concurrent first uses of a credential ask the store once.
        self._lock = threading.RLock()

    def get(self, credential: str, lookup: Callable[[], T]) -> T | None:
        """The identity of ``credential``, from ``lookup()`` the first time (run with
        instrumentation suppressed; its result is cached, a failure included, when it returns
        one). None when ``lookup`` raised: that is reported as a recording error, not cached."""
        key = _key(credential)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
            try:
                with suppressed():
                    value = lookup()
            except Exception as exc:  # noqa: BLE001 - a failed lookup never breaks the agent
                report_recording_error(f"{self._what} lookup", exc)
                return None
            self._store(key, value)
            return value

    def put(self, credential: str, value: T) -> None:
        """Remember an identity learnt without a lookup (from a login or AssumeRole response)."""
        with self._lock:
            self._store(_key(credential), value)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _store(self, key: str, value: T) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)


def _key(credential: str) -> str:
    return hashlib.sha256(credential.encode("utf-8", "surrogatepass")).hexdigest()
