"""The one span model every stage after the processor works on.

Spans become immutable records when they end; sealing, spooling, the archive, OTLP export,
quarantine and every reader (archive files, Jaeger) speak this model, so a digest computed in the
agent can be recomputed from anything read back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Union

from provtrace import conventions as c

Scalar = Union[str, bool, int, float]  # noqa: UP007 - a runtime alias on Python 3.10
AttrValue = Union[Scalar, tuple[Scalar, ...]]  # noqa: UP007
Attributes = Mapping[str, AttrValue]

# OTLP span kinds and status codes (opentelemetry-proto trace.proto).
KIND_UNSPECIFIED = 0
KIND_INTERNAL = 1
KIND_SERVER = 2
KIND_CLIENT = 3
KIND_PRODUCER = 4
KIND_CONSUMER = 5
STATUS_UNSET = 0
STATUS_OK = 1
STATUS_ERROR = 2


@dataclasses.dataclass(frozen=True)
class EventRecord:
    name: str
    time_ns: int
    attributes: Attributes = dataclasses.field(default_factory=dict)
    dropped_attributes: int = 0


@dataclasses.dataclass(frozen=True)
class LinkRecord:
    trace_id: str
    span_id: str
    attributes: Attributes = dataclasses.field(default_factory=dict)
    trace_state: str = ""
    dropped_attributes: int = 0

    @property
    def link_type(self) -> str | None:
        value = self.attributes.get(c.LINK_TYPE)
        return value if isinstance(value, str) else None


@dataclasses.dataclass(frozen=True)
class SpanRecord:
    """An ended span as provtrace exports it. Ids are lowercase hex, times integer nanoseconds."""

    trace_id: str
    span_id: str
    name: str
    start_ns: int
    end_ns: int
    parent_span_id: str = ""
    kind: int = KIND_INTERNAL
    status_code: int = STATUS_UNSET
    status_message: str = ""
    attributes: Attributes = dataclasses.field(default_factory=dict)
    events: tuple[EventRecord, ...] = ()
    links: tuple[LinkRecord, ...] = ()
    resource: Attributes = dataclasses.field(default_factory=dict)
    scope_name: str = ""
    scope_version: str = ""
    trace_state: str = ""
    parent_is_remote: bool = False
    dropped_attributes: int = 0
    dropped_events: int = 0
    dropped_links: int = 0

    @property
    def service_name(self) -> str:
        value = self.resource.get(c.SERVICE_NAME, "")
        return value if isinstance(value, str) else str(value)

    @property
    def step(self) -> str | None:
        value = self.attributes.get(c.STEP)
        return value if isinstance(value, str) else None

    @property
    def is_seal(self) -> bool:
        return self.name == c.SEAL_SPAN_NAME and c.SEAL_STREAM in self.attributes

    @property
    def is_anchor(self) -> bool:
        """A checkpoint or time-stamp span: evidence that authenticates itself (a signed note, a
        TSA signature), so no seal covers it."""
        return self.name in (c.CHECKPOINT_SPAN_NAME, c.TIMESTAMP_SPAN_NAME)

    def attr_str(self, key: str) -> str | None:
        value = self.attributes.get(key)
        return value if isinstance(value, str) else None

    def attr_int(self, key: str, default: int = -1) -> int:
        value = self.attributes.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else default

    def attr_strings(self, key: str) -> tuple[str, ...]:
        value = self.attributes.get(key, ())
        return tuple(str(v) for v in value) if isinstance(value, tuple) else ()

    def links_of(self, link_type: str) -> list[LinkRecord]:
        return [link for link in self.links if link.link_type == link_type]


def freeze_attributes(attributes: Mapping[str, object] | None) -> dict[str, AttrValue]:
    """Copy OTel attribute values into the record's immutable value types."""
    out: dict[str, AttrValue] = {}
    for key, value in (attributes or {}).items():
        if isinstance(value, (str, bool, int, float)):
            out[key] = value
        elif isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
            out[key] = tuple(v for v in value if isinstance(v, (str, bool, int, float)))
    return out
