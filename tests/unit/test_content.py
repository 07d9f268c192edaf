"""Canonical digests, capture modes, redaction and caps: the one content module."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import urllib.parse
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from provtrace import conventions as c
from provtrace.content import (
    REDACTOR,
    SECRETS,
    CapturePolicy,
    StreamingDigest,
    canonical_json,
    capture,
    digest,
    jsonable_and_plain,
    to_jsonable,
)


def test_digest_is_sha256_of_rfc8785_canonical_json() -> None:
    value = {"b": [1, 2.5, "é"], "a": True, "c": None}
    canonical = b'{"a":true,"b":[1,2.5,"\xc3\xa9"],"c":null}'
    assert canonical_json(to_jsonable(value)) == canonical
    assert digest(value) == hashlib.sha256(canonical).hexdigest()
    assert digest({"c": None, "a": True, "b": [1, 2.5, "é"]}) == digest(value)


def test_jsonable_tags_what_json_cannot_express() -> None:
    @dataclasses.dataclass
    class Rule:
        port: int
        raw: bytes

    cyclic: list[Any] = [1]
    cyclic.append(cyclic)
    value = {
        "big": 2**64,
        "nan": float("nan"),
        "rule": Rule(443, b"\xff\x00"),
        "set": {3, 1, 2},
        "cycle": cyclic,
        "surrogate": "a\ud800b",
        "\x00user": "a key that looks like a tag",
    }
    assert to_jsonable(value) == {
        "big": {"\x00int": str(2**64)},
        "nan": {"\x00float": "nan"},
        "rule": {"port": 443, "raw": {"\x00bytes": base64.b64encode(b"\xff\x00").decode()}},
        "set": {"\x00set": [1, 2, 3]},
        "cycle": [1, {"\x00cycle": ""}],
        "surrogate": {"\x00str": "61eda080" + "62"},
        "\x00\x00user": "a key that looks like a tag",
    }
    assert to_jsonable({1: "int key", "a": 2}) == {"\x00map": [["a", 2], [1, "int key"]]}
    canonical_json(to_jsonable(value))  # must not raise
    assert not capture(value).exact  # the cycle is opaque
    assert capture({k: v for k, v in value.items() if k != "cycle"}).exact


def test_json_data_digests_as_plain_rfc8785() -> None:
    value = {"$ref": "#/defs/x", "n": [1, 2.5, None, True], "s": "é"}
    assert digest(value) == hashlib.sha256(rfc8785.dumps(value)).hexdigest()


def test_streaming_digest_equals_digest_of_the_list() -> None:
    stream = StreamingDigest()
    items = [{"page": 1}, "two", 3, None]
    for item in items:
        stream.add(item)
    assert stream.hexdigest() == digest(items)
    assert StreamingDigest().hexdigest() == digest([])


JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"


@pytest.mark.parametrize(
    ("credential", "shape"),
    [
        ("AKIAIOSFODNN7EXAMPLE", "aws-access-token"),
        ("ghp_" + "a1" * 18, "github-token"),
        ("sk-proj-" + "A1b2" * 8, "openai-api-key"),
        ("sk-ant-api03-" + "x9" * 20, "anthropic-api-key"),
        ("xoxb-1234567890-abcdefghij", "slack-token"),
        ("hvs.CAESIJ" + "q" * 30, "vault-token"),
        ("Bearer abcdef0123456789xyz", "bearer-token"),
        (JWT, "jwt"),
        (PEM, "private-key"),
    ],
)
def test_credential_shapes_are_removed_without_echo(credential: str, shape: str) -> None:
    redacted = REDACTOR.text(f"before {credential} after")
    assert redacted == f"before [REDACTED:{shape}] after"


def test_connection_string_keeps_user_and_host_but_not_password() -> None:
    assert (
        REDACTOR.text("postgres://app:s3cr3t-pw@db.internal:5432/app")
        == "postgres://app:[REDACTED:password]@db.internal:5432/app"
    )


def test_secret_named_fields_and_assignments_are_removed() -> None:
    value = {"user": "svc", "password": "hunter2-long", "nested": {"api_key": "k-123456"}}
    assert REDACTOR.value(value) == {
        "user": "svc",
        "password": "[REDACTED:credential]",
        "nested": {"api_key": "[REDACTED:credential]"},
    }
    assert REDACTOR.text("login with password=hunter2-long now") == (
        "login with password=[REDACTED:credential] now"
    )


def test_tainted_secret_is_removed_everywhere_and_in_its_encodings() -> None:
    secret = 'p@ss "w0rd"/é-7f3a9c'
    SECRETS.add(secret)
    carriers = [
        secret,
        f"prefix {secret} suffix",
        json.dumps({"token": secret}),
        urllib.parse.quote(secret, safe=""),
        base64.b64encode(secret.encode()).decode().rstrip("="),
    ]
    for carrier in carriers:
        assert SECRETS.contains_secret(carrier)
        assert secret not in SECRETS.scrub(carrier)
    structure = {"args": [{"deep": [f"x{secret}y"]}], f"key-{secret}": 1}
    rendered = CapturePolicy(c.CAPTURE_FULL).render(to_jsonable(structure))
    assert rendered is not None
    assert secret not in rendered[0]
    assert json.dumps(secret)[1:-1] not in rendered[0]


def test_tainting_a_structure_taints_every_string_leaf() -> None:
    SECRETS.add({"data": {"username": "svc-fw-user", "password": "pw-51c2d9"}, "lease": ["lease-id-88"]})
    assert SECRETS.contains_secret("the pw-51c2d9 leaked")
    assert SECRETS.contains_secret("lease-id-88")
    assert not SECRETS.contains_secret("data")  # keys are not secrets


@pytest.mark.parametrize(
    ("mode", "stores"),
    [
        (c.CAPTURE_NONE, False),
        (c.CAPTURE_DIGEST, False),
        (c.CAPTURE_REDACTED, True),
        (c.CAPTURE_FULL, True),
    ],
)
def test_capture_modes(mode: str, stores: bool) -> None:
    policy = CapturePolicy(mode)
    rendered = policy.render(to_jsonable({"q": "key AKIAIOSFODNN7EXAMPLE"}))
    assert (rendered is not None) is stores
    assert policy.digests is (mode != c.CAPTURE_NONE)
    if mode == c.CAPTURE_REDACTED:
        assert rendered == ('{"q":"key [REDACTED:aws-access-token]"}', False)
    if mode == c.CAPTURE_FULL:
        assert rendered == ('{"q":"key AKIAIOSFODNN7EXAMPLE"}', False)


def test_content_cap_truncates_on_a_character_boundary() -> None:
    policy = CapturePolicy(c.CAPTURE_REDACTED, max_bytes=100)
    text, truncated = policy.render("é" * 500) or ("", False)
    assert truncated
    assert len(text.encode("utf-8")) <= 100
    assert text.endswith("bytes]")


def test_invalid_capture_mode_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="capture_content must be one of none, digest, redacted, full"):
        CapturePolicy("everything")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(value=json_values)
def test_canonical_json_fast_path_equals_rfc8785(value: Any) -> None:
    assert canonical_json(value) == bytes(rfc8785.dumps(value))


# Beyond JSON data: integers past 2**53, text with lone surrogates, keys starting with NUL and
# tuples, which capture's orjson path must leave to the converter.
capture_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(alphabet=st.characters(codec=None), max_size=8)
    | st.sampled_from(["\ud800", "\x00tag", "\u2028"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.dictionaries(
            st.text(max_size=6) | st.sampled_from(["\x00bytes", "é", "\U0001f600"]), children, max_size=4
        )
    ),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(value=capture_values)
def test_capture_equals_the_converter_and_rfc8785(value: Any) -> None:
    """capture's orjson path for plain JSON data gives what the converter and the reference
    RFC 8785 encoder give, digest and stored form alike, for any value."""
    jsonable, _ = jsonable_and_plain(value)
    captured = capture(value)
    assert captured.jsonable == jsonable
    assert json.dumps(captured.jsonable) == json.dumps(jsonable)  # same key order
    assert captured.digest == hashlib.sha256(bytes(rfc8785.dumps(jsonable))).hexdigest()
