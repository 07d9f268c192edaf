"""Releasing a quarantined segment: forward it with its original verdict, plus who and why.

The released spans are forwarded unchanged, so they still match the digests that the original
seal listed as withheld; a ``provenance.release`` span records the release, and a new seal from
the releasing process covers both.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from provtrace import conventions as c
from provtrace.clock import now_ns
from provtrace.config import build_settings
from provtrace.content import REDACTOR
from provtrace.errors import InputError
from provtrace.export.quarantine import Quarantine
from provtrace.integrity import random_span_id
from provtrace.model import SpanRecord
from provtrace.pipeline import Pipeline
from provtrace.records import end_after


def release_entry(
    store: Quarantine,
    entry_id: str,
    *,
    by: str,
    reason: str,
    endpoint: str | None = None,
    archive_dir: str | os.PathLike[str] | None = None,
    signing_key: str | None = None,
    timeout_s: float = 30.0,
) -> bool:
    """Forward one entry; True when it reached every destination (else it waits in the spool).

    The destination must be named (an endpoint, an archive directory, or both: nothing is sent
    anywhere by default) and the release seal is signed, with ``signing_key`` or the configured
    ``PROVTRACE_SIGNING_KEY``, so that it verifies like the stream it joins."""
    if endpoint is None and archive_dir is None:
        raise InputError("say where to forward the released evidence: --endpoint URL and/or --archive DIR")
    key = signing_key or os.environ.get("PROVTRACE_SIGNING_KEY")
    if not key:
        raise InputError(
            "a release is sealed and signed: give --signing-key FILE or set PROVTRACE_SIGNING_KEY"
        )
    entry = store.get(entry_id)
    altered = entry.altered()
    if altered:
        raise InputError(
            f"{entry_id} was modified after it was quarantined (span {', '.join(altered)}); "
            "refusing to release it"
        )
    if not entry.records:
        raise InputError(f"{entry_id} holds no spans (only a record of spans that never ended)")
    service = entry.records[0].service_name or "provtrace-release"
    settings, _ = build_settings(
        service_name=service,
        endpoint=endpoint,
        archive_dir=archive_dir,
        completeness=c.MODE_OFF,
        signing_key=key,
        quarantine_dir=store.directory,
    )
    # Only the destinations named here: neither the environment's endpoint nor a default archive.
    settings = dataclasses.replace(
        settings,
        endpoint=settings.endpoint if endpoint is not None else None,
        archive_dir=Path(archive_dir) if archive_dir is not None else None,
    )
    pipeline = Pipeline(settings, adopt_orphans=False)
    now = now_ns()
    release = SpanRecord(
        trace_id=entry.trace_id,
        span_id=random_span_id(),
        name=c.RELEASE_SPAN_NAME,
        start_ns=now,
        end_ns=end_after(now, now),
        attributes={
            c.RELEASE_BY: by,
            c.RELEASE_REASON: REDACTOR.text(reason),
            c.RELEASE_QUARANTINE_ID: entry.id,
            c.VIOLATION_CODES: tuple(entry.codes),
        },
        resource=pipeline.resource,
        scope_name=c.INSTRUMENTATION_NAME,
    )
    pipeline.emit_released([*entry.records, release], entry.codes)
    delivered = pipeline.shutdown(timeout_s)
    store.mark_released(entry.id, by=by, reason=REDACTOR.text(reason))
    return delivered
