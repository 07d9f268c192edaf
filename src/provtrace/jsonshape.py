"""Checked access to untrusted JSON, for every reader of evidence.

Archive lines, Jaeger answers and quarantine entries may come from anyone; each field is taken
through these functions, so a value of the wrong type, range or depth is one ``ShapeError`` naming
the field, never a ``KeyError`` or ``RecursionError`` further down. Messages name JSON types, not
values: a value may be huge, binary, or a secret.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

import orjson

from provtrace.errors import InputError

_DECIMAL = re.compile(r"-?[0-9]{1,20}")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")


class ShapeError(InputError):
    """Untrusted JSON is not shaped as the reader expects."""


def parse(data: str | bytes, what: str) -> Any:
    """JSON text (bytes must be UTF-8) as Python data; every failure is a ``ShapeError``.

    orjson is strict where the standard library is lenient, which suits hostile input: invalid
    UTF-8, lone surrogates, ``NaN`` literals, integers beyond 64 bits and nesting beyond 1024
    levels are all refused (none of them is in anything provtrace or the Collector writes)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        message = str(exc)
        if "depth limit" in message:
            raise ShapeError(f"{what} is nested too deeply to be read") from exc
        if "exceeds 64-bit range" in message:
            raise ShapeError(f"{what} holds a number too long to be read") from exc
        raise ShapeError(f"{what} is not JSON (or not UTF-8): {message}") from exc


def kind(value: object) -> str:
    """The JSON type of a decoded value, for messages."""
    if value is None:
        return "null"
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list"}
    return names.get(type(value), "an object")


def obj(value: object, what: str) -> Mapping[str, Any]:
    """An object; absent (null) is empty."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ShapeError(f"{what} must be an object, got {kind(value)}")
    return value


def items(value: object, what: str) -> list[Any]:
    """A list; absent (null) is empty."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ShapeError(f"{what} must be a list, got {kind(value)}")
    return value


def text(value: object, what: str) -> str:
    """A string; absent (null) is empty."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ShapeError(f"{what} must be a string, got {kind(value)}")
    return value


def boolean(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise ShapeError(f"{what} must be true or false, got {kind(value)}")
    return value


def integer(value: object, what: str, low: int, high: int) -> int:
    """An integer given as a JSON number or a decimal string (proto3 JSON writes 64-bit integers
    as strings), within ``low..high``; absent (null) is 0."""
    if value is None:
        return 0
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        number = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise ShapeError(f"{what} must be an integer, got {kind(value)}")
    if not low <= number <= high:
        raise ShapeError(f"{what} is out of range ({low}..{high})")
    return number


def base64_bytes(value: str, what: str) -> bytes:
    """Base64 in the standard or URL-safe alphabet, padded or not (proto3 JSON accepts all)."""
    if not _BASE64.fullmatch(value):
        raise ShapeError(f"{what} must be base64")
    unpadded = value.rstrip("=").replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(unpadded + "=" * (-len(unpadded) % 4), validate=True)
    except ValueError as exc:
        raise ShapeError(f"{what} must be base64") from exc
