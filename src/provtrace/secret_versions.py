"""Which action wrote which version of a secret, so that a later fetch of that version links to it.

A rotation is only trustworthy when the record shows that the new credential was written, read
back and validated: the write is an ``action``, the read a ``secret_fetch`` carrying a
``written_by`` link to that action, the validation a ``verification`` of the action. Versions
written in this process are remembered here (bounded, in memory) by store, reference and version.
"""

from __future__ import annotations

import collections
import threading

from opentelemetry.trace import Link, SpanContext

from provtrace import conventions as c
from provtrace.steps.base import StepHandle, links_mirror

MAX_REMEMBERED_VERSIONS = 4096

_lock = threading.Lock()
_writers: collections.OrderedDict[tuple[str, str, str], SpanContext] = collections.OrderedDict()


def add_link(handle: StepHandle, to: StepHandle | SpanContext, link_type: str) -> None:
    """Add a causal link to a running step (mirrored in ``provenance.links`` like the others)."""
    context = to.context if isinstance(to, StepHandle) else to
    if not handle.span.is_recording():
        return
    with handle.recording(link_type):
        attributes = {c.LINK_TYPE: link_type}
        handle.span.add_link(context, attributes)
        handle.links.append(Link(context, attributes))
        handle.span.set_attribute(c.LINKS_MIRROR, links_mirror(handle.links))


def remember_written(action: StepHandle, store: str, ref: str, version: str) -> None:
    """Note that ``action`` wrote ``version`` of the secret ``ref`` in ``store``."""
    key = (store, ref, str(version))
    with _lock:
        _writers[key] = action.context
        _writers.move_to_end(key)
        while len(_writers) > MAX_REMEMBERED_VERSIONS:
            _writers.popitem(last=False)


def link_written(fetch: StepHandle, store: str, ref: str, version: str) -> bool:
    """Link ``fetch`` to the action that wrote the version it read, if one did in this process."""
    with _lock:
        writer = _writers.get((store, ref, str(version)))
    if writer is None:
        return False
    add_link(fetch, writer, c.LINK_WRITTEN_BY)
    return True


def forget_written() -> None:
    with _lock:
        _writers.clear()
