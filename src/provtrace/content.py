"""Content capture, canonical digests and redaction: the one place every instrumentation uses.

Digests are always of the original content, canonicalised as RFC 8785 JSON, so an investigator
holding the original can prove it is the one recorded. What is *stored* depends on the capture
mode and passes through the redactor first: every value returned by a ``secret_fetch`` in this
process is removed wherever it appears, and so are well-known credential shapes. The redactor never
echoes what it removed.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import decimal
import enum
import hashlib
import json
import math
import pathlib
import re
import threading
import urllib.parse
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Final

import rfc8785

from provtrace import conventions as c
from provtrace.credentials import is_secret_key_name, redact_credentials
from provtrace.keyed import DIGEST_KEY

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
    converter = _Converter()
    jsonable = converter.convert(value, 0)
    canonical = canonical_json(jsonable, plain=converter.plain)
    if _holds_secret(canonical):
        return Captured(jsonable, DIGEST_KEY.hexdigest(canonical), not converter.opaque, keyed=True)
    return Captured(jsonable, hashlib.sha256(canonical).hexdigest(), not converter.opaque)


def _holds_secret(canonical: bytes) -> bool:
    return SECRETS.pattern is not None and SECRETS.contains_secret(canonical.decode("utf-8", "replace"))


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

SECRET_MARKER: Final = "[REDACTED:secret]"  # noqa: S105 - the marker, not a secret


class SecretRegistry:
    """Values returned by ``secret_fetch`` in this process, in every encoding they might appear in.

    Kept in memory only; the values themselves are never written anywhere.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._variants: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, value: object) -> None:
        """Taint every string leaf of ``value``: a string, bytes, a structure of them, or any object
        content capture would record (dataclasses and pydantic models are walked the same way)."""
        leaves = {*_string_leaves(value), *_string_leaves(to_jsonable(value))}
        new = {v for leaf in leaves for v in _variants(leaf)}
        with self._lock:
            if new <= self._variants:
                return
            self._variants |= new
            ordered = sorted(self._variants, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def clear(self) -> None:
        with self._lock:
            self._variants.clear()
            self._pattern = None

    def __len__(self) -> int:
        return len(self._variants)

    @property
    def pattern(self) -> re.Pattern[str] | None:
        return self._pattern

    def contains_secret(self, text: str) -> bool:
        pattern = self._pattern
        return bool(pattern is not None and pattern.search(text))

    def scrub(self, text: str) -> str:
        pattern = self._pattern
        return text if pattern is None else pattern.sub(SECRET_MARKER, text)


# Shorter values are not tainted: they cannot be told apart from ordinary text, and scrubbing
# them (a one-letter field of a structured secret) would destroy every record.
MIN_SECRET_LENGTH: Final = 4


def _string_leaves(value: object) -> Iterable[str]:
    if isinstance(value, str):
        if len(value) >= MIN_SECRET_LENGTH:
            yield value
        yield from _json_leaves(value)
    elif isinstance(value, (bytes, bytearray)):
        if len(value) >= MIN_SECRET_LENGTH:
            yield bytes(value).decode("utf-8", errors="replace")
            yield base64.b64encode(bytes(value)).decode("ascii")
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _string_leaves(item)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from _string_leaves(item)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        text = str(value)
        if len(text) >= MIN_SECRET_LENGTH:
            yield text


def _json_leaves(text: str) -> Iterable[str]:
    """The fields of a structured secret stored as JSON text (a Secrets Manager SecretString),
    each of which an agent may use on its own."""
    if not text.lstrip().startswith(("{", "[")):
        return
    try:
        parsed = json.loads(text)
    except ValueError:
        return
    yield from _string_leaves(parsed)


def _variants(secret: str) -> set[str]:
    """The forms a secret takes when embedded in JSON, URLs, base64 or hex by the agent's code."""
    forms = {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
    }
    if len(secret) >= 8:
        forms.add(base64.b64encode(secret.encode()).decode("ascii").rstrip("="))
        forms.add(secret.encode("utf-8", "surrogatepass").hex())
    return {form for form in forms if form}


class Redactor:
    """Removes tainted secret values and credential shapes from text and structures."""

    def __init__(self, secrets: SecretRegistry) -> None:
        self.secrets = secrets

    def text(self, text: str, *, credentials: bool = True) -> str:
        text = self.secrets.scrub(text)
        return redact_credentials(text) if credentials else text

    def value(self, value: JsonValue, *, credentials: bool = True) -> JsonValue:
        """Redact a JSON-compatible structure: strings and keys, and with ``credentials`` also
        credential shapes and the values of secret-named fields."""
        if isinstance(value, str):
            return self.text(value, credentials=credentials)
        if isinstance(value, list):
            return [self.value(item, credentials=credentials) for item in value]
        if isinstance(value, dict):
            out: dict[str, JsonValue] = {}
            for key, item in value.items():
                clean_key = self.text(key, credentials=credentials)
                if credentials and is_secret_key_name(key) and item not in (None, "", [], {}):
                    out[clean_key] = "[REDACTED:credential]"
                else:  # base64 of bytes is not text: credential shapes in it are chance
                    out[clean_key] = self.value(item, credentials=credentials and key != "$bytes")
            return out
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
# arguments or result. The sender names where it is, the receiver taints those substrings too,
# so neither side records it: ``[pointer, start, end]`` with an RFC 6901 JSON Pointer to a string
# leaf and code-point offsets of the secret in it.

MAX_TAINTED_SPANS: Final = 256
MIN_PEER_SECRET_LENGTH: Final = 8

TaintedSpan = tuple[str, int, int]


def tainted_spans(jsonable: JsonValue) -> list[TaintedSpan]:
    """Where secrets fetched in this process occur in ``jsonable``'s string leaves."""
    pattern = SECRETS.pattern
    found: list[TaintedSpan] = []
    if pattern is None:
        return found
    for pointer, leaf in _string_leaves_at(jsonable, ""):
        for match in pattern.finditer(leaf):
            found.append((pointer, match.start(), match.end()))
            if len(found) >= MAX_TAINTED_SPANS:
                return found
    return found


def taint_spans(jsonable: JsonValue, spans: object) -> int:
    """Taint what a peer said are secrets in ``jsonable``; returns how many values were tainted.

    A peer's word can only add redaction. Substrings shorter than ``MIN_PEER_SECRET_LENGTH`` are
    ignored, so that a peer cannot scrub common words from this process's records, and at most
    ``MAX_TAINTED_SPANS`` entries are read.
    """
    if not isinstance(spans, (list, tuple)):
        return 0
    tainted = 0
    for entry in spans[:MAX_TAINTED_SPANS]:
        if not (isinstance(entry, (list, tuple)) and len(entry) == 3):
            continue
        pointer, start, end = entry
        leaf = _at_pointer(jsonable, pointer) if isinstance(pointer, str) else None
        if not (isinstance(leaf, str) and isinstance(start, int) and isinstance(end, int)):
            continue
        secret = leaf[max(start, 0) : end]
        if len(secret) >= MIN_PEER_SECRET_LENGTH:
            SECRETS.add(secret)
            tainted += 1
    return tainted


def _string_leaves_at(value: JsonValue, pointer: str) -> Iterable[tuple[str, str]]:
    if isinstance(value, str):
        yield pointer, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _string_leaves_at(item, f"{pointer}/{key.replace('~', '~0').replace('/', '~1')}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _string_leaves_at(item, f"{pointer}/{index}")


def _at_pointer(value: JsonValue, pointer: str) -> JsonValue:
    if pointer and not pointer.startswith("/"):
        return None
    for token in pointer.split("/")[1:]:
        key = token.replace("~1", "/").replace("~0", "~")
        if isinstance(value, dict):
            value = value.get(key)
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return None
    return value
