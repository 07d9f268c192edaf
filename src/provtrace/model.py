"""The one span model every stage after the processor works on.

Spans become immutable records when they end; sealing, spooling, the archive, OTLP export,
quarantine and every reader (archive files, Jaeger) speak this model, so a digest computed in the
agent can be recomputed from anything read back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Union

from provtrace import conventions as c

Scalar = Union[str, bool, int, float]  # noqa: UP007 - a runtime alias on Python 3.10
# Every value OTLP's AnyValue can hold: None is the empty value, bytes are bytes, arrays are tuples
# (nested, mixed, holding None), mappings are ``AttrMap``.
AttrValue = Union[Scalar, bytes, None, tuple["AttrValue", ...], "AttrMap"]
Attributes = Mapping[str, AttrValue]

# Values nested deeper than this, and integers outside OTLP's int64, are not kept (see
# ``freeze_attributes``); every reader refuses them, so whatever provtrace writes it can read back.
MAX_VALUE_DEPTH = 32
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


class AttrMap(Mapping[str, AttrValue]):
    """An immutable, hashable mapping value (OTLP ``kvlistValue``); keeps its key order for
    encoding, compares and digests regardless of it (a kvlist is a map)."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, AttrValue] | Iterable[tuple[str, AttrValue]] = ()) -> None:
        self._items: dict[str, AttrValue] = dict(items)

    def __getitem__(self, key: str) -> AttrValue:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(frozenset(self._items.items()))

    def __repr__(self) -> str:
        return f"AttrMap({self._items!r})"


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


class ValueNotKept(ValueError):
    """An attribute value OTLP cannot carry: nested deeper than ``MAX_VALUE_DEPTH``, or an
    integer outside int64."""


def freeze_value(value: object, depth: int = 0) -> AttrValue:
    """One OTel attribute value (any ``AnyValue``) as the record's immutable value type, with
    exact built-in types (an ``IntEnum`` becomes its int, a ``str`` subclass its text). A value
    outside ``AnyValue`` becomes its text, as the OTel SDK does."""
    if value is None or type(value) in _EXACT:
        return value  # type: ignore[return-value]
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueNotKept("an integer attribute value is outside OTLP's 64-bit range")
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if depth >= MAX_VALUE_DEPTH and isinstance(value, (Sequence, Mapping)):
        raise ValueNotKept(f"an attribute value is nested deeper than {MAX_VALUE_DEPTH} levels")
    if isinstance(value, Sequence):
        return tuple(freeze_value(item, depth + 1) for item in value)
    if isinstance(value, Mapping):
        return AttrMap((str(key), freeze_value(item, depth + 1)) for key, item in value.items())
    return str(value)


_EXACT = frozenset({str, bool, float, bytes})


def _as_dict(attributes: Mapping[str, object] | None) -> Mapping[str, object]:
    """The SDK's ``BoundedAttributes`` iterates key by key in Python (a lookup, under its lock,
    per key); its ``copy()`` is the dict inside, copied in C."""
    if attributes is None or type(attributes) is dict:
        return attributes or {}
    copy = getattr(attributes, "copy", None)
    copied = copy() if callable(copy) else None
    return copied if type(copied) is dict else attributes


def freeze_attributes(
    attributes: Mapping[str, object] | None, *, dropped: list[str] | None = None
) -> dict[str, AttrValue]:
    """Copy OTel attribute values into the record's immutable value types. Every ``AnyValue`` is
    kept; one that OTLP cannot carry (``ValueNotKept``) is left out and its key added to
    ``dropped``, so that the caller counts it as a dropped attribute (``ATTR-DROPPED``)."""
    out: dict[str, AttrValue] = {}
    for key, value in _as_dict(attributes).items():
        if type(value) in _EXACT:  # most values: kept as they are, without a call
            out[key] = value  # type: ignore[assignment]
            continue
        try:
            out[key] = freeze_value(value)
        except ValueNotKept:
            if dropped is None:
                raise
            dropped.append(key)
    return out
