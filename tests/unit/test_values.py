"""Every attribute value the OTel SDK accepts (OTLP's AnyValue) is kept, encoded as the Collector
writes it, read back and digested by its type."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.trace import Link, SpanContext

import provtrace
from provtrace import conventions as c
from provtrace.cli.main import main as cli
from provtrace.content import SECRETS
from provtrace.integrity import span_digest, write_key_pair
from provtrace.model import (
    INT64_MAX,
    INT64_MIN,
    MAX_VALUE_DEPTH,
    AttrMap,
    AttrValue,
    EventRecord,
    LinkRecord,
    SpanRecord,
    freeze_value,
)
from provtrace.otlpjson import dumps_line, encode_attributes, loads_line
from provtrace.readers.archive import ArchiveSource
from provtrace.records import to_record
from provtrace.tracing import audit_span_limits
from tests.conftest import make_recorded

leaves = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.booleans(),
    st.integers(min_value=INT64_MIN, max_value=INT64_MAX),
    st.floats(allow_nan=True, allow_infinity=True),
    st.binary(max_size=12),
)
any_values: st.SearchStrategy[AttrValue] = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=8), children, max_size=4).map(AttrMap),
    ),
    max_leaves=16,
)
attribute_maps = st.dictionaries(st.text(min_size=1, max_size=10), any_values, max_size=6)
hex_ids = st.text("0123456789abcdef", min_size=16, max_size=16)


def same(a: object, b: object) -> bool:
    """Equal with the same types all the way down (Python says 1 == 1.0 == True), NaN equal to NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, AttrMap) and isinstance(b, AttrMap):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


def same_attributes(a: dict[str, AttrValue] | Any, b: dict[str, AttrValue] | Any) -> bool:
    return list(a) == list(b) and all(same(a[k], b[k]) for k in a)


@st.composite
def records(draw: Any) -> SpanRecord:
    start = draw(st.integers(min_value=0, max_value=2**62)) // 1000 * 1000
    return SpanRecord(
        trace_id="ab" * 16,
        span_id=draw(hex_ids),
        name="values",
        start_ns=start,
        end_ns=start + 1000,
        attributes=draw(attribute_maps),
        events=(EventRecord("e", start, draw(attribute_maps)),),
        links=(LinkRecord("cd" * 16, draw(hex_ids), draw(attribute_maps)),),
        resource={c.SERVICE_NAME: "svc", **draw(attribute_maps)},
    )


@settings(max_examples=150, deadline=None)
@given(record=records())
def test_any_value_attributes_survive_an_otlp_json_line_with_their_digest(record: SpanRecord) -> None:
    line = dumps_line([record])
    assert line.count("\n") == 1 and line.endswith("\n")
    (decoded,) = loads_line(line)
    assert same_attributes(decoded.attributes, record.attributes)
    assert same_attributes(decoded.events[0].attributes, record.events[0].attributes)
    assert same_attributes(decoded.links[0].attributes, record.links[0].attributes)
    assert same_attributes(decoded.resource, record.resource)
    assert span_digest(decoded) == span_digest(record)


@settings(max_examples=100, deadline=None)
@given(attributes=attribute_maps)
def test_the_codec_writes_values_exactly_as_protobuf_json_does(attributes: dict[str, AttrValue]) -> None:
    """The Collector's file exporter writes proto3 JSON; so does protobuf's own JSON printer, fed
    what the OTLP exporter sends for the same record."""
    record = SpanRecord(
        trace_id="ab" * 16, span_id="cd" * 8, name="s", start_ns=0, end_ns=1000, attributes=attributes
    )
    sdk_span = ReadableSpan(
        name="s",
        context=SpanContext(int("ab" * 16, 16), int("cd" * 8, 16), is_remote=False),
        attributes={key: _sdk_value(value) for key, value in attributes.items()},
        start_time=0,
        end_time=1000,
    )
    request = encode_spans([sdk_span])
    (span,) = request.resource_spans[0].scope_spans[0].spans
    expected = MessageToDict(span).get("attributes", [])
    assert _json_form(encode_attributes(record.attributes)) == _json_form(expected)


def _sdk_value(value: AttrValue) -> Any:
    """The value as the OTel SDK holds it (mappings as dicts)."""
    if isinstance(value, AttrMap):
        return {key: _sdk_value(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return tuple(_sdk_value(item) for item in value)
    return value


def _json_form(value: Any) -> Any:
    """Doubles compared by value (protobuf prints 1.0 as 1, and NaN as a string like we do); an
    empty key is left out by protobuf (a proto3 default) and written by us (both read the same)."""
    if isinstance(value, dict):
        if "value" in value:
            value = {"key": "", **value}
        return {k: _json_form(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_form(v) for v in value]
    if isinstance(value, float | int) and not isinstance(value, bool):
        return repr(float(value))
    return value


def test_a_digest_tells_every_type_apart_and_ignores_kvlist_order() -> None:
    def digest(value: AttrValue) -> str:
        return span_digest(SpanRecord("ab" * 16, "cd" * 8, "s", 0, 1000, attributes={"v": value}))

    values: list[AttrValue] = [
        None, "", b"", (), AttrMap(), "a", b"a", "YQ==", (b"a",), ("a",), 1, 1.0, True, "1", (1,), (1.0,),
        (True,), ((1,),), (None,), AttrMap({"a": 1}), AttrMap({"a": "1"}), (("a", 1),), "{\"a\":1}",
    ]  # fmt: skip
    digests = [digest(v) for v in values]
    assert len(set(digests)) == len(values)
    assert digest(AttrMap({"a": 1, "b": (None,)})) == digest(AttrMap({"b": (None,), "a": 1}))


def test_an_sdk_span_keeps_bytes_mappings_nested_and_none_holding_arrays() -> None:
    provider = TracerProvider(span_limits=audit_span_limits())
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("linked") as target:
        pass
    with tracer.start_as_current_span(
        "values",
        links=[Link(target.get_span_context(), {"blob": b"\x00\xff"})],
        attributes={
            "blob": b"\x00\xffhi",
            "mapping": {"k": 1, "nested": {"z": None, "y": [1, "a"]}},
            "nested": [[1, 2], ["a"], []],
            "holes": [1, None, "x"],
            "nothing": None,
            "buffer": bytearray(b"ab"),
        },
    ) as span:
        span.add_event("e", {"mapping": {"a": b"b"}})
    record, leaks = to_record(span, {})  # type: ignore[arg-type]
    assert leaks == []
    assert same(record.attributes["blob"], b"\x00\xffhi")
    expected = AttrMap({"k": 1, "nested": AttrMap({"z": None, "y": (1, "a")})})
    assert same(record.attributes["mapping"], expected)
    assert same(record.attributes["nested"], ((1, 2), ("a",), ()))
    assert same(record.attributes["holes"], (1, None, "x"))
    assert "nothing" in record.attributes and record.attributes["nothing"] is None
    assert same(record.attributes["buffer"], (97, 98))  # the SDK turns a bytearray into a sequence
    assert same(record.events[0].attributes["mapping"], AttrMap({"a": b"b"}))
    assert same(record.links[0].attributes["blob"], b"\x00\xff")
    assert record.dropped_attributes == 0
    (decoded,) = loads_line(dumps_line([record]))
    assert same_attributes(decoded.attributes, record.attributes)


def test_values_otlp_cannot_carry_are_counted_as_dropped_not_lost_silently() -> None:
    deep: Any = "leaf"
    for _ in range(MAX_VALUE_DEPTH + 1):
        deep = [deep]
    provider = TracerProvider(span_limits=audit_span_limits())
    with provider.get_tracer("test").start_as_current_span(
        "s", attributes={"deep": deep, "huge": 2**70, "kept": "yes"}
    ) as span:
        pass
    record, _ = to_record(span, {})  # type: ignore[arg-type]
    assert list(record.attributes) == ["kept"]
    assert record.dropped_attributes == 2
    (decoded,) = loads_line(dumps_line([record]))
    assert decoded.dropped_attributes == 2


def test_freeze_makes_exact_immutable_values() -> None:
    class Text(str):
        pass

    frozen = freeze_value({"a": [Text("t"), {"b": memoryview(b"m")}], 2: True})
    assert same(frozen, AttrMap({"a": (("t"), AttrMap({"b": b"m"})), "2": True}))
    assert type(frozen["a"][0]) is str  # type: ignore[index]
    assert hash(frozen) == hash(freeze_value({"2": True, "a": ["t", {"b": b"m"}]}))


def test_a_secret_inside_bytes_or_a_mapping_is_scrubbed_and_reported() -> None:
    secret = "tok-values-5b1c9e"
    SECRETS.add(secret)
    provider = TracerProvider(span_limits=audit_span_limits())
    with provider.get_tracer("test").start_as_current_span(
        "s",
        attributes={
            "blob": b"\xfe prefix " + secret.encode() + b" suffix",
            "mapping": {secret: "key holds it", "inner": [f"value {secret}"]},
        },
    ) as span:
        pass
    record, leaks = to_record(span, {})  # type: ignore[arg-type]
    assert secret.encode() not in dumps_line([record]).encode()
    blob = record.attributes["blob"]
    assert isinstance(blob, bytes) and blob.startswith(b"\xfe prefix ") and blob.endswith(b" suffix")
    assert {"blob", "mapping.key", "mapping.inner"} <= set(leaks)
    assert all(secret not in field for field in leaks)


def test_every_value_type_goes_through_the_embedded_archive_and_verifies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_key_pair(tmp_path / "agent.key", tmp_path / "agent.pub")
    recorded = make_recorded(tmp_path, signing_key=tmp_path / "agent.key")
    values: dict[str, Any] = {
        "test.blob": b"\x00\x01\xfe",
        "test.mapping": {"port": 443, "cidrs": ["10.0.0.0/24", None], "raw": b"x"},
        "test.nested": [[1, 2.5], [], ["a", True]],
        "test.nothing": None,
    }
    try:
        with provtrace.decision("values", trigger="test", actor="agent") as decision:
            with provtrace.tool_call("lookup") as tool:
                tool.record_input({})
                tool.record_output({})
                for key, value in values.items():
                    tool.set_attribute(key, value)
    finally:
        assert recorded.handle.shutdown(30)
    spans = ArchiveSource(tmp_path / "archive").trace(decision.trace_id)
    (tool_span,) = [r for r in spans if r.step == c.STEP_TOOL_CALL]
    for key, value in values.items():
        assert same(tool_span.attributes[key], freeze_value(value)), key
    assert tool_span.dropped_attributes == 0
    verified = cli(
        [
            "verify",
            decision.trace_id,
            "--archive",
            str(tmp_path / "archive"),
            "--public-key",
            str(tmp_path / "agent.pub"),
        ]
    )
    assert verified == 0, capsys.readouterr()


def test_v1_retyping_finds_a_typing_far_from_the_most_likely_one() -> None:
    """Jaeger's v1 API shows the empty value as "": with 13 such attributes there are 8192 typings,
    and the one that departs from the most likely only in the first attribute is tried early."""
    from provtrace.readers.jaeger import MAX_INTERPRETATIONS, interpretations

    original = SpanRecord(
        "ab" * 16, "cd" * 8, "s", 0, 1000, attributes={"a00": None, **{f"a{i:02d}": "" for i in range(1, 13)}}
    )
    shown_by_v1 = SpanRecord(
        "ab" * 16, "cd" * 8, "s", 0, 1000, attributes=dict.fromkeys(original.attributes, "")
    )
    assert MAX_INTERPRETATIONS < 2**13
    assert span_digest(original) in {span_digest(option) for option in interpretations(shown_by_v1)}


def test_resources_that_python_calls_equal_stay_apart_in_a_line() -> None:
    records = [
        SpanRecord("ab" * 16, f"{i:016x}", "s", 0, 1000, resource={c.SERVICE_NAME: "svc", "v": value})
        for i, value in enumerate([1, 1.0, True, "1"])
    ]
    decoded = loads_line(dumps_line(records))
    assert [same(r.resource["v"], d.resource["v"]) for r, d in zip(records, decoded, strict=True)] == [
        True
    ] * 4
