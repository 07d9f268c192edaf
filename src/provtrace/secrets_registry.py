"""The values ``secret_fetch`` returned in this process, the forms they take, and where they are.

A fetched secret rarely reaches stored text exactly as it was fetched: agents unwrap it (pydantic
``SecretStr``, a JSON ``SecretString``, ``"Bearer S"``, a trailing newline) and encode it (JSON
strings inside JSON strings, URLs, hex, base64 of a larger blob, upper case, Unicode
normalisation, fullwidth forms). The registry taints each secret found inside the fetched value
(:func:`secret_leaves`) in each of those forms (:func:`variants`). The forms are plain literal
strings (any literal matcher, Aho-Corasick included, can take them as they are); here they are
found with a few regular expressions built from them (see ``_Generation``).

Short secrets are the other danger: scrubbing every ``7`` or ``2026`` would destroy ids, digests and
times. A variant shorter than ``MIN_SECRET_LENGTH``, or derived from a secret that is, is still
removed from content, but only where it stands as a whole token (not next to ``[A-Za-z0-9]``), and
never from structural fields (ids, digests, times, enums: ``structural=True``).

Kept in memory only; the values themselves are never written anywhere.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import dataclasses
import enum
import itertools
import json
import re
import threading
import unicodedata
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Final

SECRET_MARKER: Final = "[REDACTED:secret]"  # noqa: S105 - the marker, not a secret

# Below this length a secret (and any form of it) is matched only as a whole token and never in
# structural fields: shorter values occur by chance in ids, digests, times and ordinary words.
MIN_SECRET_LENGTH: Final = 8
JSON_ESCAPE_DEPTH: Final = 6  # a secret in a JSON string in a JSON string ... six levels deep

_NO_ALNUM_BEFORE: Final = r"(?<![A-Za-z0-9])"
_NO_ALNUM_AFTER: Final = r"(?![A-Za-z0-9])"
_MAX_DEPTH: Final = 16  # how deep a fetched value is unwrapped
_MAX_LEAVES: Final = 4096  # secrets taken from one fetched value
_MAX_JSON_SECRET: Final = 1 << 20  # larger strings are not parsed for fields
_TRIE_DEPTH: Final = 8  # characters factored into the matcher's prefix tree
_ANCHOR_LENGTH: Final = 64  # longer variants are found by their start, then checked in full
# "scheme token" strings whose token is the secret an agent sends on (RFC 9110 auth schemes and
# the usual API-key prefixes).
_AUTH_SCHEMES: Final = frozenset(
    {"bearer", "basic", "token", "apikey", "api-key", "key", "negotiate", "ntlm", "dpop", "mac", "sso-key"}
)
_SCHEME_TOKEN: Final = re.compile(r"([A-Za-z][A-Za-z0-9_-]*)[ \t]+(\S+)")
_FULLWIDTH: Final = {code: code + 0xFEE0 for code in range(0x21, 0x7F)}  # '!'..'~' -> U+FF01..U+FF5E
_UPPER_HEX_ESCAPE: Final = re.compile(r"%[0-9A-F]{2}")


# --- what is a secret in a fetched value -------------------------------------------------------


def secret_leaves(value: object) -> list[str | bytes]:
    """Every secret inside a fetched value, as the agent may take it apart.

    Strings, numbers (any length) and bytes are secrets; containers are walked (values, not
    keys); ``get_secret_value()`` wrappers are opened (pydantic ``SecretStr``/``SecretBytes``,
    v1 and v2); other objects are walked through ``__dict__`` and ``__slots__``, never their
    ``repr``. A string also yields its stripped form, the token of ``"Bearer S"`` and friends
    (and for ``Basic``, the decoded ``user:password`` and the password), and, when it is a JSON
    object or array (an AWS ``SecretString``), every field of it. Bytes that are not UTF-8 are
    kept as bytes (only their binary encodings can appear in text).
    """
    found: list[str | bytes] = []
    _Unwrapper(found).walk(value, 0)
    return list(dict.fromkeys(found))


class _Unwrapper:
    __slots__ = ("active", "found")

    def __init__(self, found: list[str | bytes]) -> None:
        self.found = found
        self.active: set[int] = set()

    def walk(self, value: object, depth: int) -> None:
        if depth > _MAX_DEPTH or len(self.found) >= _MAX_LEAVES or value is None or isinstance(value, bool):
            return
        if isinstance(value, str):
            self.text(value, depth)
        elif isinstance(value, (bytes, bytearray, memoryview)):
            self.binary(bytes(value), depth)
        elif isinstance(value, (int, float)):
            self.found.append(str(value))
        elif isinstance(value, enum.Enum):
            self.walk(value.value, depth + 1)
        elif id(value) not in self.active:
            self.active.add(id(value))
            try:
                self.container(value, depth + 1)
            finally:
                self.active.discard(id(value))

    def container(self, value: object, depth: int) -> None:
        if isinstance(value, Mapping):
            items: Iterable[object] = value.values()
        elif isinstance(value, (list, tuple, set, frozenset)):
            items = value
        else:
            reveal = getattr(value, "get_secret_value", None)
            if callable(reveal):
                try:
                    self.walk(reveal(), depth)
                except Exception:  # noqa: BLE001, S110 - a broken wrapper leaves its fields to walk
                    pass
                else:
                    return
            try:
                items = _fields(value)
            except Exception:  # noqa: BLE001 - an object whose attributes raise holds nothing to walk
                return
        for item in items:
            self.walk(item, depth)

    def text(self, value: str, depth: int) -> None:
        if not value:
            return
        self.found.append(value)
        stripped = value.strip()
        if not stripped:
            return
        if stripped != value:
            self.found.append(stripped)
        scheme = _SCHEME_TOKEN.fullmatch(stripped)
        if scheme is not None and scheme.group(1).lower() in _AUTH_SCHEMES:
            token = scheme.group(2)
            self.found.append(token)
            if scheme.group(1).lower() == "basic":
                self.basic_credentials(token)
        if stripped[0] in "{[" and len(stripped) <= _MAX_JSON_SECRET:
            try:
                fields = json.loads(stripped)
            except (ValueError, RecursionError):  # not JSON, or nested beyond the parser
                return
            self.walk(fields, depth + 1)

    def basic_credentials(self, token: str) -> None:
        try:
            decoded = base64.b64decode(token, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return
        _user, colon, password = decoded.partition(":")
        if colon:
            self.found.append(decoded)
            if password:
                self.found.append(password)

    def binary(self, value: bytes, depth: int) -> None:
        if not value:
            return
        try:
            self.text(value.decode("utf-8"), depth)
        except UnicodeDecodeError:
            self.found.append(value)


def _fields(value: object) -> list[object]:
    """An object's attribute values (``__dict__`` and every ``__slots__`` in its MRO)."""
    found: list[object] = []
    attributes = getattr(value, "__dict__", None)
    if isinstance(attributes, dict):
        found.extend(attributes.values())
    for cls in type(value).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        for slot in (slots,) if isinstance(slots, str) else slots:
            if slot.startswith("__") and slot.endswith("__"):
                continue  # __dict__, __weakref__, pydantic's internals (field names, not values)
            private = slot.startswith("__")  # stored under its name-mangled form
            try:
                found.append(getattr(value, f"_{cls.__name__.lstrip('_')}{slot}" if private else slot))
            except AttributeError:
                continue  # a slot never assigned
    return found


# --- the forms a secret takes in text ----------------------------------------------------------


def variants(secret: str | bytes) -> set[str]:
    """The literal forms ``secret`` takes in stored text (see the module docstring).

    Text: as is, upper and lower case, NFC/NFD/NFKC/NFKD, fullwidth ASCII, each JSON-escaped at
    depths 1..``JSON_ESCAPE_DEPTH`` (``ensure_ascii`` on and off); percent-encoded with
    ``quote(safe="")``, ``quote()`` (``safe="/"``) and ``quote_plus``, each also with lowercase
    hex escapes; and the binary forms of its UTF-8 bytes. Binary: hex (lower and upper) and
    base64 (standard and URL-safe, with and without padding) at each of the three alignments
    (see :func:`base64_forms`).
    """
    if isinstance(secret, bytes):
        return _without_empty(_binary_forms(secret))
    normal_forms = {secret, *(unicodedata.normalize(form, secret) for form in ("NFC", "NFD", "NFKC", "NFKD"))}
    found = normal_forms | {secret.upper(), secret.lower(), secret.translate(_FULLWIDTH)}
    for form in normal_forms:
        found |= _json_escapes(form)
    found |= _percent_forms(secret)
    found |= _binary_forms(secret.encode("utf-8", errors="replace"))
    return _without_empty(found)


def _without_empty(forms: set[str]) -> set[str]:
    forms.discard("")
    return forms


def _json_escapes(text: str) -> set[str]:
    """``text`` as it appears inside a JSON string, inside a JSON string, ... (each level with
    and without ``ensure_ascii``; after an ASCII level both agree, so the set stays small)."""
    found: set[str] = set()
    level = {text}
    for _ in range(JSON_ESCAPE_DEPTH):
        level = {json.dumps(t, ensure_ascii=ascii_only)[1:-1] for t in level for ascii_only in (True, False)}
        found |= level
    return found


def _percent_forms(secret: str) -> set[str]:
    encoded = {
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote(secret),
        urllib.parse.quote_plus(secret),
    }
    return encoded | {_UPPER_HEX_ESCAPE.sub(lambda m: m.group(0).lower(), form) for form in encoded}


def _binary_forms(data: bytes) -> set[str]:
    return {data.hex(), data.hex().upper()} | base64_forms(data)


def base64_forms(data: bytes) -> set[str]:
    """The base64 characters that encode ``data`` wherever it sits in a larger blob.

    Base64 turns each 3 bytes into 4 characters, so ``data`` at offset ``k`` (mod 3) of a blob is
    encoded differently for each ``k``. For alignment ``k`` this encodes ``b"\\0" * k + data`` and
    keeps the characters whose 6 bits all come from ``data`` (the *core*): those are the same
    whatever the unknown neighbouring bytes are. The neighbours can only change the one
    character at each end that mixes their bits with ``data``'s: that character (at most 4 bits of
    the first or last byte of ``data``) stays in the text. When ``data`` ends the blob its last
    characters and padding are fixed too, so the core through the end (with and without ``=``)
    is also a form. Standard and URL-safe alphabets.
    """
    found: set[str] = set()
    bits = 8 * len(data)
    for k in range(3):
        first = -(-8 * k // 6)  # the first character with no bit of the k leading bytes
        last = (8 * k + bits) // 6  # one past the last character with no bit of what follows
        if last <= first:
            continue
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * k + data).decode("ascii")
            tail = encoded[first:]
            found.update((encoded[first:last], tail, tail.rstrip("=")))
    return found


# --- matching ----------------------------------------------------------------------------------


def _alternation(literals: Iterable[str], depth: int = 0) -> str:
    """A regular expression matching any of ``literals``, longest first, factored into a prefix
    tree for its first ``_TRIE_DEPTH`` characters so that the matcher does not try every literal
    at every position (one flat alternation of hundreds of variants is several times slower)."""
    strings = set(literals)
    if depth >= _TRIE_DEPTH or len(strings) <= 1:
        return "|".join(re.escape(s) for s in sorted(strings, key=lambda s: (-len(s), s)))
    branches: dict[str, set[str]] = {}
    for s in strings:
        if s:
            branches.setdefault(s[0], set()).add(s[1:])
    parts = []
    for head in sorted(branches):
        rest = _alternation(branches[head], depth + 1)
        parts.append(re.escape(head) + (f"(?:{rest})" if "|" in rest else rest))
    if "" in strings:
        parts.append("")  # the shorter literal ends here, tried after every longer one
    return "|".join(parts)


@dataclasses.dataclass(frozen=True)
class _Matcher:
    """One compiled pattern. Variants longer than ``_ANCHOR_LENGTH`` are in it by their first
    characters only (compiling long literals takes seconds: a private key in 25 forms, over a
    second); a match of such an anchor is extended to as much of a full variant as the text holds,
    so a partly present long secret (cut by a size cap) is removed as far as it goes."""

    pattern: re.Pattern[str]
    longer: Mapping[str, tuple[str, ...]]  # anchor -> the variants that start with it

    def spans(self, text: str) -> Iterator[tuple[int, int]]:
        for match in self.pattern.finditer(text):
            start, end = match.span()
            variants_here = self.longer.get(match.group())
            if variants_here:
                end = start + max(_common_prefix(text, start, full) for full in variants_here)
            yield start, end


def _common_prefix(text: str, start: int, full: str) -> int:
    """How many characters of ``full`` ``text`` holds from ``start`` (a binary search over
    ``startswith``, which runs in C)."""
    low, high = 0, min(len(full), len(text) - start)
    while low < high:
        middle = (low + high + 1) // 2
        if text.startswith(full[:middle], start):
            low = middle
        else:
            high = middle - 1
    return low


class _Generation:
    """The variants of some of the registered secrets and their matchers, compiled on first use:
    ``anywhere`` (every variant; short ones as whole tokens) and ``structural`` (long ones only,
    also used to find secrets split across adjacent strings).

    Compiling a pattern costs time in proportion to its size, so one pattern of every variant
    would be rebuilt in full for each new secret. Generations merge like a binary counter (two
    of equal size become one), so each variant is compiled about log2(secrets) times in all and
    a search runs at most that many patterns.
    """

    __slots__ = ("_compiled", "long", "secrets", "short")

    def __init__(self, long: frozenset[str], short: frozenset[str], secrets: int) -> None:
        self.long = long
        self.short = short - long
        self.secrets = secrets
        self._compiled: tuple[_Matcher | None, _Matcher | None] | None = None

    def merged(self, newer: _Generation) -> _Generation:
        return _Generation(self.long | newer.long, self.short | newer.short, self.secrets + newer.secrets)

    def matchers(self) -> tuple[_Matcher | None, _Matcher | None]:
        """(anywhere, structural)."""
        compiled = self._compiled
        if compiled is None:
            anchors: dict[str, list[str]] = {}
            for form in self.long:
                if len(form) > _ANCHOR_LENGTH:
                    anchors.setdefault(form[:_ANCHOR_LENGTH], []).append(form)
            longer = {anchor: tuple(forms) for anchor, forms in anchors.items()}
            long_rx = _alternation(form[:_ANCHOR_LENGTH] for form in self.long) if self.long else ""
            short_rx = _alternation(self.short) if self.short else ""
            alternatives = [f"(?:{long_rx})"] if long_rx else []
            if short_rx:
                alternatives.append(f"{_NO_ALNUM_BEFORE}(?:{short_rx}){_NO_ALNUM_AFTER}")
            anywhere = _Matcher(re.compile("|".join(alternatives)), longer) if alternatives else None
            structural = _Matcher(re.compile(long_rx), longer) if long_rx else None
            compiled = self._compiled = (anywhere, structural)
        return compiled


class SecretRegistry:
    """Values returned by ``secret_fetch`` in this process, in every form they might appear in.

    The API the rest of provtrace uses: :meth:`add` (taint), :meth:`contains_secret` and
    :meth:`scrub` (with ``structural=True`` for id, digest, time and enum fields),
    :meth:`secret_spans` (where), :meth:`holding` (which of many strings) and
    :meth:`scrub_joined` (secrets split across strings).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._long: set[str] = set()
        self._short: set[str] = set()
        self._generations: tuple[_Generation, ...] = ()
        # (the generations compiled, their anywhere matchers, their structural matchers)
        self._compiled: tuple[tuple[_Generation, ...], tuple[_Matcher, ...], tuple[_Matcher, ...]] | None
        self._compiled = None

    def add(self, value: object, *, unwrap: bool = True) -> None:
        """Taint every secret inside ``value`` (see :func:`secret_leaves`) in every form (see
        :func:`variants`). ``unwrap=False`` taints exactly the given string, for positions a peer
        marked: a peer's word must not make this process taint more than it pointed at."""
        leaves: Sequence[str | bytes] = secret_leaves(value) if unwrap else [str(value)] if value else []
        long: set[str] = set()
        short: set[str] = set()
        for leaf in leaves:
            forms = variants(leaf)
            if len(leaf) >= MIN_SECRET_LENGTH:
                long.update(form for form in forms if len(form) >= MIN_SECRET_LENGTH)
                short.update(form for form in forms if len(form) < MIN_SECRET_LENGTH)
            else:
                short |= forms
        with self._lock:
            long -= self._long
            short -= self._short | self._long
            if not long and not short:
                return
            self._long |= long
            self._short |= short
            generations = [*self._generations, _Generation(frozenset(long), frozenset(short), 1)]
            while len(generations) > 1 and generations[-1].secrets >= generations[-2].secrets:
                newer = generations.pop()
                generations.append(generations.pop().merged(newer))
            self._generations = tuple(generations)

    def clear(self) -> None:
        with self._lock:
            self._long.clear()
            self._short.clear()
            self._generations = ()

    def __len__(self) -> int:
        """How many literal forms are tainted (so a registry is true once anything is)."""
        return len(self._long) + len(self._short)

    def _matchers(self, structural: bool) -> tuple[_Matcher, ...]:
        """The matchers of every generation (compiling what is new), cached until the next
        change."""
        cached = self._compiled
        if cached is None or cached[0] is not self._generations:
            generations = self._generations
            compiled = [generation.matchers() for generation in generations]
            anywhere = tuple(m for m, _ in compiled if m is not None)
            long_only = tuple(m for _, m in compiled if m is not None)
            cached = self._compiled = (generations, anywhere, long_only)
        return cached[2] if structural else cached[1]

    def contains_secret(self, text: str, *, structural: bool = False) -> bool:
        """Whether ``text`` holds a tainted value. ``structural``: ``text`` is an id, digest, time
        or enum field, where only secrets of at least ``MIN_SECRET_LENGTH`` characters count."""
        return any(matcher.pattern.search(text) for matcher in self._matchers(structural))

    def secret_spans(self, text: str, *, structural: bool = False) -> list[tuple[int, int]]:
        """Where tainted values are in ``text``: ordered, disjoint ``(start, end)`` code-point
        spans (overlapping matches of different secrets are merged)."""
        return _spans(self._matchers(structural), text)

    def scrub(self, text: str, *, structural: bool = False) -> str:
        """``text`` with every tainted value replaced by ``SECRET_MARKER`` (``structural`` as in
        :meth:`contains_secret`)."""
        matchers = self._matchers(structural)
        if len(matchers) == 1 and not matchers[0].longer:
            return matchers[0].pattern.sub(SECRET_MARKER, text)  # one scan, the common case
        hits = [matcher for matcher in matchers if matcher.pattern.search(text)]
        if not hits:
            return text
        if len(hits) == 1 and not hits[0].longer:
            return hits[0].pattern.sub(SECRET_MARKER, text)
        return _cut(text, _spans(hits, text))

    def holding(self, strings: Sequence[str]) -> set[str]:
        """Those of ``strings`` that hold a tainted value, found with one search over all of
        them (the many short strings of one structure cost one search, not one each)."""
        if not self or not strings:
            return set()
        spans = self.secret_spans("\x00".join(strings))  # no variant holds the separator
        if not spans:
            return set()
        starts = list(itertools.accumulate((len(s) + 1 for s in strings), initial=0))
        found: set[str] = set()
        for start, end in spans:
            first = bisect.bisect_right(starts, start) - 1
            last = bisect.bisect_right(starts, end - 1) - 1
            found.update(strings[first : last + 1])
        return found

    def scrub_joined(self, parts: Sequence[str]) -> list[str] | None:
        """``parts`` (consecutive strings of one structure) with every secret that spans the
        boundary between two of them cut out of each part it touches, or None when none does.

        An agent that splits a secret over two arguments (``a=S[:n]``, ``b=S[n:]``) leaves no
        whole secret in either. Only long secrets are looked for: a short one spanning two
        strings is too likely to be a coincidence.
        """
        if len(parts) < 2 or not self._long:
            return None
        ends = list(itertools.accumulate(len(part) for part in parts))
        cuts: dict[int, list[tuple[int, int]]] = {}
        for start, end in self.secret_spans("".join(parts), structural=True):
            first = bisect.bisect_right(ends, start)
            last = bisect.bisect_right(ends, end - 1)
            if last == first:
                continue  # inside one part: scrubbing that part finds it
            for index in range(first, last + 1):
                begin = ends[index] - len(parts[index])
                cut = (max(start, begin) - begin, min(end, ends[index]) - begin)
                if cut[0] < cut[1]:
                    cuts.setdefault(index, []).append(cut)
        if not cuts:
            return None
        out = list(parts)
        for index, spans in cuts.items():
            out[index] = _cut(parts[index], spans)
        return out


def _spans(matchers: Iterable[_Matcher], text: str) -> list[tuple[int, int]]:
    """The matches of all ``matchers`` in ``text``, overlapping ones merged, in order."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(span for matcher in matchers for span in matcher.spans(text)):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _cut(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with each of the (ordered, disjoint) ``spans`` replaced by the marker."""
    pieces: list[str] = []
    position = 0
    for start, end in spans:
        pieces.append(text[position:start])
        pieces.append(SECRET_MARKER)
        position = end
    pieces.append(text[position:])
    return "".join(pieces)
