"""Content capture, canonical digests and redaction: the one place every instrumentation uses.

Digests are always of the original content, canonicalised as RFC 8785 JSON, so an investigator
holding the original can prove it is the one recorded. What is *stored* depends on the capture
mode and passes through the redactor first: every value returned by a ``secret_fetch`` in this
process is removed wherever it appears, in the forms agents produce (``provtrace.secrets_registry``
holds them and says which), and so are well-known credential shapes. The redactor never echoes
what it removed.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import decimal
import enum
import hashlib
import itertools
import json
import math
import pathlib
import uuid
from collections.abc import Iterator, Mapping
from typing import Any, Final

import orjson
import rfc8785

from provtrace import conventions as c
from provtrace.credentials import is_secret_key_name, may_hold_credentials, redact_credentials
from provtrace.keyed import DIGEST_KEY
from provtrace.secrets_registry import MIN_SECRET_LENGTH, SECRET_MARKER, SecretRegistry

_MAX_SAFE_INT: Final = 2**53 - 1
MAX_DEPTH: Final = 64
DEFAULT_MAX_CONTENT_BYTES: Final = 16 * 1024

JsonValue = Any  # None | bool | int | float | str | list[JsonValue] | dict[str, JsonValue]


def to_jsonable(value: object) -> JsonValue:
    """Map any Python value onto the JSON data model, deterministically and without raising.

    JSON data (dicts with string keys, lists and tuples, strings, safe-range integers, finite
    floats, booleans, None) maps onto itself, so its digest is plain RFC 8785. Everything JSON
    cannot express is *tagged* rather than squeezed onto a JSON value it would collide with: a
    one-key object whose key is NUL plus the tag name (``{"\\u0000bytes": base64}``, see
    ``TAGS``); a user key that starts with NUL gets one more NUL. The mapping is therefore
    injective: two values that are not equal as JSON data never share a digest, except opaque
    ones (cycles, nesting deeper than ``MAX_DEPTH``, objects known only by their ``repr``), which
    :func:`capture` reports as not exact.
    """
    return _Converter().convert(value, 0)


def jsonable_and_plain(value: object) -> tuple[JsonValue, bool]:
    """``to_jsonable(value)`` and whether the result is plain (see ``canonical_json``)."""
    converter = _Converter()
    return converter.convert(value, 0), converter.plain


def valid_text(text: str) -> str:
    """``text`` made encodable as UTF-8: lone surrogates (from broken decoding) are replaced."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", errors="replace").decode("utf-8")
    return text


def _is_valid_text(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


TAG_PREFIX: Final = "\x00"
# The tags of values JSON cannot express; the opaque ones make a capture inexact.
TAGS: Final = (
    "bytes",  # base64 of the bytes
    "int",  # an integer outside the I-JSON range, as decimal text
    "float",  # nan, inf or -inf
    "str",  # a string with lone surrogates, as hex of its UTF-8 (surrogatepass) bytes
    "set",  # the sorted items of a set or frozenset
    "map",  # [[key, value], ...] of a mapping with keys that are not valid strings
    "enum",  # [type, value] of an enum member
    "datetime",
    "date",
    "time",
    "timedelta",  # seconds
    "decimal",
    "uuid",
    "path",
    "cycle",  # opaque: a container that contains itself
    "depth",  # opaque: nesting deeper than MAX_DEPTH
    "repr",  # opaque: [type, repr] of an object with no JSON form
)
OPAQUE_TAGS: Final = frozenset({"cycle", "depth", "repr"})
BYTES_TAG: Final = TAG_PREFIX + "bytes"


def _tag(name: str, value: JsonValue) -> dict[str, JsonValue]:
    return {TAG_PREFIX + name: value}


def _escape_key(key: str) -> str:
    """User keys starting with NUL get one more, so no user object can pose as a tag."""
    return TAG_PREFIX + key if key.startswith(TAG_PREFIX) else key


class _Converter:
    """One conversion: tracks the containers being visited (cycles), whether the result holds
    floats or non-ASCII keys (which rule out the fast canonical encoding), and whether anything
    opaque was met (which makes the result unfit to bind an approval to)."""

    __slots__ = ("active", "opaque", "plain")

    def __init__(self) -> None:
        self.active: set[int] = set()
        self.plain = True
        self.opaque = False

    def convert(self, value: object, depth: int) -> JsonValue:
        if isinstance(value, str):
            if _is_valid_text(value):
                return value
            return _tag("str", value.encode("utf-8", errors="surrogatepass").hex())
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value if -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT else _tag("int", str(value))
        if isinstance(value, float):
            if not math.isfinite(value):
                return _tag("float", repr(value))
            self.plain = False
            return value
        if isinstance(value, (bytes, bytearray, memoryview)):
            return _tag("bytes", base64.b64encode(bytes(value)).decode("ascii"))
        if isinstance(value, enum.Enum):
            return _tag("enum", [type(value).__qualname__, self.convert(value.value, depth)])
        scalar = _scalar_tag(value)
        if scalar is not None:
            return scalar
        if depth >= MAX_DEPTH:
            self.opaque = True
            return _tag("depth", MAX_DEPTH)
        marker = id(value)
        if marker in self.active:
            self.opaque = True
            return _tag("cycle", "")
        self.active.add(marker)
        try:
            return self._container(value, depth + 1)
        finally:
            self.active.discard(marker)

    def _container(self, value: object, depth: int) -> JsonValue:
        if isinstance(value, Mapping):
            return self._mapping(value, depth)
        if isinstance(value, (list, tuple)):
            return [self.convert(v, depth) for v in value]
        if isinstance(value, (set, frozenset)):
            items = [self.convert(v, depth) for v in value]
            return _tag("set", sorted(items, key=canonical_json))
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
            return self.convert(fields, depth)
        dump = getattr(value, "model_dump", None)  # pydantic v2 models (MCP and LLM SDK types)
        if callable(dump):
            try:
                return self.convert(dump(mode="json", by_alias=True, exclude_none=True), depth)
            except Exception:  # noqa: BLE001, S110 - a broken model still gets recorded by repr
                pass
        self.opaque = True
        return _tag("repr", [type(value).__qualname__, _safe_repr(value)])

    def _mapping(self, value: Mapping[Any, Any], depth: int) -> JsonValue:
        if all(isinstance(k, str) and _is_valid_text(k) for k in value):
            out = {}
            for k, v in value.items():
                if not k.isascii():
                    self.plain = False
                out[_escape_key(k)] = self.convert(v, depth)
            return out
        pairs = [[self.convert(k, depth), self.convert(v, depth)] for k, v in value.items()]
        return _tag("map", sorted(pairs, key=lambda pair: canonical_json(pair[0])))


def _scalar_tag(value: object) -> JsonValue | None:
    """Tags of common scalar types that have an exact text form."""
    if isinstance(value, _dt.datetime):
        return _tag("datetime", value.isoformat())
    if isinstance(value, _dt.date):
        return _tag("date", value.isoformat())
    if isinstance(value, _dt.time):
        return _tag("time", value.isoformat())
    if isinstance(value, _dt.timedelta):
        return _tag("timedelta", str(value.total_seconds()))
    if isinstance(value, decimal.Decimal):
        return _tag("decimal", str(value))
    if isinstance(value, uuid.UUID):
        return _tag("uuid", str(value))
    if isinstance(value, pathlib.PurePath):
        return _tag("path", str(value))
    return None


def _safe_repr(value: object) -> str:
    try:
        return valid_text(repr(value))
    except Exception:  # noqa: BLE001 - user __repr__ may raise anything
        return f"<unrepresentable {type(value).__qualname__}>"


def canonical_json(value: JsonValue, *, plain: bool | None = None) -> bytes:
    """RFC 8785 canonical bytes of an already JSON-compatible value.

    Without floats and with ASCII keys, RFC 8785 output is exactly what the C-accelerated
    ``json.dumps`` writes with sorted keys and no whitespace (same escapes, same integer form, and
    code-point order equals UTF-16 order for ASCII keys); that common case takes the fast path.
    Callers that built the value and know it is plain say so with ``plain``, sparing the check.
    """
    if plain if plain is not None else _plain(value, 0):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return bytes(rfc8785.dumps(value))


def _plain(value: JsonValue, depth: int) -> bool:
    """True when ``value`` has no floats, only ASCII keys and only safe-range integers."""
    if isinstance(value, str) or value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT
    if depth > MAX_DEPTH:
        return False
    if isinstance(value, dict):
        return all(isinstance(k, str) and k.isascii() and _plain(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v, depth + 1) for v in value)
    return False


def jsonable_digest(jsonable: JsonValue, *, plain: bool | None = None) -> str:
    return hashlib.sha256(canonical_json(jsonable, plain=plain)).hexdigest()


@dataclasses.dataclass(frozen=True)
class Captured:
    """Content as recorded: its JSON form (for storing), the digest of the original, whether that
    digest identifies the value exactly (False when something opaque was met: see
    :func:`to_jsonable`; only an exact digest can bind an approval to an action), and whether it is
    keyed because the content held a fetched secret (see :mod:`provtrace.keyed`)."""

    jsonable: JsonValue
    digest: str
    exact: bool = True
    keyed: bool = False


def capture(value: object) -> Captured:
    if _is_plain_json(value, 0):
        try:
            canonical = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:  # lone surrogates: the converter tags them
            pass
        else:  # a fresh copy in the caller's key order, as the converter gives: later changes to
            # ``value`` stay out of what is stored
            return _captured(orjson.loads(orjson.dumps(value)), canonical, exact=True)
    converter = _Converter()
    jsonable = converter.convert(value, 0)
    return _captured(jsonable, canonical_json(jsonable, plain=converter.plain), exact=not converter.opaque)


def _is_plain_json(value: object, depth: int) -> bool:
    """Whether ``value`` is JSON data that maps onto itself (see :func:`to_jsonable`) and that
    orjson writes in RFC 8785 form with sorted keys: dicts with ASCII keys (none starting with
    NUL, which would need escaping), lists, strings, safe-range integers, booleans and None, of
    exactly those types; no floats (RFC 8785 renders numbers as ECMAScript does) and no tuples
    (the converter makes them lists). The hypothesis test of ``test_content`` proves the bytes
    equal to the reference ``rfc8785``."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT  # type: ignore[operator]
    if depth >= MAX_DEPTH:
        return False
    if kind is dict:
        for key, item in value.items():  # type: ignore[attr-defined]
            if type(key) is not str or not key.isascii() or key.startswith(TAG_PREFIX):
                return False
            if not _is_plain_json(item, depth + 1):
                return False
        return True
    if kind is list:
        return all(_is_plain_json(item, depth + 1) for item in value)  # type: ignore[attr-defined]
    return False


def _captured(jsonable: JsonValue, canonical: bytes, *, exact: bool) -> Captured:
    if _holds_secret(canonical):
        return Captured(jsonable, DIGEST_KEY.hexdigest(canonical), exact, keyed=True)
    return Captured(jsonable, hashlib.sha256(canonical).hexdigest(), exact)


def _holds_secret(canonical: bytes) -> bool:
    return bool(SECRETS) and SECRETS.contains_secret(canonical.decode("utf-8", "replace"))


def digest(value: object) -> str:
    """Lowercase hex SHA-256 of the RFC 8785 canonical JSON of ``value`` (the original content)."""
    return capture(value).digest


class StreamingDigest:
    """Digest of a list built one item at a time, equal to ``capture(list_of_items).digest``.

    Generators are recorded this way so the digest covers every yielded item without keeping
    them all in memory. Both the plain and the keyed digest are kept until the end, because a
    secret in any item makes the whole digest keyed.
    """

    def __init__(self) -> None:
        self._hash = hashlib.sha256(b"[")
        self._keyed = DIGEST_KEY.hasher()
        self._keyed.update(b"[")
        self._count = 0
        self.keyed = False

    def add(self, item: object) -> None:
        canonical = canonical_json(to_jsonable(item))
        separator = b"," if self._count else b""
        for state in (self._hash, self._keyed):
            state.update(separator + canonical)
        self.keyed = self.keyed or _holds_secret(canonical)
        self._count += 1

    def hexdigest(self) -> str:
        final = (self._keyed if self.keyed else self._hash).copy()
        final.update(b"]")
        return final.hexdigest()


# --- redaction -------------------------------------------------------------------------------


class Redactor:
    """Removes tainted secret values and credential shapes from text and structures."""

    def __init__(self, secrets: SecretRegistry) -> None:
        self.secrets = secrets

    def text(self, text: str, *, credentials: bool = True, secrets: bool = True) -> str:
        """``text`` without tainted values and, with ``credentials``, credential shapes;
        ``secrets=False`` skips the first pass for text already known to hold no tainted value."""
        if secrets:
            text = self.secrets.scrub(text)
        return redact_credentials(text) if credentials else text

    def value(self, value: JsonValue, *, credentials: bool = True) -> JsonValue:
        """Redact a JSON-compatible structure: strings, keys and tainted numbers, secrets split
        across consecutive strings, and with ``credentials`` also credential shapes and the values
        of secret-named fields."""
        values, others = _strings(value)
        if not self.secrets:
            if not credentials or not (
                may_hold_credentials([*values, *others]) or any(map(is_secret_key_name, others))
            ):
                return value  # provably nothing to remove: the walk would copy it unchanged
            return self._value(value, credentials, set())
        parts = self.secrets.scrub_joined(values)
        if parts is not None:
            value = _replace_strings(value, iter(parts))
            values = parts
        return self._value(value, credentials, self.secrets.holding(values + others))

    def _value(self, value: JsonValue, credentials: bool, tainted: set[str]) -> JsonValue:
        """``tainted``: the strings (values, keys, numbers as text) that hold a secret."""
        if isinstance(value, str):
            return self.text(value, credentials=credentials, secrets=value in tainted)
        if isinstance(value, list):
            return [self._value(item, credentials, tainted) for item in value]
        if isinstance(value, dict):
            out: dict[str, JsonValue] = {}
            for key, item in value.items():
                clean_key = self.text(key, credentials=credentials, secrets=key in tainted)
                if credentials and is_secret_key_name(key) and item not in (None, "", [], {}):
                    out[clean_key] = "[REDACTED:credential]"
                else:  # base64 of bytes is not text: credential shapes in it are chance
                    out[clean_key] = self._value(item, credentials and key != BYTES_TAG, tainted)
            return out
        if isinstance(value, (int, float)) and not isinstance(value, bool) and str(value) in tainted:
            return SECRET_MARKER
        return value


def _strings(value: JsonValue) -> tuple[list[str], list[str]]:
    """The string values of a structure in document order, and its keys and numbers as text."""
    values: list[str] = []
    others: list[str] = []
    _collect(value, values, others)
    return values, others


def _collect(value: JsonValue, values: list[str], others: list[str]) -> None:
    if isinstance(value, str):
        values.append(value)
    elif isinstance(value, dict):
        others.extend(value)
        for item in value.values():
            _collect(item, values, others)
    elif isinstance(value, list):
        for item in value:
            _collect(item, values, others)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        others.append(str(value))


def _replace_strings(value: JsonValue, parts: Iterator[str]) -> JsonValue:
    """A copy of ``value`` whose string values are the next items of ``parts``, in order."""
    if isinstance(value, str):
        return next(parts)
    if isinstance(value, list):
        return [_replace_strings(item, parts) for item in value]
    if isinstance(value, dict):
        return {key: _replace_strings(item, parts) for key, item in value.items()}
    return value


SECRETS: Final = SecretRegistry()
REDACTOR: Final = Redactor(SECRETS)


@dataclasses.dataclass(frozen=True)
class CapturePolicy:
    """What content a step stores, per ``capture_content`` and the size cap."""

    mode: str = c.CAPTURE_REDACTED
    max_bytes: int = DEFAULT_MAX_CONTENT_BYTES

    def __post_init__(self) -> None:
        if self.mode not in c.CAPTURE_MODES:
            raise ValueError(
                f"capture_content must be one of {', '.join(c.CAPTURE_MODES)}, got {self.mode!r}"
            )
        if self.max_bytes < 64:
            raise ValueError(f"content cap must be at least 64 bytes, got {self.max_bytes}")

    @property
    def digests(self) -> bool:
        return self.mode != c.CAPTURE_NONE

    @property
    def stores_content(self) -> bool:
        return self.mode in (c.CAPTURE_REDACTED, c.CAPTURE_FULL)

    def render(self, jsonable: JsonValue) -> tuple[str, bool] | None:
        """The text to store for already-jsonable content, and whether it was truncated.

        Even ``full`` capture removes tainted secret values: no mode lets a secret leave the
        process. ``redacted`` additionally removes credential shapes and secret-named fields.
        """
        if not self.stores_content:
            return None
        cleaned = REDACTOR.value(jsonable, credentials=self.mode == c.CAPTURE_REDACTED)
        try:
            text = orjson.dumps(cleaned).decode("utf-8")
        except orjson.JSONEncodeError:
            text = json.dumps(cleaned, ensure_ascii=False, separators=(",", ":"))
        return truncate_utf8(SECRETS.scrub(text), self.max_bytes)


def truncate_utf8(text: str, max_bytes: int) -> tuple[str, bool]:
    """Cut ``text`` to at most ``max_bytes`` of UTF-8 on a character boundary."""
    encoded = text.encode("utf-8", errors="replace")
    if len(encoded) <= max_bytes:
        return text, False
    suffix = f"…[truncated {len(encoded)} bytes]"
    budget = max(0, max_bytes - len(suffix.encode("utf-8")))
    return encoded[:budget].decode("utf-8", errors="ignore") + suffix, True


# --- taint across processes ------------------------------------------------------------------
# A value that is a secret in one process (fetched there) travels to a peer inside a tool's
# arguments or result. The sender names where it is and the receiver taints those substrings too,
# so neither side records it. The wire form (MCP: ``_meta["io.provtrace/tainted"]``) is a list of
# at most MAX_TAINTED_SPANS entries, each naming a position, never the value:
#
#   [pointer, start, end]          code points [start, end) of the string value at ``pointer``
#   [pointer, start, end, "key"]   code points [start, end) of the *name* of the object member
#                                  at ``pointer``
#
# ``pointer`` is an RFC 6901 JSON Pointer into the params (or the result) without ``_meta``, with
# one extension: the reference token ``~2N`` names the N-th member (0-based, in document order) of
# an object by its position. The sender names every member whose name holds a tainted value that
# way, so a secret used as a key never travels in a pointer (``/arguments/data/~20``, not
# ``/arguments/data/<secret>``); other names stay readable. ``~2`` is no RFC 6901 escape, so no
# real name can be mistaken for a position. Positions rely on member order, which JSON text and
# Python dicts keep on both sides. A receiver that predates key entries skips them. The sender
# lists each distinct tainted substring once, at its first position (the receiver taints it
# wherever it appears), and only those the receiver accepts (MIN_PEER_SECRET_LENGTH and longer).

MAX_TAINTED_SPANS: Final = 256
MIN_PEER_SECRET_LENGTH: Final = MIN_SECRET_LENGTH
MAX_PEER_TAINTED_CHARS: Final = 64 * 1024  # what one peer message may taint in total
KEY_ENTRY: Final = "key"
_POSITION: Final = "~2"
_MAX_INDEX_DIGITS: Final = 9

TaintedSpan = tuple[str, int, int] | tuple[str, int, int, str]


def tainted_spans(jsonable: JsonValue) -> list[TaintedSpan]:
    """Where secrets fetched in this process occur in ``jsonable``'s string values and member
    names, in the wire form above: one entry per distinct value (the receiver taints a value
    wherever it appears, so repeats would only use up the entry limit), and only values the
    receiver accepts (long ones; short ones would crowd out the rest)."""
    found: list[TaintedSpan] = []
    if not SECRETS:
        return found
    reported: set[str] = set()
    for pointer, text, is_name in _texts_at(jsonable, ""):
        for start, end in SECRETS.secret_spans(text, structural=True):
            if text[start:end] in reported or end - start < MIN_PEER_SECRET_LENGTH:
                continue
            reported.add(text[start:end])
            found.append((pointer, start, end, KEY_ENTRY) if is_name else (pointer, start, end))
            if len(found) >= MAX_TAINTED_SPANS:
                return found
    return found


def taint_spans(jsonable: JsonValue, spans: object) -> int:
    """Taint what a peer said are secrets in ``jsonable``; returns how many values were tainted.

    A peer's word can only add redaction, and only of what it pointed at: substrings shorter than
    ``MIN_PEER_SECRET_LENGTH`` are ignored (so that a peer cannot scrub common words from this
    process's records), each substring is tainted as it is (not unwrapped further), at most
    ``MAX_TAINTED_SPANS`` entries and ``MAX_PEER_TAINTED_CHARS`` characters are read.
    """
    if not isinstance(spans, (list, tuple)):
        return 0
    tainted = 0
    budget = MAX_PEER_TAINTED_CHARS
    for entry in spans[:MAX_TAINTED_SPANS]:
        secret = _marked(jsonable, entry)
        if secret is None or not MIN_PEER_SECRET_LENGTH <= len(secret) <= budget:
            continue
        budget -= len(secret)
        SECRETS.add(secret, unwrap=False)
        tainted += 1
    return tainted


def _marked(jsonable: JsonValue, entry: object) -> str | None:
    """The substring one wire entry points at, or None when it points at nothing."""
    if not (isinstance(entry, (list, tuple)) and len(entry) in (3, 4)):
        return None
    pointer, start, end = entry[0], entry[1], entry[2]
    if not (isinstance(pointer, str) and _is_int(start) and _is_int(end)):
        return None
    if len(entry) == 3:
        text = _at_pointer(jsonable, pointer)
    elif entry[3] == KEY_ENTRY and pointer.startswith("/"):
        parent, _, token = pointer.rpartition("/")
        text = _member_name(_at_pointer(jsonable, parent), token)
    else:
        return None
    return text[max(start, 0) : max(end, 0)] if isinstance(text, str) else None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _texts_at(value: JsonValue, pointer: str) -> Iterator[tuple[str, str, bool]]:
    """(pointer, text, is a member name) for every string value and member name; names holding a
    secret are pointed at by position."""
    if isinstance(value, str):
        yield pointer, value, False
    elif isinstance(value, dict):
        for position, (key, item) in enumerate(value.items()):
            if SECRETS.contains_secret(key):
                member = f"{pointer}/{_POSITION}{position}"
                yield member, key, True
            else:
                member = f"{pointer}/{key.replace('~', '~0').replace('/', '~1')}"
            yield from _texts_at(item, member)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _texts_at(item, f"{pointer}/{index}")


def _index(token: str) -> int | None:
    digits = token.isascii() and token.isdigit() and len(token) <= _MAX_INDEX_DIGITS
    return int(token) if digits else None


def _member_name(value: JsonValue, token: str) -> str | None:
    """The name of the member of object ``value`` that ``token`` names (by name or ``~2N``)."""
    if not isinstance(value, dict):
        return None
    if token.startswith(_POSITION):
        position = _index(token[len(_POSITION) :])
        if position is None or position >= len(value):
            return None
        name: str = next(itertools.islice(value, position, None))
        return name
    literal = token.replace("~1", "/").replace("~0", "~")
    return literal if literal in value else None


def _at_pointer(value: JsonValue, pointer: str) -> JsonValue:
    if pointer and not pointer.startswith("/"):
        return None
    for token in pointer.split("/")[1:]:
        if isinstance(value, dict):
            name = _member_name(value, token)
            if name is None:
                return None
            value = value[name]
        elif isinstance(value, list):
            index = _index(token)
            if index is None or index >= len(value):
                return None
            value = value[index]
        else:
            return None
    return value
