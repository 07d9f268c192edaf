"""Fetched secret values are removed from everything stored, in the forms agents really produce.

Each embedding form below has its own leak detector, written independently of the registry's
variant list: it decodes what is left after scrubbing (JSON, percent escapes, hex, base64 at every
offset, case and Unicode folding) and looks for the secret. Each detector is first shown to find
the secret in the unscrubbed carrier, so none of these tests can pass by detecting nothing.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
import time
import unicodedata
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydantic
import pydantic.v1
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import provtrace
from provtrace import conventions as c
from provtrace.content import (
    KEY_ENTRY,
    MAX_PEER_TAINTED_CHARS,
    MAX_TAINTED_SPANS,
    MIN_SECRET_LENGTH,
    REDACTOR,
    SECRET_MARKER,
    SECRETS,
    CapturePolicy,
    SecretRegistry,
    taint_spans,
    tainted_spans,
    to_jsonable,
)
from provtrace.readers.archive import ArchiveSource
from provtrace.reconstruct import reconstruct
from provtrace.steps.governance import DEFAULT_APPROVAL_TTL_S
from tests.conftest import make_recorded
from tests.scenario import reference_scenario

SECRET = 'Cnry-7Q2v "X9/pL4"é+sW8zK1m'  # quotes, a slash, a plus, non-ASCII: every escape differs
ALNUM_SECRET = "Cnry7Q2vX9pL4sW8zK1m"


# --- leak detectors ----------------------------------------------------------------------------


def _unmarked(text: str) -> str:
    """Scrubbed text with each marker turned into a separator no secret contains."""
    return text.replace(SECRET_MARKER, "\x00")


def visible(secret: str, text: str) -> bool:
    """The secret, whatever its case, Unicode normal form or fullwidth form."""

    def fold(value: str) -> str:
        return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold())

    return fold(secret) in fold(_unmarked(text))


def in_json(secret: str, text: str) -> bool:
    """The secret in any string of ``text`` parsed as JSON, recursively (JSON in JSON strings)."""
    pending: list[Any] = [_unmarked(text)]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str):
            if secret in value:
                return True
            try:
                pending.append(json.loads(value))
            except ValueError:
                continue
    return False


def percent_decoded(secret: str, text: str) -> bool:
    text = _unmarked(text)
    return secret in urllib.parse.unquote(text) or secret in urllib.parse.unquote_plus(text)


def in_hex(secret: str, text: str) -> bool:
    wanted = secret.encode()
    for run in re.findall(r"[0-9a-fA-F]+", _unmarked(text)):
        for shift in (0, 1):
            chunk = run[shift:]
            if wanted in bytes.fromhex(chunk[: len(chunk) - len(chunk) % 2]):
                return True
    return False


def in_base64(secret: str, text: str) -> bool:
    """The secret's bytes in any base64 run of ``text``, decoded from each of its 4 offsets."""
    wanted = secret.encode()
    for alphabet, altchars in ((r"[A-Za-z0-9+/]+", None), (r"[A-Za-z0-9_-]+", b"-_")):
        for run in re.findall(alphabet + "=*", _unmarked(text)):
            for shift in range(4):
                chunk = run[shift:].rstrip("=")
                for candidate in (chunk[: len(chunk) - len(chunk) % 4], chunk + "=" * (-len(chunk) % 4)):
                    try:
                        decoded = base64.b64decode(candidate, altchars=altchars, validate=True)
                    except binascii.Error:
                        continue
                    if wanted in decoded:
                        return True
    return False


def leaked(secret: str, text: str) -> bool:
    return any(detect(secret, text) for detect in (visible, in_json, percent_decoded, in_hex, in_base64))


# --- the embedding forms -----------------------------------------------------------------------

Embed = Callable[[str], str]


def json_nested(depth: int, ensure_ascii: bool) -> Embed:
    def embed(secret: str) -> str:
        text = f"use {secret} now"
        for _ in range(depth):
            text = json.dumps({"q": text, "n": 1}, ensure_ascii=ensure_ascii)
        return text

    return embed


def lower_hex_escapes(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), text)


def percent(encode: Callable[[str], str], lower: bool) -> Embed:
    def embed(secret: str) -> str:
        encoded = encode(secret)
        return f"https://api.internal/v1?x=1&t={lower_hex_escapes(encoded) if lower else encoded}&y=2"

    return embed


def normalized(form: str) -> Embed:
    def embed(secret: str) -> str:
        return f"note: {unicodedata.normalize(form, secret)} ."

    return embed


def hex_blob(secret: str) -> str:
    return (b"\x01pre" + secret.encode() + b"post").hex()


def fullwidth(text: str) -> str:
    return "".join(chr(ord(ch) + 0xFEE0) if 0x21 <= ord(ch) <= 0x7E else ch for ch in text)


def in_base64_blob(alignment: int, urlsafe: bool, at_end: bool, padded: bool) -> Embed:
    """The secret inside a larger binary blob, at offset ``alignment`` (mod 3), base64-encoded."""

    def embed(secret: str) -> str:
        blob = b"\x8f\x01\xfe"[:alignment] + b"\x00\xff\x10" * 2 + secret.encode()
        if not at_end:
            blob += b"\xfa\x07trailer"
        encoded = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(blob).decode()
        return f"blob:{encoded if padded else encoded.rstrip('=')};"

    return embed


FORMS: dict[str, Embed] = {
    "as_is": lambda s: f"use {s} now",
    "stripped_in_text": lambda s: f"token={s}\n",
    "upper": lambda s: f"LOG {s.upper()} END",
    "lower": lambda s: f"log {s.lower()} end",
    **{f"unicode_{form}": normalized(form) for form in ("NFC", "NFD", "NFKC", "NFKD")},
    "fullwidth": lambda s: f"wide {fullwidth(s)} text",
    **{
        f"json_depth{depth}_{'ascii' if ascii_only else 'utf8'}": json_nested(depth, ascii_only)
        for depth in range(1, 7)
        for ascii_only in (True, False)
    },
    **{
        f"percent_{name}{'_lowerhex' if lower else ''}": percent(encode, lower)
        for name, encode in (
            ("quote_safe_none", lambda s: urllib.parse.quote(s, safe="")),
            ("quote_default", urllib.parse.quote),
            ("quote_plus", urllib.parse.quote_plus),
        )
        for lower in (False, True)
    },
    "hex_lower": lambda s: f"hex {hex_blob(s)} end",
    "hex_upper": lambda s: f"hex {hex_blob(s).upper()} end",
    **{
        f"base64_{'url' if urlsafe else 'std'}_k{k}{'_end' if at_end else ''}{'' if padded else '_nopad'}": (
            in_base64_blob(k, urlsafe, at_end, padded)
        )
        for k in range(3)
        for urlsafe in (False, True)
        for at_end in (False, True)
        for padded in (True, False)
        if padded or at_end
    },
    "base64_whole": lambda s: base64.b64encode(s.encode()).decode(),
}


def test_every_detector_finds_the_secret_before_scrubbing() -> None:
    for name, embed in FORMS.items():
        assert leaked(SECRET, embed(SECRET)), name
        assert leaked(ALNUM_SECRET, embed(ALNUM_SECRET)), name


@pytest.mark.parametrize("name", sorted(FORMS))
@pytest.mark.parametrize("secret", [SECRET, ALNUM_SECRET])
def test_every_embedding_form_is_scrubbed_from_text(name: str, secret: str) -> None:
    registry = SecretRegistry()
    registry.add(secret)
    carrier = FORMS[name](secret)
    assert registry.contains_secret(carrier)
    scrubbed = registry.scrub(carrier)
    assert not leaked(secret, scrubbed), scrubbed
    assert SECRET_MARKER in scrubbed


@pytest.mark.parametrize("mode", c.CAPTURE_MODES)
def test_no_capture_mode_stores_a_tainted_value_in_any_form(mode: str) -> None:
    SECRETS.add(SECRET)
    content = {f"field{i}": embed(SECRET) for i, embed in enumerate(FORMS.values())}
    content["blob"] = b"\x00\x01 header " + SECRET.encode() + b" trailer"  # bytes become base64
    rendered = CapturePolicy(mode, max_bytes=1 << 20).render(to_jsonable(content))
    if mode in (c.CAPTURE_NONE, c.CAPTURE_DIGEST):
        assert rendered is None
        return
    assert rendered is not None
    assert leaked(SECRET, to_jsonable(content)["blob"]["\x00bytes"])  # the detector sees it unscrubbed
    stored = json.loads(rendered[0])
    assert set(stored) == set(content)
    for key, value in stored.items():
        text = value if isinstance(value, str) else json.dumps(value)
        assert not leaked(SECRET, text), (key, text)


@pytest.mark.parametrize("mode", c.CAPTURE_MODES)
def test_no_form_reaches_the_archive_in_any_mode(tmp_path: Path, mode: str) -> None:
    recorded = make_recorded(tmp_path, capture_content=mode)
    try:
        with provtrace.decision("forms", trigger="test", actor="agent", nhi="svc"):
            with provtrace.secret_fetch("vault", "kv/canary", nhi="svc") as fetch:
                fetch.record_value(ALNUM_SECRET)
            with provtrace.tool_call("upload") as tool:
                tool.record_input(
                    {f"field{i}": embed(ALNUM_SECRET) for i, embed in enumerate(FORMS.values())}
                )
                tool.record_output({"raw": b"\x89PNG\r\n" + ALNUM_SECRET.encode() + b"\x00IEND"})
        assert recorded.handle.force_flush(10)
        assert recorded.handle.counters["segments_incomplete"] == 0  # nothing leaked past redaction
    finally:
        assert recorded.handle.shutdown(10)
    records = list(ArchiveSource(tmp_path / "archive").all_spans())
    (tool_record,) = [r for r in records if r.name == "execute_tool upload"]
    stored = [
        tool_record.attributes.get(a) for a in (c.GEN_AI_TOOL_CALL_ARGUMENTS, c.GEN_AI_TOOL_CALL_RESULT)
    ]
    assert all(isinstance(v, str) for v in stored) is (mode in (c.CAPTURE_REDACTED, c.CAPTURE_FULL))
    for record in records:
        for value in record.attributes.values():
            assert not leaked(ALNUM_SECRET, str(value)), (record.name, value)
    assert not leaked(ALNUM_SECRET, recorded.files_bytes().decode("utf-8", errors="replace"))


ascii_secrets = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=8, max_size=24)
unicode_secrets = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="\x00"),
    min_size=8,
    max_size=16,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(secret=st.one_of(ascii_secrets, unicode_secrets), form=st.sampled_from(sorted(FORMS)))
def test_property_any_secret_in_any_form_is_scrubbed(secret: str, form: str) -> None:
    carrier = FORMS[form](secret)
    assume(leaked(secret, carrier))  # a form that loses the secret (NFKC of some symbols) proves nothing
    registry = SecretRegistry()
    registry.add(secret)
    assert not leaked(secret, registry.scrub(carrier))


# --- values taken apart by the agent -----------------------------------------------------------


@dataclasses.dataclass
class Lease:
    value: str
    ttl: int


class Slotted:
    __slots__ = ("__hidden", "credential", "unset")

    def __init__(self, credential: str, hidden: str = "") -> None:
        self.credential = credential
        self.__hidden = hidden


class Raising:
    @property
    def __dict__(self) -> dict[str, Any]:  # type: ignore[override]
        raise RuntimeError("no attributes here")


class Plain:
    def __init__(self, credential: object) -> None:
        self.credential = credential


class Model(pydantic.BaseModel):
    user: str
    password: pydantic.SecretStr


class ModelV1(pydantic.v1.BaseModel):
    user: str
    password: pydantic.v1.SecretStr


INNER = "pw-51c2d9Zq8mL0"
DEEP = "[" * 5000 + "]" * 5000 + f" {INNER}"


WRAPPED = {
    "pydantic_secret_str": (pydantic.SecretStr(INNER), INNER),
    "pydantic_secret_bytes": (pydantic.SecretBytes(INNER.encode()), INNER),
    "pydantic_v1_secret_str": (pydantic.v1.SecretStr(INNER), INNER),
    "pydantic_v1_secret_bytes": (pydantic.v1.SecretBytes(INNER.encode()), INNER),
    "model_field": (Model(user="svc-fw", password=INNER), INNER),  # model_dump shows '**********'
    "object_dict": (Plain(INNER), INNER),
    "object_holding_secret_str": (Plain(pydantic.SecretStr(INNER)), INNER),
    "object_slots": (Slotted(INNER), INNER),
    "object_private_slot": (Slotted("public", hidden=INNER), INNER),
    "model_v1_field": (ModelV1(user="svc-fw", password=INNER), INNER),
    "list_with_a_broken_object": ([Raising(), INNER], INNER),
    "deep_json": (DEEP, DEEP),  # nested beyond the JSON parser: tainted whole, not parsed
    "dataclass": (Lease(INNER, 3600), INNER),
    "newline_then_strip": (f"{INNER}\n", INNER),
    "spaces_then_strip": (f"  {INNER}  ", INNER),
    "aws_secret_string": (json.dumps({"username": "svc-fw", "password": INNER, "port": 5432}), INNER),
    "json_array": (json.dumps([{"k": INNER}]), INNER),
    "bearer": (f"Bearer {INNER}", INNER),
    "basic": (f"Basic {INNER}", INNER),
    "token": (f"token {INNER}", INNER),
    "basic_user_password": ("Basic " + base64.b64encode(f"svc:{INNER}".encode()).decode(), INNER),
    "binary": (b"\xff\xfe" + INNER.encode(), base64.b64encode(b"\xff\xfe" + INNER.encode()).decode()),
    "long_integer": (12345678901234567890, "12345678901234567890"),
    "float": (3.25, "3.25"),
    "one_digit": (7, "7"),
    "pin": (1234, "1234"),
    "aws_secret_string_port": (json.dumps({"password": INNER, "port": 5432}), "5432"),
}


@pytest.mark.parametrize("name", sorted(WRAPPED))
def test_the_secret_inside_a_wrapper_is_tainted(name: str) -> None:
    fetched, used = WRAPPED[name]
    registry = SecretRegistry()
    assert not registry.contains_secret(f"sent {used} on")
    registry.add(fetched)
    assert registry.scrub(f"sent {used} on") == f"sent {SECRET_MARKER} on"


def test_unwrapping_never_taints_keys_reprs_or_field_names() -> None:
    registry = SecretRegistry()
    holder = Plain(INNER)
    registry.add(holder)
    registry.add(Model(user="svc-fw", password=INNER))
    registry.add(json.dumps({"username": "svc-fw-user", "password": INNER}))
    assert not registry.contains_secret(repr(holder))  # '<...Plain object at 0x...>'
    for word in ("credential", "password", "username", "user"):
        assert not registry.contains_secret(f"the {word} field"), word


# --- short secrets -----------------------------------------------------------------------------


def test_short_secrets_are_removed_only_as_whole_tokens_and_never_from_structural_fields() -> None:
    assert MIN_SECRET_LENGTH == 8
    registry = SecretRegistry()
    registry.add("2026")
    registry.add("abcdefg")  # one below the minimum
    registry.add("abcdefgh")  # at the minimum
    assert registry.scrub("pin 2026, 2026-05-14, x2026, 20261") == (
        f"pin {SECRET_MARKER}, {SECRET_MARKER}-05-14, x2026, 20261"
    )
    assert registry.scrub("xabcdefgx abcdefg") == f"xabcdefgx {SECRET_MARKER}"
    assert registry.scrub("xabcdefghx") == f"x{SECRET_MARKER}x"
    expires = "2026-05-14T10:00:00Z"
    assert registry.contains_secret(expires)
    assert not registry.contains_secret(expires, structural=True)
    assert registry.scrub(expires, structural=True) == expires
    assert registry.scrub("id-abcdefgh-1", structural=True) == f"id-{SECRET_MARKER}-1"


def test_numbers_of_any_length_are_tainted_and_removed_from_content() -> None:
    SECRETS.add(7)
    SECRETS.add(4711)
    rendered = CapturePolicy(c.CAPTURE_FULL).render({"pin": 4711, "n": 7, "port": 443, "note": "code 7"})
    assert rendered is not None
    assert json.loads(rendered[0]) == {
        "pin": SECRET_MARKER,
        "n": SECRET_MARKER,
        "port": 443,
        "note": f"code {SECRET_MARKER}",
    }


def _archived(tmp_path: Path, secret: str) -> tuple[dict[str, Any], list[Any], dict[str, int]]:
    recorded = make_recorded(tmp_path)
    try:
        handles = reference_scenario(secret=secret)
        with provtrace.decision("uses the pin", trigger="t", actor="agent") as later:
            with provtrace.tool_call("door") as tool:
                tool.record_input({"pin": secret})
                tool.record_output({"open": True})
        handles["later"] = later
        assert recorded.handle.force_flush(10)
        counters = dict(recorded.handle.counters)
    finally:
        assert recorded.handle.shutdown(10)
    return handles, list(ArchiveSource(tmp_path / "archive").all_spans()), counters


def test_a_fetched_year_like_2026_does_not_quarantine_the_reference_decision(tmp_path: Path) -> None:
    year = time.strftime("%Y", time.gmtime(time.time() + DEFAULT_APPROVAL_TTL_S))  # the expiry's year
    _, records, counters = _archived(tmp_path, year)
    (approval,) = [r for r in records if r.step == c.STEP_APPROVAL]
    assert str(approval.attributes[c.APPROVAL_EXPIRES_AT]).startswith(f"{year}-")  # the secret is there
    assert counters["segments_incomplete"] == 0
    assert list((tmp_path / "quarantine").glob("*.json")) == []
    (door,) = [r for r in records if r.name == "execute_tool door"]  # content still loses it
    assert door.attributes[c.GEN_AI_TOOL_CALL_ARGUMENTS] == json.dumps(
        {"pin": SECRET_MARKER}, separators=(",", ":")
    )


def test_a_fetched_7_does_not_stop_reconstruct_finding_the_decision(tmp_path: Path) -> None:
    handles, records, counters = _archived(tmp_path, "7")
    assert counters["segments_incomplete"] == 0
    decision = handles["decision"]
    chain = reconstruct(decision.trace_id, [r for r in records if r.trace_id == decision.trace_id])
    assert [d.span_id for d in chain.decisions] == [decision.span_id]
    assert chain.completeness == c.COMPLETENESS_COMPLETE
    assert [s.step for s in chain.steps] == [s for s in c.STEPS if s != c.STEP_DECISION]
    for step in chain.steps:
        assert SECRET_MARKER not in json.dumps(step.facts)
    (secret_fetch,) = [r for r in records if r.step == c.STEP_SECRET_FETCH]
    assert secret_fetch.attributes[c.SECRET_VERSION] == "7"  # a version, not the secret


# --- a secret split across adjacent strings ----------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(secret=st.one_of(ascii_secrets, unicode_secrets), data=st.data())
def test_a_secret_split_across_two_arguments_is_removed_from_both(secret: str, data: st.DataObject) -> None:
    cut = data.draw(st.integers(1, len(secret) - 1))
    registry = SecretRegistry()
    registry.add(secret)
    assert registry.scrub_joined([f"a {secret[:cut]}", f"{secret[cut:]} b"]) == [
        f"a {SECRET_MARKER}",
        f"{SECRET_MARKER} b",
    ]


@pytest.mark.parametrize("mode", [c.CAPTURE_REDACTED, c.CAPTURE_FULL])
def test_split_secrets_are_removed_from_stored_structures(mode: str) -> None:
    SECRETS.add(ALNUM_SECRET)
    s = ALNUM_SECRET
    arguments = {"a": s[:3], "b": s[3:], "list": ["x", s[:5], {"deep": s[5:12]}, s[12:] + " tail"]}
    rendered = CapturePolicy(mode).render(arguments)
    assert rendered is not None
    assert json.loads(rendered[0]) == {
        "a": SECRET_MARKER,
        "b": SECRET_MARKER,
        "list": ["x", SECRET_MARKER, {"deep": SECRET_MARKER}, f"{SECRET_MARKER} tail"],
    }
    assert REDACTOR.value({"a": "unrelated", "b": "values"}) == {"a": "unrelated", "b": "values"}


# --- the cross-process taint pointer -----------------------------------------------------------


def test_taint_pointers_name_positions_never_the_secret() -> None:
    as_key, in_value, nested = ALNUM_SECRET, "tok-B-0123456789", "tok-C-9876543210"
    for secret in (as_key, in_value, nested, "7"):
        SECRETS.add(secret)
    params = {
        "name": "store",
        "arguments": {
            "data": {as_key: f"v {as_key}", "plain/key~": f"use {in_value} x7", f"k-{as_key}": [nested]},
            "again": [in_value, as_key],
        },
    }
    spans = tainted_spans(params)
    assert as_key not in json.dumps(spans)
    assert spans == [  # one entry per value, long values only (a peer ignores short ones)
        ("/arguments/data/~20", 0, len(as_key), KEY_ENTRY),
        ("/arguments/data/plain~1key~0", 4, 4 + len(in_value)),
        ("/arguments/data/~22/0", 0, len(nested)),
    ]
    SECRETS.clear()
    assert taint_spans(params, [list(span) for span in spans]) == 3
    for secret in (as_key, in_value, nested):
        assert SECRETS.contains_secret(f"x {secret} y")
    assert not SECRETS.contains_secret("x 7 y")


def test_repeated_secrets_do_not_use_up_the_entry_limit() -> None:
    SECRETS.add("7")
    SECRETS.add(ALNUM_SECRET)
    lines = [f"line {i}: retry 7 with {ALNUM_SECRET}" for i in range(MAX_TAINTED_SPANS + 10)]
    late = "tok-late-0123456789"
    SECRETS.add(late)
    spans = tainted_spans({"log": [*lines, late]})
    assert [span[0] for span in spans] == ["/log/0", f"/log/{len(lines)}"]


def test_hostile_taint_entries_taint_nothing() -> None:
    value = {"k": {"Bearer abcdef": "Bearer abcdef", "x": "y" * (MAX_PEER_TAINTED_CHARS + 10)}}
    hostile: list[object] = [
        ["/k/~20", 0, 13, "nokey"],
        ["/k/~2999999999999999", 0, 13, KEY_ENTRY],
        ["/k/~2x", 0, 13, KEY_ENTRY],
        ["/k/\u00b2", 0, 13],
        ["/k/Bearer abcdef", True, 13],
        ["k/~20", 0, 13, KEY_ENTRY],
        ["/k/x", 0, MAX_PEER_TAINTED_CHARS + 1],  # more than one message may taint
        ["/k/~20", 0, 5, KEY_ENTRY],  # too short
    ]
    assert taint_spans(value, hostile) == 0
    assert len(SECRETS) == 0
    assert taint_spans(value, [["/k/~20", 0, 13, KEY_ENTRY]]) == 1
    assert SECRETS.contains_secret("Bearer abcdef")
    assert not SECRETS.contains_secret("x abcdef y")  # a peer's mark is tainted as is, not unwrapped


# --- long secrets ------------------------------------------------------------------------------

PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    + "\n".join(base64.b64encode(bytes(range(i, i + 48))).decode() for i in range(0, 200, 5))
    + "\n-----END PRIVATE KEY-----\n"
)


def test_a_long_secret_is_removed_whole_encoded_and_as_far_as_a_truncated_copy_goes() -> None:
    registry = SecretRegistry()
    registry.add(PEM)
    assert registry.scrub(f"key: {PEM} end") == f"key: {SECRET_MARKER} end"
    assert registry.scrub(json.dumps({"k": PEM})) == json.dumps({"k": SECRET_MARKER})
    assert registry.scrub(json.dumps(json.dumps({"k": PEM}))) == json.dumps(json.dumps({"k": SECRET_MARKER}))
    truncated = f"key: {PEM[:1000]}…[truncated]"
    assert registry.scrub(truncated) == f"key: {SECRET_MARKER}…[truncated]"
    blob = in_base64_blob(1, False, False, True)(PEM)
    assert leaked(PEM[:200], blob)
    assert not leaked(PEM[:200], registry.scrub(blob))


_PIECES = [
    "open for partner integration",
    "sg-123",
    "AKIAIOSFODNN7EXAMPLE",
    "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc123def456",
    "password=hunter2hunter2",
    "postgres://user:s3cr3tpass@db.example/x",
    "x" * 45,
]
_KEYS = ["name", "note", "password", "apiToken", "AWS_SECRET_ACCESS_KEY", "token_count", "\x00bytes"]
_redactable = st.recursive(
    st.none()
    | st.integers()
    | st.sampled_from(_PIECES)
    | st.builds(lambda a, b: a + " " + b, st.sampled_from(_PIECES), st.sampled_from(_PIECES))
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(_KEYS), children, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(value=_redactable, credentials=st.booleans())
def test_skipping_the_walk_when_nothing_can_match_changes_nothing(value: Any, credentials: bool) -> None:
    """``Redactor.value`` returns clean content as it is (no registered secret, no rule keyword,
    no secret name): exactly what the full walk, text by text, gives."""
    assert not SECRETS
    assert REDACTOR.value(value, credentials=credentials) == REDACTOR._value(value, credentials, set())
